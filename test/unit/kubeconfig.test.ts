// Credentials the operator finds as kubectl does. Static kubeconfigs (a token, a
// rotated token file, a client certificate) are read without
// @kubernetes/client-node; anything else (an exec plugin here) goes through it.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { KUBE_CONFIG } from '../../src/kube/errors.ts';
import { loadKubeConfig, staticCredentials } from '../../src/kube/kubeconfig.ts';

const CA = '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n';

function kubeconfig(user: Record<string, unknown>, cluster: Record<string, unknown> = {}) {
  return {
    apiVersion: 'v1',
    kind: 'Config',
    'current-context': 'ctx',
    contexts: [
      { name: 'other', context: { cluster: 'other', user: 'other' } },
      { name: 'ctx', context: { cluster: 'c', user: 'u', namespace: 'web' } },
    ],
    clusters: [
      { name: 'other', cluster: { server: 'https://other.test:6443' } },
      { name: 'c', cluster: { server: 'https://api.test:6443/', ...cluster } },
    ],
    users: [
      { name: 'other', user: { token: 'wrong' } },
      { name: 'u', user },
    ],
  };
}

const saved = { ...process.env };
afterEach(() => {
  process.env = { ...saved };
});

describe('kubeconfig', () => {
  it('reads a token and a CA file relative to the kubeconfig, for the current context', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'og-kc-'));
    writeFileSync(join(dir, 'ca.crt'), CA);
    const creds = staticCredentials(kubeconfig({ token: 'abc' }, { 'certificate-authority': 'ca.crt' }), dir);
    expect(creds?.server).toBe('https://api.test:6443');
    expect(creds?.tls).toEqual({ ca: CA });
    expect(await creds?.headers()).toEqual({ authorization: 'Bearer abc' });
  });

  it('re-reads a token file when it changes (rotated tokens)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'og-kc-'));
    const file = join(dir, 'token');
    writeFileSync(file, 'first\n');
    const creds = staticCredentials(
      kubeconfig({ tokenFile: file }, { 'insecure-skip-tls-verify': true }),
      dir,
    );
    expect(creds?.tls).toEqual({ rejectUnauthorized: false });
    expect(await creds?.headers()).toEqual({ authorization: 'Bearer first' });
    await new Promise((r) => setTimeout(r, 20));
    writeFileSync(file, 'second\n');
    expect(await creds?.headers()).toEqual({ authorization: 'Bearer second' });
  });

  it('reads a client certificate and key given inline', async () => {
    const b64 = (s: string) => Buffer.from(s).toString('base64');
    const creds = staticCredentials(
      kubeconfig(
        { 'client-certificate-data': b64('CERT'), 'client-key-data': b64('KEY') },
        { 'certificate-authority-data': b64(CA) },
      ),
      '/nowhere',
    );
    expect(creds?.tls).toEqual({ ca: CA, cert: 'CERT', key: 'KEY' });
    expect(await creds?.headers()).toEqual({});
  });

  it('leaves exec plugins, auth providers and proxies to client-node', () => {
    expect(staticCredentials(kubeconfig({ exec: { command: 'x' } }), '/')).toBeUndefined();
    expect(staticCredentials(kubeconfig({ 'auth-provider': { name: 'oidc' } }), '/')).toBeUndefined();
    expect(staticCredentials(kubeconfig({ token: 't' }, { 'proxy-url': 'http://p' }), '/')).toBeUndefined();
  });

  it('runs an exec plugin through client-node', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'og-kc-'));
    const plugin = join(dir, 'plugin.mjs');
    writeFileSync(
      plugin,
      `process.stdout.write(JSON.stringify({ apiVersion: 'client.authentication.k8s.io/v1', kind: 'ExecCredential', status: { token: 'from-plugin' } }));\n`,
    );
    const file = join(dir, 'config');
    writeFileSync(
      file,
      stringify(
        kubeconfig({
          exec: {
            apiVersion: 'client.authentication.k8s.io/v1',
            command: process.execPath,
            args: [plugin],
            interactiveMode: 'Never',
          },
        }),
      ),
    );
    const creds = await loadKubeConfig({ kubeconfig: file });
    expect(creds.server).toBe('https://api.test:6443');
    expect(await creds.headers()).toMatchObject({ Authorization: 'Bearer from-plugin' });
  });

  it('says what to do when no kubeconfig is found outside a pod', async () => {
    process.env.KUBECONFIG = '';
    process.env.HOME = mkdtempSync(join(tmpdir(), 'og-home-'));
    delete process.env.KUBERNETES_SERVICE_HOST;
    await expect(loadKubeConfig()).rejects.toMatchObject({
      code: KUBE_CONFIG,
      message: expect.stringContaining('pass --kubeconfig, set KUBECONFIG, or run in a pod'),
    });
  });
});
