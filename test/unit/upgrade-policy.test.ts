// Which protocol upgrades the sidecar tunnels, and when an origin's 101 really
// switched to what the client asked for.
import type { IncomingMessage } from 'node:http';
import { describe, expect, it } from 'vitest';
import {
  offeredProtocols,
  protocolAllowed,
  selectProtocols,
  switchedTo,
  takesTunnelPath,
} from '../../src/sidecar/upgrade-policy.ts';

const request = (headers: Record<string, string>, httpVersion = '1.1') =>
  ({ headers, httpVersion }) as unknown as IncomingMessage;

describe('upgrade policy', () => {
  it('reads the offered protocols in the client order', () => {
    expect(offeredProtocols(' websocket , foo/2,, ')).toEqual(['websocket', 'foo/2']);
    expect(offeredProtocols(undefined)).toEqual([]);
  });

  it('allows every protocol but h2c when the Origin lists none', () => {
    expect(protocolAllowed('WebSocket', undefined)).toBe(true);
    expect(protocolAllowed('foo/1', undefined)).toBe(true);
    expect(protocolAllowed('h2c', undefined)).toBe(false);
    expect(protocolAllowed('H2C/1', undefined)).toBe(false);
  });

  it('allows only what spec.upgrade.protocols lists (by name, or name and version); h2c only when listed', () => {
    expect(protocolAllowed('WebSocket', ['websocket'])).toBe(true);
    expect(protocolAllowed('foo/2', ['foo'])).toBe(true);
    expect(protocolAllowed('foo/2', ['foo/1'])).toBe(false);
    expect(protocolAllowed('h2c', ['h2c'])).toBe(true);
    expect(protocolAllowed('websocket', [])).toBe(false);
  });

  it('asks the origin for the allowed protocols only, in the client order', () => {
    expect(selectProtocols(['h2c', 'websocket', 'foo'], undefined)).toBe('websocket, foo');
    expect(selectProtocols(['h2c'], undefined)).toBeUndefined();
    expect(selectProtocols(['foo'], ['websocket'])).toBeUndefined();
  });

  it('accepts a 101 only for a protocol that was asked for', () => {
    expect(switchedTo('websocket', 'WebSocket')).toBe(true);
    expect(switchedTo('websocket, foo', 'foo')).toBe(true);
    expect(switchedTo('websocket', 'h2c')).toBe(false);
    expect(switchedTo('websocket', undefined)).toBe(false);
    expect(switchedTo('websocket', '')).toBe(false);
  });

  it('serves as plain HTTP an upgrade with a body, over HTTP/1.0, or offering only an h2c the Origin does not allow', () => {
    expect(takesTunnelPath(request({ upgrade: 'websocket' }), undefined)).toBe(true);
    expect(takesTunnelPath(request({ upgrade: 'websocket', 'content-length': '5' }), undefined)).toBe(false);
    expect(
      takesTunnelPath(request({ upgrade: 'websocket', 'transfer-encoding': 'chunked' }), undefined),
    ).toBe(false);
    expect(takesTunnelPath(request({ upgrade: 'websocket' }, '1.0'), undefined)).toBe(false);
    expect(takesTunnelPath(request({ upgrade: 'h2c' }), undefined)).toBe(false);
    // Another protocol the Origin does not allow takes the tunnel path, to be refused in words (501).
    expect(takesTunnelPath(request({ upgrade: 'h2c, foo' }), undefined)).toBe(true);
  });
});
