/**
 * Onion-service descriptors, v3 (rend-spec-v3 §2.4-2.5), in Tor's text
 * meta-format (dir-spec §1.2).
 *
 * Overview: three nested documents (tokenized by ctor/meta-format.ts).
 * - Outer (what HSDirs see): `hs-descriptor 3`, `descriptor-lifetime`,
 *   `descriptor-signing-key-cert` (cert 08 signed by the blinded key A'),
 *   `revision-counter`, `superencrypted`, `signature`.
 * - Middle (decrypted with A' and the subcredential): `desc-auth-type
 *   x25519`, `desc-auth-ephemeral-key`, `auth-client` lines, `encrypted`.
 * - Inner (decrypted with A', plus the descriptor cookie under client
 *   auth): `create2-formats 2`, optional flags, and introduction points.
 *
 * Layer crypto (§2.5.3) and the `auth-client` lines: hs-desc-crypto.ts.
 *
 * Client authorization (§2.5.1.2): a service with authorized clients puts
 * a random descriptor cookie in the inner SECRET and one `auth-client`
 * line per client (CLIENT-ID, IV, the cookie encrypted under COOKIE-KEY,
 * both from SHAKE256(subcred | x25519(ephemeral, client))), padded with
 * fakes to a multiple of 16 and shuffled, as C tor writes. Without it the
 * inner SECRET is A' alone and all 16 lines are fakes. A client that cannot
 * decrypt the inner layer gets ClientAuthError: `missing` without a key,
 * `wrong` with one (as C tor tells NEED from BAD client auth).
 *
 * Not in this module: HSDir storage and replacement rules; the key
 * derivations themselves (hs-keys.ts).
 *
 * Limits: input is capped at 50000 bytes (the HSDir maximum) and at 20
 * introduction points (C tor's HS_CONFIG_V3_MAX_INTRO_POINTS).
 */

import { ByteReader, ByteWriter, concat, toBase64, utf8 } from './bytes.js';
import { x25519ToEd25519Public } from './crypto/ed25519-math.js';
import {
  ctEqual,
  type ExpandedKey,
  ed25519PublicFromSeed,
  ed25519Sign,
  ed25519Verify,
  type Rng,
  x25519PublicFromSecret,
} from './crypto.js';
import {
  arg,
  atMostOne,
  b64Arg,
  b64Strict,
  exactlyOne,
  type Item,
  noObject,
  objectOf,
  pemObject,
  tokenize,
} from './ctor/meta-format.js';
import {
  CertType,
  decodeEdCert,
  type EdCert,
  encodeEdCert,
  expiresHoursFrom,
  verifyEdCert,
} from './ed-cert.js';
import { CryptoError, InvalidError } from './errors.js';
import {
  type AuthClientLine,
  authClientLines,
  CLIENT_ID_LEN,
  ClientAuthError,
  DESC_COOKIE_LEN,
  decryptDescLayer,
  encryptDescLayer,
  findDescriptorCookie,
  type LayerParams,
  layerText,
  SALT_LEN,
} from './hs-desc-crypto.js';
import { hsSubcredential } from './hs-keys.js';
import { decodeLinkSpecifiers, encodeLinkSpecifiers, type LinkSpecifier } from './link-specifiers.js';

export const HS_DESC_MAX_LEN = 50000;
export const HS_DESC_MAX_INTRO_POINTS = 20;
/** C tor's HS_DESC_CERT_LIFETIME: certs outlive the descriptor so clock skew does not bite. */
export const HS_DESC_CERT_LIFETIME_HOURS = 54;
const SUPERENC_PAD_MULTIPLE = 10000;
const SIG_PREFIX = utf8('Tor onion service descriptor sig v3');
const CONST_SUPERENC = utf8('hsdir-superencrypted-data');
const CONST_ENC = utf8('hsdir-encrypted-data');
const MIN_LIFETIME = 30;
const MAX_LIFETIME = 720;

/** One introduction point as listed in the inner document. */
export interface IntroPointInfo {
  linkSpecifiers: LinkSpecifier[];
  /** The intro relay's ntor onion key (for extending to it). */
  onionKey: Uint8Array;
  /** KP_hs_ipt_sid, certified by cert 09. */
  authKey: Uint8Array;
  /** KP_hss_ntor (the hs-ntor B), certified by cert 0B. */
  encKey: Uint8Array;
}

/* ------------------------------------------------------ build */

