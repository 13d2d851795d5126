/**
 * C tor's microdescriptor-flavoured consensus (dir-spec §3.4.1 "Vote and
 * consensus status document formats", §3.9.2 "Microdescriptor consensus"):
 * parsed into header, authority sections, router status entries, footer
 * and signatures.
 *
 * Overview: `parseMdConsensus` tokenizes (meta-format.ts), places every
 * known keyword in its section (header, `dir-source` sections, `r`
 * entries, `directory-footer`, `directory-signature`s), requires the
 * sections in that order and each item's count within its section, and
 * computes the digests the authorities signed (SHA-1 and SHA-256 of the
 * text from `network-status-version` through the space after the first
 * `directory-signature`, dir-spec §3.4.1). Checking the signatures is
 * consensus-signatures.ts.
 *
 * Design notes: unknown keywords are ignored wherever they stand (dir-spec
 * §1.2) so newer consensus methods still parse; a known keyword outside
 * its section is an error, as in C tor's ns_parse.c token tables. Values
 * are kept as C tor writes them: bandwidths in kilobytes/s, times in ms
 * since the epoch (UTC), protocol lists as text.
 *
 * Not in this module: signature checks, the ns flavour (refused), votes,
 * mapping into Shallot's Consensus type.
 *
 * Limitations: `m` lines must be the microdesc-consensus form (one
 * base64 digest, no method list, dir-spec §3.9.2).
 */

import { compareBytes, utf8 } from '../bytes.js';
import { sha1, sha256 } from '../crypto.js';
import { InvalidError } from '../errors.js';
import {
  arg,
  atMostOne,
  b64Arg,
  exactlyOne,
  hexIdArg,
  type Item,
  intArg,
  objectOf,
  timeArgs,
  tokenize,
} from './meta-format.js';

/** A bound on the document (ours; the public network's microdesc consensus is about 3 MB). */
export const MAX_MD_CONSENSUS_LEN = 8 * 1024 * 1024;
const INT32_MIN = -(2 ** 31);
const INT32_MAX = 2 ** 31 - 1;

export interface SharedRandom {
  reveals: number;
  value: Uint8Array;
}

export interface DirSource {
  nickname: string;
  /** The authority's v3 identity (SHA-1 of its identity key). */
  identity: Uint8Array;
  address: string;
  ip: string;
  dirPort: number;
  orPort: number;
  contact?: string;
  voteDigest?: Uint8Array;
}

export interface MdRouterStatus {
  nickname: string;
  /** SHA-1 of the relay's RSA identity key (the legacy id). */
  rsaId: Uint8Array;
  /** Since consensus method 28 C tor writes 2038-01-01 00:00:00 here. */
  publishedMs: number;
  ip: string;
  orPort: number;
  dirPort: number;
  /** `a` lines, e.g. `[::1]:9001`. */
  addresses: string[];
  /** SHA-256 of the microdescriptor. */
  microdescDigest: Uint8Array;
  flags: string[];
  version?: string;
  /** `pr` as written, e.g. `Cons=1-2 Desc=1-4 …`. */
  protocols?: string;
  /** `w Bandwidth=`, kilobytes/s. */
  bandwidth?: number;
  unmeasured: boolean;
}

export interface DirectorySignature {
  /** `sha1` when the line has no algorithm (dir-spec §3.4.1). */
  algorithm: string;
  identity: Uint8Array;
  signingKeyDigest: Uint8Array;
  signature: Uint8Array;
}

export interface MdConsensus {
  consensusMethod: number;
  validAfterMs: number;
  freshUntilMs: number;
  validUntilMs: number;
  voteDelaySec: number;
  distDelaySec: number;
  clientVersions: string[];
  serverVersions: string[];
  knownFlags: string[];
  /** recommended-client-protocols and friends, as written. */
  protocols: Record<string, string>;
  params: Record<string, number>;
  sharedRandPrevious?: SharedRandom;
  sharedRandCurrent?: SharedRandom;
  authorities: DirSource[];
  relays: MdRouterStatus[];
  bandwidthWeights: Record<string, number>;
  signatures: DirectorySignature[];
  /** What the authorities signed, per digest algorithm. */
  signedDigests: { sha1: Uint8Array; sha256: Uint8Array };
}

