// Exit policies: Tor syntax in and out, first-match-wins matching, the
// any-address port check path selection uses, and hostile input.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { InvalidError } from '../../../services/core/errors.js';
import {
  allowsAnyPort,
  canonicalAddress,
  checkExitPolicy,
  DEFAULT_TESTNET_EXIT_POLICY,
  type ExitPolicy,
  exitPolicyAllows,
  formatExitPolicy,
  MAX_EXIT_POLICY_RULES,
  parseExitPolicy,
  REJECT_ALL,
} from '../../../services/core/exit-policy.js';
import { expectOnlyTypedErrors } from '../../helpers/typed-errors.js';

describe('parseExitPolicy / formatExitPolicy', () => {
  const cases: { comment: string; input: string | string[]; rules: ExitPolicy['rules']; text: string[] }[] = [
    {
      comment: 'brief examples',
      input: ['accept 127.0.0.1:*', 'accept *:80-443', 'accept 10.0.0.0/8:1-65535', 'reject *:*'],
      rules: [
        { action: 'accept', addr: '127.0.0.1', ports: [1, 65535] },
        { action: 'accept', addr: '*', ports: [80, 443] },
        { action: 'accept', addr: '10.0.0.0/8', ports: [1, 65535] },
        { action: 'reject', addr: '*', ports: [1, 65535] },
      ],
      text: ['accept 127.0.0.1:*', 'accept *:80-443', 'accept 10.0.0.0/8:*', 'reject *:*'],
    },
    {
      comment: 'torrc comma list, comments, host bits masked, /32 dropped, dotted mask',
      input: 'accept 10.1.2.3/8:22, reject 1.2.3.4/32:25 # smtp\n\naccept 192.168.7.9/255.255.0.0:80',
      rules: [
        { action: 'accept', addr: '10.0.0.0/8', ports: [22, 22] },
        { action: 'reject', addr: '1.2.3.4', ports: [25, 25] },
        { action: 'accept', addr: '192.168.0.0/16', ports: [80, 80] },
      ],
      text: ['accept 10.0.0.0/8:22', 'reject 1.2.3.4:25', 'accept 192.168.0.0/16:80'],
    },
    {
      comment: 'IPv6 normalised to RFC 5952',
      input: ['accept [2001:DB8:0:0:0:0:0:1]:443', 'reject [fe80::1234]/10:*', 'accept [::ffff:1.2.3.4]:1'],
      rules: [
        { action: 'accept', addr: '[2001:db8::1]', ports: [443, 443] },
        { action: 'reject', addr: '[fe80::]/10', ports: [1, 65535] },
        { action: 'accept', addr: '[::ffff:102:304]', ports: [1, 1] },
      ],
      text: ['accept [2001:db8::1]:443', 'reject [fe80::]/10:*', 'accept [::ffff:102:304]:1'],
    },
  ];
  for (const [i, c] of cases.entries()) {
    it(`(${i}) ${c.comment}`, () => {
      const p = parseExitPolicy(c.input);
      expect(p.rules).toEqual(c.rules);
      expect(formatExitPolicy(p)).toEqual(c.text);
      expect(parseExitPolicy(formatExitPolicy(p))).toEqual(p);
    });
  }

  it('expands `private` like Tor', () => {
    const p = parseExitPolicy('reject private:*');
    expect(p.rules.map((r) => r.addr)).toContain('127.0.0.0/8');
    expect(p.rules.map((r) => r.addr)).toContain('[fc00::]/7');
    expect(p.rules.every((r) => r.action === 'reject')).toBe(true);
    expect(exitPolicyAllows(p, '10.9.9.9', 80)).toBe(false);
  });

  it('formats the constants', () => {
    expect(formatExitPolicy(DEFAULT_TESTNET_EXIT_POLICY)).toEqual(['accept 127.0.0.0/8:*', 'reject *:*']);
    expect(formatExitPolicy(REJECT_ALL)).toEqual(['reject *:*']);
  });

  const bad = [
    'allow *:80',
    'accept *',
    'accept *:0',
    'accept *:65536',
    'accept *:443-80',
    'accept *:1-2-3',
    'accept 1.2.3:80',
    'accept 1.2.3.256:80',
    'accept 1.2.3.4/33:80',
    'accept 1.2.3.4/255.0.255.0:80',
    'accept [::1]/129:80',
    'accept [1::2::3]:80',
    'accept ::1:80',
    'accept example.com:80',
    'accept *:x',
    'accept  *:80 extra',
  ];
  for (const b of bad) {
    it(`rejects ${JSON.stringify(b)}`, () => {
      expect(() => parseExitPolicy(b)).toThrow(InvalidError);
    });
  }

  it('limits the number of rules', () => {
    expect(() => parseExitPolicy(new Array(MAX_EXIT_POLICY_RULES + 1).fill('reject *:*'))).toThrow(
      /too many/,
    );
  });

  const ruleArb = fc.record({
    action: fc.constantFrom('accept' as const, 'reject' as const),
    addr: fc.oneof(
      fc.constant('*'),
      fc.tuple(fc.ipV4(), fc.integer({ min: 0, max: 32 })).map(([a, b]) => `${a}/${b}`),
      fc.tuple(fc.ipV6(), fc.integer({ min: 0, max: 128 })).map(([a, b]) => `[${a}]/${b}`),
    ),
    ports: fc
      .tuple(fc.integer({ min: 1, max: 65535 }), fc.integer({ min: 1, max: 65535 }))
      .map(([a, b]): [number, number] => [Math.min(a, b), Math.max(a, b)]),
  });

  it('round-trips: parse(format(p)) is a fixed point after one normalisation', () => {
    fc.assert(
      fc.property(fc.array(ruleArb, { maxLength: 8 }), (rules) => {
        const once = parseExitPolicy(formatExitPolicy({ rules }));
        expect(parseExitPolicy(formatExitPolicy(once))).toEqual(once);
        expect(checkExitPolicy(once)).toEqual(once);
      }),
    );
  });

  it('checkExitPolicy refuses unnormalised or malformed rules', () => {
    expect(() =>
      checkExitPolicy({ rules: [{ action: 'accept', addr: '10.1.0.0/8', ports: [1, 2] }] }),
    ).toThrow(InvalidError);
    expect(() => checkExitPolicy({ rules: [{ action: 'accept', addr: 'x', ports: [1, 2] }] })).toThrow(
      InvalidError,
    );
    expect(() => checkExitPolicy({ rules: [{ action: 'accept', addr: '*', ports: [0, 2] }] })).toThrow(
      InvalidError,
    );
  });

  it('hostile input: only typed errors', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 80 }), (s) => {
        expectOnlyTypedErrors(() => parseExitPolicy(s));
        expectOnlyTypedErrors(() => parseExitPolicy(`accept ${s}`));
        expectOnlyTypedErrors(() => parseExitPolicy([`reject ${s}:80`]));
      }),
      { numRuns: 500 },
    );
  });
});

