import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { labelValue, ORIGIN_LABEL, POD_LABEL, reportLabels, reportName } from '../../src/api/report.ts';

// Kubernetes object names (DNS-1123 subdomains) and label values.
const SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const LABEL_VALUE = /^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$/;

const dnsLabel = fc.stringMatching(/^[a-z0-9]([-a-z0-9]{0,20}[a-z0-9])?$/);
const objectName = fc
  .array(dnsLabel, { minLength: 1, maxLength: 14 })
  .map((labels) => labels.join('.'))
  .filter((n) => n.length <= 253);

describe('reportName', () => {
  it('joins origin and pod with a dash and doubles the dashes inside them', () => {
    expect(reportName('shop', 'shop-edge-7d9f-x2x4q')).toBe('shop-shop--edge--7d9f--x2x4q');
    expect(reportName('a-b', 'c')).toBe('a--b-c');
    expect(reportName('a', 'b-c')).toBe('a-b--c');
  });

  it('is a valid object name of at most 253 characters for any origin and pod names', () => {
    fc.assert(
      fc.property(objectName, objectName, (origin, pod) => {
        const name = reportName(origin, pod);
        expect(name.length).toBeLessThanOrEqual(253);
        expect(name).toMatch(SUBDOMAIN);
        expect(reportName(origin, pod)).toBe(name);
      }),
    );
  });

  it('never gives two different (origin, pod) pairs the same name', () => {
    fc.assert(
      fc.property(objectName, objectName, objectName, objectName, (o1, p1, o2, p2) => {
        fc.pre(o1 !== o2 || p1 !== p2);
        expect(reportName(o1, p1)).not.toBe(reportName(o2, p2));
      }),
    );
    // Moving a dash across the boundary changes the name.
    expect(reportName('a-b', 'c')).not.toBe(reportName('a', 'b-c'));
    const long = 'x'.repeat(200);
    expect(reportName(long, `${long}-1`)).not.toBe(reportName(long, `${long}-2`));
  });
});

describe('reportLabels', () => {
  it('labels a report with its origin and pod', () => {
    expect(reportLabels('shop', 'shop-edge-0')).toEqual({
      [ORIGIN_LABEL]: 'shop',
      [POD_LABEL]: 'shop-edge-0',
    });
    expect(ORIGIN_LABEL).toBe('edge.originguard.dev/origin');
    expect(POD_LABEL).toBe('edge.originguard.dev/pod');
  });

  it('shortens names longer than a label value allows, keeping them distinct', () => {
    fc.assert(
      fc.property(objectName, objectName, (a, b) => {
        expect(labelValue(a)).toMatch(LABEL_VALUE);
        expect(labelValue(a).length).toBeLessThanOrEqual(63);
        if (a !== b) expect(labelValue(a)).not.toBe(labelValue(b));
      }),
    );
  });
});