const WHAT = 'microdesc consensus';

const HEADER = new Set([
  'network-status-version',
  'vote-status',
  'consensus-method',
  'valid-after',
  'fresh-until',
  'valid-until',
  'voting-delay',
  'client-versions',
  'server-versions',
  'known-flags',
  'recommended-client-protocols',
  'recommended-relay-protocols',
  'required-client-protocols',
  'required-relay-protocols',
  'params',
  'shared-rand-previous-value',
  'shared-rand-current-value',
]);
const SECTION: Record<string, number> = {
  'dir-source': 1,
  contact: 1,
  'vote-digest': 1,
  r: 2,
  a: 2,
  m: 2,
  s: 2,
  v: 2,
  pr: 2,
  w: 2,
  'directory-footer': 3,
  'bandwidth-weights': 3,
  'directory-signature': 4,
};
const sectionOf = (kw: string): number | undefined => (HEADER.has(kw) ? 0 : SECTION[kw]);

/** Parses a microdesc consensus (InvalidError when malformed); signatures are not checked here. */
export function parseMdConsensus(text: string): MdConsensus {
  if (text.length > MAX_MD_CONSENSUS_LEN) throw new InvalidError(WHAT, 'too long');
  const items = tokenize(text, WHAT);
  const first = items[0];
  if (first?.keyword !== 'network-status-version')
    throw new InvalidError(WHAT, 'must start with network-status-version');
  if (first.args[0] !== '3' || first.args[1] !== 'microdesc')
    throw new InvalidError(WHAT, 'not a version 3 microdesc consensus');

  const header: Item[] = [];
  const sources: Item[][] = [];
  const entries: Item[][] = [];
  const footer: Item[] = [];
  const sigs: Item[] = [];
  let phase = 0;
  for (const item of items) {
    const s = sectionOf(item.keyword);
    if (s !== undefined && s < phase)
      throw new InvalidError(WHAT, `${item.keyword} out of place`, { line: item.line });
    if (s !== undefined) phase = s;
    if (phase === 0) header.push(item);
    else if (phase === 1) {
      if (item.keyword === 'dir-source') sources.push([]);
      const cur = sources[sources.length - 1];
      if (!cur) throw new InvalidError(WHAT, `${item.keyword} before dir-source`, { line: item.line });
      cur.push(item);
    } else if (phase === 2) {
      if (item.keyword === 'r') entries.push([]);
      const cur = entries[entries.length - 1];
      if (!cur) throw new InvalidError(WHAT, `${item.keyword} before r`, { line: item.line });
      cur.push(item);
    } else if (phase === 3) {
      if (footer.length === 0 && item.keyword !== 'directory-footer')
        throw new InvalidError(WHAT, `${item.keyword} before directory-footer`, { line: item.line });
      footer.push(item);
    } else if (item.keyword !== 'directory-signature') {
      // dir-spec §3.4.1: signatures are "at end"; nothing may follow them.
      throw new InvalidError(WHAT, `${item.keyword} after the signatures`, { line: item.line });
    } else sigs.push(item);
  }
  if (sigs.length === 0) throw new InvalidError(WHAT, 'no directory-signature');
  if (footer.length === 0) throw new InvalidError(WHAT, 'no directory-footer');

  const signedText = utf8(text.slice(0, sigs[0]!.start + 'directory-signature '.length));
  return {
    ...readHeader(header),
    authorities: sources.map(readDirSource),
    relays: readEntries(entries),
    bandwidthWeights: keyValues(atMostOne(footer, 'bandwidth-weights', WHAT), 0),
    signatures: sigs.map(readSignature),
    signedDigests: { sha1: sha1(signedText), sha256: sha256(signedText) },
  };
}

