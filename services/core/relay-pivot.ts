/**
 * Relays as pivots: which next hops a relay may extend to and which
 * targets an exit must not reach, judged against a verified consensus.
 *
 * Overview:
 * - EXTEND2 (tor-spec §5.1.2): a relay extends only to a relay the
 *   consensus lists, with the Ed25519 identity it lists (and the legacy id
 *   derived from it, when one is given), at the IPv4 address and ORPort it
 *   lists. `checkExtendSpecs` does the checks C tor's `circuit_extend()`
 *   does without a directory (an identity and an address given, not
 *   ourselves, not all-zero); `checkListed` then compares with the entry.
 * - Network re-entry (C tor `connection_exit_connect()` with
 *   `nodelist_reentry_contains()`): an exit opens no stream to a listed
 *   relay's ORPort or DirPort, nor to an authority's DirPort, unless the
 *   consensus param `allow-network-reentry` is 1 (C tor's default: 0).
 *   Ports a consensus cannot name (each node's /metrics and /healthz, the
 *   client's SOCKS port) come from the operator as a host:port list
 *   (`parseHostPortList`, the relay's `--reentry-reject`) and always apply.
 *
 * Design notes:
 * - C tor extends to any public address (bridges are unlisted) and keeps
 *   relays from pivoting into private networks with
 *   `ExtendAllowPrivateAddresses` (default 0, which TestingTorNetwork sets
 *   to 1). Every Shallot node lives on 127.0.0.1 or a cluster network, so
 *   that rule would forbid everything or nothing; being listed is the test
 *   instead (Shallot has no bridges).
 * - Addresses compare in canonical form (exit-policy.ts canonicalAddress).
 *   Loopback (127/8, ::1) and unspecified (0.0.0.0, ::) targets all reach
 *   the exit's own host, so for re-entry they are one host, `local`; ports
 *   stay exact, so the exit target web server on 127.0.0.1 stays reachable.
 * - `*:PORT` entries match the port on any address: in a cluster each pod
 *   serves its ops port on its own IP, under one port number.
 *
 * Not in this module: fetching and refreshing the consensus
 * (services/relay/network-view.ts); the exit policy (exit-policy.ts).
 */
import { equalBytes } from './bytes.js';
import { legacyIdFromEd25519 } from './crypto.js';
import type { Consensus } from './dir/consensus.js';
import type { ConsensusRelay } from './dir/relay-entry.js';
import { InvalidError, ShallotError } from './errors.js';
import { canonicalAddress } from './exit-policy.js';
import { type LinkSpecifier, linkTarget } from './link-specifiers.js';

/** An IP literal (or `*`, any address) and a port. */
export interface HostPort {
  host: string;
  port: number;
}

/** Where an EXTEND2 asks to go. */
export interface ExtendTarget {
  identity: Uint8Array;
  address: string;
  port: number;
}

/** Why an EXTEND2 was refused (the `reason` label of shallot_relay_extend_refused_total). */
export type ExtendRefusal =
  | 'specifiers' // no Ed25519 identity or no IPv4 address
  | 'self' // our own identity, or all-zero (C tor: "extend without an id_digest")
  | 'identity' // the legacy id does not belong to the Ed25519 identity
  | 'no-consensus' // we hold no consensus to check against
  | 'unlisted' // the consensus does not list that identity
  | 'address'; // listed, but at another address or port

/** An EXTEND2 this relay will not carry out (answered with DESTROY). */
export class ExtendRefusedError extends ShallotError {
  constructor(readonly reason: ExtendRefusal) {
    super('ERR_EXTEND_REFUSED', `EXTEND2 refused: ${reason}`, { reason });
  }
}

/** C tor's consensus param (connection_edge.c network_reentry_is_allowed); 0 by default. */
export const ALLOW_REENTRY_PARAM = 'allow-network-reentry';

/** Hostile-input bound on `--reentry-reject` (a network has a few dozen ops ports). */
export const MAX_HOST_PORTS = 4096;

