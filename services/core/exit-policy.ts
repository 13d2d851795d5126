/**
 * Exit policies (dir-spec §2.1.3 "accept"/"reject" lines, tor-manual
 * ExitPolicy): which address:port targets an exit relay will open streams to.
 *
 * Overview: a policy is an ordered list of `accept|reject ADDR:PORTS` rules;
 * the first rule matching the target decides, and a target no rule matches
 * is rejected (Tor appends `reject *:*` to every descriptor policy).
 *
 * Syntax accepted by `parseExitPolicy` (one rule per line or comma-separated,
 * `#` comments allowed, as in torrc):
 *   ADDR  = `*` | IPv4 | IPv4/bits | IPv4/dotted-mask | `[IPv6]` | `[IPv6]/bits`
 *           | `private` (expanded to Tor's private-network list)
 *   PORTS = `*` | N | N-M          (1..65535)
 * Addresses are normalised (host bits masked off, /32 and /128 dropped, IPv6
 * in RFC 5952 form), so `formatExitPolicy(parseExitPolicy(x))` is canonical.
 *
 * Design notes:
 * - `*` matches IPv4 and IPv6 (Tor >= 0.2.4); `*4`/`*6` and
 *   `accept6`/`reject6` are not supported.
 * - A hostname target (not yet resolved) can only be judged by `*` rules:
 *   address-specific rules are skipped. An exit must re-check the resolved
 *   address before connecting, as Tor's exit does after resolving.
 *
 * Not in this module: policy summaries in the microdesc `p` line; the
 * consensus carries the full (normalised) rule list instead.
 */
import { InvalidError } from './errors.js';

export interface ExitPolicyRule {
  action: 'accept' | 'reject';
  /** '*' | IPv4 | IPv4/bits | [IPv6] | [IPv6]/bits, normalised. */
  addr: string;
  /** Inclusive port range, 1..65535. */
  ports: [number, number];
}

export interface ExitPolicy {
  rules: ExitPolicyRule[];
}

/** Hostile-input limit: Tor's own policies are tens of lines. */
export const MAX_EXIT_POLICY_RULES = 1024;

/** The testnet default: exit only to loopback, where the test servers live. */
export const DEFAULT_TESTNET_EXIT_POLICY: ExitPolicy = {
  rules: [
    { action: 'accept', addr: '127.0.0.0/8', ports: [1, 65535] },
    { action: 'reject', addr: '*', ports: [1, 65535] },
  ],
};

/** A non-exit relay (Tor's `ExitRelay 0`). */
export const REJECT_ALL: ExitPolicy = { rules: [{ action: 'reject', addr: '*', ports: [1, 65535] }] };

// Tor's `private` alias (policies.c private_nat_addresses).
const PRIVATE_NETS = [
  '0.0.0.0/8',
  '169.254.0.0/16',
  '127.0.0.0/8',
  '192.168.0.0/16',
  '10.0.0.0/8',
  '172.16.0.0/12',
  '[::]/8',
  '[fc00::]/7',
  '[fe80::]/10',
  '[fec0::]/10',
  '[::]/127',
];

// ---------------------------------------------------------------------------
// Addresses as bytes

type Net = { family: 4 | 6; bytes: Uint8Array; bits: number };

function parseIpv4(s: string): Uint8Array | null {
  const parts = s.split('.');
  if (parts.length !== 4) return null;
  const out = new Uint8Array(4);
  for (let i = 0; i < 4; i++) {
    const p = parts[i]!;
    if (!/^\d{1,3}$/.test(p) || Number(p) > 255) return null;
    out[i] = Number(p);
  }
  return out;
}

