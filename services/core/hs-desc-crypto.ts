/**
 * The encryption layers of a v3 onion-service descriptor and client
 * authorization (rend-spec-v3 §2.5.3, §2.5.1.2): the keys, cipher and MAC of
 * each layer, and the `auth-client` lines that carry the descriptor cookie
 * to each authorized client.
 *
 * Layer crypto (§2.5.3): keys = SHAKE256(SECRET | subcred | INT_8(revctr) |
 * SALT | CONST) -> KEY[32] IV[16] MAC_KEY[32]; blob = SALT | AES-256-CTR(pt) |
 * SHA3(INT_8(32) | MAC_KEY | INT_8(16) | SALT | CT).
 *
 * Not in this module: the documents around the layers (hs-descriptor.ts).
 */
import { ByteWriter, int8 } from './bytes.js';
import { checkClientAuthPublicKey } from './client-auth.js';
import { aesCtr, ctEqual, type Rng, sha3_256, shake256, x25519 } from './crypto.js';
import { CryptoError, InvalidError } from './errors.js';
import { shuffled } from './random.js';

/** auth-client lines come in multiples of this (C tor's HS_DESC_AUTH_CLIENT_MULTIPLE). */
const AUTH_CLIENT_MULTIPLE = 16;
/** N_hs_desc_enc, the descriptor cookie (C tor's HS_DESC_DESCRIPTOR_COOKIE_LEN). */
export const DESC_COOKIE_LEN = 16;
export const CLIENT_ID_LEN = 8;
export const SALT_LEN = 16;
const MAC_LEN = 32;
export interface LayerParams {
  /** A' for the outer layer; A' | descriptor cookie for the inner one. */
  secret: Uint8Array;
  subcredential: Uint8Array;
  revisionCounter: bigint;
  constant: Uint8Array;
}

function layerKeys(
  p: LayerParams,
  salt: Uint8Array,
): { key: Uint8Array; iv: Uint8Array; macKey: Uint8Array } {
  const k = shake256(80, p.secret, p.subcredential, int8(p.revisionCounter), salt, p.constant);
  return { key: k.slice(0, 32), iv: k.slice(32, 48), macKey: k.slice(48, 80) };
}

function layerMac(macKey: Uint8Array, salt: Uint8Array, ct: Uint8Array): Uint8Array {
  return sha3_256(int8(macKey.length), macKey, int8(salt.length), salt, ct);
}

/** rend-spec-v3 §2.5.3: SALT | ENCRYPTED | MAC. */
export function encryptDescLayer(plaintext: Uint8Array, p: LayerParams, salt: Uint8Array): Uint8Array {
  if (salt.length !== SALT_LEN) throw new InvalidError('descriptor layer', 'salt must be 16 bytes');
  const { key, iv, macKey } = layerKeys(p, salt);
  const ct = aesCtr(key, iv, plaintext);
  const w = new ByteWriter(SALT_LEN + ct.length + MAC_LEN);
  return w
    .bytes(salt)
    .bytes(ct)
    .bytes(layerMac(macKey, salt, ct))
    .finish()
    .slice();
}

/** Checks the MAC (CryptoError: wrong subcredential, key or revision, or tampering), then decrypts. */
export function decryptDescLayer(blob: Uint8Array, p: LayerParams): Uint8Array {
  if (blob.length < SALT_LEN + MAC_LEN + 1) throw new InvalidError('descriptor layer', 'too short');
  const salt = blob.subarray(0, SALT_LEN);
  const ct = blob.subarray(SALT_LEN, blob.length - MAC_LEN);
  const { key, iv, macKey } = layerKeys(p, salt);
  if (!ctEqual(layerMac(macKey, salt, ct), blob.subarray(blob.length - MAC_LEN))) {
    throw new CryptoError('descriptor layer', 'MAC mismatch');
  }
  return aesCtr(key, iv, ct);
}

