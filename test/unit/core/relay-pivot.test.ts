// Relays as pivots: the EXTEND2 target checks, the network re-entry set
// (C tor nodelist_reentry_contains, allow-network-reentry) and the
// --reentry-reject list parser.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { legacyIdFromEd25519 } from '../../../services/core/crypto.js';
import type { Consensus } from '../../../services/core/dir/consensus.js';
import type { ConsensusRelay } from '../../../services/core/dir/relay-entry.js';
import { InvalidError } from '../../../services/core/errors.js';
import type { LinkSpecifier } from '../../../services/core/link-specifiers.js';
import {
  ALLOW_REENTRY_PARAM,
  checkExtendSpecs,
  checkListed,
  isReentry,
  listedRelay,
  MAX_HOST_PORTS,
  parseHostPortList,
  reentryKey,
  reentrySet,
} from '../../../services/core/relay-pivot.js';
import { testConsensus, testRelay } from '../../helpers/fake-consensus.js';
import { expectOnlyTypedErrors } from '../../helpers/typed-errors.js';

const id = (b: number) => new Uint8Array(32).fill(b);
const self = id(1);
const other = id(2);

function relay(identity: Uint8Array, address: string, orPort: number, dirPort?: number): ConsensusRelay {
  return testRelay({ identity, address, orPort, ...(dirPort ? { dirPort } : {}) });
}

function consensus(relays: ConsensusRelay[], params: Record<string, number> = {}): Consensus {
  return testConsensus(relays, { params });
}

describe('checkExtendSpecs', () => {
  const v4: LinkSpecifier = { type: 'ipv4', addr: '127.0.0.1', port: 9001 };
  const cases: [string, LinkSpecifier[], string | null][] = [
    ['identity and address', [v4, { type: 'ed25519', id: other }], null],
    [
      'with the matching legacy id',
      [v4, { type: 'legacy-id', id: legacyIdFromEd25519(other) }, { type: 'ed25519', id: other }],
      null,
    ],
    ['no Ed25519 identity', [v4, { type: 'legacy-id', id: legacyIdFromEd25519(other) }], 'specifiers'],
    [
      'no IPv4 address',
      [
        { type: 'ipv6', addr: '::1', port: 9001 },
        { type: 'ed25519', id: other },
      ],
      'specifiers',
    ],
    ['ourselves', [v4, { type: 'ed25519', id: self }], 'self'],
    ['all-zero identity', [v4, { type: 'ed25519', id: id(0) }], 'self'],
    [
      'a legacy id of another identity',
      [v4, { type: 'legacy-id', id: legacyIdFromEd25519(id(3)) }, { type: 'ed25519', id: other }],
      'identity',
    ],
  ];
  for (const [comment, specs, refused] of cases) {
    it(`${comment} -> ${refused ?? 'allowed'}`, () => {
      const r = checkExtendSpecs(specs, self);
      if (refused === null) expect(r).toEqual({ identity: other, address: '127.0.0.1', port: 9001 });
      else expect(r).toEqual({ refused });
    });
  }
});

describe('checkListed', () => {
  const c = consensus([relay(other, '127.0.0.1', 9001)]);
  const t = (address: string, port: number, identity = other) => ({ identity, address, port });
  it('allows the listed identity at its listed address and ORPort', () => {
    expect(checkListed(listedRelay(c, other), t('127.0.0.1', 9001))).toBeNull();
  });
  it('refuses an identity the consensus does not list', () => {
    expect(listedRelay(c, id(3))).toBeUndefined();
    expect(checkListed(listedRelay(c, id(3)), t('127.0.0.1', 9001, id(3)))).toBe('unlisted');
  });
  it('refuses a listed identity at another port or address', () => {
    expect(checkListed(listedRelay(c, other), t('127.0.0.1', 9002))).toBe('address');
    expect(checkListed(listedRelay(c, other), t('127.0.0.2', 9001))).toBe('address');
  });
  it('compares addresses in canonical form', () => {
    const odd = consensus([relay(other, '127.000.0.1', 9001)]);
    expect(checkListed(listedRelay(odd, other), t('127.0.0.1', 9001))).toBeNull();
  });
});