function parseIpv6(s: string): Uint8Array | null {
  if (s.length > 45 || !/^[0-9a-fA-F:.]+$/.test(s)) return null;
  const halves = s.split('::');
  if (halves.length > 2) return null;
  const groups = (h: string): number[] | null => {
    if (h === '') return [];
    const out: number[] = [];
    const parts = h.split(':');
    for (let i = 0; i < parts.length; i++) {
      const p = parts[i]!;
      if (i === parts.length - 1 && p.includes('.')) {
        const v4 = parseIpv4(p);
        if (!v4) return null;
        out.push((v4[0]! << 8) | v4[1]!, (v4[2]! << 8) | v4[3]!);
      } else {
        if (!/^[0-9a-fA-F]{1,4}$/.test(p)) return null;
        out.push(Number.parseInt(p, 16));
      }
    }
    return out;
  };
  const head = groups(halves[0]!);
  const tail = halves.length === 2 ? groups(halves[1]!) : [];
  if (!head || !tail) return null;
  const n = head.length + tail.length;
  if (halves.length === 2 ? n > 7 : n !== 8) return null;
  const all = [...head, ...new Array<number>(8 - n).fill(0), ...tail];
  const out = new Uint8Array(16);
  all.forEach((g, i) => {
    out[2 * i] = g >> 8;
    out[2 * i + 1] = g & 0xff;
  });
  return out;
}