export interface BuildHsDescriptorParams {
  /** The service's identity key A; used to derive the subcredential when it is not given. */
  identityPub?: Uint8Array;
  /** (a', RH') for this time period: signs the descriptor-signing-key cert. */
  blindedKey: ExpandedKey;
  blindedPub: Uint8Array;
  /** Seed of the short-term descriptor signing key. */
  descSigningSeed: Uint8Array;
  revisionCounter: bigint;
  lifetimeMinutes?: number;
  introPoints: IntroPointInfo[];
  subcredential?: Uint8Array;
  singleOnion?: boolean;
  nowMs: number;
  certLifetimeHours?: number;
  /** x25519 public keys of the clients allowed to decrypt the inner layer (none: anyone with the address). */
  authorizedClients?: readonly Uint8Array[];
}

/** Builds, encrypts and signs a descriptor; `rng` supplies salts and the fake client-auth data. */
export function buildHsDescriptor(p: BuildHsDescriptorParams, rng: Rng): string {
  const lifetime = p.lifetimeMinutes ?? 180;
  if (!Number.isInteger(lifetime) || lifetime < MIN_LIFETIME || lifetime > MAX_LIFETIME) {
    throw new InvalidError('hs descriptor', 'lifetime out of range');
  }
  if (p.introPoints.length > HS_DESC_MAX_INTRO_POINTS)
    throw new InvalidError('hs descriptor', 'too many intro points');
  if (p.blindedPub.length !== 32) throw new InvalidError('hs descriptor', 'blinded key must be 32 bytes');
  let subcredential = p.subcredential;
  if (!subcredential) {
    if (!p.identityPub) throw new InvalidError('hs descriptor', 'need a subcredential or the identity key');
    subcredential = hsSubcredential(p.identityPub, p.blindedPub);
  }
  const signingPub = ed25519PublicFromSeed(p.descSigningSeed);
  const expiresHours = expiresHoursFrom(p.nowMs, p.certLifetimeHours ?? HS_DESC_CERT_LIFETIME_HOURS);
  const signedBySigningKey = (certType: number, certifiedKey: Uint8Array) =>
    encodeEdCert({ certType, expiresHours, certifiedKey, signedWithKey: signingPub }, p.descSigningSeed);

  // Inner document (§2.5.2.2).
  let inner = 'create2-formats 2\n';
  if (p.singleOnion) inner += 'single-onion-service\n';
  for (const ip of p.introPoints) {
    if (ip.onionKey.length !== 32 || ip.encKey.length !== 32) {
      throw new InvalidError('intro point', 'onion and enc keys must be 32 bytes');
    }
    const ls = new ByteWriter(64);
    encodeLinkSpecifiers(ls, ip.linkSpecifiers);
    inner += `introduction-point ${toBase64(ls.finish())}\n`;
    inner += `onion-key ntor ${toBase64(ip.onionKey)}\n`;
    inner += `auth-key\n${pemObject('ED25519 CERT', signedBySigningKey(CertType.HS_IP_V_SIGNING, ip.authKey))}`;
    inner += `enc-key ntor ${toBase64(ip.encKey)}\n`;
    // §2.5.2.2: the cert certifies the Ed25519 form of the enc key, sign bit 0.
    const encAsEd = x25519ToEd25519Public(ip.encKey, 0);
    inner += `enc-key-cert\n${pemObject('ED25519 CERT', signedBySigningKey(CertType.HS_IP_CC_SIGNING, encAsEd))}`;
  }
  const layer = (secret: Uint8Array, constant: Uint8Array): LayerParams => ({
    secret,
    subcredential,
    revisionCounter: p.revisionCounter,
    constant,
  });
  const clients = p.authorizedClients ?? [];
  // An empty list must not quietly mean "open to anyone".
  if (p.authorizedClients && clients.length === 0)
    throw new InvalidError('hs descriptor', 'client authorization asked for with no authorized client');
  const cookie = clients.length > 0 ? rng(DESC_COOKIE_LEN) : null;
  const innerSecret = cookie ? concat(p.blindedPub, cookie) : p.blindedPub;
  const encrypted = encryptDescLayer(utf8(inner), layer(innerSecret, CONST_ENC), rng(SALT_LEN));

  // Middle document (§2.5.1.2).
  const ephemeral = rng(32);
  let middle = 'desc-auth-type x25519\n';
  middle += `desc-auth-ephemeral-key ${toBase64(x25519PublicFromSecret(ephemeral))}\n`;
  for (const line of authClientLines(clients, cookie, ephemeral, subcredential, rng)) {
    // C tor writes these three without '=' padding (arti with); parsers accept both.
    middle += `auth-client ${toBase64(line.clientId, false)} ${toBase64(line.iv, false)} ${toBase64(line.encryptedCookie, false)}\n`;
  }
  middle += `encrypted\n${pemObject('MESSAGE', encrypted)}`;
  const mid = utf8(middle);
  const padded = new Uint8Array(Math.ceil(mid.length / SUPERENC_PAD_MULTIPLE) * SUPERENC_PAD_MULTIPLE);
  padded.set(mid);
  const superencrypted = encryptDescLayer(padded, layer(p.blindedPub, CONST_SUPERENC), rng(SALT_LEN));

  // Outer document (§2.4).
  const cert = encodeEdCert(
    {
      certType: CertType.HS_BLINDED_ID_V_SIGNING,
      expiresHours,
      certifiedKey: signingPub,
      signedWithKey: p.blindedPub,
    },
    p.blindedKey,
  );
  let outer = 'hs-descriptor 3\n';
  outer += `descriptor-lifetime ${lifetime}\n`;
  outer += `descriptor-signing-key-cert\n${pemObject('ED25519 CERT', cert)}`;
  outer += `revision-counter ${p.revisionCounter.toString()}\n`;
  outer += `superencrypted\n${pemObject('MESSAGE', superencrypted)}`;
  const sig = ed25519Sign(p.descSigningSeed, new Uint8Array([...SIG_PREFIX, ...utf8(outer)]));
  const out = `${outer}signature ${toBase64(sig, false)}\n`;
  if (out.length > HS_DESC_MAX_LEN) throw new InvalidError('hs descriptor', 'longer than 50000 bytes');
  return out;
}

