/**
 * Tor's directory meta-format (dir-spec §1.2 "Document meta-format"): a
 * document is a list of items, each a keyword line with arguments and an
 * optional base64 object between `-----BEGIN tag-----` and `-----END
 * tag-----`.
 *
 * Overview: `tokenize` splits a document into `Item`s and records where
 * each starts and ends, so signed ranges (dir-spec §3.4.1
 * "directory-signature", §3.1 "dir-key-certification") can be cut from the
 * original text. Small helpers pick items and arguments with typed errors:
 * `exactlyOne`, `atMostOne`, `objectOf`, `noObject`, `arg`, `b64Arg`.
 *
 * Used by the onion-service descriptor (hs-descriptor.ts) and the C tor
 * directory documents in this directory (key certificates, the
 * microdescriptor consensus, microdescriptors).
 *
 * Design notes: strict where it is cheap, as C tor's tokenizer
 * (src/feature/dirparse/parsecommon.c) is: ASCII only, `\n` line ends,
 * matching BEGIN/END tags, canonical base64. Arguments are split on SP and
 * TAB (dir-spec §1.2 "WS"). Unknown keywords are kept as items; each
 * document parser decides (dir-spec §1.2: unrecognised keywords are
 * ignored, so documents can grow).
 *
 * Not in this module: which keywords a document allows, in what order.
 *
 * Limitations: no `opt` prefix (obsolete since Tor 0.2.x; C tor no longer
 * writes it); each caller caps the document size before calling.
 */

import { fromBase64, fromHex, toBase64 } from '../bytes.js';
import { InvalidError } from '../errors.js';

export interface Item {
  keyword: string;
  args: string[];
  object?: { tag: string; data: Uint8Array };
  /** Offset of the keyword line's first character. */
  start: number;
  /** Offset just past the item's last newline (or the end of the text). */
  end: number;
  /** 1-based line number of the keyword line, for error context. */
  line: number;
}

const KEYWORD = /^[A-Za-z0-9][A-Za-z0-9-]*$/;
const OBJ_BEGIN = /^-----BEGIN ([A-Za-z0-9 ]+)-----$/;

/**
 * Splits a document into items (dir-spec §1.2). The final newline is
 * required unless `finalNewline` is 'optional' (C tor ends the
 * onion-service descriptor's middle layer with `-----END MESSAGE-----` and
 * no newline).
 */
export function tokenize(
  text: string,
  what: string,
  finalNewline: 'required' | 'optional' = 'required',
): Item[] {
  if (!/^[\x20-\x7e\n\t]*$/.test(text)) throw new InvalidError(what, 'non-ASCII or control characters');
  const ends = text.length === 0 || text.endsWith('\n');
  if (!ends && finalNewline === 'required') throw new InvalidError(what, 'does not end with a newline');
  const lines = text.split('\n');
  if (ends) lines.pop();
  const items: Item[] = [];
  let offset = 0;
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!;
    const start = offset;
    offset += line.length + 1;
    const parts = line.split(/[ \t]+/);
    const keyword = parts[0] ?? '';
    if (!KEYWORD.test(keyword)) throw new InvalidError(what, 'bad keyword line', { line: i + 1 });
    const item: Item = {
      keyword,
      args: parts.slice(1).filter((a) => a !== ''),
      start,
      end: 0,
      line: i + 1,
    };
    const begin = OBJ_BEGIN.exec(lines[i + 1] ?? '');
    if (begin) {
      const tag = begin[1]!;
      const body: string[] = [];
      let j = i + 2;
      for (; j < lines.length && lines[j] !== `-----END ${tag}-----`; j++) {
        if (lines[j]!.startsWith('-----'))
          throw new InvalidError(what, 'mismatched object tags', { line: j + 1 });
        body.push(lines[j]!);
      }
      if (j >= lines.length) throw new InvalidError(what, 'unterminated object', { line: i + 2 });
      item.object = { tag, data: b64Strict(body.join(''), `${what} ${tag}`) };
      for (let k = i + 1; k <= j; k++) offset += lines[k]!.length + 1;
      i = j;
    } else if (line.startsWith('-----')) {
      throw new InvalidError(what, 'object without a keyword line', { line: i + 1 });
    }
    item.end = Math.min(offset, text.length);
    items.push(item);
  }
  return items;
}

