/**
 * Channels (tor-spec §2–4): an authenticated link between two nodes that
 * carries cells for many circuits.
 *
 * Overview: `Channel.initiate` and `Channel.respond` run the link
 * handshake — VERSIONS, then the responder's CERTS / AUTH_CHALLENGE /
 * NETINFO, then the initiator's NETINFO (a client) or CERTS / AUTHENTICATE
 * / NETINFO (a relay) — and resolve to an open channel. Afterwards cells
 * are dispatched by CircID to registered circuit handlers; cells for
 * unknown circuits (CREATE2 above all) are emitted as `cell` events.
 *
 * Design notes:
 * - Identity binding: the responder's CERTS chain (type 4 identity ->
 *   signing, type 5 signing -> SHA-256 of the TLS certificate) is checked
 *   against the certificate the TLS session actually presented, and its
 *   identity against the one we dialled; a mismatch closes the link.
 *   AUTHENTICATE (type 3, Ed25519-SHA256-RFC5705) binds the initiator the
 *   same way through the TLS exporter.
 * - Deviation: Shallot relays have no RSA (AUTHENTICATE's fields:
 *   link-auth.ts). Dialling a C tor relay with its
 *   legacy id, the initiator also checks its RSA identity (CERTS types 2
 *   and 7, rsa-link-certs.ts). On plain `ws` (debugging only) there is no TLS session:
 *   SCERT and TLSSECRETS are zero and cert type 5 is not checked, so plain
 *   links authenticate identities but are not bound to a transport.
 * - Limits: circuits per channel, variable-cell size and bytes buffered
 *   toward the peer are capped; exceeding them closes what must close.
 *
 * Not in this module: splitting bytes into cells (cell-reader.ts), the
 * CERTS checks, limits and transcript shared by both sides (link-handshake.ts),
 * AUTHENTICATE's fields and signature (link-auth.ts).
 */

import {
  CELL_BODY_LEN,
  type Cell,
  CellCommand,
  type CertEntry,
  DestroyReason,
  decodeLinkMessage,
  encodeCell,
  encodeFixedCell,
  encodeLinkMessage,
  isVariableLength,
  type LinkMessage,
  reserveFixedCell,
} from '../core/cells.js';
import { type Rng, sha256 } from '../core/crypto.js';
import { CertType } from '../core/ed-cert.js';
import { isDecodeError } from '../core/errors.js';
import type { CellReader } from './cell-reader.js';
import { signAuthenticate, verifyAuthenticate } from './link-auth.js';
import {
  AUTH_METHOD_ED25519_SHA256_RFC5705,
  addrFor,
  ChannelError,
  type ChannelLimits,
  checkInitiatorCerts,
  checkResponderCerts,
  expectMessage,
  LINK_VERSIONS,
  readVersions,
  startHandshake,
  withTimeout,
} from './link-handshake.js';
import type { LinkKeys } from './link-keys.js';
import { LINK_HIGH_WATER, type Link } from './transport.js';
import { TypedEmitter } from './typed-emitter.js';

/** Receives the cells of one circuit on this channel. */
export interface CircuitCellHandler {
  onCell(msg: LinkMessage): void;
  /** The channel closed under the circuit. */
  onChannelClosed(): void;
}

export interface ChannelEvents {
  /** A cell for a CircID with no registered handler (e.g. CREATE2). */
  cell: { circId: number; msg: LinkMessage };
  closed: { reason: string };
  /** The peer's queue drained: circuits may send again. */
  drain: undefined;
}

export interface InitiateOptions {
  /** Our link keys if we are a relay (we then authenticate), or null for a client. */
  keys: LinkKeys | null;
  /** The Ed25519 identity we meant to reach; anything else is refused. */
  expectedIdentity: Uint8Array;
  /**
   * A C tor relay's RSA legacy id from the consensus: its CERTS cell must then
   * also prove that RSA identity (types 2 and 7, tor-spec §4.2).
   */
  expectedLegacyId?: Uint8Array;
  limits?: Partial<ChannelLimits>;
  rng?: Rng;
  now?: () => number;
}