/* ------------------------------------------------------ parse */

export interface HsDescriptorOuter {
  blindedPub: Uint8Array;
  revisionCounter: bigint;
  /** descriptor-lifetime, minutes. */
  lifetime: number;
  signingKeyCert: EdCert;
  /** The descriptor signing key (the cert's certified key). */
  descSigningKey: Uint8Array;
  superencrypted: Uint8Array;
}

function asText(input: string | Uint8Array): string {
  if (input.length > HS_DESC_MAX_LEN) {
    throw new InvalidError('hs descriptor', 'longer than 50000 bytes', { length: input.length });
  }
  return typeof input === 'string' ? input : layerText(input, 'hs descriptor');
}

function parseRevisionCounter(s: string): bigint {
  if (!/^\d{1,20}$/.test(s)) throw new InvalidError('hs descriptor', 'bad revision-counter');
  const v = BigInt(s);
  if (v > 0xffffffffffffffffn) throw new InvalidError('hs descriptor', 'revision-counter exceeds u64');
  return v;
}

/**
 * Parses the outer document and checks what an HSDir can: the cert 08
 * (signed by the blinded key it names; unexpired at `nowMs` when given)
 * and the descriptor signature. CryptoError on a bad cert or signature.
 */
export function parseHsDescriptorOuter(
  input: string | Uint8Array,
  opts: { nowMs?: number } = {},
): HsDescriptorOuter {
  const what = 'hs descriptor';
  const text = asText(input);
  if (input instanceof Uint8Array && text.length !== input.length)
    throw new InvalidError(what, 'contains NUL');
  const items = tokenize(text, what);
  const first = items[0];
  const last = items[items.length - 1];
  if (first?.keyword !== 'hs-descriptor') throw new InvalidError(what, 'must start with hs-descriptor');
  if (arg(first, 0, what) !== '3') throw new InvalidError(what, 'unsupported version');
  if (last?.keyword !== 'signature') throw new InvalidError(what, 'must end with signature');
  exactlyOne(items, 'hs-descriptor', what);
  const sigItem = exactlyOne(items, 'signature', what);
  noObject(sigItem, what);

  const lifetimeItem = exactlyOne(items, 'descriptor-lifetime', what);
  const lifetimeStr = arg(lifetimeItem, 0, what);
  const lifetime = Number(lifetimeStr);
  if (!/^\d{1,4}$/.test(lifetimeStr) || lifetime < MIN_LIFETIME || lifetime > MAX_LIFETIME) {
    throw new InvalidError(what, 'descriptor-lifetime out of range');
  }
  const certBytes = objectOf(exactlyOne(items, 'descriptor-signing-key-cert', what), 'ED25519 CERT', what);
  const revisionCounter = parseRevisionCounter(arg(exactlyOne(items, 'revision-counter', what), 0, what));
  const superencrypted = objectOf(exactlyOne(items, 'superencrypted', what), 'MESSAGE', what);

  const cert = decodeEdCert(certBytes);
  if (cert.certType !== CertType.HS_BLINDED_ID_V_SIGNING)
    throw new InvalidError(what, 'signing-key cert has wrong type');
  if (!cert.signedWithKey) throw new InvalidError(what, 'signing-key cert does not name the blinded key');
  verifyEdCert(cert, { signingKey: cert.signedWithKey, now: opts.nowMs ?? Number.NEGATIVE_INFINITY });

  const sig = b64Arg(sigItem, 0, 64, what);
  const signed = new Uint8Array(SIG_PREFIX.length + sigItem.start);
  signed.set(SIG_PREFIX);
  for (let i = 0; i < sigItem.start; i++) signed[SIG_PREFIX.length + i] = text.charCodeAt(i);
  if (!ed25519Verify(cert.certifiedKey, signed, sig)) throw new CryptoError(what, 'bad descriptor signature');

  return {
    blindedPub: cert.signedWithKey,
    revisionCounter,
    lifetime,
    signingKeyCert: cert,
    descSigningKey: cert.certifiedKey,
    superencrypted,
  };
}

