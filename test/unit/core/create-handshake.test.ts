// CREATE2 handshake dispatch (tor-spec §5.1.2): ntor and ntor-v3 through one
// client/relay interface, the ntor-v3 extension lists Shallot sends and
// accepts, and hostile HTYPEs and HDATA answered with typed errors.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  HANDSHAKES,
  HandshakeType,
  handshakeName,
  serverHandshake,
  startClientHandshake,
} from '../../../services/core/create-handshake.js';
import { ed25519Generate, randomBytes, x25519Generate } from '../../../services/core/crypto.js';
import { CryptoError, InvalidError, TruncatedError } from '../../../services/core/errors.js';
import {
  decodeNtorV3Extensions,
  encodeNtorV3Extensions,
  NtorV3ExtType,
  ntorV3ClientFinish,
  ntorV3ClientStart,
  ntorV3ServerHandshake,
} from '../../../services/core/ntor-v3.js';
import { expectOnlyTypedErrors } from '../../helpers/typed-errors.js';

const relay = () => {
  const identity = ed25519Generate(randomBytes).public;
  const onion = x25519Generate(randomBytes);
  return {
    server: { identity, onionKeys: [onion] },
    target: { identity, ntorKey: onion.public },
  };
};

describe('CREATE2 handshakes', () => {
  for (const kind of HANDSHAKES) {
    it(`${kind}: client and relay derive the same hop keys`, () => {
      const { server, target } = relay();
      const client = startClientHandshake(kind, randomBytes, target);
      expect(client.htype).toBe(HandshakeType[kind]);
      const r = serverHandshake(client.htype, randomBytes, server, client.hdata);
      expect(client.finish(r.reply)).toEqual(r.keys);
    });

    it(`${kind}: a reply meant for another handshake does not verify`, () => {
      const { server, target } = relay();
      const a = startClientHandshake(kind, randomBytes, target);
      const b = startClientHandshake(kind, randomBytes, target);
      const reply = serverHandshake(b.htype, randomBytes, server, b.hdata).reply;
      expect(() => a.finish(reply)).toThrow(CryptoError);
    });

    it(`${kind}: the relay names the onion key the client used, during a rotation too`, () => {
      const { server, target } = relay();
      const previous = x25519Generate(randomBytes);
      const client = startClientHandshake(kind, randomBytes, { ...target, ntorKey: previous.public });
      const rotated = { ...server, onionKeys: [...server.onionKeys, previous] };
      const r = serverHandshake(client.htype, randomBytes, rotated, client.hdata);
      expect(client.finish(r.reply)).toEqual(r.keys);
      expect(() => serverHandshake(client.htype, randomBytes, server, client.hdata)).toThrow(CryptoError);
    });
  }

  it('names handshakes for metrics, and HTYPEs Shallot does not speak', () => {
    expect(handshakeName(2)).toBe('ntor');
    expect(handshakeName(3)).toBe('ntor-v3');
    expect(handshakeName(0)).toBe('other');
    expect(handshakeName(0xffff)).toBe('other');
  });

  it('an unknown HTYPE (TAP, fast, or anything else) is refused with a typed error', () => {
    const { server } = relay();
    for (const htype of [0, 1, 4, 0xffff]) {
      expect(() => serverHandshake(htype, randomBytes, server, randomBytes(84))).toThrow(InvalidError);
    }
  });

  it('ntor-v3: extensions a relay does not know are ignored, and it answers with an empty list', () => {
    const { server, target } = relay();
    const request = encodeNtorV3Extensions([
      { type: NtorV3ExtType.CC_REQUEST, data: new Uint8Array(0) },
      { type: 200, data: randomBytes(17) },
    ]);
    const { state, hdata } = ntorV3ClientStart(
      randomBytes,
      { id: target.identity, ntorKey: target.ntorKey },
      request,
    );
    const r = serverHandshake(3, randomBytes, server, hdata);
    const { keys, serverMessage } = ntorV3ClientFinish(state, r.reply);
    expect(keys).toEqual(r.keys);
    expect(decodeNtorV3Extensions(serverMessage)).toEqual([]);
  });

  it('ntor-v3: a client message that is not an extension list is refused', () => {
    const { server, target } = relay();
    for (const message of [new Uint8Array([2, 1]), new Uint8Array([0, 0]), new Uint8Array([1, 5, 3])]) {
      const { hdata } = ntorV3ClientStart(
        randomBytes,
        { id: target.identity, ntorKey: target.ntorKey },
        message,
      );
      expect(() => serverHandshake(3, randomBytes, server, hdata)).toThrow(/extension/);
    }
  });

  it('ntor-v3: a relay reply whose message is not an extension list fails the client', () => {
    const { server, target } = relay();
    const client = startClientHandshake('ntor-v3', randomBytes, target);
    const { reply } = ntorV3ServerHandshake(
      randomBytes,
      { id: server.identity, onionKeys: server.onionKeys },
      client.hdata,
      () => new Uint8Array([3, 1]),
    );
    expect(() => client.finish(reply)).toThrow(TruncatedError);
  });

  it('hostile HDATA and replies give typed errors only', () => {
    const { server, target } = relay();
    fc.assert(
      fc.property(fc.constantFrom(2, 3), fc.uint8Array({ maxLength: 400 }), (htype, junk) => {
        expectOnlyTypedErrors(() => serverHandshake(htype, randomBytes, server, junk));
      }),
      { numRuns: 300 },
    );
    fc.assert(
      fc.property(fc.constantFrom(...HANDSHAKES), fc.uint8Array({ maxLength: 200 }), (kind, junk) => {
        const client = startClientHandshake(kind, randomBytes, target);
        expectOnlyTypedErrors(() => client.finish(junk));
      }),
      { numRuns: 300 },
    );
  });
});
