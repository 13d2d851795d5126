/**
 * The pieces of the link handshake (tor-spec §4) both ends share: the link
 * versions we speak (§4.1 VERSIONS), the channel's limits and error, the
 * CERTS checks (§4.2: Ed25519 identity -> signing -> TLS link or
 * AUTHENTICATE key; a C tor relay's RSA identity, types 2 and 7), each
 * end's check of the other's CERTS cell built from them, the
 * handshake's transcript keeping for AUTHENTICATE (§4.4.1 SLOG/CLOG), and
 * the timeout around it all.
 *
 * Not in this module: the order of the handshake's cells for each side
 * (channel.ts `initiate`, `respond`), splitting bytes into cells
 * (cell-reader.ts), AUTHENTICATE's fields and signature (link-auth.ts).
 */
import { equalBytes } from '../core/bytes.js';
import {
  type Cell,
  type CertEntry,
  decodeLinkMessage,
  encodeCell,
  encodeLinkMessage,
  type LinkMessage,
} from '../core/cells.js';
import { ctEqual, type Rng, randomBytes, sha256 } from '../core/crypto.js';
import { CertType, decodeEdCert, type EdCert, verifyEdCert } from '../core/ed-cert.js';
import { CryptoError, isDecodeError, ShallotError } from '../core/errors.js';
import { RsaCertType, verifyRsaIdentity } from '../core/rsa-link-certs.js';
import { CellReader } from './cell-reader.js';
import type { Link, TlsBinding } from './transport.js';

export const LINK_VERSIONS = [4, 5];
export const AUTH_METHOD_ED25519_SHA256_RFC5705 = 3;

export interface ChannelLimits {
  /**
   * Circuits one channel may hold (both ends refuse more: RESOURCELIMIT).
   * C tor caps none but the 4-byte CircID space (tor-spec §5.1.1;
   * get_unique_circ_id_by_chan gives up only when 64 random picks are all
   * taken). A client that isolates every request holds rate x
   * MaxCircuitDirtiness (600 s) circuits on its guard channel (the soak
   * bench: ~50 new circuits/s on 2 cores, ~30,000), so the cap sits well
   * above that. It bounds one channel only: a peer with more channels is
   * held by the DoS defences (relay/client-dos.ts: circuit creation is
   * rate-limited once an address holds 3 connections, as in C tor), and
   * nothing bounds the circuit state a relay holds in total (C tor's OOM
   * handler counts queued cells, not circuits, and neither does
   * relay/queue-memory.ts).
   */
  maxCircuits: number;
  maxVariablePayload: number;
  /** Bytes queued toward the peer before the channel is closed as overloaded. */
  maxBufferedBytes: number;
  handshakeTimeoutMs: number;
}

export const DEFAULT_CHANNEL_LIMITS: ChannelLimits = {
  maxCircuits: 131_072,
  maxVariablePayload: 16 * 1024,
  maxBufferedBytes: 64 * 1024 * 1024,
  handshakeTimeoutMs: 15_000,
};

export class ChannelError extends ShallotError {
  constructor(
    readonly reason: 'protocol' | 'identity' | 'timeout' | 'closed' | 'resource',
    message: string,
  ) {
    super('ERR_CHANNEL', message, { reason });
  }
}

function certsByType(certs: { certType: number; body: Uint8Array }[]): Map<number, Uint8Array> {
  const m = new Map<number, Uint8Array>();
  for (const c of certs) {
    if (m.has(c.certType)) throw new ChannelError('protocol', `duplicate certificate type ${c.certType}`);
    m.set(c.certType, c.body);
  }
  return m;
}

/** Checks a CERTS type-4 certificate and returns it with the identity that signed it. */
function checkIdentityCert(
  body: Uint8Array | undefined,
  nowMs: number,
): { cert: EdCert; identity: Uint8Array } {
  if (!body) throw new ChannelError('protocol', 'CERTS lacks the identity->signing certificate');
  const cert = decodeEdCert(body);
  if (cert.certType !== CertType.IDENTITY_V_SIGNING || !cert.signedWithKey) {
    throw new ChannelError('protocol', 'identity certificate malformed');
  }
  verifyEdCert(cert, { signingKey: cert.signedWithKey, now: nowMs });
  return { cert, identity: cert.signedWithKey };
}

/** tor-spec §4.2: the RSA identity in CERTS types 2 and 7 is the legacy id we dialled. */
function checkRsaIdentity(
  certs: Map<number, Uint8Array>,
  identity: Uint8Array,
  want: Uint8Array,
  nowMs: number,
) {
  let legacyId: Uint8Array;
  try {
    legacyId = verifyRsaIdentity(
      certs.get(RsaCertType.RSA_ID),
      certs.get(RsaCertType.RSA_ID_V_ED25519),
      identity,
      nowMs,
    );
  } catch (e) {
    if (isDecodeError(e) || e instanceof CryptoError) throw new ChannelError('identity', e.message);
    throw e;
  }
  if (!equalBytes(legacyId, want))
    throw new ChannelError('identity', 'peer RSA identity is not the one we dialled');
}

function checkSignedCert(
  body: Uint8Array | undefined,
  type: number,
  signingKey: Uint8Array,
  nowMs: number,
): EdCert {
  if (!body) throw new ChannelError('protocol', `CERTS lacks certificate type ${type}`);
  const cert = decodeEdCert(body);
  if (cert.certType !== type)
    throw new ChannelError('protocol', `certificate type ${cert.certType}, want ${type}`);
  verifyEdCert(cert, { signingKey, now: nowMs });
  return cert;
}