type Header = Omit<
  MdConsensus,
  'authorities' | 'relays' | 'bandwidthWeights' | 'signatures' | 'signedDigests'
>;

function readHeader(h: Item[]): Header {
  exactlyOne(h, 'network-status-version', WHAT);
  if (exactlyOne(h, 'vote-status', WHAT).args[0] !== 'consensus')
    throw new InvalidError(WHAT, 'not a consensus');
  const delay = exactlyOne(h, 'voting-delay', WHAT);
  const list = (kw: string) =>
    (atMostOne(h, kw, WHAT)?.args.join(' ') ?? '').split(',').filter((v) => v !== '');
  const protocols: Record<string, string> = {};
  for (const kw of [
    'recommended-client-protocols',
    'recommended-relay-protocols',
    'required-client-protocols',
    'required-relay-protocols',
  ]) {
    const p = atMostOne(h, kw, WHAT);
    if (p) protocols[kw] = p.args.join(' ');
  }
  const out: Header = {
    consensusMethod: intArg(exactlyOne(h, 'consensus-method', WHAT), 0, 1, INT32_MAX, WHAT),
    validAfterMs: timeArgs(exactlyOne(h, 'valid-after', WHAT), 0, WHAT),
    freshUntilMs: timeArgs(exactlyOne(h, 'fresh-until', WHAT), 0, WHAT),
    validUntilMs: timeArgs(exactlyOne(h, 'valid-until', WHAT), 0, WHAT),
    voteDelaySec: intArg(delay, 0, 0, INT32_MAX, WHAT),
    distDelaySec: intArg(delay, 1, 0, INT32_MAX, WHAT),
    clientVersions: list('client-versions'),
    serverVersions: list('server-versions'),
    knownFlags: exactlyOne(h, 'known-flags', WHAT).args,
    protocols,
    params: keyValues(atMostOne(h, 'params', WHAT), 0),
  };
  // dir-spec §3.4.1: valid-after < fresh-until < valid-until.
  if (!(out.validAfterMs < out.freshUntilMs && out.freshUntilMs < out.validUntilMs))
    throw new InvalidError(WHAT, 'valid-after, fresh-until, valid-until out of order');
  const prev = atMostOne(h, 'shared-rand-previous-value', WHAT);
  if (prev) out.sharedRandPrevious = sharedRandom(prev);
  const cur = atMostOne(h, 'shared-rand-current-value', WHAT);
  if (cur) out.sharedRandCurrent = sharedRandom(cur);
  return out;
}

/** dir-spec §3.4.1 shared-rand-*-value (srv-spec §6): `NumReveals Value`, Value 32 bytes base64. */
function sharedRandom(item: Item): SharedRandom {
  return { reveals: intArg(item, 0, 0, INT32_MAX, WHAT), value: b64Arg(item, 1, 32, WHAT) };
}

/** `params` / `bandwidth-weights`: Keyword=Int32 pairs, each key once (C tor's dirvote ranges). */
function keyValues(item: Item | undefined, from: number): Record<string, number> {
  const out: Record<string, number> = {};
  for (const kv of item?.args.slice(from) ?? []) {
    const m = /^([A-Za-z0-9_-]+)=(-?(?:0|[1-9][0-9]{0,9}))$/.exec(kv);
    const v = Number(m?.[2]);
    if (!m || v < INT32_MIN || v > INT32_MAX || Object.hasOwn(out, m[1]!))
      throw new InvalidError(WHAT, `bad ${item!.keyword} entry`, { line: item!.line });
    out[m[1]!] = v;
  }
  return out;
}

