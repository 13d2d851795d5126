/**
 * The circuit-extension handshakes CREATE2 and EXTEND2 carry (tor-spec
 * §5.1.2), behind one client and one relay interface so circuits and relays
 * need not know which one is in use: ntor (HTYPE 2) and ntor-v3 (HTYPE 3,
 * tor-spec §5.1.4.3, proposal 332).
 *
 * ntor-v3's encrypted messages carry an extension list. Shallot negotiates
 * no extension (no congestion control, prop 324), so a client sends an empty
 * list and a relay answers with an empty one, ignoring types it does not
 * know, as Tor does; a message that is not a well-formed list is refused.
 */

import { legacyIdFromEd25519, type Rng, type X25519KeyPair } from './crypto.js';
import { InvalidError } from './errors.js';
import { type CircuitKeys, ntorClientFinish, ntorClientStart, ntorServerHandshake } from './ntor.js';
import {
  decodeNtorV3Extensions,
  encodeNtorV3Extensions,
  ntorV3ClientFinish,
  ntorV3ClientStart,
  ntorV3ServerHandshake,
} from './ntor-v3.js';

export const HANDSHAKES = ['ntor', 'ntor-v3'] as const;
export type HandshakeName = (typeof HANDSHAKES)[number];

/** CREATE2 HTYPE values (tor-spec §5.1.2). */
export const HandshakeType: Readonly<Record<HandshakeName, number>> = { ntor: 2, 'ntor-v3': 3 };

/** The handshake's name for an HTYPE, or `other` (a metrics label: peers choose HTYPEs, so no series per value). */
export function handshakeName(htype: number): string {
  return HANDSHAKES.find((h) => HandshakeType[h] === htype) ?? 'other';
}

/** What a client needs to know about the relay it is handshaking with. */
export interface HandshakeTarget {
  /** 32-byte Ed25519 identity (ntor uses the 20-byte legacy id derived from it). */
  identity: Uint8Array;
  ntorKey: Uint8Array;
  /** A C tor relay's legacy id (SHA-1 of its RSA identity key), which ntor then uses instead. */
  legacyId?: Uint8Array;
}

export interface ClientHandshake {
  htype: number;
  hdata: Uint8Array;
  /** Checks the relay's CREATED2/EXTENDED2 reply and derives the hop's keys; throws a typed error if it fails. */
  finish(reply: Uint8Array): CircuitKeys;
}

const NO_EXTENSIONS = encodeNtorV3Extensions([]);

export function startClientHandshake(
  kind: HandshakeName,
  rng: Rng,
  target: HandshakeTarget,
): ClientHandshake {
  if (kind === 'ntor') {
    const { state, hdata } = ntorClientStart(rng, {
      id: target.legacyId ?? legacyIdFromEd25519(target.identity),
      ntorKey: target.ntorKey,
    });
    return { htype: HandshakeType.ntor, hdata, finish: (reply) => ntorClientFinish(state, reply) };
  }
  const { state, hdata } = ntorV3ClientStart(
    rng,
    { id: target.identity, ntorKey: target.ntorKey },
    NO_EXTENSIONS,
  );
  return {
    htype: HandshakeType['ntor-v3'],
    hdata,
    finish(reply) {
      const { keys, serverMessage } = ntorV3ClientFinish(state, reply);
      // Nothing was requested, so the relay may send nothing back; it must still be a list.
      decodeNtorV3Extensions(serverMessage);
      return keys;
    },
  };
}

/** A relay's keys as its handshakes need them. */
export interface HandshakeServerKeys {
  /** 32-byte Ed25519 identity. */
  identity: Uint8Array;
  /** Current and (during rotation) previous onion keys. */
  onionKeys: readonly X25519KeyPair[];
}

/**
 * The relay side of CREATE2: the reply to send in CREATED2 and the hop's
 * keys. Throws a typed error for an HTYPE it does not speak or a handshake
 * that fails; the caller answers with DESTROY.
 */
export function serverHandshake(
  htype: number,
  rng: Rng,
  keys: HandshakeServerKeys,
  hdata: Uint8Array,
): { reply: Uint8Array; keys: CircuitKeys } {
  switch (htype) {
    case HandshakeType.ntor:
      return ntorServerHandshake(
        rng,
        { id: legacyIdFromEd25519(keys.identity), onionKeys: keys.onionKeys },
        hdata,
      );
    case HandshakeType['ntor-v3']: {
      const r = ntorV3ServerHandshake(
        rng,
        { id: keys.identity, onionKeys: keys.onionKeys },
        hdata,
        (message) => {
          decodeNtorV3Extensions(message);
          return NO_EXTENSIONS;
        },
      );
      return { reply: r.reply, keys: r.keys };
    }
    default:
      throw new InvalidError('CREATE2', `unsupported handshake type ${htype}`, { htype });
  }
}