/**
 * The initiator's check of the responder's CERTS (§4.2): the identity ->
 * signing chain names the identity we dialled (and, dialling a C tor relay,
 * its RSA legacy id); with TLS, type 5 certifies the certificate the TLS
 * session actually presented. Returns that identity and certificate.
 */
export function checkResponderCerts(
  entries: CertEntry[],
  want: { identity: Uint8Array; legacyId?: Uint8Array | undefined },
  tls: TlsBinding | null,
  now: () => number,
): { identity: Uint8Array; tlsCert: Uint8Array | null } {
  const certs = certsByType(entries);
  const { cert: idCert, identity } = checkIdentityCert(certs.get(CertType.IDENTITY_V_SIGNING), now());
  if (!equalBytes(identity, want.identity)) {
    throw new ChannelError('identity', 'peer identity is not the one we dialled');
  }
  if (want.legacyId) checkRsaIdentity(certs, identity, want.legacyId, now());
  const tlsCert = tls?.peerCertificate() ?? null;
  if (tls) {
    const certified = checkSignedCert(
      certs.get(CertType.SIGNING_V_TLS_CERT),
      CertType.SIGNING_V_TLS_CERT,
      idCert.certifiedKey,
      now(),
    );
    if (!tlsCert || !ctEqual(certified.certifiedKey, sha256(tlsCert))) {
      throw new ChannelError('identity', 'TLS certificate is not the one the peer certified');
    }
  }
  return { identity, tlsCert };
}

/**
 * The responder's check of an authenticating initiator's CERTS (§4.2):
 * identity -> signing -> AUTHENTICATE key (type 6). Returns the identity and
 * the key its AUTHENTICATE must be signed with.
 */
export function checkInitiatorCerts(
  entries: CertEntry[],
  now: () => number,
): { identity: Uint8Array; authKey: Uint8Array } {
  const certs = certsByType(entries);
  const { cert: idCert, identity } = checkIdentityCert(certs.get(CertType.IDENTITY_V_SIGNING), now());
  const authCert = checkSignedCert(
    certs.get(CertType.SIGNING_V_LINK_AUTH),
    CertType.SIGNING_V_LINK_AUTH,
    idCert.certifiedKey,
    now(),
  );
  return { identity, authKey: authCert.certifiedKey };
}

export type MessageOf<T extends LinkMessage['type']> = Extract<LinkMessage, { type: T }>;

/**
 * What both ends of a link handshake start with: the limits, a cell reader
 * fed by the link (failing if it closes), and a `send` for circuit-0 cells
 * that keeps every cell sent, as `received` keeps every cell read, for the
 * AUTHENTICATE transcript digests (SLOG/CLOG).
 */
export function startHandshake(
  link: Link,
  opts: { limits?: Partial<ChannelLimits>; rng?: Rng; now?: () => number },
) {
  const limits = { ...DEFAULT_CHANNEL_LIMITS, ...opts.limits };
  const reader = new CellReader(limits.maxVariablePayload);
  link.on('data', (d) => reader.push(d));
  link.on('close', () => reader.fail(new ChannelError('closed', 'link closed during handshake')));
  const sent: Uint8Array[] = [];
  const send = (m: LinkMessage, version: number) => {
    const bytes = encodeCell({ circId: 0, ...encodeLinkMessage(m) }, version);
    sent.push(bytes);
    link.send(bytes);
  };
  return {
    limits,
    rng: opts.rng ?? randomBytes,
    now: opts.now ?? Date.now,
    reader,
    sent,
    received: [] as Uint8Array[],
    send,
  };
}

/** Reads the peer's VERSIONS cell (kept in `received`) and returns the highest version both speak. */
export async function readVersions(reader: CellReader, received: Uint8Array[]): Promise<number> {
  const first = await reader.next();
  received.push(first.raw);
  const versions = expectMessage(first.cell, 'VERSIONS');
  const version = Math.max(...versions.versions.filter((v) => LINK_VERSIONS.includes(v)));
  if (!Number.isFinite(version)) throw new ChannelError('protocol', 'no shared link version');
  return version;
}

export function expectMessage<T extends LinkMessage['type']>(cell: Cell, type: T): MessageOf<T> {
  const msg = decodeLinkMessage(cell.command, cell.payload);
  if (msg.type !== type)
    throw new ChannelError('protocol', `expected ${type} during handshake, got ${msg.type}`);
  return msg as MessageOf<T>;
}

export function addrFor(address: string) {
  const host = address.replace(/^.*\/\/|:\d+(\/.*)?$/g, '').replace(/^\[|\]$/g, '');
  const v4 = /^\d{1,3}(\.\d{1,3}){3}$/.test(host) ? host : '0.0.0.0';
  return { type: 'ipv4' as const, addr: v4 };
}

export async function withTimeout<T>(ms: number, link: Link, fn: () => Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new ChannelError('timeout', `link handshake took over ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([fn(), timeout]);
  } catch (e) {
    link.destroy();
    if (e instanceof ChannelError) throw e;
    if (isDecodeError(e) || e instanceof ShallotError)
      throw new ChannelError('protocol', (e as Error).message);
    throw e;
  } finally {
    clearTimeout(timer);
  }
}
