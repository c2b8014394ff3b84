// The generated CRDs against a real kube-apiserver, driven with the real kubectl
// the way a user would: apply, validation messages, defaults, printer columns,
// kubectl explain, the status subresource, short names and the category.
import { readdirSync, readFileSync } from 'node:fs';
import { beforeAll, describe, expect, inject, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { reportName } from '../../src/api/report.ts';
import { validateOrigin } from '../../src/api/validate.ts';
import { exampleOrigin, INVALID_ORIGINS, invalidOrigin, type Manifest } from '../support/invalid-origins.ts';
import { failingOriginStatus, unreachableReport } from '../support/status-samples.ts';
import { apply, kubectl, kubectlJson, kubectlOk, printedRows, useNamespace, waitFor } from './fixtures.ts';

const repo = new URL('../../', import.meta.url);
const CRDS = ['origins.edge.originguard.dev', 'originreports.edge.originguard.dev'];

/** Every Kubernetes object in examples/, with the file it came from. */
function exampleObjects(): { file: string; object: Manifest }[] {
  const dir = new URL('examples/', repo);
  return readdirSync(dir)
    .filter((f) => /\.ya?ml$/.test(f))
    .flatMap((file) =>
      parseAllDocuments(readFileSync(new URL(file, dir), 'utf8'))
        .map((d) => d.toJS() as Manifest | null)
        .filter((o): o is Manifest => typeof o?.apiVersion === 'string' && typeof o.kind === 'string')
        .map((object) => ({ file, object })),
    );
}

/** An object (by default the example Origin) moved into `namespace`: examples name their own. */
function inNamespace(namespace: string, object: Manifest = exampleOrigin()): string {
  object.metadata.namespace = namespace;
  return JSON.stringify(object);
}

const FAILING_STATUS = failingOriginStatus();

beforeAll(async () => {
  await kubectlOk(['apply', '--server-side', '--force-conflicts', '-f', new URL('crds/', repo).pathname]);
  await kubectlOk(['wait', '--for=condition=Established', '--timeout=60s', ...CRDS.map((c) => `crd/${c}`)]);
});

describe('the CRDs', () => {
  it('are accepted by the API server, CEL rules included, and become Established', async () => {
    for (const name of CRDS) {
      const crd = await kubectlJson<{ status: { conditions: { type: string; status: string }[] } }>([
        'get',
        'crd',
        name,
      ]);
      const conditions = Object.fromEntries(crd.status.conditions.map((c) => [c.type, c.status]));
      expect(conditions, name).toMatchObject({ NamesAccepted: 'True', Established: 'True' });
    }
  });
});

describe('Origin validation by the API server', () => {
  const ns = useNamespace('crds');

  it.each(exampleObjects())(
    'accepts $object.kind $object.metadata.name from examples/$file',
    async ({ object }) => {
      const out = await apply(inNamespace(ns(), structuredClone(object)));
      expect(out).toMatch(/created|configured|unchanged/);
    },
  );

  it.each(exampleObjects().filter(({ object }) => object.kind === 'Origin'))(
    'stores $object.metadata.name from examples/$file with the defaults the standalone sidecar applies',
    async ({ object }) => {
      const local = validateOrigin(structuredClone(object));
      expect(local.ok ? [] : local.errors).toEqual([]);
      await apply(inNamespace(ns(), structuredClone(object)));
      const stored = await kubectlJson<Manifest>(['get', 'origin', object.metadata.name], {
        namespace: ns(),
      });
      expect(stored.spec).toEqual(local.ok ? local.value.spec : undefined);
    },
  );

  it.each(INVALID_ORIGINS)('refuses $name with a message naming the field and the fix', async (entry) => {
    const origin = invalidOrigin(entry);
    // --validate=strict is kubectl's default; spelt out because unknown fields are otherwise pruned silently.
    const r = await kubectl(['apply', '--validate=strict', '-f', '-'], { input: inNamespace(ns(), origin) });
    expect(r.code).not.toBe(0);
    for (const fragment of entry.apiServer) expect(r.stderr).toContain(fragment);
    expect((await kubectl(['get', 'origin', origin.metadata.name], { namespace: ns() })).code).not.toBe(0);
  });

  it('drops unknown fields silently when the client does not ask for strict validation', async () => {
    const origin = exampleOrigin();
    origin.spec.upstream.portt = 8080;
    const r = await kubectl(['apply', '--validate=false', '-f', '-'], { input: inNamespace(ns(), origin) });
    expect(r.code).toBe(0);
    const stored = await kubectlJson<Manifest>(['get', 'origin', 'shop'], { namespace: ns() });
    expect(stored.spec.upstream).not.toHaveProperty('portt');
  });

  it('fills in the defaults of omitted fields', async () => {
    const origin = exampleOrigin();
    delete origin.spec.timeouts;
    await apply(inNamespace(ns(), origin));
    const stored = await kubectlJson<Manifest>(['get', 'origin', 'shop'], { namespace: ns() });
    expect(stored.spec).toMatchObject({
      listen: { port: 8080, address: '0.0.0.0' },
      upstream: { connectAttempts: 1 },
      timeouts: { connect: '5s', response: '60s', idle: '4s' },
      outlierDetection: { consecutiveFailures: 5, baseEjectionTime: '1s', maxEjectionTime: '30s' },
      errorResponse: { statusProfile: 'Uniform', retryAfter: '5s', showDetails: false },
    });
  });
});

describe('kubectl get origins', () => {
  const ns = useNamespace('crds');

  it('shows upstream, port, reachable, cause, pods and age', async () => {
    await apply(inNamespace(ns()));
    const out = await kubectlOk(['get', 'origins'], { namespace: ns() });
    expect(out.split('\n')[0]?.trim().split(/\s+/)).toEqual([
      'NAME',
      'UPSTREAM',
      'PORT',
      'REACHABLE',
      'CAUSE',
      'PODS',
      'AGE',
    ]);
    expect(printedRows(out)[0]).toMatchObject({
      NAME: 'shop',
      UPSTREAM: 'shop-origin.web.svc.cluster.local',
      PORT: '80',
    });
  });

  it('shows a status written through the status subresource', async () => {
    await apply(inNamespace(ns()));
    await kubectlOk(
      [
        'patch',
        'origin',
        'shop',
        '--subresource=status',
        '--type=merge',
        '-p',
        JSON.stringify({ status: FAILING_STATUS }),
      ],
      { namespace: ns() },
    );
    expect(printedRows(await kubectlOk(['get', 'origins'], { namespace: ns() }))[0]).toMatchObject({
      NAME: 'shop',
      REACHABLE: 'False',
      CAUSE: 'connection_refused',
      PODS: '0/3',
    });
    const wide = printedRows(await kubectlOk(['get', 'origins', '-o', 'wide'], { namespace: ns() }))[0];
    expect(wide).toMatchObject({
      LISTEN: '8080',
      READY: 'False',
      FAILING: '2',
      UNINJECTED: '1',
      SCOPE: 'Origin',
      HINT: FAILING_STATUS.hint,
    });
  });

  it('ignores status in writes to the Origin itself: only the status subresource changes it', async () => {
    const origin = exampleOrigin();
    origin.status = FAILING_STATUS;
    await apply(inNamespace(ns(), origin));
    const stored = await kubectlJson<Manifest>(['get', 'origin', 'shop'], { namespace: ns() });
    expect(stored.status).toBeUndefined();
  });

  it('refuses a status that breaks the condition conventions', async () => {
    await apply(inNamespace(ns()));
    const bad = { status: { conditions: [{ type: 'Ready', status: 'Maybe', reason: 'x y', message: '' }] } };
    const r = await kubectl(
      ['patch', 'origin', 'shop', '--subresource=status', '--type=merge', '-p', JSON.stringify(bad)],
      { namespace: ns() },
    );
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain('status.conditions[0].status: Unsupported value: "Maybe"');
    expect(r.stderr).toContain('status.conditions[0].lastTransitionTime: Required value');
  });

  it('finds Origins by the short name og and the category originguard', async () => {
    await apply(inNamespace(ns()));
    expect(await kubectlOk(['get', 'og', '-o', 'name'], { namespace: ns() })).toBe(
      'origin.edge.originguard.dev/shop\n',
    );
    expect(await kubectlOk(['get', 'originguard', '-o', 'name'], { namespace: ns() })).toContain(
      'origin.edge.originguard.dev/shop',
    );
  });
});

describe('kubectl explain', () => {
  it('teaches origin.spec.upstream from the schema descriptions', async () => {
    let out = '';
    // The API server publishes a new CRD's OpenAPI a moment after it is Established.
    await waitFor(
      async () => {
        const r = await kubectl(['explain', 'origin.spec.upstream']);
        out = r.stdout;
        return r.code === 0;
      },
      { timeoutMs: 30_000, what: 'kubectl explain origin.spec.upstream' },
    );
    // kubectl wraps descriptions; compare with whitespace collapsed.
    const text = out.replace(/\s+/g, ' ');
    expect(text).toContain('The origin the sidecar forwards edge traffic to.');
    expect(text).toContain('host <string> -required- DNS name or IP address of the origin.');
    expect(text).toContain('port <integer> -required- Port of the origin (1-65535).');
    expect(text).toContain(
      'connectAttempts <integer> Connection attempts per address before moving to the next address (1-5). Default: 1.',
    );
  });

  it('documents the status the operator writes', async () => {
    const out = await kubectlOk(['explain', 'origin.status']);
    for (const field of [
      'conditions',
      'observedGeneration',
      'reachable',
      'cause',
      'hint',
      'pods',
      'causes',
      'lastFailure',
      'notInjected',
    ]) {
      expect(out).toMatch(new RegExp(`\\n\\s+${field}\\s+<`));
    }
  });
});

describe('OriginReport', () => {
  const ns = useNamespace('crds');

  const report = (namespace: string, pod: string, uid: string): Manifest =>
    unreachableReport(namespace, pod, uid) as unknown as Manifest;

  /** Creates a pod (it stays Pending: the test cluster has no nodes) and returns its UID. */
  async function createPod(namespace: string, name: string): Promise<string> {
    const pod = {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name, namespace, labels: { app: 'shop-edge' } },
      spec: { containers: [{ name: 'app', image: 'registry.k8s.io/pause:3.10' }] },
    };
    await apply(JSON.stringify(pod));
    return (await kubectlOk(['get', 'pod', name, '-o', 'jsonpath={.metadata.uid}'], { namespace })).trim();
  }

  it('is written whole, status included, in one server-side apply by the sidecar', async () => {
    const uid = await createPod(ns(), 'shop-edge-0');
    await kubectlOk(['apply', '--server-side', '--field-manager=originguard-sidecar', '-f', '-'], {
      input: JSON.stringify(report(ns(), 'shop-edge-0', uid)),
    });
    const stored = await kubectlJson<Manifest>(['get', 'originreport', reportName('shop', 'shop-edge-0')], {
      namespace: ns(),
    });
    expect(stored.status).toMatchObject({
      health: 'Unreachable',
      failuresByCause: { connection_refused: 4 },
    });
    expect(stored.metadata.labels).toEqual({
      'edge.originguard.dev/origin': 'shop',
      'edge.originguard.dev/pod': 'shop-edge-0',
    });
  });

  it('shows origin, pod, health, cause and age in kubectl get originreports', async () => {
    const uid = await createPod(ns(), 'shop-edge-0');
    await apply(JSON.stringify(report(ns(), 'shop-edge-0', uid)));
    const out = await kubectlOk(['get', 'originreports'], { namespace: ns() });
    expect(out.split('\n')[0]?.trim().split(/\s+/)).toEqual([
      'NAME',
      'ORIGIN',
      'POD',
      'HEALTH',
      'CAUSE',
      'AGE',
    ]);
    expect(printedRows(out)[0]).toMatchObject({
      NAME: 'shop-shop--edge--0',
      ORIGIN: 'shop',
      POD: 'shop-edge-0',
      HEALTH: 'Unreachable',
      CAUSE: 'connection_refused',
    });
    expect(await kubectlOk(['get', 'ogr', '-o', 'name'], { namespace: ns() })).toContain(
      'shop-shop--edge--0',
    );
    expect(await kubectlOk(['get', 'originguard', '-o', 'name'], { namespace: ns() })).toContain(
      'originreport.edge.originguard.dev/shop-shop--edge--0',
    );
  });

  it('is selectable by origin and pod name with a field selector', async () => {
    for (const pod of ['shop-edge-0', 'shop-edge-1']) {
      await apply(JSON.stringify(report(ns(), pod, await createPod(ns(), pod))));
    }
    const out = await kubectlOk(
      ['get', 'originreports', '--field-selector', 'status.podName=shop-edge-1', '-o', 'name'],
      {
        namespace: ns(),
      },
    );
    expect(out).toBe('originreport.edge.originguard.dev/shop-shop--edge--1\n');
  });

  it('refuses a report with an unknown health', async () => {
    const bad = report(ns(), 'shop-edge-0', '00000000-0000-0000-0000-000000000000');
    bad.status.health = 'Sick';
    const r = await kubectl(['apply', '-f', '-'], { input: JSON.stringify(bad) });
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain('status.health: Unsupported value: "Sick"');
  });

  it.skipIf(!inject('controllerManager'))('is garbage-collected with the pod that owns it', async () => {
    const uid = await createPod(ns(), 'shop-edge-0');
    await apply(JSON.stringify(report(ns(), 'shop-edge-0', uid)));
    await kubectlOk(['delete', 'pod', 'shop-edge-0', '--wait=false'], { namespace: ns() });
    await waitFor(
      async () =>
        (await kubectl(['get', 'originreport', reportName('shop', 'shop-edge-0')], { namespace: ns() }))
          .code !== 0,
      { timeoutMs: 45_000, what: 'the report to be garbage-collected' },
    );
  });
});
