/**
 * Tor's `DirAuthority` configuration lines, as a torrc writes them (Tor
 * manual "DirAuthority [nickname] [flags] ipv4address:dirport
 * fingerprint"; C tor config.c parse_dir_authority_line), so a Shallot
 * client can be pointed at a C tor network with the lines its relays use.
 *
 * Overview: `parseDirAuthorities` reads a torrc-shaped text: blank lines,
 * `#` comments and other options are skipped; each DirAuthority line gives
 * the nickname, `orport=`, `v3ident=` (the authority's v3 signing
 * identity, which consensus signatures name), the DirPort address and the
 * RSA identity fingerprint.
 *
 * Design notes: as C tor, the option name is case-insensitive, the
 * nickname is optional (the first token when it is a legal nickname: 1-19
 * alphanumerics), the fingerprint may be written in groups with spaces,
 * and flags C tor does not know are skipped (it warns and goes on).
 * Unlike C tor, `v3ident=` is required: a client cannot check consensus
 * signatures without it.
 *
 * Not in this module: fetching or verifying documents (client/ctor-dir.ts).
 *
 * Limitations: IPv4 DirPort addresses only (C tor's form); `ipv6=` is
 * kept as text.
 */
import { fromHex } from '../bytes.js';
import { InvalidError } from '../errors.js';

export interface DirAuthority {
  nickname: string | null;
  address: string;
  dirPort: number;
  orPort: number | null;
  /** The v3 identity (20 bytes): SHA-1 of the authority's v3 identity key. */
  v3ident: Uint8Array;
  /** SHA-1 of the authority's RSA identity key (20 bytes). */
  fingerprint: Uint8Array;
  ipv6: string | null;
}

const WHAT = 'DirAuthority';
/** C tor's MAX_NICKNAME_LEN and is_legal_nickname. */
const NICKNAME = /^[A-Za-z0-9]{1,19}$/;
const KNOWN_BARE_FLAGS = new Set(['hs', 'no-hs', 'bridge', 'no-v2', 'v1']);
/** A torrc of authorities is small; this bounds the work a hostile file can cause. */
export const MAX_DIR_AUTHORITY_FILE = 256 * 1024;

export function parseDirAuthorities(text: string): DirAuthority[] {
  if (text.length > MAX_DIR_AUTHORITY_FILE) throw new InvalidError(WHAT, 'file too long');
  const out: DirAuthority[] = [];
  for (const [i, raw] of text.split('\n').entries()) {
    const line = raw.replace(/#.*$/, '').trim();
    if (!line) continue;
    const [option, ...rest] = line.split(/[ \t]+/);
    if (option!.toLowerCase() !== 'dirauthority') continue;
    out.push(parseLine(rest, i + 1));
  }
  if (out.length === 0) throw new InvalidError(WHAT, 'no DirAuthority lines');
  return out;
}

function parseLine(tokens: string[], line: number): DirAuthority {
  const fail = (reason: string) => new InvalidError(WHAT, reason, { line });
  let i = 0;
  let nickname: string | null = null;
  if (tokens[0] && NICKNAME.test(tokens[0]) && !KNOWN_BARE_FLAGS.has(tokens[0])) nickname = tokens[i++]!;
  let orPort: number | null = null;
  let v3ident: Uint8Array | null = null;
  let ipv6: string | null = null;
  for (; i < tokens.length; i++) {
    const t = tokens[i]!;
    const eq = t.indexOf('=');
    if (eq < 0) {
      if (KNOWN_BARE_FLAGS.has(t.toLowerCase())) continue;
      if (t.includes(':')) break;
      continue;
    }
    const key = t.slice(0, eq).toLowerCase();
    const value = t.slice(eq + 1);
    if (key === 'orport') orPort = port(value, fail, 'orport');
    else if (key === 'v3ident') v3ident = hex20(value, fail, 'v3ident');
    else if (key === 'ipv6') ipv6 = value;
  }
  const addr = tokens[i];
  if (!addr) throw fail('no address:dirport');
  const m = /^(\d{1,3}(?:\.\d{1,3}){3}):(\d+)$/.exec(addr);
  if (!m || m[1]!.split('.').some((o) => Number(o) > 255))
    throw fail(`bad address:dirport ${addr.slice(0, 60)}`);
  const fingerprint = hex20(tokens.slice(i + 1).join(''), fail, 'fingerprint');
  if (!v3ident) throw fail('no v3ident= (needed to check consensus signatures)');
  return {
    nickname,
    address: m[1]!,
    dirPort: port(m[2]!, fail, 'dirport'),
    orPort,
    v3ident,
    fingerprint,
    ipv6,
  };
}

function port(s: string, fail: (r: string) => Error, what: string): number {
  const n = /^\d{1,5}$/.test(s) ? Number(s) : Number.NaN;
  if (!(n >= 1 && n <= 65535)) throw fail(`bad ${what}`);
  return n;
}

function hex20(s: string, fail: (r: string) => Error, what: string): Uint8Array {
  if (!/^[0-9A-Fa-f]{40}$/.test(s)) throw fail(`${what} is not 40 hex digits`);
  return fromHex(s);
}
