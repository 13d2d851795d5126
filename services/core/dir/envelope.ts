/**
 * Signed envelopes: `{"body": {...}, "signature": "<b64>"}`, the wrapper a
 * relay descriptor (dir-spec §2.1.1 router-sig-ed25519) and an authority's
 * vote (dir-spec §3.4.1 directory-signature) travel in.
 *
 * Deviation (README: differs from Tor): Tor signs the document text up to its signature
 * line; Shallot signs `prefix | canonical JSON body` with the Ed25519 key
 * the body names, where the prefix ("Shallot relay descriptor v1\0",
 * "Shallot vote v1\0") keeps a signature on one kind of document from
 * being valid on another.
 *
 * Not in this module: what the bodies contain (descriptor.ts, vote.ts);
 * consensus signatures, which are detached (consensus.ts).
 */
import { concat, equalBytes, utf8 } from '../bytes.js';
import {
  canonicalJsonBytes,
  expectKeys,
  type JsonObject,
  parseJsonBounded,
  readB64,
  readObject,
} from '../canonical-json.js';
import { ed25519PublicFromSeed, ed25519Sign, ed25519Verify } from '../crypto.js';
import { CryptoError, InvalidError } from '../errors.js';
import { b64 } from './fields.js';

/** Signs `body` with `seed`, which must be the key the body names as its signer (`signer.key`). */
export function signEnvelope(
  prefix: string,
  body: JsonObject,
  seed: Uint8Array,
  signer: { key: Uint8Array; name: string; what: string },
): Uint8Array {
  if (!equalBytes(ed25519PublicFromSeed(seed), signer.key)) {
    throw new InvalidError(signer.what, `seed does not match ${signer.name}`);
  }
  const signature = ed25519Sign(seed, concat(utf8(prefix), canonicalJsonBytes(body)));
  return canonicalJsonBytes({ body, signature: b64(signature) });
}

/** Splits an envelope into its body and signature; the signature is not checked here. */
export function openEnvelope(
  bytes: Uint8Array,
  maxBytes: number,
  what: string,
): { body: JsonObject; signature: Uint8Array } {
  const o = readObject(parseJsonBounded(bytes, maxBytes, what), what);
  expectKeys(o, what, ['body', 'signature']);
  return {
    body: readObject(o.body, `${what} body`),
    signature: readB64(o.signature, `${what} signature`, 64),
  };
}

/** Throws CryptoError {reason:'bad-signature'} unless `signer` signed `prefix | body`. */
export function checkEnvelopeSignature(
  prefix: string,
  body: JsonObject,
  signature: Uint8Array,
  signer: Uint8Array,
  what: string,
): void {
  if (!ed25519Verify(signer, concat(utf8(prefix), canonicalJsonBytes(body)), signature)) {
    throw new CryptoError(what, 'bad signature', { reason: 'bad-signature' });
  }
}