export interface HsDescriptorContents {
  revisionCounter: bigint;
  lifetime: number;
  descSigningKey: Uint8Array;
  introPoints: IntroPointInfo[];
  singleOnion: boolean;
  /** `intro-auth-required` types, if listed. */
  introAuthRequired: string[];
  /** The inner layer was opened with a descriptor cookie from an `auth-client` line. */
  clientAuthorized: boolean;
}

interface ParsedMiddle {
  /** `desc-auth-ephemeral-key`: the service's KP_hss_desc_enc. */
  ephemeralKey: Uint8Array;
  clients: AuthClientLine[];
  encrypted: Uint8Array;
}

function parseMiddle(text: string): ParsedMiddle {
  const what = 'hs descriptor middle layer';
  const items = tokenize(text, what, 'optional');
  const authType = exactlyOne(items, 'desc-auth-type', what);
  if (arg(authType, 0, what) !== 'x25519') throw new InvalidError(what, 'unsupported desc-auth-type');
  const ephemeralKey = b64Arg(exactlyOne(items, 'desc-auth-ephemeral-key', what), 0, 32, what);
  const lines = items.filter((i) => i.keyword === 'auth-client');
  if (lines.length === 0) throw new InvalidError(what, 'no auth-client lines');
  const clients = lines.map((c) => ({
    clientId: b64Arg(c, 0, CLIENT_ID_LEN, what),
    iv: b64Arg(c, 1, 16, what),
    encryptedCookie: b64Arg(c, 2, DESC_COOKIE_LEN, what),
  }));
  return {
    ephemeralKey,
    clients,
    encrypted: objectOf(exactlyOne(items, 'encrypted', what), 'MESSAGE', what),
  };
}

function parseIntroPoint(
  items: Item[],
  signing: { key: Uint8Array; nowMs: number },
  what: string,
): IntroPointInfo {
  const head = items[0]!;
  const lsBytes = b64Strict(arg(head, 0, what), `${what} introduction-point`);
  const r = new ByteReader(lsBytes, `${what} link specifiers`);
  const linkSpecifiers = decodeLinkSpecifiers(r);
  r.assertExhausted();

  const onion = items.filter((i) => i.keyword === 'onion-key' && i.args[0] === 'ntor');
  if (onion.length !== 1) throw new InvalidError(what, 'need exactly one ntor onion-key');
  const onionKey = b64Arg(onion[0]!, 1, 32, what);

  const checkCert = (item: Item, certType: number): EdCert => {
    const cert = decodeEdCert(objectOf(item, 'ED25519 CERT', what));
    if (cert.certType !== certType) throw new InvalidError(what, `${item.keyword} cert has wrong type`);
    // §2.5.2.2: both certs carry extension 04 naming the descriptor signing key.
    if (!cert.signedWithKey) throw new InvalidError(what, `${item.keyword} cert lacks its signing key`);
    verifyEdCert(cert, { signingKey: signing.key, now: signing.nowMs });
    return cert;
  };
  const authKey = checkCert(exactlyOne(items, 'auth-key', what), CertType.HS_IP_V_SIGNING).certifiedKey;

  const encItems = items.filter((i) => i.keyword === 'enc-key' && i.args[0] === 'ntor');
  if (encItems.length !== 1) throw new InvalidError(what, 'need exactly one ntor enc-key');
  const encKey = b64Arg(encItems[0]!, 1, 32, what);
  const encCert = checkCert(exactlyOne(items, 'enc-key-cert', what), CertType.HS_IP_CC_SIGNING);
  if (!ctEqual(encCert.certifiedKey, x25519ToEd25519Public(encKey, 0))) {
    throw new CryptoError(what, 'enc-key-cert certifies a different key');
  }
  return { linkSpecifiers, onionKey, authKey, encKey };
}

