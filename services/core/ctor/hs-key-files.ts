/**
 * C tor's onion-service key files, so a service's identity moves between C
 * tor and Shallot unchanged (rend-spec-v3 §1.9 KS_hs_id / KP_hs_id, stored
 * as C tor's HiddenServiceDir holds them).
 *
 * Overview: `hs_ed25519_secret_key` and `hs_ed25519_public_key` are C
 * tor's "tagged" files (src/lib/crypt_ops/crypto_format.c
 * crypto_write_tagged_contents_to_file): a 32-byte header
 * `== <type>: <tag> ==` padded with NULs, then the key. The secret key is
 * type `ed25519v1-secret` and 64 bytes: C tor keeps Ed25519 secrets
 * expanded (ed25519_ref10_seckey_expand: SHA-512 of the seed with the
 * scalar clamped), the seed itself is never stored. The public key is type
 * `ed25519v1-public` and 32 bytes. The onion service uses tag `type0`
 * (hs_service.c load_service_keys).
 *
 * Design notes: decoding checks what C tor's
 * crypto_read_tagged_contents_from_file and ed25519_seckey_read_from_file
 * check — a header starting `== `, ending ` ==`, NUL-padded, of the right
 * type; exactly the key's length after it — and C tor's tag check
 * (ed_key_init_from_file: "Wrong tag"). Every refusal is an InvalidError
 * naming the file kind, never the key bytes.
 *
 * Not in this module: reading and writing files, permissions
 * (onion-service/identity.ts), signing (crypto.ts).
 */
import { concat, fromUtf8, utf8 } from '../bytes.js';
import { InvalidError } from '../errors.js';

export const HS_SECRET_KEY_FILE = 'hs_ed25519_secret_key';
export const HS_PUBLIC_KEY_FILE = 'hs_ed25519_public_key';
export const HS_HOSTNAME_FILE = 'hostname';

/** crypto_format.c: the header is 32 bytes, NUL-padded. */
const HEADER_LEN = 32;
const SECRET_TYPE = 'ed25519v1-secret';
const PUBLIC_TYPE = 'ed25519v1-public';
/** hs_service.c: the onion service's keys carry tag "type0". */
const HS_TAG = 'type0';

function encodeTagged(type: string, tag: string, data: Uint8Array): Uint8Array {
  const header = new Uint8Array(HEADER_LEN);
  const text = utf8(`== ${type}: ${tag} ==`);
  // tor_snprintf into char[32] keeps room for the NUL: at most 31 characters.
  if (text.length >= HEADER_LEN) throw new InvalidError('tagged key file', 'header too long');
  header.set(text);
  return concat(header, data);
}

function decodeTagged(what: string, file: Uint8Array, type: string, tag: string, len: number): Uint8Array {
  if (file.length < HEADER_LEN) throw new InvalidError(what, 'truncated header', { length: file.length });
  const header = file.subarray(0, HEADER_LEN);
  const nul = header.indexOf(0);
  const textLen = nul < 0 ? HEADER_LEN : nul;
  if (header.subarray(textLen).some((b) => b !== 0)) throw new InvalidError(what, 'header is not NUL-padded');
  let text: string;
  try {
    text = fromUtf8(header.subarray(0, textLen), what);
  } catch {
    throw new InvalidError(what, 'header is not text');
  }
  if (!text.startsWith('== ') || !text.endsWith(' ==') || textLen >= HEADER_LEN)
    throw new InvalidError(what, 'not a C tor key file (no "== type: tag ==" header)');
  const m = /^== ([^:]+): (.*) ==$/.exec(text);
  if (!m || m[1] !== type) throw new InvalidError(what, `not an ${type} file`);
  if (m[2] !== tag) throw new InvalidError(what, `wrong tag "${m[2]}", want "${tag}"`);
  const body = file.subarray(HEADER_LEN);
  if (body.length !== len)
    throw new InvalidError(what, `key is ${body.length} bytes, want ${len}`, { length: body.length });
  return body.slice();
}

/** `hs_ed25519_secret_key` for a 64-byte expanded secret key (crypto.ts ed25519SecretKeyFromSeed). */
export function encodeHsSecretKeyFile(secretKey: Uint8Array): Uint8Array {
  if (secretKey.length !== 64) throw new InvalidError(HS_SECRET_KEY_FILE, 'secret key must be 64 bytes');
  return encodeTagged(SECRET_TYPE, HS_TAG, secretKey);
}

/** The 64-byte expanded secret key (scalar | prefix) of an `hs_ed25519_secret_key` file. */
export function decodeHsSecretKeyFile(file: Uint8Array): Uint8Array {
  return decodeTagged(HS_SECRET_KEY_FILE, file, SECRET_TYPE, HS_TAG, 64);
}

export function encodeHsPublicKeyFile(publicKey: Uint8Array): Uint8Array {
  if (publicKey.length !== 32) throw new InvalidError(HS_PUBLIC_KEY_FILE, 'public key must be 32 bytes');
  return encodeTagged(PUBLIC_TYPE, HS_TAG, publicKey);
}

export function decodeHsPublicKeyFile(file: Uint8Array): Uint8Array {
  return decodeTagged(HS_PUBLIC_KEY_FILE, file, PUBLIC_TYPE, HS_TAG, 32);
}

/** Whether bytes look like one of C tor's tagged key files (rather than Shallot's JSON key file). */
export function isCtorKeyFile(file: Uint8Array): boolean {
  const prefix = utf8('== ');
  return file.length >= prefix.length && prefix.every((b, i) => file[i] === b);
}