function readDirSource(items: Item[]): DirSource {
  const ds = items[0]!;
  const src: DirSource = {
    nickname: arg(ds, 0, WHAT),
    identity: hexIdArg(ds, 1, WHAT),
    address: arg(ds, 2, WHAT),
    ip: ipv4Arg(ds, 3),
    dirPort: intArg(ds, 4, 0, 65535, WHAT),
    orPort: intArg(ds, 5, 0, 65535, WHAT),
  };
  const contact = atMostOne(items, 'contact', WHAT);
  if (contact) src.contact = contact.args.join(' ');
  const vd = atMostOne(items, 'vote-digest', WHAT);
  if (vd) src.voteDigest = hexIdArg(vd, 0, WHAT);
  return src;
}

const NICKNAME = /^[A-Za-z0-9]{1,19}$/;

/**
 * Router status entries, which must be sorted by RSA identity without
 * repeats (C tor ns_parse.c: "Networkstatus entries not sorted by identity
 * digest"). Flags are kept as written: for a consensus C tor skips flags
 * it does not know rather than checking them against known-flags (it does
 * that for votes only), so a new flag does not make old clients refuse it.
 */
function readEntries(entries: Item[][]): MdRouterStatus[] {
  const out = entries.map((items) => {
    const r = items[0]!;
    const nickname = arg(r, 0, WHAT);
    if (!NICKNAME.test(nickname)) throw new InvalidError(WHAT, 'bad nickname', { line: r.line });
    const s = exactlyOne(items, 's', WHAT);
    const rs: MdRouterStatus = {
      nickname,
      rsaId: b64Arg(r, 1, 20, WHAT),
      publishedMs: timeArgs(r, 2, WHAT),
      ip: ipv4Arg(r, 4),
      orPort: intArg(r, 5, 1, 65535, WHAT),
      dirPort: intArg(r, 6, 0, 65535, WHAT),
      addresses: items.filter((i) => i.keyword === 'a').map((i) => arg(i, 0, WHAT)),
      microdescDigest: b64Arg(exactlyOne(items, 'm', WHAT), 0, 32, WHAT),
      flags: s.args,
      unmeasured: false,
    };
    const v = atMostOne(items, 'v', WHAT);
    if (v) rs.version = v.args.join(' ');
    const pr = atMostOne(items, 'pr', WHAT);
    if (pr) rs.protocols = pr.args.join(' ');
    const w = atMostOne(items, 'w', WHAT);
    if (w) {
      const kv = keyValues(w, 0);
      if (kv.Bandwidth !== undefined) {
        if (kv.Bandwidth < 0) throw new InvalidError(WHAT, 'negative bandwidth', { line: w.line });
        rs.bandwidth = kv.Bandwidth;
      }
      rs.unmeasured = kv.Unmeasured === 1;
    }
    return rs;
  });
  for (let i = 1; i < out.length; i++)
    if (compareBytes(out[i - 1]!.rsaId, out[i]!.rsaId) >= 0)
      throw new InvalidError(WHAT, 'entries not sorted by identity', { line: entries[i]![0]!.line });
  return out;
}

function ipv4Arg(item: Item, n: number): string {
  const ip = arg(item, n, WHAT);
  const parts = ip.split('.');
  if (parts.length !== 4 || !parts.every((p) => /^(0|[1-9][0-9]{0,2})$/.test(p) && Number(p) < 256))
    throw new InvalidError(WHAT, `${item.keyword} has a bad IPv4 address`, { line: item.line });
  return ip;
}

function readSignature(item: Item): DirectorySignature {
  // dir-spec §3.4.1: "directory-signature [Algorithm] identity signing-key-digest".
  const withAlg = item.args.length >= 3;
  return {
    algorithm: withAlg ? arg(item, 0, WHAT) : 'sha1',
    identity: hexIdArg(item, withAlg ? 1 : 0, WHAT),
    signingKeyDigest: hexIdArg(item, withAlg ? 2 : 1, WHAT),
    signature: objectOf(item, 'SIGNATURE', WHAT),
  };
}