/** RFC 5952: lowercase, leading zeros dropped, the longest run (>1) of zero groups as `::`. */
function formatIpv6(b: Uint8Array): string {
  const g: number[] = [];
  for (let i = 0; i < 8; i++) g.push((b[2 * i]! << 8) | b[2 * i + 1]!);
  let best = -1;
  let bestLen = 1;
  for (let i = 0; i < 8; ) {
    if (g[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && g[j] === 0) j++;
    if (j - i > bestLen) {
      best = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = (xs: number[]) => xs.map((x) => x.toString(16)).join(':');
  if (best < 0) return hex(g);
  return `${hex(g.slice(0, best))}::${hex(g.slice(best + bestLen))}`;
}

function maskTo(b: Uint8Array, bits: number): Uint8Array {
  const out = new Uint8Array(b);
  for (let i = 0; i < out.length; i++) {
    const keep = Math.max(0, Math.min(8, bits - 8 * i));
    out[i]! &= (0xff << (8 - keep)) & 0xff;
  }
  return out;
}

function prefixMatch(net: Net, addr: Uint8Array): boolean {
  if (net.bytes.length !== addr.length) return false;
  return maskTo(addr, net.bits).every((v, i) => v === net.bytes[i]);
}

/** Dotted masks must be contiguous (Tor rejects e.g. 255.0.255.0). */
function bitsFromDottedMask(m: Uint8Array): number | null {
  let bits = 0;
  let ended = false;
  for (const byte of m) {
    for (let k = 7; k >= 0; k--) {
      const set = ((byte >> k) & 1) === 1;
      if (set && ended) return null;
      if (set) bits++;
      else ended = true;
    }
  }
  return bits;
}

const what = 'exit policy';

function parseNet(s: string): Net {
  const slash = s.indexOf('/');
  const base = slash < 0 ? s : s.slice(0, slash);
  const maskText = slash < 0 ? undefined : s.slice(slash + 1);
  let family: 4 | 6;
  let bytes: Uint8Array | null;
  if (base.startsWith('[') && base.endsWith(']')) {
    family = 6;
    bytes = parseIpv6(base.slice(1, -1));
  } else {
    family = 4;
    bytes = parseIpv4(base);
  }
  if (!bytes) throw new InvalidError(what, 'bad address', { addr: s.slice(0, 64) });
  const max = family === 4 ? 32 : 128;
  let bits = max;
  if (maskText !== undefined) {
    if (/^\d{1,3}$/.test(maskText)) {
      bits = Number(maskText);
    } else {
      const m = family === 4 ? parseIpv4(maskText) : null;
      const b = m ? bitsFromDottedMask(m) : null;
      if (b === null) throw new InvalidError(what, 'bad mask', { addr: s.slice(0, 64) });
      bits = b;
    }
    if (bits > max) throw new InvalidError(what, 'mask too long', { addr: s.slice(0, 64) });
  }
  return { family, bytes: maskTo(bytes, bits), bits };
}

function formatNet(n: Net): string {
  const base = n.family === 4 ? n.bytes.join('.') : `[${formatIpv6(n.bytes)}]`;
  return n.bits === (n.family === 4 ? 32 : 128) ? base : `${base}/${n.bits}`;
}

function parsePort(s: string): number {
  if (!/^\d{1,5}$/.test(s)) throw new InvalidError(what, 'bad port', { port: s.slice(0, 16) });
  const n = Number(s);
  if (n < 1 || n > 65535) throw new InvalidError(what, 'port out of range', { port: n });
  return n;
}

function parseRule(line: string): ExitPolicyRule[] {
  const m = /^(accept|reject)\s+(\S+)$/.exec(line);
  if (!m) throw new InvalidError(what, 'bad rule', { rule: line.slice(0, 64) });
  const action = m[1] as 'accept' | 'reject';
  const target = m[2]!;
  const colon = target.lastIndexOf(':');
  if (colon < 0) throw new InvalidError(what, 'missing port', { rule: line.slice(0, 64) });
  const addrText = target.slice(0, colon);
  const portText = target.slice(colon + 1);
  let ports: [number, number];
  if (portText === '*') {
    ports = [1, 65535];
  } else {
    const dash = portText.split('-');
    if (dash.length > 2) throw new InvalidError(what, 'bad port range', { rule: line.slice(0, 64) });
    const lo = parsePort(dash[0]!);
    const hi = dash.length === 2 ? parsePort(dash[1]!) : lo;
    if (hi < lo) throw new InvalidError(what, 'empty port range', { rule: line.slice(0, 64) });
    ports = [lo, hi];
  }
  if (addrText === '*') return [{ action, addr: '*', ports }];
  if (addrText === 'private') {
    return PRIVATE_NETS.map((n) => ({ action, addr: formatNet(parseNet(n)), ports: [ports[0], ports[1]] }));
  }
  return [{ action, addr: formatNet(parseNet(addrText)), ports }];
}

/**
 * Parses Tor exit-policy syntax. `lines` may be one string (rules separated
 * by newlines or commas) or an array of such strings.
 */
export function parseExitPolicy(lines: string | string[]): ExitPolicy {
  const texts = typeof lines === 'string' ? [lines] : lines;
  if (!Array.isArray(texts)) throw new InvalidError(what, 'not a string or list');
  const rules: ExitPolicyRule[] = [];
  for (const text of texts) {
    if (typeof text !== 'string') throw new InvalidError(what, 'rule is not a string');
    if (text.length > 64 * MAX_EXIT_POLICY_RULES) throw new InvalidError(what, 'too long');
    for (const raw of text.split(/[\n,]/)) {
      const line = raw.replace(/#.*$/, '').trim();
      if (line === '') continue;
      rules.push(...parseRule(line));
      if (rules.length > MAX_EXIT_POLICY_RULES) {
        throw new InvalidError(what, 'too many rules', { max: MAX_EXIT_POLICY_RULES });
      }
    }
  }
  return { rules };
}

/** One line per rule, in the syntax `parseExitPolicy` reads. */
export function formatExitPolicy(p: ExitPolicy): string[] {
  return p.rules.map((r) => {
    const [lo, hi] = r.ports;
    const ports = lo === 1 && hi === 65535 ? '*' : lo === hi ? `${lo}` : `${lo}-${hi}`;
    return `${r.action} ${r.addr}:${ports}`;
  });
}

// ---------------------------------------------------------------------------
// Matching

function netOf(rule: ExitPolicyRule): Net | null {
  if (rule.addr === '*') return null;
  return parseNet(rule.addr);
}

/** The target as address bytes, or null for a hostname. Accepts `[v6]` and bare v6. */
function targetBytes(host: string): Uint8Array | null {
  const v4 = parseIpv4(host);
  if (v4) return v4;
  const inner = host.startsWith('[') && host.endsWith(']') ? host.slice(1, -1) : host;
  return parseIpv6(inner);
}

/**
 * The canonical text of an IP literal (`1.2.3.4`; RFC 5952 IPv6 without
 * brackets; an IPv4-mapped IPv6 address as its IPv4 form, since a socket
 * to it reaches the IPv4 host), or null for a hostname. Lets the exit and
 * the EXTEND2 check compare addresses however a client spelled them.
 */
export function canonicalAddress(host: string): string | null {
  const b = targetBytes(host);
  if (!b) return null;
  if (b.length === 4) return b.join('.');
  const mapped = b.subarray(0, 10).every((x) => x === 0) && b[10] === 0xff && b[11] === 0xff;
  return mapped ? Array.from(b.subarray(12)).join('.') : formatIpv6(b);
}

const validPort = (port: number) => Number.isInteger(port) && port >= 1 && port <= 65535;

/**
 * Whether the policy lets an exit connect to `host:port`. First match wins;
 * no match rejects. Hostnames are matched against `*` rules only.
 */
export function exitPolicyAllows(p: ExitPolicy, host: string, port: number): boolean {
  if (!validPort(port)) return false;
  const addr = targetBytes(host);
  for (const rule of p.rules) {
    if (port < rule.ports[0] || port > rule.ports[1]) continue;
    const net = netOf(rule);
    if (net !== null && (addr === null || !prefixMatch(net, addr))) continue;
    return rule.action === 'accept';
  }
  return false;
}

/** Whether rule `a`'s address set lies inside rule `b`'s. */
function netWithin(a: Net | null, b: Net | null): boolean {
  if (b === null) return true;
  if (a === null) return false;
  return a.family === b.family && a.bits >= b.bits && prefixMatch(b, a.bytes);
}

/**
 * Whether the policy accepts `port` for at least one address: path selection
 * uses this to pick exits for a stream whose address it does not know yet
 * (path-spec §2.2, like Tor's policy summary). An accept counts unless one
 * earlier reject covering the port already covers all its addresses (unions
 * of several narrower rejects are not considered: they never appear in
 * practice).
 */
export function allowsAnyPort(p: ExitPolicy, port: number): boolean {
  if (!validPort(port)) return false;
  const earlierRejects: (Net | null)[] = [];
  for (const rule of p.rules) {
    if (port < rule.ports[0] || port > rule.ports[1]) continue;
    const net = netOf(rule);
    if (rule.action === 'reject') {
      if (net === null) return false;
      earlierRejects.push(net);
    } else if (!earlierRejects.some((r) => netWithin(net, r))) {
      return true;
    }
  }
  return false;
}

/**
 * Whether the policy accepts some port for some address: false for a
 * reject-all policy however it is written (`reject *:*`, or a summary's
 * `reject 1-65535` followed by its unreachable `accept`), as C tor's
 * policy_is_reject_star. First-match results change only where a rule's
 * port range starts or ends, so one port per segment is checked.
 */
export function acceptsSomePort(p: ExitPolicy): boolean {
  const starts = new Set<number>([1]);
  for (const r of p.rules) {
    starts.add(r.ports[0]);
    if (r.ports[1] < 65535) starts.add(r.ports[1] + 1);
  }
  return [...starts].some((port) => allowsAnyPort(p, port));
}

/** Validates a decoded policy (rules well-formed and normalised); returns it. */
export function checkExitPolicy(p: ExitPolicy): ExitPolicy {
  const again = parseExitPolicy(formatExitPolicy(p));
  if (again.rules.length !== p.rules.length || again.rules.some((r, i) => r.addr !== p.rules[i]!.addr)) {
    throw new InvalidError(what, 'not normalised');
  }
  return again;
}
