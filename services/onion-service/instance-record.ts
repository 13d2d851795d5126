/**
 * Sealed instance records: what one instance of an onion service sends its
 * peers over the network (instance-peers.ts) so they can list its intro
 * points in the descriptor (rend-spec-v3 §2.5.2, the "introduction-point"
 * entries; Onionbalance's scheme, see instances.ts).
 *
 * Overview: the record (instances.ts's JSON: instance name, time, public
 * intro-point data; never a private key) is encrypted with AES-256-CTR and
 * signed with Ed25519, both keys derived from the service's identity seed,
 * which every instance holds (HKDF-SHA256, salt "shallot-onion-instance-
 * record-v1", info "sign" / "encrypt"). So only holders of the identity can
 * write a record peers accept, and only they can read the intro points
 * (which the descriptor's inner layer keeps from anyone without the address
 * or, with client authorization, without a client key).
 *
 *   u8  version (1)
 *   u64 signed-at, ms since the epoch (the record's updatedMs)
 *   16  iv
 *   u16 length, then that many bytes of ciphertext
 *   64  Ed25519 signature over "shallot-onion-instance-record-v1\0" | all the above
 *
 * Not in this module: fetching and serving records (instance-peers.ts), the
 * merge into the descriptor (intro-points.ts).
 *
 * Design notes: a derived key rather than the identity key itself, so this
 * signature can never be confused with one of Tor's (the identity key signs
 * blinded-key certificates, rend-spec-v3 §2.4); the prefix separates it from
 * any other use of the derived key. The signature is checked before anything
 * is decrypted or parsed. No secret is compared: Ed25519 verification needs
 * no constant-time equality. A record is refused when older than `staleMs`
 * (its instance is gone) or dated more than `maxFutureMs` ahead (a clock far
 * off, or a record made to outlive its instance).
 *
 * Limitations: replaying a captured record within its freshness window is
 * possible and harmless (it is genuine and current). Instances must agree on
 * the time within `staleMs`.
 */
import { ByteReader, ByteWriter, concat, fromUtf8, utf8 } from '../core/bytes.js';
import {
  aesCtr,
  ed25519PublicFromSeed,
  ed25519Sign,
  ed25519Verify,
  kdfRfc5869,
  type Rng,
} from '../core/crypto.js';
import { ShallotError } from '../core/errors.js';
import { decodeInstanceRecord, encodeInstanceRecord, type InstanceRecord } from './instances.js';

const VERSION = 1;
const SIG_PREFIX = utf8('shallot-onion-instance-record-v1\0');
const KDF_SALT = utf8('shallot-onion-instance-record-v1');
/** The whole sealed record; 20 intro points take about 7 KiB. */
export const MAX_SEALED_RECORD = 64 * 1024;
/** A clock this far ahead of ours is tolerated (pods share NTP time; this is the slack). */
export const DEFAULT_MAX_FUTURE_MS = 30_000;

export type InstanceRecordRefusal = 'oversized' | 'malformed' | 'bad_signature' | 'stale' | 'future';

/** A peer's record was refused; `reason` is the metric label. */
export class InstanceRecordError extends ShallotError {
  constructor(
    readonly reason: InstanceRecordRefusal,
    detail: string,
  ) {
    super('ERR_INSTANCE_RECORD', `instance record refused (${reason}): ${detail}`, { reason });
  }
}

export interface InstanceRecordKeys {
  signSeed: Uint8Array;
  verifyKey: Uint8Array;
  encKey: Uint8Array;
}

export function instanceRecordKeys(identitySeed: Uint8Array): InstanceRecordKeys {
  const signSeed = kdfRfc5869(identitySeed, KDF_SALT, utf8('sign'), 32);
  return {
    signSeed,
    verifyKey: ed25519PublicFromSeed(signSeed),
    encKey: kdfRfc5869(identitySeed, KDF_SALT, utf8('encrypt'), 32),
  };
}

export function sealInstanceRecord(keys: InstanceRecordKeys, r: InstanceRecord, rng: Rng): Uint8Array {
  const iv = rng(16);
  const ct = aesCtr(keys.encKey, iv, utf8(encodeInstanceRecord(r)));
  if (ct.length > 0xffff) throw new InstanceRecordError('oversized', `record of ${ct.length} bytes`);
  const body = new ByteWriter(ct.length + 96)
    .u8(VERSION)
    .u64(BigInt(r.updatedMs))
    .bytes(iv)
    .u16(ct.length)
    .bytes(ct)
    .finish();
  return concat(body, ed25519Sign(keys.signSeed, concat(SIG_PREFIX, body)));
}

export interface OpenLimits {
  nowMs: number;
  staleMs: number;
  maxFutureMs?: number;
}

/** Checks size, signature and freshness, then decrypts and parses; throws InstanceRecordError. */
export function openInstanceRecord(
  keys: InstanceRecordKeys,
  sealed: Uint8Array,
  limits: OpenLimits,
): InstanceRecord {
  if (sealed.length > MAX_SEALED_RECORD)
    throw new InstanceRecordError('oversized', `${sealed.length} bytes > ${MAX_SEALED_RECORD}`);
  let signedAt: number;
  let iv: Uint8Array;
  let ct: Uint8Array;
  let body: Uint8Array;
  let sig: Uint8Array;
  try {
    const rd = new ByteReader(sealed, 'instance record');
    const version = rd.u8();
    if (version !== VERSION) throw new InstanceRecordError('malformed', `version ${version}`);
    signedAt = Number(rd.u64());
    iv = rd.take(16);
    ct = rd.take(rd.u16());
    body = sealed.subarray(0, rd.offset);
    sig = rd.take(64);
    rd.assertExhausted();
  } catch (e) {
    if (e instanceof InstanceRecordError) throw e;
    throw new InstanceRecordError('malformed', (e as Error).message);
  }
  if (!ed25519Verify(keys.verifyKey, concat(SIG_PREFIX, body), sig))
    throw new InstanceRecordError('bad_signature', 'not signed with this service identity');
  if (limits.nowMs - signedAt > limits.staleMs)
    throw new InstanceRecordError('stale', `signed ${limits.nowMs - signedAt} ms ago`);
  if (signedAt - limits.nowMs > (limits.maxFutureMs ?? DEFAULT_MAX_FUTURE_MS))
    throw new InstanceRecordError('future', `dated ${signedAt - limits.nowMs} ms ahead`);
  let r: InstanceRecord;
  try {
    r = decodeInstanceRecord(fromUtf8(aesCtr(keys.encKey, iv, ct), 'instance record'));
  } catch (e) {
    throw new InstanceRecordError('malformed', (e as Error).message);
  }
  // The clear timestamp is what was checked: it must be the record's own.
  if (r.updatedMs !== signedAt)
    throw new InstanceRecordError('malformed', 'signed-at differs from the record');
  return r;
}
