/**
 * The client's entry guards, kept and persisted (guard-spec §4; the state
 * machine itself is core/guards.ts, pure). C tor keeps the same state in
 * its state file (`Guard` lines); we keep `guards.json` in the data dir,
 * written through runtime/private-file.ts, and start a fresh sample when it
 * is missing or unreadable (as C tor does with a corrupt state file, after
 * a warning).
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import type { Rng } from '../core/crypto.js';
import {
  decodeGuardState,
  emptyGuardState,
  encodeGuardState,
  type GuardPick,
  type GuardState,
  markGuardFailure,
  markGuardSuccess,
  type PickGuardOptions,
  pickGuard,
  type UpdateSampleOptions,
  updateSample,
} from '../core/guards.js';
import type { PathRelay } from '../core/path.js';
import type { Logger } from '../runtime/log.js';
import { writePrivateFile } from '../runtime/private-file.js';

export class GuardStore {
  private state: GuardState = emptyGuardState();

  /** `dataDir` undefined: the state lives in memory only. */
  constructor(
    private readonly dataDir: string | undefined,
    private readonly logger: Logger,
  ) {}

  /** Loads persisted guard state, if any. */
  async load(): Promise<void> {
    if (!this.dataDir) return;
    try {
      this.state = decodeGuardState(await readFile(this.file(), 'utf8'));
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') {
        this.logger.warn('guard state unreadable; starting a fresh sample', { error: (e as Error).message });
      }
    }
  }

  /** Updates the sample from a new consensus (guard-spec §4.6). */
  sample(relays: readonly PathRelay[], opts: UpdateSampleOptions, rng: Rng): void {
    this.state = updateSample(this.state, relays, opts, rng);
    this.save();
  }

  pick(opts: PickGuardOptions): GuardPick | undefined {
    return pickGuard(this.state, opts);
  }

  /** A circuit through guard `id` failed at its first hop (guard-spec §4.7). */
  failed(id: string, nowMs: number): void {
    this.state = markGuardFailure(this.state, id, nowMs);
    this.save();
  }

  /** A circuit through guard `id` opened (guard-spec §4.7: confirms it). */
  succeeded(id: string, nowMs: number, rng: Rng): void {
    this.state = markGuardSuccess(this.state, id, nowMs, rng);
    this.save();
  }

  private file(): string {
    return path.join(this.dataDir ?? '.', 'guards.json');
  }

  /** Writes in the background; a failed write keeps the state in memory. */
  private save(): void {
    if (!this.dataDir) return;
    void writePrivateFile(this.file(), encodeGuardState(this.state)).catch(() => {});
  }
}