export interface RespondOptions {
  keys: LinkKeys;
  /** Our advertised address for NETINFO. */
  address: string;
  limits?: Partial<ChannelLimits>;
  rng?: Rng;
  now?: () => number;
}

export class Channel extends TypedEmitter<ChannelEvents> {
  private readonly handlers = new Map<number, CircuitCellHandler>();
  private closedReason: string | null = null;
  private readonly limits: ChannelLimits;
  private drainWanted = false;

  private constructor(
    readonly link: Link,
    private readonly reader: CellReader,
    readonly linkVersion: number,
    /** The peer's authenticated Ed25519 identity, or null for a client peer. */
    readonly peerIdentity: Uint8Array | null,
    limits: ChannelLimits,
    private readonly rng: Rng,
  ) {
    super();
    this.limits = limits;
    link.on('close', ({ reason }) => this.onLinkClosed(reason || 'link closed'));
    link.on('error', () => {});
    // Only senders that found the link congested wait for 'drain': wake them once it is writable again.
    link.on('drain', () => {
      if (this.drainWanted && this.writable) {
        this.drainWanted = false;
        this.emit('drain', undefined);
      }
    });
    // Garbage, an oversized cell or a handler failure after the handshake ends the link, not the process.
    reader.onFatal = (e) => this.close(`unparseable link data: ${e.message}`);
    // Cells that arrived with the handshake wait until the caller has attached its listeners.
    setImmediate(() => reader.startDispatch((cell) => this.dispatch(cell)));
  }

  get isOpen(): boolean {
    return this.closedReason === null && this.link.isOpen;
  }

  get initiator(): boolean {
    return this.link.initiator;
  }

  get circuitCount(): number {
    return this.handlers.size;
  }

  /** When the peer began sending a cell it has not finished, or null (see ChannelGuard). */
  get partialCellSince(): number | null {
    return this.reader.partialSince;
  }

  /** True while the peer's queue is short enough to keep sending; if not, 'drain' follows. */
  get writable(): boolean {
    const ok = this.link.bufferedAmount < LINK_HIGH_WATER;
    if (!ok) this.drainWanted = true;
    return ok;
  }

  /* ---------------- handshake ---------------- */

  static async initiate(link: Link, opts: InitiateOptions): Promise<Channel> {
    const { limits, rng, now, reader, sent, received, send } = startHandshake(link, opts);
    return withTimeout(limits.handshakeTimeoutMs, link, async () => {
      send({ type: 'VERSIONS', versions: LINK_VERSIONS }, 0);
      const version = await readVersions(reader, received);
      reader.linkVersion = version;

      const certsCell = await reader.next();
      received.push(certsCell.raw);
      const { identity, tlsCert: peerTlsCert } = checkResponderCerts(
        expectMessage(certsCell.cell, 'CERTS').certs,
        { identity: opts.expectedIdentity, legacyId: opts.expectedLegacyId },
        link.tlsBinding,
        now,
      );
      const challengeCell = await reader.next();
      received.push(challengeCell.raw);
      const challenge = expectMessage(challengeCell.cell, 'AUTH_CHALLENGE');
      const slog = sha256(...received);

      if (opts.keys) {
        if (!challenge.methods.includes(AUTH_METHOD_ED25519_SHA256_RFC5705)) {
          throw new ChannelError('protocol', 'responder offers no authentication method we support');
        }
        const k = opts.keys;
        send(
          {
            type: 'CERTS',
            certs: [
              { certType: CertType.IDENTITY_V_SIGNING, body: k.certIdentityToSigning },
              { certType: CertType.SIGNING_V_LINK_AUTH, body: k.certSigningToAuth },
            ],
          },
          version,
        );
        const context = {
          initiator: k.identity.public,
          responder: identity,
          slog,
          clog: sha256(...sent),
          responderTlsCert: peerTlsCert,
          tls: link.tlsBinding,
        };
        send(
          {
            type: 'AUTHENTICATE',
            authType: AUTH_METHOD_ED25519_SHA256_RFC5705,
            authBody: signAuthenticate(context, k.auth.seed, rng),
          },
          version,
        );
      }
      const netinfoCell = await reader.next();
      expectMessage(netinfoCell.cell, 'NETINFO');
      send(
        {
          type: 'NETINFO',
          time: opts.keys ? Math.floor(now() / 1000) : 0,
          otherAddr: addrFor(link.remoteAddress),
          myAddrs: [],
        },
        version,
      );
      return new Channel(link, reader, version, identity, limits, rng);
    });
  }

