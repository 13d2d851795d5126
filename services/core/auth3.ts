/**
 * The body of an AUTHENTICATE cell of type 3, Ed25519-SHA256-RFC5705
 * (tor-spec §4.4.1): "AUTH0003", the identities of both ends (CID, SID and
 * their Ed25519 forms), the SHA-256 digests of the handshake so far (SLOG,
 * CLOG), the responder's TLS certificate digest (SCERT), the TLS exporter
 * value (TLSSECRETS), 24 random bytes and the signature over all of it.
 *
 * Not in this module: the AUTHENTICATE cell around it (cells.ts), computing
 * and checking the fields (net/link-auth.ts).
 */
import { ByteReader, ByteWriter, fromUtf8 } from './bytes.js';
import { InvalidError, TruncatedError } from './errors.js';

export const AUTH3_MAGIC = 'AUTH0003';

/** tor-spec §4.4.1: Ed25519-SHA256-RFC5705 authentication body. */
export interface Auth3Body {
  cid: Uint8Array;
  sid: Uint8Array;
  cidEd: Uint8Array;
  sidEd: Uint8Array;
  slog: Uint8Array;
  clog: Uint8Array;
  scert: Uint8Array;
  tlsSecrets: Uint8Array;
  rand: Uint8Array;
  sig: Uint8Array;
}

const AUTH3_FIELDS: [keyof Auth3Body, number][] = [
  ['cid', 32],
  ['sid', 32],
  ['cidEd', 32],
  ['sidEd', 32],
  ['slog', 32],
  ['clog', 32],
  ['scert', 32],
  ['tlsSecrets', 32],
  ['rand', 24],
  ['sig', 64],
];

export function encodeAuth3Body(f: Auth3Body): Uint8Array {
  const w = new ByteWriter();
  w.bytes(new TextEncoder().encode(AUTH3_MAGIC));
  for (const [name, len] of AUTH3_FIELDS) {
    if (f[name].length !== len) throw new InvalidError('AUTHENTICATE', `${name} must be ${len} bytes`);
    w.bytes(f[name]);
  }
  return w.finish();
}

export function decodeAuth3Body(body: Uint8Array): Auth3Body {
  const r = new ByteReader(body, 'AUTHENTICATE');
  if (fromUtf8(r.take(8), 'AUTHENTICATE type') !== AUTH3_MAGIC) {
    throw new InvalidError('AUTHENTICATE', 'missing AUTH0003 magic');
  }
  const out: Partial<Auth3Body> = {};
  for (const [name, len] of AUTH3_FIELDS) out[name] = r.take(len);
  r.assertExhausted();
  return out as Auth3Body;
}

/** The part of an AUTH0003 body the signature covers: everything but the signature. */
export function auth3SignedPart(body: Uint8Array): Uint8Array {
  if (body.length < 64) throw new TruncatedError('AUTHENTICATE', 64, body.length);
  return body.subarray(0, body.length - 64);
}
