import fc from 'fast-check';
import { describe, expect, it } from '@jest/globals';
import { deploymentLabelValue, leaseName } from '../../src/adapters/cooldown-lease.js';

/** A DNS subdomain (RFC 1123), what the API server requires of a Lease name. */
const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const LABEL_VALUE = /^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$/;

const dnsLabel = fc.stringMatching(/^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/);
const subdomain = fc
  .array(fc.stringMatching(/^[a-z0-9]([-a-z0-9]{0,40}[a-z0-9])?$/), { minLength: 1, maxLength: 8 })
  .map((parts) =>
    parts
      .join('.')
      .slice(0, 253)
      .replace(/[-.]+$/, ''),
  )
  .filter((name) => name.length > 0);

describe('cooldown Lease names', () => {
  it('when namespace and Deployment are short, then the name reads <namespace>.<deployment>', () => {
    expect(leaseName({ namespace: 'payments', deployment: 'api' })).toBe('payments.api');
  });

  it('when a dash moves between namespace and Deployment, then the names differ (a-b/c vs a/b-c)', () => {
    expect(leaseName({ namespace: 'a-b', deployment: 'c' })).not.toBe(
      leaseName({ namespace: 'a', deployment: 'b-c' }),
    );
  });

  it('when the names are long, then the Lease name is at most 253 characters, valid, and still tells them apart', () => {
    const deployment = `${'x'.repeat(240)}.y`;
    const a = leaseName({ namespace: 'n'.repeat(63), deployment });
    const b = leaseName({ namespace: 'n'.repeat(63), deployment: `${deployment}z` });
    expect(a.length).toBeLessThanOrEqual(253);
    expect(a).toMatch(DNS_SUBDOMAIN);
    expect(a).not.toBe(b);
  });

  it('for any namespace and Deployment name, then the Lease name is a valid DNS subdomain and distinct pairs never share one', () => {
    fc.assert(
      fc.property(dnsLabel, subdomain, dnsLabel, subdomain, (ns1, d1, ns2, d2) => {
        const one = leaseName({ namespace: ns1, deployment: d1 });
        expect(one.length).toBeLessThanOrEqual(253);
        expect(one).toMatch(DNS_SUBDOMAIN);
        if (ns1 !== ns2 || d1 !== d2) {
          expect(one).not.toBe(leaseName({ namespace: ns2, deployment: d2 }));
        }
      }),
      { numRuns: 500 },
    );
  });

  it('for any Deployment name, then the label value naming it is a valid label value of at most 63 characters', () => {
    fc.assert(
      fc.property(subdomain, (name) => {
        const value = deploymentLabelValue(name);
        expect(value.length).toBeLessThanOrEqual(63);
        expect(value).toMatch(LABEL_VALUE);
      }),
    );
    expect(deploymentLabelValue('api')).toBe('api');
  });
});