/** The only item with `keyword` (InvalidError if missing or repeated). */
export function exactlyOne(items: readonly Item[], keyword: string, what: string): Item {
  const found = items.filter((i) => i.keyword === keyword);
  if (found.length !== 1) throw new InvalidError(what, `expected one ${keyword}, found ${found.length}`);
  return found[0]!;
}

export function atMostOne(items: readonly Item[], keyword: string, what: string): Item | undefined {
  const found = items.filter((i) => i.keyword === keyword);
  if (found.length > 1) throw new InvalidError(what, `more than one ${keyword}`);
  return found[0];
}

export function objectOf(item: Item, tag: string, what: string): Uint8Array {
  if (item.object?.tag !== tag) throw new InvalidError(what, `${item.keyword} needs a ${tag} object`);
  return item.object.data;
}

export function noObject(item: Item, what: string): void {
  if (item.object) throw new InvalidError(what, `${item.keyword} takes no object`);
}

export function arg(item: Item, n: number, what: string): string {
  const a = item.args[n];
  if (a === undefined) throw new InvalidError(what, `${item.keyword} is missing argument ${n + 1}`);
  return a;
}

export function b64Arg(item: Item, n: number, len: number, what: string): Uint8Array {
  const b = b64Strict(arg(item, n, what), `${what} ${item.keyword}`);
  if (b.length !== len) throw new InvalidError(what, `${item.keyword} argument must be ${len} bytes`);
  return b;
}

/**
 * Base64 that must be canonical (unused trailing bits zero), so that a
 * changed character can never decode to the same bytes.
 */
export function b64Strict(s: string, what: string): Uint8Array {
  const b = fromBase64(s, what);
  if (toBase64(b, s.endsWith('=')) !== s) throw new InvalidError(what, 'non-canonical base64');
  return b;
}

/** Base64 split into 64-column lines, as C tor's BASE64_ENCODE_MULTILINE writes objects. */
export function pemObject(tag: string, data: Uint8Array): string {
  const b64 = toBase64(data);
  const lines: string[] = [];
  for (let i = 0; i < b64.length; i += 64) lines.push(b64.slice(i, i + 64));
  return `-----BEGIN ${tag}-----\n${lines.join('\n')}\n-----END ${tag}-----\n`;
}

/**
 * A decimal integer in [min, max] (dir-spec's INT fields), no sign, no
 * leading zeros beyond "0" itself.
 */
export function intArg(item: Item, n: number, min: number, max: number, what: string): number {
  const s = arg(item, n, what);
  if (!/^(0|[1-9][0-9]{0,14})$/.test(s))
    throw new InvalidError(what, `${item.keyword} argument ${n + 1} is not an integer`);
  const v = Number(s);
  if (v < min || v > max) throw new InvalidError(what, `${item.keyword} argument ${n + 1} out of range`);
  return v;
}

/** dir-spec §1.2 date-time: "YYYY-MM-DD HH:MM:SS" in two arguments, UTC; milliseconds since the epoch. */
export function timeArgs(item: Item, n: number, what: string): number {
  const s = `${arg(item, n, what)} ${arg(item, n + 1, what)}`;
  const m = /^(\d{4})-(\d{2})-(\d{2}) (\d{2}):(\d{2}):(\d{2})$/.exec(s);
  if (!m) throw new InvalidError(what, `${item.keyword} has a bad time`);
  const [y, mo, d, h, mi, se] = m.slice(1).map(Number) as [number, number, number, number, number, number];
  // Fields in range (second 60 allowed for leap seconds, as C tor's parse_iso_time does); the
  // day must exist in its month, since Date.UTC would roll 02-31 over into March.
  const daysInMonth = new Date(Date.UTC(y, mo, 0)).getUTCDate();
  if (y < 1970 || mo < 1 || mo > 12 || d < 1 || d > daysInMonth || h > 23 || mi > 59 || se > 60)
    throw new InvalidError(what, `${item.keyword} has a bad time`);
  const ms = Date.UTC(y, mo - 1, d, h, mi, se);
  return ms;
}

/** A 40-digit hex fingerprint (dir-spec §1.2 HexDigest), upper- or lowercase; returns the 20 bytes. */
export function hexIdArg(item: Item, n: number, what: string): Uint8Array {
  const s = arg(item, n, what);
  if (!/^[0-9A-Fa-f]{40}$/.test(s))
    throw new InvalidError(what, `${item.keyword} argument ${n + 1} is not a fingerprint`);
  return fromHex(s.toLowerCase(), what);
}