  static async respond(link: Link, opts: RespondOptions): Promise<Channel> {
    const { limits, rng, now, reader, sent, received, send } = startHandshake(link, opts);
    const k = opts.keys;
    return withTimeout(limits.handshakeTimeoutMs, link, async () => {
      const version = await readVersions(reader, received);
      send({ type: 'VERSIONS', versions: LINK_VERSIONS }, 0);
      reader.linkVersion = version;
      const certs: CertEntry[] = [{ certType: CertType.IDENTITY_V_SIGNING, body: k.certIdentityToSigning }];
      if (link.tlsBinding) certs.push({ certType: CertType.SIGNING_V_TLS_CERT, body: k.certSigningToTls });
      send({ type: 'CERTS', certs }, version);
      send(
        { type: 'AUTH_CHALLENGE', challenge: rng(32), methods: [AUTH_METHOD_ED25519_SHA256_RFC5705] },
        version,
      );
      const slog = sha256(...sent);
      send(
        {
          type: 'NETINFO',
          time: Math.floor(now() / 1000),
          otherAddr: addrFor(link.remoteAddress),
          myAddrs: [addrFor(opts.address)],
        },
        version,
      );

      let peerIdentity: Uint8Array | null = null;
      let next = await reader.next();
      if (next.cell.command === CellCommand.CERTS) {
        const clog = sha256(...received, next.raw);
        const { identity, authKey } = checkInitiatorCerts(expectMessage(next.cell, 'CERTS').certs, now);
        const authCell = await reader.next();
        const auth = expectMessage(authCell.cell, 'AUTHENTICATE');
        if (auth.authType !== AUTH_METHOD_ED25519_SHA256_RFC5705) {
          throw new ChannelError('protocol', `unsupported AUTHENTICATE type ${auth.authType}`);
        }
        const context = {
          initiator: identity,
          responder: k.identity.public,
          slog,
          clog,
          responderTlsCert: link.tlsBinding ? k.tlsCertDer : null,
          tls: link.tlsBinding,
        };
        if (!verifyAuthenticate(auth.authBody, context, authKey)) {
          throw new ChannelError('identity', 'AUTHENTICATE did not verify');
        }
        peerIdentity = identity;
        next = await reader.next();
      }
      expectMessage(next.cell, 'NETINFO');
      return new Channel(link, reader, version, peerIdentity, limits, rng);
    });
  }

  /* ---------------- cells ---------------- */

  /** Called for every cell sent ('out') or received ('in') after the handshake, with its size. */
  onTraffic: ((direction: 'in' | 'out', bytes: number) => void) | null = null;

  /** Made once, not per cell sent. */
  private readonly reserve = (n: number): Uint8Array | null => this.link.reserve(n);

  send(circId: number, msg: LinkMessage): void {
    if (!this.isOpen) return;
    const { command, payload } = encodeLinkMessage(msg);
    const cell = { circId, command, payload };
    let length: number;
    if (isVariableLength(command, this.linkVersion)) {
      const bytes = encodeCell(cell, this.linkVersion);
      length = bytes.length;
      this.link.send(bytes);
    } else {
      // Straight into the link's send batch: no buffer per cell.
      length = encodeFixedCell(cell, this.linkVersion, this.reserve)?.length ?? 0;
    }
    this.onTraffic?.('out', length);
    this.closeIfOverLimit(0);
  }

  /** Closes the channel when `extra` more bytes would put its send buffer over the limit; whether it did. */
  private closeIfOverLimit(extra: number): boolean {
    if (this.link.bufferedAmount + extra <= this.limits.maxBufferedBytes) return false;
    this.close('peer not reading: send buffer over limit');
    return true;
  }