/** The decrypted text up to the first NUL (the middle layer is NUL-padded). */
export function layerText(pt: Uint8Array, what: string): string {
  const nul = pt.indexOf(0);
  const body = nul < 0 ? pt : pt.subarray(0, nul);
  let s = '';
  for (const b of body) {
    if (b > 0x7e) throw new InvalidError(what, 'non-ASCII byte');
    s += String.fromCharCode(b);
  }
  return s;
}

/* ------------------------------------------------------ client authorization */

/** One `auth-client` line's fields. */
export interface AuthClientLine {
  clientId: Uint8Array;
  iv: Uint8Array;
  encryptedCookie: Uint8Array;
}

/** The descriptor could not be decrypted for want of (missing) or with the wrong client-authorization key. */
export class ClientAuthError extends CryptoError {
  constructor(readonly kind: 'missing' | 'wrong') {
    super(
      'hs descriptor',
      kind === 'missing'
        ? 'the service requires client authorization'
        : 'the client-authorization key does not decrypt it',
      { kind },
    );
  }
}

/**
 * §2.5.1.2: SECRET_SEED = x25519(ours, theirs); KEYS = SHAKE256(subcred |
 * SECRET_SEED, 40); CLIENT-ID = KEYS[0:8], COOKIE-KEY = KEYS[8:40]. The
 * service uses its ephemeral secret and a client's public key; the client
 * its secret and `desc-auth-ephemeral-key`.
 */
export function descriptorCookieKeys(
  ourSecret: Uint8Array,
  theirPublic: Uint8Array,
  subcredential: Uint8Array,
): { clientId: Uint8Array; cookieKey: Uint8Array } {
  const keys = shake256(CLIENT_ID_LEN + 32, subcredential, x25519(ourSecret, theirPublic));
  return { clientId: keys.slice(0, CLIENT_ID_LEN), cookieKey: keys.slice(CLIENT_ID_LEN) };
}

/** Real lines for `clients` (when there is a cookie) plus fakes up to a multiple of 16, shuffled. */
export function authClientLines(
  clients: readonly Uint8Array[],
  cookie: Uint8Array | null,
  ephemeralSecret: Uint8Array,
  subcredential: Uint8Array,
  rng: Rng,
): AuthClientLine[] {
  const lines: AuthClientLine[] = [];
  if (cookie) {
    for (const client of clients) {
      checkClientAuthPublicKey(client, 'hs descriptor authorized client');
      const { clientId, cookieKey } = descriptorCookieKeys(ephemeralSecret, client, subcredential);
      const iv = rng(16);
      lines.push({ clientId, iv, encryptedCookie: aesCtr(cookieKey, iv, cookie) });
    }
  }
  const total = Math.max(1, Math.ceil(lines.length / AUTH_CLIENT_MULTIPLE)) * AUTH_CLIENT_MULTIPLE;
  while (lines.length < total) {
    lines.push({ clientId: rng(CLIENT_ID_LEN), iv: rng(16), encryptedCookie: rng(DESC_COOKIE_LEN) });
  }
  // Shuffled, so a real client's line says nothing by its position.
  return shuffled(lines, rng);
}

/** The descriptor cookie from the `auth-client` line for `clientSecret`, if there is one. */
export function findDescriptorCookie(
  middle: { ephemeralKey: Uint8Array; clients: readonly AuthClientLine[] },
  clientSecret: Uint8Array,
  subcredential: Uint8Array,
): Uint8Array | null {
  let keys: { clientId: Uint8Array; cookieKey: Uint8Array };
  try {
    keys = descriptorCookieKeys(clientSecret, middle.ephemeralKey, subcredential);
  } catch (e) {
    // A degenerate desc-auth-ephemeral-key: no cookie for anyone (the service may not use auth at all).
    if (e instanceof CryptoError) return null;
    throw e;
  }
  const { clientId, cookieKey } = keys;
  // Look at every line with a constant-time compare, so timing does not say which matched.
  let found: AuthClientLine | null = null;
  for (const line of middle.clients) if (ctEqual(line.clientId, clientId)) found = line;
  return found ? aesCtr(cookieKey, found.iv, found.encryptedCookie) : null;
}
