/**
 * Layered relay-cell crypto: per hop and direction, one continuous AES-CTR
 * keystream and one running digest.
 *
 * Follows tor-spec §6.1 (digest and 'recognized'), §5.2.2 (key use) and
 * rend-spec-v3 §4.2 (the onion-service hop: SHA3-256 digests and
 * AES-256-CTR). Bodies are transformed in place.
 *
 * Design notes: a cell is recognized when Recognized is zero and the first
 * four bytes of the running digest, updated with the Digest field zeroed,
 * match. Only then is the update kept; otherwise the state is restored and
 * the cell moves on (C tor relay_digest_matches restores its backup digest
 * on a mismatch).
 */

import { CELL_BODY_LEN } from './cells.js';
import { CtrStream, RunningDigest } from './crypto.js';
import { InvalidError } from './errors.js';
import type { CircuitKeys } from './ntor.js';

const DIGEST_OFFSET = 5;
/** SENDME v1 carries the first 20 bytes of the running digest (tor-spec §7.4). */
export const SENDME_DIGEST_LEN = 20;

/** Reads the Digest field as a big-endian uint32 and zeroes it (the digest covers the cell with it zeroed). */
function takeDigestField(body: Uint8Array): number {
  const v =
    ((body[DIGEST_OFFSET]! << 24) |
      (body[DIGEST_OFFSET + 1]! << 16) |
      (body[DIGEST_OFFSET + 2]! << 8) |
      body[DIGEST_OFFSET + 3]!) >>>
    0;
  body.fill(0, DIGEST_OFFSET, DIGEST_OFFSET + 4);
  return v;
}

function putDigestField(body: Uint8Array, v: number): void {
  body[DIGEST_OFFSET] = v >>> 24;
  body[DIGEST_OFFSET + 1] = v >>> 16;
  body[DIGEST_OFFSET + 2] = v >>> 8;
  body[DIGEST_OFFSET + 3] = v;
}

/** One direction of one hop. */
class Layer {
  constructor(
    readonly cipher: CtrStream,
    readonly digest: RunningDigest,
  ) {}

  /** Fills in Digest for a cell this end originates. */
  seal(body: Uint8Array): void {
    body[1] = 0;
    body[2] = 0;
    body.fill(0, DIGEST_OFFSET, DIGEST_OFFSET + 4);
    const p = this.digest.update(body).prefix32();
    body[DIGEST_OFFSET] = p >>> 24;
    body[DIGEST_OFFSET + 1] = p >>> 16;
    body[DIGEST_OFFSET + 2] = p >>> 8;
    body[DIGEST_OFFSET + 3] = p;
  }

  /**
   * After decryption: is this cell for us? Commits the digest state only if
   * so. Recognized is checked before any digest work, as C tor's
   * relay_digest_matches is reached only for a zero Recognized: at a middle
   * hop nearly every cell stops there. The digest runs over the body with
   * its Digest field zeroed, then the field is put back.
   */
  recognize(body: Uint8Array): boolean {
    if (body[1] !== 0 || body[2] !== 0) return false;
    const claimed = takeDigestField(body);
    const ok = this.digest.updateIfPrefix(body, claimed);
    putDigestField(body, claimed);
    return ok;
  }

  /**
   * `recognize` for the last layer a client peels: a cell that fails here is
   * recognized by no layer and closes the circuit (C tor: "Incoming cell at
   * client not recognized. Closing."), so the state is updated in place, with
   * nothing to restore (issue 16). After false the digest state is spent
   * unless Recognized was nonzero.
   */
  recognizeLast(body: Uint8Array): boolean {
    if (body[1] !== 0 || body[2] !== 0) return false;
    const claimed = takeDigestField(body);
    const ok = this.digest.update(body).prefix32() === claimed;
    putDigestField(body, claimed);
    return ok;
  }

  sendmeDigest(): Uint8Array {
    return this.digest.peek().subarray(0, SENDME_DIGEST_LEN);
  }
}

/** Keys of one hop as the client (origin) sees them. */
export interface HopCrypto {
  forward: Layer;
  backward: Layer;
}

function checkBody(body: Uint8Array): void {
  if (body.length !== CELL_BODY_LEN) throw new InvalidError('relay cell', 'body must be 509 bytes');
}

