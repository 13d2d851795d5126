/**
 * Which relays the client has heard from lately, and which stopped
 * answering: a first-hop channel "shows life" whenever a hop is built
 * through it or a stream on it delivers data; a relay that left CREATE2 or
 * EXTEND2 unanswered is avoided as a chosen hop for UNRESPONSIVE_MS.
 *
 * C tor has no such list: it marks the guard failed (`circuit_build_failed`)
 * and otherwise may pick the same silent relay again; on a testnet where
 * faults freeze relays on purpose that costs every onion connection its
 * full timeout, so the client remembers silence for a minute.
 *
 * Also avoided for a minute: a relay the hop before it could not reach (an
 * EXTEND2 answered by DESTROY, extendRefused below; C tor's relay sends it
 * from circuit_n_chan_done when the channel to the next hop fails, and C
 * tor's client retries on a new path, circuituse.c circuit_build_failed,
 * but may draw the same dead relay again), and a first hop we could not
 * connect to (C tor connection_or_about_to_close marks it down until the
 * next consensus).
 */
import { DestroyReason } from '../core/cells.js';
import type { Channel } from '../net/channel.js';
import { CircuitError } from '../net/circuit-error.js';

/**
 * How long a relay that stopped answering is kept out of onion-service
 * choices (testnet choice: long enough to ride out a stalled process, short
 * enough that a recovered relay is soon chosen again).
 */
const UNRESPONSIVE_MS = 60_000;

export class RelayLiveness {
  /** When each first-hop channel last showed life (a hop built through it, CONNECTED, stream data). */
  private readonly heard = new WeakMap<Channel, number>();
  /** Relays that stopped answering (hex id) and until when they are avoided. */
  private readonly unresponsive = new Map<string, number>();

  constructor(private readonly now: () => number) {}

  /** `channel` showed life now. */
  heardFrom(channel: Channel): void {
    this.heard.set(channel, this.now());
  }

  /** When `channel` last showed life (-Infinity: never). */
  lastHeard(channel: Channel): number {
    return this.heard.get(channel) ?? Number.NEGATIVE_INFINITY;
  }

  /** Relays (hex ids) that stopped answering within the last UNRESPONSIVE_MS. */
  unresponsiveIds(): Set<string> {
    const now = this.now();
    for (const [id, until] of this.unresponsive) if (until <= now) this.unresponsive.delete(id);
    return new Set(this.unresponsive.keys());
  }

  isUnresponsive(id: string): boolean {
    const until = this.unresponsive.get(id);
    return until !== undefined && until > this.now();
  }

  markUnresponsive(id: string): void {
    this.unresponsive.set(id, this.now() + UNRESPONSIVE_MS);
  }
}

/**
 * Whether an EXTEND2 failed because the extending relay could not reach the
 * next hop: a DESTROY with CONNECTFAILED, or CHANNEL_CLOSED from the relay
 * while our own link to the first hop is still open (tor-spec §5.4).
 */
export function extendRefused(e: unknown, channel: Channel): boolean {
  if (!(e instanceof CircuitError) || e.kind !== 'destroyed') return false;
  if (e.reason === DestroyReason.CONNECTFAILED) return true;
  return e.reason === DestroyReason.CHANNEL_CLOSED && channel.isOpen;
}