describe('exitPolicyAllows', () => {
  const p = parseExitPolicy([
    'reject 127.0.0.5:*',
    'accept 127.0.0.0/8:*',
    'accept [::1]:8080',
    'reject 10.0.0.0/8:*',
    'accept *:80',
    'accept *:443',
    'reject *:*',
  ]);
  const cases: [string, number, boolean, string][] = [
    ['127.0.0.1', 9, true, 'loopback accepted'],
    ['127.0.0.5', 9, false, 'first match wins: earlier reject'],
    ['10.1.1.1', 80, false, 'reject 10/8 before accept *:80'],
    ['8.8.8.8', 80, true, 'accept *:80'],
    ['8.8.8.8', 22, false, 'falls through to reject *:*'],
    ['::1', 8080, true, 'bare IPv6'],
    ['[::1]', 8080, true, 'bracketed IPv6'],
    ['[0:0::1]', 8081, false, 'IPv6 other port'],
    ['[2001:db8::1]', 443, true, '* matches IPv6'],
    ['example.com', 80, true, 'hostname: only * rules'],
    ['localhost', 22, false, 'hostname skips the loopback rule'],
    ['8.8.8.8', 0, false, 'port 0'],
    ['8.8.8.8', 65536, false, 'port out of range'],
    ['8.8.8.8', 80.5, false, 'fractional port'],
  ];
  for (const [host, port, ok, comment] of cases) {
    it(`${comment}: ${host}:${port} -> ${ok}`, () => {
      expect(exitPolicyAllows(p, host, port)).toBe(ok);
    });
  }

  it('defaults to reject and honours the constants', () => {
    expect(exitPolicyAllows({ rules: [] }, '1.2.3.4', 80)).toBe(false);
    expect(exitPolicyAllows(REJECT_ALL, '127.0.0.1', 80)).toBe(false);
    expect(exitPolicyAllows(DEFAULT_TESTNET_EXIT_POLICY, '127.3.2.1', 5000)).toBe(true);
    expect(exitPolicyAllows(DEFAULT_TESTNET_EXIT_POLICY, '128.0.0.1', 5000)).toBe(false);
  });

  it('IPv4 /0 and IPv6 /0 stay in their family', () => {
    const q = parseExitPolicy(['accept 0.0.0.0/0:*']);
    expect(exitPolicyAllows(q, '1.2.3.4', 1)).toBe(true);
    expect(exitPolicyAllows(q, '::1', 1)).toBe(false);
  });
});

