import { readdirSync, readFileSync } from 'node:fs';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { validateOrigin } from '../../src/api/validate.ts';
import { exampleOrigin, INVALID_ORIGINS, invalidOrigin, type Manifest } from '../support/invalid-origins.ts';

const examplesDir = new URL('../../examples/', import.meta.url);

/** Every Origin document in examples/. */
function exampleOrigins(): { file: string; origin: unknown }[] {
  return readdirSync(examplesDir)
    .filter((f) => /\.ya?ml$/.test(f))
    .flatMap((file) =>
      parseAllDocuments(readFileSync(new URL(file, examplesDir), 'utf8'))
        .map((d) => d.toJS() as Manifest | null)
        .filter((d) => d?.kind === 'Origin')
        .map((origin) => ({ file, origin })),
    );
}

const withChange = (change: (o: Manifest) => void): Manifest => {
  const o = exampleOrigin();
  change(o);
  return o;
};

const errorsOf = (input: unknown): string[] => {
  const r = validateOrigin(input);
  return r.ok ? [] : r.errors;
};

/** A Go-style duration of exactly `ms` milliseconds, written the ways people write them. */
const durationOf = (ms: number, style: number): string => {
  if (style === 0 || ms % 1000 !== 0) return `${ms}ms`;
  const s = ms / 1000;
  if (style === 1 || s < 60) return `${s}s`;
  return s % 60 === 0 ? `${s / 60}m` : `${Math.floor(s / 60)}m${s % 60}s`;
};

describe('validateOrigin', () => {
  it.each(exampleOrigins())('accepts the Origin in examples/$file as written', ({ origin }) => {
    expect(errorsOf(origin)).toEqual([]);
  });

  it('fills in the defaults the API server fills in', () => {
    const r = validateOrigin(withChange((o) => delete o.spec.timeouts));
    expect(r.ok && r.value.spec.timeouts).toEqual({
      connect: '5s',
      response: '60s',
      idle: '4s',
      streamIdle: '5m',
    });
  });

  it.each(INVALID_ORIGINS)('refuses $name, naming the field and the fix', (entry) => {
    expect(errorsOf(invalidOrigin(entry))).toEqual([entry.validate]);
  });

  it('accepts any upstream and listen port from 1 to 65535', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 65535 }), fc.integer({ min: 1, max: 65535 }), (up, listen) => {
        expect(
          errorsOf(
            withChange((o) => {
              o.spec.upstream.port = up;
              o.spec.listen.port = listen;
            }),
          ),
        ).toEqual([]);
      }),
    );
  });

  it('refuses any port outside 1-65535 with a message naming the field and the range', () => {
    const outside = fc.oneof(fc.integer({ max: 0 }), fc.integer({ min: 65536 }));
    fc.assert(
      fc.property(outside, fc.constantFrom('upstream', 'listen'), (port, where) => {
        expect(errorsOf(withChange((o) => (o.spec[where].port = port)))).toEqual([
          `spec.${where}.port: must be 1-65535, got ${port}`,
        ]);
      }),
    );
  });

  it('accepts any connect timeout from 1ms to 5m, however it is written', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 300_000 }), fc.nat(2), (ms, style) => {
        expect(errorsOf(withChange((o) => (o.spec.timeouts.connect = durationOf(ms, style))))).toEqual([]);
      }),
    );
  });

  it('refuses any connect timeout above 5m with a message naming the field and the bounds', () => {
    fc.assert(
      fc.property(fc.integer({ min: 300_001, max: 100 * 3_600_000 }), fc.nat(2), (ms, style) => {
        expect(errorsOf(withChange((o) => (o.spec.timeouts.connect = durationOf(ms, style))))).toEqual([
          'spec.timeouts.connect: must be between 1ms and 5m',
        ]);
      }),
    );
  });

  it('refuses any text that is not a duration with a message naming the field and the format', () => {
    const notDuration = fc
      .string({ maxLength: 20 })
      .filter((s) => !/^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$/.test(s));
    fc.assert(
      fc.property(notDuration, fc.constantFrom('connect', 'response', 'idle'), (text, field) => {
        const errors = errorsOf(withChange((o) => (o.spec.timeouts[field] = text)));
        expect(errors).toHaveLength(1);
        expect(errors[0]).toMatch(
          new RegExp(`^spec\\.timeouts\\.${field}: must be a duration such as 250ms, 5s or 1m30s, got `),
        );
      }),
    );
  });

  it('accepts ejection times whenever base does not exceed max', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 600_000 }),
        fc.integer({ min: 0, max: 3_000_000 }),
        (base, extra) => {
          const max = Math.min(base + extra, 3_600_000);
          const errors = errorsOf(
            withChange((o) => {
              o.spec.outlierDetection = { baseEjectionTime: `${base}ms`, maxEjectionTime: `${max}ms` };
            }),
          );
          expect(errors).toEqual([]);
        },
      ),
    );
  });
});
