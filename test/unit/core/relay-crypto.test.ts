// tor-spec §6.1 layered relay crypto: the C tor/arti three-hop vector, the
// recognized-on-a-clone rule, and both directions through three relays.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { toHex, utf8 } from '../../../services/core/bytes.js';
import { randomBytes, shake256 } from '../../../services/core/crypto.js';
import type { CircuitKeys } from '../../../services/core/ntor.js';
import { encodeRelayCellBody } from '../../../services/core/relay-cell.js';
import {
  ClientCircuitCrypto,
  hsVirtualHop,
  tor1Hop,
  tor1RelayHop,
} from '../../../services/core/relay-crypto.js';

const vec = JSON.parse(
  readFileSync(new URL('../../vectors/tor1-cell-crypt.json', import.meta.url), 'utf8'),
) as {
  keys: string[];
  seed: string;
  cells: [number, string][];
};

function keysFrom(material: Uint8Array): CircuitKeys {
  return {
    df: material.subarray(0, 20),
    db: material.subarray(20, 40),
    kf: material.subarray(40, 56),
    kb: material.subarray(56, 72),
    kh: material.subarray(72, 92),
  };
}
const seeds = vec.keys.map((k) => keysFrom(utf8(k)));

describe('tor1 relay crypto', () => {
  it('matches the C tor / arti three-hop vector (cells 0..50 to hop 2)', () => {
    const cc = new ClientCircuitCrypto();
    for (const k of seeds) cc.addHop(tor1Hop(k));
    // All DATA bodies come from one SHAKE256 stream, 498 bytes per cell.
    const stream = shake256(51 * 498, utf8(vec.seed));
    const expected = new Map(vec.cells);
    let checked = 0;
    for (let n = 0; n <= 50; n++) {
      const body = new Uint8Array(509);
      body[0] = 2;
      body[4] = 1;
      body[9] = 0x01;
      body[10] = 0xf2;
      body.set(stream.subarray(n * 498, (n + 1) * 498), 11);
      cc.encryptForward(body, 2);
      const want = expected.get(n);
      if (want !== undefined) {
        expect(toHex(body), `cell ${n}`).toBe(want);
        checked++;
      }
    }
    expect(checked).toBe(8);
  });

  it('relays peel forward layers and only the target recognizes; replies come back to the origin', () => {
    const cc = new ClientCircuitCrypto();
    const relays = seeds.map((k) => {
      cc.addHop(tor1Hop(k));
      return tor1RelayHop(k);
    });
    for (const target of [0, 2, 1, 2, 0, 1]) {
      const plain = encodeRelayCellBody({ command: 2, streamId: 7, data: randomBytes(100) }, randomBytes);
      const body = plain.slice();
      cc.encryptForward(body, target);
      for (let i = 0; i <= target; i++) {
        expect(relays[i]?.decryptForward(body)).toBe(i === target);
      }
      // The digest was filled in, so compare everything but it.
      expect(toHex(body.subarray(11))).toBe(toHex(plain.subarray(11)));
      expect(relays[target]?.forwardDigest()).toEqual(cc.forwardDigest(target));

      const reply = encodeRelayCellBody({ command: 2, streamId: 7, data: utf8('pong') }, randomBytes);
      relays[target]?.encryptBackward(reply, true);
      for (let i = target - 1; i >= 0; i--) relays[i]?.encryptBackward(reply, false);
      expect(cc.decryptBackward(reply)).toEqual({ hop: target });
      expect(reply.subarray(11, 15)).toEqual(utf8('pong'));
      expect(cc.backwardDigest(target)).toEqual(relays[target]?.backwardDigest());
    }
  });

  it('a forged digest is not recognized and leaves the running digest untouched', () => {
    const sender = new ClientCircuitCrypto();
    sender.addHop(tor1Hop(seeds[0] as CircuitKeys));
    const relay = tor1RelayHop(seeds[0] as CircuitKeys);
    const good = encodeRelayCellBody({ command: 2, streamId: 1, data: utf8('x') }, randomBytes);
    sender.encryptForward(good, 0);
    const bad = good.slice();
    // Flip a plaintext bit of Digest under the keystream: decrypts to a wrong digest.
    bad[5] = (bad[5] ?? 0) ^ 1;
    const before = relay.forwardDigest();
    const probe = tor1RelayHop(seeds[0] as CircuitKeys);
    expect(probe.decryptForward(bad)).toBe(false);
    expect(relay.forwardDigest()).toEqual(before);
    expect(relay.decryptForward(good)).toBe(true);
  });

  it('a reply from the last hop with a forged digest is recognized by no layer (the circuit then closes)', () => {
    const cc = new ClientCircuitCrypto();
    const relays = seeds.map((k) => {
      cc.addHop(tor1Hop(k));
      return tor1RelayHop(k);
    });
    const last = seeds.length - 1;
    const reply = encodeRelayCellBody({ command: 2, streamId: 7, data: utf8('pong') }, randomBytes);
    relays[last]?.encryptBackward(reply, true);
    for (let i = last - 1; i >= 0; i--) relays[i]?.encryptBackward(reply, false);
    const forged = reply.slice();
    // Flip a bit of Digest under the last hop's keystream (the layers before it only XOR).
    forged[6] = (forged[6] ?? 0) ^ 0x10;
    expect(cc.decryptBackward(forged)).toBeNull();
    // Recognized itself is intact, so the miss was the digest's.
    expect([forged[1], forged[2]]).toEqual([0, 0]);
  });

  it('an unrecognized backward cell returns null', () => {
    const cc = new ClientCircuitCrypto();
    for (const k of seeds) cc.addHop(tor1Hop(k));
    expect(cc.decryptBackward(new Uint8Array(509))).toBeNull();
  });

  it('the onion-service virtual hop works both ways with SHA3-256 and AES-256', () => {
    const k = { df: randomBytes(32), db: randomBytes(32), kf: randomBytes(32), kb: randomBytes(32) };
    const client = new ClientCircuitCrypto();
    client.addHop(hsVirtualHop(k, 'client'));
    const service = new ClientCircuitCrypto();
    service.addHop(hsVirtualHop(k, 'service'));
    for (let i = 0; i < 3; i++) {
      const a = encodeRelayCellBody({ command: 2, streamId: 3, data: utf8(`c${i}`) }, randomBytes);
      client.encryptForward(a, 0);
      expect(service.decryptBackward(a)).toEqual({ hop: 0 });
      const b = encodeRelayCellBody({ command: 2, streamId: 3, data: utf8(`s${i}`) }, randomBytes);
      service.encryptForward(b, 0);
      expect(client.decryptBackward(b)).toEqual({ hop: 0 });
      expect(client.forwardDigest(0)).toHaveLength(20);
    }
  });

  it('rejects bodies that are not 509 bytes and hops that do not exist', () => {
    const cc = new ClientCircuitCrypto();
    cc.addHop(tor1Hop(seeds[0] as CircuitKeys));
    expect(() => cc.encryptForward(new Uint8Array(10), 0)).toThrow(/509/);
    expect(() => cc.encryptForward(new Uint8Array(509), 3)).toThrow(/no such hop/);
  });
});