describe('canonicalAddress', () => {
  const cases: [string, string | null][] = [
    ['127.0.0.1', '127.0.0.1'],
    ['010.001.000.009', '10.1.0.9'],
    ['[2001:DB8:0:0:0:0:0:1]', '2001:db8::1'],
    ['::1', '::1'],
    ['::ffff:127.0.0.1', '127.0.0.1'],
    ['[::ffff:7f00:1]', '127.0.0.1'],
    ['localhost', null],
    ['127.1', null],
    ['', null],
  ];
  for (const [host, want] of cases) {
    it(`${JSON.stringify(host)} -> ${want}`, () => {
      expect(canonicalAddress(host)).toBe(want);
    });
  }
});

describe('allowsAnyPort', () => {
  it('answers for some address', () => {
    expect(allowsAnyPort(DEFAULT_TESTNET_EXIT_POLICY, 1234)).toBe(true);
    expect(allowsAnyPort(REJECT_ALL, 80)).toBe(false);
    expect(allowsAnyPort({ rules: [] }, 80)).toBe(false);
    const p = parseExitPolicy('reject private:*, accept *:80, reject *:*');
    expect(allowsAnyPort(p, 80)).toBe(true);
    expect(allowsAnyPort(p, 81)).toBe(false);
    // An accept entirely shadowed by an earlier broader reject does not count.
    const q = parseExitPolicy('reject 10.0.0.0/8:*, accept 10.1.0.0/16:22, reject *:*');
    expect(allowsAnyPort(q, 22)).toBe(false);
    const r = parseExitPolicy('reject 10.1.0.0/16:*, accept 10.0.0.0/8:22, reject *:*');
    expect(allowsAnyPort(r, 22)).toBe(true);
    expect(allowsAnyPort(r, 0)).toBe(false);
  });

  it('agrees with exitPolicyAllows whenever some address is allowed', () => {
    fc.assert(
      fc.property(
        fc.array(fc.constantFrom('accept', 'reject'), { minLength: 1, maxLength: 5 }),
        fc.array(fc.constantFrom('*', '127.0.0.0/8', '10.0.0.0/8', '[::1]'), { minLength: 5, maxLength: 5 }),
        fc.array(fc.constantFrom('*', '80', '443', '1-100'), { minLength: 5, maxLength: 5 }),
        fc.constantFrom(80, 443, 22),
        fc.constantFrom('127.0.0.1', '10.2.3.4', '8.8.8.8', '::1'),
        (actions, addrs, ports, port, host) => {
          const p = parseExitPolicy(actions.map((a, i) => `${a} ${addrs[i]}:${ports[i]}`));
          if (exitPolicyAllows(p, host, port)) expect(allowsAnyPort(p, port)).toBe(true);
        },
      ),
    );
  });
});
