/**
 * C tor microdescriptors (dir-spec §3.3 "Computing microdescriptors"): the
 * part of a relay's descriptor a client needs to build circuits, named in
 * the microdesc consensus by the SHA-256 of its text (`m` lines).
 *
 * Overview: `parseMicrodescs` reads a concatenation (as
 * `/tor/micro/d/…` serves them); each microdescriptor starts at an
 * `onion-key` line and runs to the next one, and its digest is SHA-256 of
 * exactly that text. Items kept: `ntor-onion-key` (exactly once), `a`
 * (extra OR addresses), `family`, `family-ids` (proposal 321 family ids,
 * as C tor 0.4.9 writes `family-ids ed25519:…`), `p`/`p6` exit-policy
 * summaries (dir-spec §3.8.2), `id ed25519` and `id rsa1024`.
 *
 * Design notes: `onion-key` may carry a TAP key object (C tor 0.4.9 still
 * writes one) or none (proposal 350 drops TAP); the key is not kept, as
 * Shallot speaks only ntor and ntor-v3. Unknown keywords are ignored
 * (dir-spec §1.2). The text is hashed as served, so a microdescriptor is
 * only trusted once its digest matches an `m` line of a verified consensus.
 *
 * Not in this module: matching digests to the consensus's `m` lines,
 * fetching.
 *
 * Limitations: `@annotations` (C tor's cache files) only on request.
 */

import { utf8 } from '../bytes.js';
import { sha256 } from '../crypto.js';
import { InvalidError } from '../errors.js';
import { arg, atMostOne, b64Arg, exactlyOne, type Item, noObject, tokenize } from './meta-format.js';

/** A bound on one `/tor/micro/d/` answer (C tor asks for at most 92 per request; a few KiB each). */
export const MAX_MICRODESCS_LEN = 4 * 1024 * 1024;
/** A bound on one microdescriptor (ours: family lines are the only long part). */
export const MAX_MICRODESC_LEN = 64 * 1024;
/** C tor's MAX_EXITPOLICY_SUMMARY_LEN (policies.c), bounding `p`/`p6`. */
const MAX_POLICY_SUMMARY_LEN = 1000;

/** dir-spec §3.8.2 exit-policy summary: accept or reject these port ranges, the rest the other way. */
export interface PortSummary {
  action: 'accept' | 'reject';
  /** Inclusive [low, high] ranges, ascending and disjoint. */
  ranges: [number, number][];
}

export interface Microdesc {
  /** SHA-256 of the microdescriptor's text: what the consensus `m` line names. */
  digest: Uint8Array;
  ntorOnionKey: Uint8Array;
  /** `id ed25519`, 32 bytes. */
  ed25519Id?: Uint8Array;
  /** `id rsa1024`, 20 bytes (older consensus methods). */
  rsaId?: Uint8Array;
  /** `a` lines: extra OR addresses, e.g. `[::1]:9001`. */
  addresses: string[];
  /** `family`: `$HEX`, `$HEX=nick` or nicknames, as written. */
  family: string[];
  /** `family-ids`, e.g. `ed25519:…`, as written. */
  familyIds: string[];
  policy?: PortSummary;
  policy6?: PortSummary;
}

const WHAT = 'microdescriptor';

/**
 * Every microdescriptor in `text` with its digest (InvalidError when
 * malformed). With `annotations: 'allow'` the `@…` lines C tor writes
 * before each microdescriptor in its cached-microdescs file are skipped
 * (they are outside the digested text); on the wire there are none.
 */
export function parseMicrodescs(text: string, opts: { annotations?: 'allow' | 'refuse' } = {}): Microdesc[] {
  if (text.length > MAX_MICRODESCS_LEN) throw new InvalidError(WHAT, 'too long');
  const body = opts.annotations === 'allow' ? dropAnnotations(text) : text;
  const items = tokenize(body, WHAT);
  if (items.length > 0 && items[0]!.keyword !== 'onion-key')
    throw new InvalidError(WHAT, 'must start with onion-key', { line: items[0]!.line });
  const out: Microdesc[] = [];
  let from = 0;
  while (from < items.length) {
    let to = from + 1;
    while (to < items.length && items[to]!.keyword !== 'onion-key') to++;
    const one = items.slice(from, to);
    const start = one[0]!.start;
    const end = one[one.length - 1]!.end;
    if (end - start > MAX_MICRODESC_LEN) throw new InvalidError(WHAT, 'too long', { line: one[0]!.line });
    out.push(parseOne(one, sha256(utf8(body.slice(start, end)))));
    from = to;
  }
  return out;
}

