import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { SIDECAR_ENV } from '../../src/api/contract.ts';
import { MissingEnvError } from '../../src/sidecar/errors.ts';
import { goUnquote, parseLabels, podEnvironment } from '../../src/sidecar/pod-identity.ts';

const env = {
  [SIDECAR_ENV.podName]: 'shop-edge-0',
  [SIDECAR_ENV.podNamespace]: 'shop',
  [SIDECAR_ENV.podUid]: '6f1c-uid',
  [SIDECAR_ENV.serviceAccount]: 'edge',
  [SIDECAR_ENV.tokenFile]: '/var/run/secrets/originguard.dev/serviceaccount/token',
  [SIDECAR_ENV.caFile]: '/var/run/secrets/originguard.dev/serviceaccount/ca.crt',
};

/** Go's strconv.Quote for ASCII control characters, quotes and backslashes; other characters as they are. */
function goQuote(s: string): string {
  let out = '"';
  for (const ch of s) {
    const cp = ch.codePointAt(0) as number;
    if (ch === '"' || ch === '\\') out += `\\${ch}`;
    else if (ch === '\n') out += '\\n';
    else if (ch === '\t') out += '\\t';
    else if (cp < 0x20 || cp === 0x7f) out += `\\x${cp.toString(16).padStart(2, '0')}`;
    else out += ch;
  }
  return `${out}"`;
}

describe('podEnvironment', () => {
  it('reads the identity the webhook injects, and finds the labels file next to the token', () => {
    expect(podEnvironment(env)).toEqual({
      podName: 'shop-edge-0',
      namespace: 'shop',
      podUid: '6f1c-uid',
      serviceAccount: 'edge',
      tokenFile: '/var/run/secrets/originguard.dev/serviceaccount/token',
      caFile: '/var/run/secrets/originguard.dev/serviceaccount/ca.crt',
      labelsFile: '/var/run/secrets/originguard.dev/serviceaccount/labels',
    });
    expect(podEnvironment(env, '/tmp/labels').labelsFile).toBe('/tmp/labels');
  });

  it('reads the node name when the webhook passed it, and goes without it for pods injected before', () => {
    expect(podEnvironment({ ...env, [SIDECAR_ENV.nodeName]: 'node-a' }).nodeName).toBe('node-a');
    expect(podEnvironment({ ...env, [SIDECAR_ENV.nodeName]: '' })).not.toHaveProperty('nodeName');
  });

  const required = Object.values(SIDECAR_ENV).filter((name) => name !== SIDECAR_ENV.nodeName);
  it.each(required)('names %s when it is missing or empty', (name) => {
    for (const value of [undefined, '']) {
      const partial = { ...env, [name]: value };
      expect(() => podEnvironment(partial)).toThrow(MissingEnvError);
      expect(() => podEnvironment(partial)).toThrow(`${name} is not set: cluster mode needs`);
    }
  });
});

describe('parseLabels', () => {
  it('reads the kubelet\'s downward-API rendering: sorted key="value" lines', () => {
    const text = 'app="shop-edge"\napp.kubernetes.io/name="shop"\npod-template-hash="7d9f"\ntier=""';
    expect(parseLabels(text)).toEqual({
      app: 'shop-edge',
      'app.kubernetes.io/name': 'shop',
      'pod-template-hash': '7d9f',
      tier: '',
    });
    expect(parseLabels('')).toEqual({});
  });

  it('undoes Go quoting: escapes, \\x bytes spelling UTF-8, \\u and octal', () => {
    expect(goUnquote('"a\\"b\\\\c\\n\\t"')).toBe('a"b\\c\n\t');
    expect(goUnquote('"caf\\xc3\\xa9"')).toBe('café');
    expect(goUnquote('"\\u00e9\\U0001F600\\101"')).toBe('é😀A');
    expect(goUnquote('"日本"')).toBe('日本');
  });

  it('reads back any value Go quoted', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'grapheme' }), (value) => {
        expect(parseLabels(`k=${goQuote(value)}`)).toEqual({ k: value });
      }),
    );
  });

  it('refuses a line that is not key="value", naming the line', () => {
    expect(() => parseLabels('app="a"\nbroken')).toThrow('line 2: expected key="value"');
    expect(() => parseLabels('app=a')).toThrow('line 1: not a Go quoted string');
    expect(() => parseLabels('app="\\q"')).toThrow('line 1: bad escape');
  });
});
