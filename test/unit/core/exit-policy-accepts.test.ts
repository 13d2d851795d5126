// acceptsSomePort (services/core/exit-policy.ts): whether an exit policy
// accepts anything at all, as C tor's policy_is_reject_star decides which
// exits a client may choose — including the policies a C tor
// microdescriptor's summary maps to (core/ctor/to-consensus.ts), where
// `reject 1-65535` is followed by an accept no port reaches. Checked
// against a brute force over every port.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { policyFromSummary } from '../../../services/core/ctor/to-consensus.js';
import {
  acceptsSomePort,
  allowsAnyPort,
  type ExitPolicy,
  parseExitPolicy,
  REJECT_ALL,
} from '../../../services/core/exit-policy.js';
import { canExit, type PathRelay } from '../../../services/core/path.js';

const bruteForce = (p: ExitPolicy): boolean => {
  for (let port = 1; port <= 65535; port++) if (allowsAnyPort(p, port)) return true;
  return false;
};

describe('acceptsSomePort', () => {
  it('reject-all policies, however written, accept nothing', () => {
    expect(acceptsSomePort(REJECT_ALL)).toBe(false);
    expect(acceptsSomePort(parseExitPolicy(['reject *:*', 'accept *:*']))).toBe(false);
    expect(acceptsSomePort(policyFromSummary({ action: 'reject', ranges: [[1, 65535]] }))).toBe(false);
    expect(acceptsSomePort(policyFromSummary({ action: 'accept', ranges: [] }))).toBe(false);
    expect(acceptsSomePort(policyFromSummary(undefined))).toBe(false);
  });

  it('a single open port, a private-only accept and a summary with holes accept something', () => {
    expect(acceptsSomePort(policyFromSummary({ action: 'accept', ranges: [[65535, 65535]] }))).toBe(true);
    expect(acceptsSomePort(parseExitPolicy(['accept 127.0.0.0/8:*', 'reject *:*']))).toBe(true);
    expect(
      acceptsSomePort(
        policyFromSummary({
          action: 'reject',
          ranges: [
            [1, 79],
            [81, 65535],
          ],
        }),
      ),
    ).toBe(true);
  });

  it('agrees with checking every port, for random summaries', () => {
    const range = fc
      .tuple(fc.integer({ min: 1, max: 65535 }), fc.integer({ min: 0, max: 2000 }))
      .map(([lo, n]) => [lo, Math.min(65535, lo + n)] as [number, number]);
    fc.assert(
      fc.property(
        fc.constantFrom('accept', 'reject'),
        fc.array(range, { maxLength: 4 }),
        (action, ranges) => {
          const p = policyFromSummary({ action: action as 'accept' | 'reject', ranges });
          expect(acceptsSomePort(p)).toBe(bruteForce(p));
        },
      ),
      { numRuns: 40 },
    );
  });
});

describe('canExit with exitsNowhere (C tor node_exit_policy_rejects_all)', () => {
  const relay = (exitsNowhere: boolean): PathRelay => ({
    identity: new Uint8Array(32),
    address: '127.0.0.1',
    flags: ['Exit', 'Running', 'Valid'],
    bandwidth: 1,
    family: [],
    allowsExitPort: () => !exitsNowhere,
    ...(exitsNowhere ? { exitsNowhere } : {}),
  });

  it('a relay flagged Exit whose policy accepts nothing is no exit, even for a pre-built circuit (no port)', () => {
    expect(canExit(relay(true))).toBe(false);
    expect(canExit(relay(true), 80)).toBe(false);
    expect(canExit(relay(false))).toBe(true);
    expect(canExit(relay(false), 80)).toBe(true);
  });
});
