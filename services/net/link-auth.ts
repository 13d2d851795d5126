/**
 * AUTHENTICATE of type 3, Ed25519-SHA256-RFC5705 (tor-spec §4.4.1): how a
 * relay that opened a link proves its identity to the responder. The
 * initiator signs the body with its CERTS type 6 auth key; the responder
 * checks every field against what it computes itself, then the signature.
 *
 * Overview: both ends compute the same fields from the same facts (who is
 * each end, the handshake transcript, the TLS session), so one function
 * gives them and `signAuthenticate` / `verifyAuthenticate` differ only in
 * adding RAND and SIG or comparing with what the peer sent.
 *
 * Design notes:
 * - Deviation: Shallot relays have no RSA, so CID and SID are SHA-256 of
 *   the Ed25519 identities.
 * - TLSSECRETS's exporter context is CID, as C tor (relay_handshake.c) and
 *   arti compute it; tor-spec's sentence naming the Ed25519 identity
 *   disagrees with both.
 * - On plain `ws` (debugging only) there is no TLS session: SCERT and
 *   TLSSECRETS are 32 zero bytes.
 *
 * Not in this module: the body's byte layout (core/auth3.ts), the CERTS
 * checks that yield the auth key and the transcript (link-handshake.ts),
 * the order of the handshake's cells (channel.ts).
 */
import { type Auth3Body, auth3SignedPart, decodeAuth3Body, encodeAuth3Body } from '../core/auth3.js';
import { ctEqual, ed25519Sign, ed25519Verify, type Rng, sha256 } from '../core/crypto.js';
import type { TlsBinding } from './transport.js';

/** tor-spec §4.4.1: the TLS exporter label of TLSSECRETS. */
const EXPORTER_LABEL = 'EXPORTER FOR TOR TLS CLIENT BINDING AUTH0003';

/** What one AUTHENTICATE is about, as each end sees it. */
export interface Auth3Context {
  /** The initiator's Ed25519 identity (the end that authenticates). */
  initiator: Uint8Array;
  /** The responder's Ed25519 identity. */
  responder: Uint8Array;
  /** SHA-256 of the cells the responder sent, through its AUTH_CHALLENGE. */
  slog: Uint8Array;
  /** SHA-256 of the cells the initiator sent, through its CERTS. */
  clog: Uint8Array;
  /** DER of the responder's TLS certificate, or null without TLS. */
  responderTlsCert: Uint8Array | null;
  /** The link's TLS session, or null without TLS. */
  tls: TlsBinding | null;
}

type Auth3Fields = Omit<Auth3Body, 'rand' | 'sig'>;

/** Every field but RAND and SIG, as both ends compute them. */
function auth3Fields(c: Auth3Context): Auth3Fields {
  const cid = sha256(c.initiator);
  return {
    cid,
    sid: sha256(c.responder),
    cidEd: c.initiator,
    sidEd: c.responder,
    slog: c.slog,
    clog: c.clog,
    scert: c.responderTlsCert ? sha256(c.responderTlsCert) : new Uint8Array(32),
    tlsSecrets: c.tls ? c.tls.exportKeyingMaterial(32, EXPORTER_LABEL, cid) : new Uint8Array(32),
  };
}

/** The initiator's AUTHENTICATE body, signed with its auth key (CERTS type 6). */
export function signAuthenticate(c: Auth3Context, authSeed: Uint8Array, rng: Rng): Uint8Array {
  const fields: Auth3Body = { ...auth3Fields(c), rand: rng(24), sig: new Uint8Array(64) };
  fields.sig = ed25519Sign(authSeed, auth3SignedPart(encodeAuth3Body(fields)));
  return encodeAuth3Body(fields);
}

/**
 * Whether the initiator's AUTHENTICATE body holds the fields the responder
 * computes and a valid signature by `authKey` (the key its CERTS type 6
 * certified). A body of the wrong size throws the decoder's typed error.
 */
export function verifyAuthenticate(authBody: Uint8Array, c: Auth3Context, authKey: Uint8Array): boolean {
  const f = decodeAuth3Body(authBody);
  const e = auth3Fields(c);
  return (
    ctEqual(f.cid, e.cid) &&
    ctEqual(f.sid, e.sid) &&
    ctEqual(f.cidEd, e.cidEd) &&
    ctEqual(f.sidEd, e.sidEd) &&
    ctEqual(f.slog, e.slog) &&
    ctEqual(f.clog, e.clog) &&
    ctEqual(f.scert, e.scert) &&
    ctEqual(f.tlsSecrets, e.tlsSecrets) &&
    ed25519Verify(authKey, auth3SignedPart(authBody), f.sig)
  );
}
