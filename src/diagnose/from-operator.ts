// `diagnose origin/NAME --from-operator`: asks the operator to run the checklist
// from its own pod (the diagnose-request annotation, with a fresh id), waits for
// the Origin's status to answer that id, and shows the operator's result with the
// triangulation it feeds. The operator decides whether it may probe (its flags,
// the namespace's opt-in) and how often; a refusal is an answer too.
import { randomBytes } from 'node:crypto';
import { DIAGNOSE_REQUEST_ANNOTATION } from '../api/contract.ts';
import { GROUP, VERSION } from '../api/origin.ts';
import type { OperatorProbe, Triangulation } from '../api/triangulation.ts';
import { resourcePath } from '../kube/client.ts';
import { KubeApiError } from '../kube/errors.ts';
import { sleep } from '../retry.ts';
import { type ClusterSession, getOrigin } from './cluster.ts';
import { EXIT, exitCodeOfCause } from './diagnosis.ts';
import { OriginUnavailableError } from './errors.ts';
import type { Style } from './render.ts';
import { DIAGNOSIS_API_VERSION } from './schema.ts';
import { age, vantageLines } from './status-view.ts';

/** What `-o json|yaml` prints for --from-operator. */
export interface OperatorAnswer {
  readonly apiVersion: typeof DIAGNOSIS_API_VERSION;
  readonly kind: 'OperatorProbe';
  readonly origin: { readonly namespace: string; readonly name: string };
  readonly probe: OperatorProbe;
  readonly triangulation: Triangulation | null;
}

/** Sets the request annotation and waits for the operator's answer in the Origin's status. */
export async function askOperator(
  session: ClusterSession,
  name: string,
  timeoutMs: number,
  onWait?: (line: string) => void,
): Promise<OperatorAnswer> {
  const namespace = session.namespace;
  const id = `${Date.now().toString(36)}-${randomBytes(4).toString('hex')}`;
  const path = resourcePath({ group: GROUP, version: VERSION, plural: 'origins', namespace, name });
  await getOrigin(session, namespace, name);
  try {
    await session.client.request('PATCH', path, {
      body: { metadata: { annotations: { [DIAGNOSE_REQUEST_ANNOTATION]: id } } },
      contentType: 'application/merge-patch+json',
    });
  } catch (err) {
    const forbidden = err instanceof KubeApiError && err.status === 403;
    throw new OriginUnavailableError(
      forbidden
        ? `asking the operator needs patch on origins.${GROUP} in ${namespace} (to set the ${DIAGNOSE_REQUEST_ANNOTATION} annotation; see docs/diagnose.md, "RBAC")`
        : `cannot ask the operator: ${(err as Error).message}`,
    );
  }
  onWait?.(`asked the operator to probe Origin ${namespace}/${name} (request ${id})`);
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const origin = await getOrigin(session, namespace, name);
    const probe = origin.status?.operatorProbe;
    if (probe?.requestId === id) {
      return {
        apiVersion: DIAGNOSIS_API_VERSION,
        kind: 'OperatorProbe',
        origin: { namespace, name },
        probe,
        triangulation: origin.status?.triangulation ?? null,
      };
    }
    if (Date.now() > deadline) {
      throw new OriginUnavailableError(
        `the operator did not answer request ${id} within ${Math.round(timeoutMs / 1000)} s: is it running and leading (kubectl get lease -A | grep originguard), and not rate-limiting this Origin (--origin-probe-min-interval)? Its log says why.`,
      );
    }
    await sleep(500);
  }
}

/** The answer for people. */
export function renderOperatorAnswer(a: OperatorAnswer, now: number, style: Style): string[] {
  const head = style.bold(
    `Origin ${a.origin.namespace}/${a.origin.name}, seen from the operator (${a.probe.from}, ${age(a.probe.time, now)} ago)`,
  );
  return [
    head,
    ...vantageLines(
      { operatorProbe: a.probe, ...(a.triangulation === null ? {} : { triangulation: a.triangulation }) },
      now,
      style,
    ),
  ];
}

/** 0 reachable from the operator, the cause's class code when not, 87 when it did not probe. */
export function exitCodeOfAnswer(a: OperatorAnswer): number {
  if (a.probe.result === 'Reachable') return EXIT.reachable;
  if (a.probe.result === 'NotProbed') return EXIT.inconclusive;
  return exitCodeOfCause(a.probe.cause ?? null, a.probe.statusCode === 536);
}