/**
 * Drops `@` lines that stand directly before an `onion-key` line (through
 * other annotations), in one pass; any other `@` line stays and fails the
 * tokenizer.
 */
function dropAnnotations(text: string): string {
  const kept: string[] = [];
  let pending: string[] = [];
  for (const line of text.split('\n')) {
    if (line.startsWith('@')) {
      pending.push(line);
      continue;
    }
    // A loop, not push(...pending): a spread of 10^5 lines overflows the stack.
    if (!(line === 'onion-key' || line.startsWith('onion-key '))) for (const p of pending) kept.push(p);
    pending = [];
    kept.push(line);
  }
  for (const p of pending) kept.push(p);
  return kept.join('\n');
}

function parseOne(items: Item[], digest: Uint8Array): Microdesc {
  const onionKey = items[0]!;
  if (onionKey.object && onionKey.object.tag !== 'RSA PUBLIC KEY')
    throw new InvalidError(WHAT, 'onion-key object is not an RSA PUBLIC KEY', { line: onionKey.line });
  const ntor = exactlyOne(items, 'ntor-onion-key', WHAT);
  noObject(ntor, WHAT);
  const md: Microdesc = {
    digest,
    ntorOnionKey: b64Arg(ntor, 0, 32, WHAT),
    addresses: items.filter((i) => i.keyword === 'a').map((i) => arg(i, 0, WHAT)),
    family: atMostOne(items, 'family', WHAT)?.args ?? [],
    familyIds: atMostOne(items, 'family-ids', WHAT)?.args ?? [],
  };
  const p = atMostOne(items, 'p', WHAT);
  if (p) md.policy = parsePortSummary(p);
  const p6 = atMostOne(items, 'p6', WHAT);
  if (p6) md.policy6 = parsePortSummary(p6);
  const ids = items.filter((i) => i.keyword === 'id');
  const ed = ids.filter((i) => i.args[0] === 'ed25519');
  const rsa = ids.filter((i) => i.args[0] === 'rsa1024');
  // dir-spec §3.3: "id" at most once per key type; other types are ignored.
  if (ed.length > 1 || rsa.length > 1) throw new InvalidError(WHAT, 'more than one id of a type');
  if (ed[0]) md.ed25519Id = b64Arg(ed[0], 1, 32, WHAT);
  if (rsa[0]) md.rsaId = b64Arg(rsa[0], 1, 20, WHAT);
  return md;
}

/** `p`/`p6` (and the consensus's `p`): "accept"/"reject" and a PortList (dir-spec §3.8.2). */
export function parsePortSummary(item: Item): PortSummary {
  noObject(item, WHAT);
  const action = arg(item, 0, WHAT);
  if (action !== 'accept' && action !== 'reject') throw new InvalidError(WHAT, `${item.keyword} action`);
  const list = arg(item, 1, WHAT);
  if (list.length > MAX_POLICY_SUMMARY_LEN || item.args.length !== 2)
    throw new InvalidError(WHAT, `${item.keyword} port list`);
  const ranges: [number, number][] = [];
  for (const part of list.split(',')) {
    const m = /^([1-9][0-9]{0,4})(?:-([1-9][0-9]{0,4}))?$/.exec(part);
    const lo = Number(m?.[1]);
    const hi = m?.[2] === undefined ? lo : Number(m[2]);
    const prev = ranges[ranges.length - 1];
    if (!m || hi > 65535 || lo > hi || (prev !== undefined && lo <= prev[1]))
      throw new InvalidError(WHAT, `${item.keyword} port list`, { line: item.line });
    ranges.push([lo, hi]);
  }
  return { action, ranges };
}

/** What a summary says about `port` (dir-spec §3.8.2: listed ports take the action, the rest the other). */
export function summaryAllowsPort(s: PortSummary, port: number): boolean {
  const listed = s.ranges.some(([lo, hi]) => port >= lo && port <= hi);
  return listed === (s.action === 'accept');
}