  /**
   * A RELAY cell for `circId` in the link's send batch: its 509-byte body,
   * which the caller must fill at once (it is sent whatever it holds), or
   * null when the channel is closed. `send`'s buffer limit is checked first.
   */
  reserveRelay(circId: number): Uint8Array | null {
    if (!this.isOpen) return null;
    const size = (this.linkVersion >= 4 ? 5 : 3) + CELL_BODY_LEN;
    if (this.closeIfOverLimit(size)) return null;
    const body = reserveFixedCell(circId, CellCommand.RELAY, this.linkVersion, this.reserve);
    if (body) this.onTraffic?.('out', size);
    return body;
  }

  /** A fresh random CircID: nonzero, MSB set iff we opened the link (tor-spec §5.1.1). */
  allocateCircId(): number {
    for (;;) {
      const b = this.rng(4);
      let id = ((b[0]! << 24) | (b[1]! << 16) | (b[2]! << 8) | b[3]!) >>> 0;
      id = this.initiator ? (id | 0x80000000) >>> 0 : id & 0x7fffffff;
      if (id !== 0 && !this.handlers.has(id)) return id;
    }
  }

  /** True if a CircID chosen by the peer has the right high bit. */
  peerCircIdValid(circId: number): boolean {
    if (circId === 0) return false;
    const msb = (circId & 0x80000000) !== 0;
    return this.initiator ? !msb : msb;
  }

  /** Claims `circId` for `handler` (or hands a claimed one over); false when the channel is full. */
  register(circId: number, handler: CircuitCellHandler): boolean {
    if (!this.handlers.has(circId) && this.handlers.size >= this.limits.maxCircuits) return false;
    this.handlers.set(circId, handler);
    return true;
  }

  unregister(circId: number): void {
    this.handlers.delete(circId);
  }

  hasCircuit(circId: number): boolean {
    return this.handlers.has(circId);
  }

  private dispatch(cell: Cell): void {
    // The cell's wire size: header (CircID, command, variable length) plus payload.
    this.onTraffic?.(
      'in',
      cell.payload.length +
        (this.linkVersion >= 4 ? 5 : 3) +
        (isVariableLength(cell.command, this.linkVersion) ? 2 : 0),
    );
    if (ignoredCommand(cell.command)) return;
    let msg: LinkMessage;
    try {
      msg = decodeLinkMessage(cell.command, cell.payload);
    } catch (e) {
      if (!isDecodeError(e)) throw e;
      // A malformed cell for a circuit kills that circuit; on CircID 0 it kills the link.
      if (cell.circId === 0) this.close(`malformed cell: ${e.message}`);
      else {
        this.send(cell.circId, { type: 'DESTROY', reason: DestroyReason.PROTOCOL });
        const h = this.handlers.get(cell.circId);
        this.handlers.delete(cell.circId);
        h?.onChannelClosed();
      }
      return;
    }
    if (msg.type === 'PADDING' || msg.type === 'VPADDING') return;
    const h = this.handlers.get(cell.circId);
    if (h) h.onCell(msg);
    else this.emit('cell', { circId: cell.circId, msg });
  }

  close(reason: string): void {
    if (this.closedReason !== null) return;
    this.closedReason = reason;
    this.link.close(1000, reason.slice(0, 100));
    this.teardown(reason);
  }

  private onLinkClosed(reason: string): void {
    if (this.closedReason === null) this.closedReason = reason;
    this.teardown(reason);
  }

  private tornDown = false;
  private teardown(reason: string): void {
    if (this.tornDown) return;
    this.tornDown = true;
    const hs = [...this.handlers.values()];
    this.handlers.clear();
    for (const h of hs) h.onChannelClosed();
    this.emit('closed', { reason });
  }
}

const KNOWN_COMMANDS = new Set<number>(Object.values(CellCommand));

/**
 * Cells C tor drops without closing anything: commands it does not know
 * (command_process_cell and channel_tls_handle_var_cell log "unknown" and
 * drop them), and PADDING_NEGOTIATE, which C tor clients send to relays and
 * we have no padding machine to answer (padding-spec.txt), and AUTHORIZE.
 */
function ignoredCommand(command: number): boolean {
  return (
    command === CellCommand.PADDING_NEGOTIATE ||
    command === CellCommand.AUTHORIZE ||
    !KNOWN_COMMANDS.has(command)
  );
}
