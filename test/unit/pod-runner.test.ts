// The pure parts of the test kubelet (hack/pod-runner.ts, hack/pod-volumes.ts):
// the downward-API rendering must be the kubelet's byte for byte, since the
// sidecar parses it, and env expansion must follow Kubernetes' rules.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { expand } from '../../hack/pod-runner.ts';
import { fieldValue, formatMap, goQuote, type PodLike } from '../../hack/pod-volumes.ts';
import { goUnquote, parseLabels } from '../../src/sidecar/pod-identity.ts';

const pod: PodLike = {
  metadata: {
    name: 'edge-0',
    namespace: 'shop',
    uid: '1b4e28ba-2fa1-11d2-883f-0016d3cca427',
    labels: { app: 'shop-edge', 'app.kubernetes.io/name': 'shop' },
    annotations: { note: 'say "hi"\n' },
  },
  spec: { serviceAccountName: 'edge' },
};

describe('downward API rendering', () => {
  it('quotes like Go %q: quotes, backslashes, control characters and non-printing runes escaped', () => {
    expect(goQuote('plain-value_1.2')).toBe('"plain-value_1.2"');
    expect(goQuote('say "hi"\\')).toBe('"say \\"hi\\"\\\\"');
    expect(goQuote('a\nb\tc\x00\x7f')).toBe('"a\\nb\\tc\\x00\\x7f"');
    expect(goQuote('héllo ✓')).toBe('"héllo ✓"');
    expect(goQuote('\u200b')).toBe('"\\u200b"');
  });

  it('round-trips every string through the sidecar’s parser of Go quoting', () => {
    fc.assert(fc.property(fc.string({ unit: 'grapheme' }), (s) => goUnquote(goQuote(s)) === s));
  });

  it('renders labels as sorted key="value" lines without a trailing newline, as the kubelet does', () => {
    expect(formatMap({ b: '2', a: '1' })).toBe('a="1"\nb="2"');
    expect(formatMap({})).toBe('');
    expect(parseLabels(fieldValue(pod, 'metadata.labels'))).toEqual(pod.metadata.labels);
  });

  it('resolves the field paths the injected sidecar uses, and refuses unknown ones', () => {
    expect(fieldValue(pod, 'metadata.name')).toBe('edge-0');
    expect(fieldValue(pod, 'metadata.namespace')).toBe('shop');
    expect(fieldValue(pod, 'metadata.uid')).toBe(pod.metadata.uid);
    expect(fieldValue(pod, 'spec.serviceAccountName')).toBe('edge');
    expect(fieldValue(pod, "metadata.labels['app']")).toBe('shop-edge');
    expect(fieldValue(pod, 'metadata.annotations')).toBe('note="say \\"hi\\"\\n"');
    expect(fieldValue(pod, 'status.podIP')).toBe('127.0.0.1');
    expect(() => fieldValue(pod, 'spec.hostname')).toThrow('spec.hostname');
  });
});

describe('env expansion', () => {
  it('replaces $(VAR) with earlier variables, keeps unknown references, and unescapes $$', () => {
    const env = { HOST: '127.0.0.1', PORT: '443' };
    expect(expand('https://$(HOST):$(PORT)/', env)).toBe('https://127.0.0.1:443/');
    expect(expand('$(MISSING) and $$(HOST) and $5', env)).toBe('$(MISSING) and $(HOST) and $5');
  });
});