describe('network re-entry', () => {
  it('keys loopback and unspecified addresses as one local host, ports exact', () => {
    for (const h of ['127.0.0.1', '127.9.8.7', '0.0.0.0', '::1', '[::1]', '::', '::ffff:127.0.0.1']) {
      expect(reentryKey(h, 9001), h).toBe('local:9001');
    }
    expect(reentryKey('10.0.0.1', 80)).toBe('10.0.0.1:80');
    expect(reentryKey('[2001:DB8::1]', 80)).toBe('[2001:db8::1]:80');
    expect(reentryKey('::ffff:10.0.0.1', 80)).toBe('10.0.0.1:80');
    expect(reentryKey('relay.example', 80)).toBeNull();
  });

  const c = consensus([relay(other, '127.0.0.1', 9001, 9030), relay(id(3), '10.1.2.3', 443)]);
  const always = [
    { host: '127.0.0.1', port: 7000 },
    { host: '*', port: 9100 },
  ];

  it("covers listed relays' ORPorts and DirPorts and the always-list, nothing else", () => {
    const set = reentrySet(c, always);
    expect(isReentry(set, '127.0.0.1', 9001)).toBe(true);
    expect(isReentry(set, '0.0.0.0', 9001)).toBe(true);
    expect(isReentry(set, '127.0.0.1', 9030)).toBe(true);
    expect(isReentry(set, '10.1.2.3', 443)).toBe(true);
    expect(isReentry(set, '127.0.0.1', 7000)).toBe(true);
    expect(isReentry(set, '10.9.9.9', 9100)).toBe(true);
    expect(isReentry(set, '127.0.0.1', 8080)).toBe(false);
    expect(isReentry(set, '10.1.2.3', 9001)).toBe(false);
    expect(isReentry(set, '10.1.2.4', 443)).toBe(false);
  });

  it(`${ALLOW_REENTRY_PARAM}=1 lifts the consensus part only (C tor network_reentry_is_allowed)`, () => {
    const open = consensus(c.relays, { [ALLOW_REENTRY_PARAM]: 1 });
    const set = reentrySet(open, always);
    expect(isReentry(set, '127.0.0.1', 9001)).toBe(false);
    expect(isReentry(set, '127.0.0.1', 7000)).toBe(true);
    expect(
      isReentry(reentrySet(consensus(c.relays, { [ALLOW_REENTRY_PARAM]: 0 }), []), '127.0.0.1', 9001),
    ).toBe(true);
  });
});

describe('parseHostPortList', () => {
  it('reads IPv4, [IPv6] and * entries, commas or spaces between', () => {
    expect(parseHostPortList('127.0.0.1:9100, [::1]:9050 *:9090\n')).toEqual([
      { host: '127.0.0.1', port: 9100 },
      { host: '[::1]', port: 9050 },
      { host: '*', port: 9090 },
    ]);
    expect(parseHostPortList('')).toEqual([]);
  });

  for (const bad of [
    'localhost:9100',
    '127.0.0.1',
    '127.0.0.1:0',
    '127.0.0.1:65536',
    '1.2.3:80',
    '::1:80',
    '*:x',
  ]) {
    it(`refuses ${JSON.stringify(bad)}`, () => {
      expect(() => parseHostPortList(bad)).toThrow(InvalidError);
    });
  }

  it('bounds the list', () => {
    const many = Array.from({ length: MAX_HOST_PORTS + 1 }, (_, i) => `*:${(i % 65535) + 1}`).join(',');
    expect(() => parseHostPortList(many)).toThrow(/too many/);
  });

  it('hostile input: only typed errors', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 80 }), (s) => {
        expectOnlyTypedErrors(() => parseHostPortList(s));
      }),
      { numRuns: 500 },
    );
  });
});