/** A normal hop from ntor keys (SHA-1, AES-128-CTR), client side. */
export function tor1Hop(keys: CircuitKeys): HopCrypto {
  return {
    forward: new Layer(new CtrStream(keys.kf), RunningDigest.create('sha1', keys.df)),
    backward: new Layer(new CtrStream(keys.kb), RunningDigest.create('sha1', keys.db)),
  };
}

export interface HsHopKeys {
  df: Uint8Array;
  db: Uint8Array;
  kf: Uint8Array;
  kb: Uint8Array;
}

/**
 * The onion-service virtual hop (rend-spec-v3 §4.2.1): the client sends with
 * Kf/Df, the service with Kb/Db, so each side's "forward" is the other's
 * "backward".
 */
export function hsVirtualHop(keys: HsHopKeys, side: 'client' | 'service'): HopCrypto {
  const fwd = new Layer(new CtrStream(keys.kf), RunningDigest.create('sha3-256', keys.df));
  const bwd = new Layer(new CtrStream(keys.kb), RunningDigest.create('sha3-256', keys.db));
  return side === 'client' ? { forward: fwd, backward: bwd } : { forward: bwd, backward: fwd };
}

/** The origin's stack of hops: hop 0 is the first relay. */
export class ClientCircuitCrypto {
  private readonly hops: HopCrypto[] = [];

  get length(): number {
    return this.hops.length;
  }

  addHop(hop: HopCrypto): void {
    this.hops.push(hop);
  }

  /** Seals `body` for hop `target` and onion-encrypts it through every hop up to it. */
  encryptForward(body: Uint8Array, target: number): void {
    checkBody(body);
    const hop = this.hops[target];
    if (!hop) throw new InvalidError('relay cell', 'no such hop', { target });
    hop.forward.seal(body);
    for (let i = target; i >= 0; i--) this.hops[i]?.forward.cipher.updateInPlace(body);
  }

  /**
   * Peels layers until one recognizes the cell; returns its hop, or null if
   * none does. The caller must then close the circuit (tor-spec §6.1): the
   * last hop's digest is checked in place (Layer.recognizeLast).
   */
  decryptBackward(body: Uint8Array): { hop: number } | null {
    checkBody(body);
    const last = this.hops.length - 1;
    for (let i = 0; i <= last; i++) {
      const layer = this.hops[i]?.backward;
      if (!layer) break;
      layer.cipher.updateInPlace(body);
      if (i === last ? layer.recognizeLast(body) : layer.recognize(body)) return { hop: i };
    }
    return null;
  }

  forwardDigest(hop: number): Uint8Array {
    return this.layerOf(hop).forward.sendmeDigest();
  }

  backwardDigest(hop: number): Uint8Array {
    return this.layerOf(hop).backward.sendmeDigest();
  }

  private layerOf(hop: number): HopCrypto {
    const h = this.hops[hop];
    if (!h) throw new InvalidError('relay cell', 'no such hop', { hop });
    return h;
  }
}

/** One relay's layer of a circuit. */
export class RelayHopCrypto {
  private readonly forward: Layer;
  private readonly backward: Layer;

  constructor(hop: HopCrypto) {
    this.forward = hop.forward;
    this.backward = hop.backward;
  }

  /** Removes our forward layer; true if the cell is for us. */
  decryptForward(body: Uint8Array): boolean {
    checkBody(body);
    this.forward.cipher.updateInPlace(body);
    return this.forward.recognize(body);
  }

  /** Adds our backward layer; `originate` seals a cell we wrote ourselves. */
  encryptBackward(body: Uint8Array, originate: boolean): void {
    checkBody(body);
    if (originate) this.backward.seal(body);
    this.backward.cipher.updateInPlace(body);
  }

  forwardDigest(): Uint8Array {
    return this.forward.sendmeDigest();
  }

  backwardDigest(): Uint8Array {
    return this.backward.sendmeDigest();
  }
}

/** A relay's layer from ntor keys. */
export function tor1RelayHop(keys: CircuitKeys): RelayHopCrypto {
  return new RelayHopCrypto(tor1Hop(keys));
}
