/**
 * Streams that end at this relay: BEGIN to the exit (tor-spec §6.2,
 * exit.ts) and BEGIN_DIR to the directory handler (tor-spec §6.2; dir-spec
 * §4 requests over a circuit). Each passes the stream-creation defences first (C tor
 * dos.c DoSStreamCreation*, then the per-circuit stream cap), and an exit
 * stream holds a slot of the process-wide exit socket cap (exit-sockets.ts).
 *
 * Not in this module: what the exit checks before it connects (exit.ts:
 * policy, DNS, re-entry), the directory's answers (the node's handler).
 */
import type { Socket } from 'node:net';
import { DestroyReason } from '../core/cells.js';
import type { ExitPolicy } from '../core/exit-policy.js';
import { HS_DESC_MAX_LEN } from '../core/hs-descriptor.js';
import { EndReason, parseBeginTarget, type RelayMessage, type StreamTarget } from '../core/relay-cell.js';
import type { Metrics } from '../metrics/metrics.js';
import { type DirRequestLine, serveDirRequest } from '../net/dir-http.js';
import type { OrCircuit } from '../net/or-circuit.js';
import { openExitStream } from './exit.js';
import { processExitSockets } from './exit-sockets.js';
import type { RelayComponents } from './relay-options.js';
import { type StreamDos, streamDosParams } from './stream-dos.js';

export class EdgeStreams {
  constructor(
    private readonly c: RelayComponents,
    private readonly exitPolicy: ExitPolicy,
    private readonly m: Metrics['relay'],
    private readonly label: { relay: string },
    private readonly streamDos: StreamDos,
  ) {}

  /** A BEGIN: an exit stream to the target, if the defences, the cap and the exit allow it. */
  begin(
    circ: OrCircuit,
    streamId: number,
    rawTarget: Extract<RelayMessage, { type: 'BEGIN' }>['target'],
  ): void {
    let target: StreamTarget;
    try {
      target = parseBeginTarget(rawTarget);
    } catch {
      circ.sendBackward(streamId, { type: 'END', reason: EndReason.TORPROTOCOL });
      return;
    }
    if (!this.admit(circ, streamId, 'BEGIN')) return;
    // The process-wide exit socket cap (exit-sockets.ts): a slot is taken
    // now and given back when the socket closes, or at once if none opened.
    const sockets = this.c.exitSockets ?? processExitSockets;
    if (!sockets.tryTake(circ)) {
      this.refuse(circ, streamId, 'BEGIN', 'exit_sockets');
      return;
    }
    let socketOpened = false;
    const onExitSocket = (socket: Socket) => {
      socketOpened = true;
      socket.once('close', () => sockets.release(circ));
    };
    openExitStream(circ, streamId, target, this.exitPolicy, { ...this.c, onExitSocket }).then(
      ({ outcome }) => {
        if (!socketOpened) sockets.release(circ);
        this.m.streams.labels({ ...this.label, type: 'BEGIN', outcome }).inc();
        // BEGINs still resolving when the cap filled: refused at acceptStream.
        if (outcome === 'limit')
          this.m.streamRefusals.labels({ ...this.label, type: 'BEGIN', reason: 'circuit' }).inc();
      },
      () => {
        if (!socketOpened) sockets.release(circ);
        circ.sendBackward(streamId, { type: 'END', reason: EndReason.INTERNAL });
      },
    );
    return;
  }

  beginDir(circ: OrCircuit, streamId: number): void {
    const handler = this.c.directory;
    if (!handler) {
      circ.sendBackward(streamId, { type: 'END', reason: EndReason.NOTDIRECTORY });
      this.m.streams.labels({ ...this.label, type: 'BEGIN_DIR', outcome: 'refused' }).inc();
      return;
    }
    if (!this.admit(circ, streamId, 'BEGIN_DIR')) return;
    const stream = circ.edge.acceptStream(streamId);
    if (!stream) {
      // The id is in use: a protocol error of the client's (tor-spec §6.2).
      circ.sendBackward(streamId, { type: 'END', reason: EndReason.TORPROTOCOL });
      return;
    }
    this.m.streams.labels({ ...this.label, type: 'BEGIN_DIR', outcome: 'connected' }).inc();
    circ.sendBackward(streamId, { type: 'CONNECTED' });
    // The only upload a relay takes over BEGIN_DIR is an onion-service
    // descriptor (rend-spec-v3 §2.2.6, at most HS_DESC_MAX_LEN as C tor);
    // a GET has no body. C tor's dircache takes up to MAX_DIR_UL_SIZE (16 MiB)
    // for any POST; Shallot's routes need far less.
    const maxBody = (req: DirRequestLine) => (req.method === 'POST' ? HS_DESC_MAX_LEN : 0);
    void serveDirRequest(stream, (req) => handler(req, circ), maxBody).then((refusal) => {
      if (refusal) this.m.dirRefusals.labels({ ...this.label, reason: refusal.reason }).inc();
    });
  }

  /**
   * The stream-creation defences every BEGIN and BEGIN_DIR passes first
   * (C tor dos.c DoSStreamCreation*, then the per-circuit stream cap).
   * False when the stream was refused (END RESOURCELIMIT) or the circuit closed.
   */
  private admit(circ: OrCircuit, streamId: number, type: 'BEGIN' | 'BEGIN_DIR'): boolean {
    const verdict = this.streamDos.onBegin(circ, streamDosParams(this.c.consensusParams?.() ?? {}));
    if (verdict !== 'allow') {
      this.m.streamRefusals.labels({ ...this.label, type, reason: 'rate' }).inc();
      if (verdict === 'close') circ.close(DestroyReason.RESOURCELIMIT);
      else circ.sendBackward(streamId, { type: 'END', reason: EndReason.RESOURCELIMIT });
      return false;
    }
    if (circ.edge.streamsFull) {
      this.refuse(circ, streamId, type, 'circuit');
      return false;
    }
    return true;
  }

  private refuse(
    circ: OrCircuit,
    streamId: number,
    type: 'BEGIN' | 'BEGIN_DIR',
    reason: 'circuit' | 'exit_sockets',
  ): void {
    this.m.streamRefusals.labels({ ...this.label, type, reason }).inc();
    circ.sendBackward(streamId, { type: 'END', reason: EndReason.RESOURCELIMIT });
  }
}
