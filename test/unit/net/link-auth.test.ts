// AUTHENTICATE type 3 (net/link-auth.ts, tor-spec §4.4.1): the body the
// initiator signs verifies at the responder computing the same facts, and
// fails when any fact differs (either identity, SLOG, CLOG, the TLS
// certificate or exporter value), under another auth key, or with a flipped
// byte; a cut body throws the decoder's typed error.
import { describe, expect, it } from 'vitest';
import { AUTH3_MAGIC } from '../../../services/core/auth3.js';
import { fromUtf8, utf8 } from '../../../services/core/bytes.js';
import { sha256 } from '../../../services/core/crypto.js';
import { isDecodeError } from '../../../services/core/errors.js';
import { generateNodeKeys } from '../../../services/core/node-keys.js';
import { type Auth3Context, signAuthenticate, verifyAuthenticate } from '../../../services/net/link-auth.js';
import { createLinkKeys, type LinkKeys } from '../../../services/net/link-keys.js';
import type { TlsBinding } from '../../../services/net/transport.js';

function relayKeys(): LinkKeys {
  const k = generateNodeKeys();
  return createLinkKeys({ seed: k.identitySeed, public: k.identity });
}

/** A TLS session whose exporter value depends on label and context, as RFC 5705's does. */
const fakeTls = (secret: string): TlsBinding => ({
  exportKeyingMaterial: (length, label, context) =>
    sha256(utf8(secret), utf8(label), context).subarray(0, length),
  peerCertificate: () => null,
  localCertificate: () => null,
});

const initiator = relayKeys();
const responder = relayKeys();
let n = 0;
const rng = (len: number) => new Uint8Array(len).fill(++n);

const base: Auth3Context = {
  initiator: initiator.identity.public,
  responder: responder.identity.public,
  slog: sha256(utf8('responder cells')),
  clog: sha256(utf8('initiator cells')),
  responderTlsCert: responder.tlsCertDer,
  tls: fakeTls('session'),
};

describe('AUTHENTICATE type 3', () => {
  const body = signAuthenticate(base, initiator.auth.seed, rng);

  it('verifies with the facts and auth key the responder holds, with TLS and without', () => {
    expect(fromUtf8(body.subarray(0, 8))).toBe(AUTH3_MAGIC);
    expect(verifyAuthenticate(body, base, initiator.auth.public)).toBe(true);
    const plain = { ...base, responderTlsCert: null, tls: null };
    expect(
      verifyAuthenticate(signAuthenticate(plain, initiator.auth.seed, rng), plain, initiator.auth.public),
    ).toBe(true);
  });

  const other = relayKeys();
  const differing: [string, Partial<Auth3Context>][] = [
    ['initiator identity', { initiator: other.identity.public }],
    ['responder identity', { responder: other.identity.public }],
    ['SLOG', { slog: sha256(utf8('other')) }],
    ['CLOG', { clog: sha256(utf8('other')) }],
    ['TLS certificate', { responderTlsCert: other.tlsCertDer }],
    ['TLS session', { tls: fakeTls('another session') }],
    ['no TLS', { responderTlsCert: null, tls: null }],
  ];
  for (const [what, change] of differing) {
    it(`fails when the responder's ${what} differs`, () => {
      expect(verifyAuthenticate(body, { ...base, ...change }, initiator.auth.public)).toBe(false);
    });
  }

  it('fails under another auth key and with any flipped byte', () => {
    expect(verifyAuthenticate(body, base, other.auth.public)).toBe(false);
    for (let i = 0; i < body.length; i += 7) {
      const bad = body.slice();
      bad[i] = bad[i]! ^ 1;
      let ok: boolean;
      try {
        ok = verifyAuthenticate(bad, base, initiator.auth.public);
      } catch (e) {
        // Only the magic's bytes may make the decoder refuse the body.
        expect(isDecodeError(e) && i < 8).toBe(true);
        continue;
      }
      expect(ok, `byte ${i}`).toBe(false);
    }
  });

  it('throws a typed decode error on a cut body', () => {
    let err: unknown;
    try {
      verifyAuthenticate(body.subarray(0, 100), base, initiator.auth.public);
    } catch (e) {
      err = e;
    }
    expect(isDecodeError(err)).toBe(true);
  });
});