/** The checks that need no directory: the target named by identity and address, and not us. */
export function checkExtendSpecs(
  specs: readonly LinkSpecifier[],
  self: Uint8Array,
): ExtendTarget | { refused: ExtendRefusal } {
  const { ed25519, ipv4, legacyId } = linkTarget(specs);
  if (!ed25519 || !ipv4) return { refused: 'specifiers' };
  if (equalBytes(ed25519, self) || ed25519.every((b) => b === 0)) return { refused: 'self' };
  if (legacyId && !equalBytes(legacyId, legacyIdFromEd25519(ed25519))) return { refused: 'identity' };
  return { identity: ed25519, address: ipv4.addr, port: ipv4.port };
}

/** The consensus entry for `identity`, if listed. */
export function listedRelay(consensus: Consensus, identity: Uint8Array): ConsensusRelay | undefined {
  return consensus.relays.find((r) => equalBytes(r.identity, identity));
}

/** Null when `entry` (the consensus's word on the target's identity) allows the extend. */
export function checkListed(entry: ConsensusRelay | undefined, t: ExtendTarget): ExtendRefusal | null {
  if (!entry) return 'unlisted';
  const listed = canonicalAddress(entry.address);
  if (listed === null || listed !== canonicalAddress(t.address) || entry.orPort !== t.port) return 'address';
  return null;
}

const LOCAL = new Set(['0.0.0.0', '::', '::1']);

/** The re-entry key of a target, or null for a hostname (an exit checks again once resolved). */
export function reentryKey(host: string, port: number): string | null {
  if (host === '*') return `*:${port}`;
  const c = canonicalAddress(host);
  if (c === null) return null;
  if (LOCAL.has(c) || c.startsWith('127.')) return `local:${port}`;
  return c.includes(':') ? `[${c}]:${port}` : `${c}:${port}`;
}

/**
 * The ports an exit must not reach: every listed relay's ORPort and DirPort
 * (unless the consensus allows re-entry) and `always` (authorities'
 * DirPorts, the operator's list, the relay's own port).
 */
export function reentrySet(consensus: Consensus | null, always: readonly HostPort[]): Set<string> {
  const set = new Set<string>();
  const add = (host: string, port: number | undefined) => {
    const k = port ? reentryKey(host, port) : null;
    if (k) set.add(k);
  };
  for (const hp of always) add(hp.host, hp.port);
  if (consensus && consensus.params[ALLOW_REENTRY_PARAM] !== 1) {
    for (const r of consensus.relays) {
      add(r.address, r.orPort);
      add(r.address, r.dirPort);
    }
  }
  return set;
}

/** Whether `host:port` (an IP literal) is in `set`. */
export function isReentry(set: ReadonlySet<string>, host: string, port: number): boolean {
  const k = reentryKey(host, port);
  return k !== null && (set.has(k) || set.has(`*:${port}`));
}

/**
 * Parses `"host:port,..."` (IPv4, `[IPv6]` or `*`; commas or whitespace
 * between entries), the form of `--reentry-reject`. Hostnames are refused:
 * resolving them would be the DNS query this module exists to avoid.
 */
export function parseHostPortList(spec: string): HostPort[] {
  const what = 'host:port list';
  const out: HostPort[] = [];
  for (const raw of spec.split(/[,\s]+/)) {
    if (raw === '') continue;
    if (out.length >= MAX_HOST_PORTS)
      throw new InvalidError(what, 'too many entries', { max: MAX_HOST_PORTS });
    const m = /^(\*|\[[0-9a-fA-F:.]+\]|[0-9.]+):(\d{1,5})$/.exec(raw);
    const port = Number(m?.[2]);
    if (!m || port < 1 || port > 65535)
      throw new InvalidError(what, 'bad entry', { entry: raw.slice(0, 64) });
    const host = m[1] as string;
    if (host !== '*' && canonicalAddress(host) === null) {
      throw new InvalidError(what, 'not an IP address', { entry: raw.slice(0, 64) });
    }
    out.push({ host, port });
  }
  return out;
}
