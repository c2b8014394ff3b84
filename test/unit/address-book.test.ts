import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { AddressBook, type Candidate, interleaveFamilies } from '../../src/upstream/address-book.ts';

const v4 = (address: string): Candidate => ({ address, family: 4, port: 80 });
const v6 = (address: string): Candidate => ({ address, family: 6, port: 80 });
const names = (cs: readonly Candidate[]) => cs.map((c) => c.address);

describe('interleaveFamilies', () => {
  it('alternates families starting with the first address family (RFC 8305 §4)', () => {
    expect(names(interleaveFamilies([v4('a'), v4('b'), v4('c'), v6('x'), v6('y')]))).toEqual([
      'a',
      'x',
      'b',
      'y',
      'c',
    ]);
    expect(names(interleaveFamilies([v6('x'), v4('a'), v4('b')]))).toEqual(['x', 'a', 'b']);
  });

  it('keeps every address once and each family in its own order', () => {
    const arb = fc.array(fc.record({ n: fc.nat(), family: fc.constantFrom(4 as const, 6 as const) }), {
      maxLength: 12,
    });
    fc.assert(
      fc.property(arb, (xs) => {
        const input = xs.map((x, i) => ({ address: `${x.family}-${i}`, family: x.family }));
        const out = interleaveFamilies(input);
        expect([...out].sort((a, b) => a.address.localeCompare(b.address))).toEqual(
          [...input].sort((a, b) => a.address.localeCompare(b.address)),
        );
        for (const f of [4, 6]) {
          expect(out.filter((x) => x.family === f)).toEqual(input.filter((x) => x.family === f));
        }
      }),
    );
  });
});

describe('AddressBook', () => {
  it('puts the address that connected last first and a failed one last', () => {
    let now = 1000;
    const book = new AddressBook(() => now);
    const all = [v4('a'), v4('b'), v4('c')];
    expect(names(book.order(all))).toEqual(['a', 'b', 'c']);
    book.failed(v4('a'), 'connection_timeout');
    now = 2000;
    book.connected(v4('c'));
    expect(names(book.order(all))).toEqual(['c', 'b', 'a']);
    expect(book.records()).toEqual([
      { address: 'a', port: 80, state: 'failed', since: 1000, cause: 'connection_timeout' },
      { address: 'c', port: 80, state: 'preferred', since: 2000 },
    ]);
  });

  it('gives a failed address its place back once it connects again', () => {
    const book = new AddressBook();
    book.failed(v4('a'), 'connection_refused');
    expect(names(book.order([v4('a'), v4('b')]))).toEqual(['b', 'a']);
    book.connected(v4('a'));
    expect(names(book.order([v4('a'), v4('b')]))).toEqual(['a', 'b']);
  });

  it('tries the failed addresses longest-failed first, and never loses or repeats one', () => {
    const arb = fc.array(fc.tuple(fc.constantFrom('a', 'b', 'c', 'd'), fc.boolean()), { maxLength: 30 });
    fc.assert(
      fc.property(arb, (events) => {
        let now = 0;
        const book = new AddressBook(() => ++now);
        const all = ['a', 'b', 'c', 'd'].map(v4);
        const lastFailure = new Map<string, number>();
        for (const [name, ok] of events) {
          if (ok) {
            book.connected(v4(name));
            lastFailure.delete(name);
          } else {
            book.failed(v4(name), 'connection_refused');
            lastFailure.set(name, now);
          }
        }
        const order = names(book.order(all));
        expect([...order].sort()).toEqual(['a', 'b', 'c', 'd']);
        const failed = order.filter((n) => lastFailure.has(n));
        expect(order.slice(order.length - failed.length)).toEqual(failed);
        expect(failed).toEqual(
          [...failed].sort((x, y) => (lastFailure.get(x) ?? 0) - (lastFailure.get(y) ?? 0)),
        );
      }),
    );
  });
});