/**
 * Parses a decrypted inner document, checking the intro-point certs against
 * the descriptor signing key `signing.key` at `signing.nowMs`.
 */
export function parseHsDescriptorInner(
  text: string,
  signing: { key: Uint8Array; nowMs: number },
): Pick<HsDescriptorContents, 'introPoints' | 'singleOnion' | 'introAuthRequired'> {
  const what = 'hs descriptor inner layer';
  if (text.length > HS_DESC_MAX_LEN) throw new InvalidError(what, 'longer than 50000 bytes');
  const items = tokenize(text, what, 'optional');
  const firstIp = items.findIndex((i) => i.keyword === 'introduction-point');
  const header = firstIp < 0 ? items : items.slice(0, firstIp);
  const formats = exactlyOne(header, 'create2-formats', what);
  if (!formats.args.includes('2')) throw new InvalidError(what, 'create2-formats lacks ntor (2)');
  const single = atMostOne(header, 'single-onion-service', what);
  const auth = atMostOne(header, 'intro-auth-required', what);

  const introPoints: IntroPointInfo[] = [];
  if (firstIp >= 0) {
    let start = firstIp;
    while (start < items.length) {
      let end = start + 1;
      while (end < items.length && items[end]!.keyword !== 'introduction-point') end++;
      if (introPoints.length >= HS_DESC_MAX_INTRO_POINTS)
        throw new InvalidError(what, 'too many introduction points');
      introPoints.push(parseIntroPoint(items.slice(start, end), signing, what));
      start = end;
    }
  }
  return { introPoints, singleOnion: single !== undefined, introAuthRequired: auth?.args ?? [] };
}

/**
 * Client side: verifies the outer document (which must be for `blindedPub`),
 * decrypts both layers with the subcredential, and checks every intro-point
 * cert against the descriptor signing key at `nowMs`. CryptoError on a wrong
 * subcredential, a bad signature or cert, or a descriptor for another key;
 * ClientAuthError when the inner layer needs a client-authorization key
 * (`clientAuthSecret`, the client's x25519 secret) it was not given or
 * that does not open it.
 */
export function decryptHsDescriptor(
  input: string | Uint8Array,
  keys: { blindedPub: Uint8Array; subcredential: Uint8Array; nowMs: number; clientAuthSecret?: Uint8Array },
): HsDescriptorContents {
  const outer = parseHsDescriptorOuter(input, { nowMs: keys.nowMs });
  if (!ctEqual(outer.blindedPub, keys.blindedPub)) {
    throw new CryptoError('hs descriptor', 'signed by a different blinded key');
  }
  const layer = (secret: Uint8Array, constant: Uint8Array): LayerParams => ({
    secret,
    subcredential: keys.subcredential,
    revisionCounter: outer.revisionCounter,
    constant,
  });
  const middle = parseMiddle(
    layerText(
      decryptDescLayer(outer.superencrypted, layer(keys.blindedPub, CONST_SUPERENC)),
      'hs descriptor middle layer',
    ),
  );
  const cookie = keys.clientAuthSecret
    ? findDescriptorCookie(middle, keys.clientAuthSecret, keys.subcredential)
    : null;
  let innerBytes: Uint8Array;
  try {
    const secret = cookie ? concat(keys.blindedPub, cookie) : keys.blindedPub;
    innerBytes = decryptDescLayer(middle.encrypted, layer(secret, CONST_ENC));
  } catch (e) {
    // The outer signature covers this layer, so an HSDir cannot have changed
    // it: a MAC failure means the service encrypted it for authorized clients.
    if (e instanceof CryptoError) throw new ClientAuthError(keys.clientAuthSecret ? 'wrong' : 'missing');
    throw e;
  }
  const inner = layerText(innerBytes, 'hs descriptor inner layer');
  const parsed = parseHsDescriptorInner(inner, { key: outer.descSigningKey, nowMs: keys.nowMs });
  return {
    revisionCounter: outer.revisionCounter,
    lifetime: outer.lifetime,
    descSigningKey: outer.descSigningKey,
    clientAuthorized: cookie !== null,
    ...parsed,
  };
}
