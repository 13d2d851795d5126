/**
 * One client's layer-2 vanguards (vanguards-lite, proposal 333): the set
 * its onion-service circuits take their second hop from, kept up to date
 * against each consensus it builds with.
 *
 * Not in this module: the set's rules, pure (core/vanguards.ts: how many,
 * how long each lives, how they are drawn and replaced); which circuits use
 * them (build-path.ts, circuit-manager.ts).
 *
 * Design notes: kept in memory only, as C tor's vanguards-lite, so a
 * restart draws a new set; a change is logged, since it shapes every
 * onion-service path after it.
 */
import type { Rng } from '../core/crypto.js';
import { updateVanguards, type Vanguard } from '../core/vanguards.js';
import type { Logger } from '../runtime/log.js';
import type { NetDir, NetRelay } from './netdir.js';

export class Layer2Vanguards {
  private vanguards: readonly Vanguard[] = [];

  constructor(private readonly c: { now: () => number; rng: Rng; logger: Logger }) {}

  /** The layer-2 vanguards now, replacing expired ones and those that left the consensus. */
  relays(dir: NetDir): NetRelay[] {
    const next = updateVanguards(this.vanguards, dir.relays, {
      nowMs: this.c.now(),
      rng: this.c.rng,
      weights: dir.consensus.bandwidthWeights,
    });
    if (next !== this.vanguards) {
      this.vanguards = next;
      this.c.logger.info('layer-2 vanguards', { relays: next.map((v) => dir.get(v.id)?.nickname ?? v.id) });
    }
    return next.map((v) => dir.get(v.id)).filter((r): r is NetRelay => r !== undefined);
  }

  /** The current set's ids (hex), as last updated. */
  get ids(): string[] {
    return this.vanguards.map((v) => v.id);
  }
}
