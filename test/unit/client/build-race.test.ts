// raceBuilds (client/build-race.ts): the attempts behind one circuit request
// (path-spec §2.4) — a failed or slow attempt launches the next, the first
// circuit to open wins and any later one is closed, the slow attempt's guard
// is avoided next, and errors no other attempt can fix fail at once.
import { describe, expect, it } from 'vitest';
import {
  failureReason,
  HopSilentError,
  raceBuilds,
  type SoftTimeout,
} from '../../../services/client/build-race.js';
import { NoConsensusError } from '../../../services/client/circuit-options.js';
import { DestroyReason } from '../../../services/core/cells.js';
import { PathError } from '../../../services/core/path.js';
import { CircuitError } from '../../../services/net/circuit-error.js';
import type { OriginCircuit } from '../../../services/net/origin-circuit.js';

interface FakeCirc {
  name: string;
  destroyed: number | null;
  destroy(reason?: number): void;
}
const circ = (name: string): FakeCirc => ({
  name,
  destroyed: null,
  destroy(reason = 0) {
    this.destroyed = reason;
  },
});
const asCirc = (c: FakeCirc) => c as unknown as OriginCircuit;

/** An attempt the test settles by hand, with what it was given. */
interface Attempt {
  avoid: ReadonlySet<string>;
  soft: (t: SoftTimeout) => void;
  resolve: (c: FakeCirc) => void;
  reject: (e: unknown) => void;
}
function recorder() {
  const attempts: Attempt[] = [];
  const attempt = (avoid: ReadonlySet<string>, soft: (t: SoftTimeout) => void) =>
    new Promise<OriginCircuit>((resolve, reject) => {
      attempts.push({ avoid, soft, resolve: (c) => resolve(asCirc(c)), reject });
    });
  return { attempts, attempt };
}
const tick = () => new Promise((r) => setImmediate(r));

describe('raceBuilds', () => {
  it('a failed attempt launches the next; the first circuit to open wins', async () => {
    const { attempts, attempt } = recorder();
    const p = raceBuilds(3, attempt);
    expect(attempts).toHaveLength(1);
    attempts[0]!.reject(new CircuitError(DestroyReason.CONNECTFAILED, 'x'));
    await tick();
    expect(attempts).toHaveLength(2);
    const won = circ('b');
    attempts[1]!.resolve(won);
    expect(await p).toBe(won);
    expect(attempts).toHaveLength(2);
  });

  it('a slow attempt launches another beside it, avoiding its guard; the later circuit is closed', async () => {
    const { attempts, attempt } = recorder();
    const p = raceBuilds(3, attempt);
    attempts[0]!.soft({ slowGuard: 'guard-a' });
    expect(attempts).toHaveLength(2);
    expect([...attempts[1]!.avoid]).toEqual(['guard-a']);
    expect(attempts[0]!.avoid.size).toBe(0);
    const first = circ('second');
    attempts[1]!.resolve(first);
    expect(await p).toBe(first);
    const late = circ('first, late');
    attempts[0]!.resolve(late);
    await tick();
    expect(late.destroyed).toBe(DestroyReason.FINISHED);
    expect(first.destroyed).toBeNull();
  });

  it('launches at most maxAttempts and rejects with the last error once all failed', async () => {
    const { attempts, attempt } = recorder();
    const p = raceBuilds(2, attempt);
    attempts[0]!.soft({ slowGuard: null });
    attempts[0]!.soft({ slowGuard: null });
    expect(attempts).toHaveLength(2);
    attempts[1]!.reject(new Error('second'));
    await tick();
    expect(attempts).toHaveLength(2);
    attempts[0]!.reject(new Error('first, last to fail'));
    await expect(p).rejects.toThrow('first, last to fail');
  });

  it('no consensus, or no path, fails at once: another attempt would meet the same', async () => {
    for (const e of [new NoConsensusError(), new PathError('exit', 0, 'exit')]) {
      const { attempts, attempt } = recorder();
      const p = raceBuilds(3, attempt);
      attempts[0]!.reject(e);
      await expect(p).rejects.toBe(e);
      expect(attempts).toHaveLength(1);
    }
  });

  it('a requested last hop that did not answer fails at once, even beside a slow attempt', async () => {
    const { attempts, attempt } = recorder();
    const p = raceBuilds(3, attempt, 'hsdir-id');
    attempts[0]!.soft({ slowGuard: null });
    expect(attempts).toHaveLength(2);
    const silent = new HopSilentError('hsdir-id', 'hsdir');
    attempts[1]!.reject(silent);
    await expect(p).rejects.toBe(silent);
    expect(attempts).toHaveLength(2);
    // The slow attempt, to the same relay, opening late is closed.
    const late = circ('late');
    attempts[0]!.resolve(late);
    await tick();
    expect(late.destroyed).toBe(DestroyReason.FINISHED);
  });

  it('any other hop that did not answer launches the next attempt (it picks another path)', async () => {
    for (const lastHopId of ['hsdir-id', undefined]) {
      const { attempts, attempt } = recorder();
      const p = raceBuilds(3, attempt, lastHopId);
      attempts[0]!.reject(new HopSilentError('middle-id', 'middle'));
      await tick();
      expect(attempts).toHaveLength(2);
      const won = circ('b');
      attempts[1]!.resolve(won);
      expect(await p).toBe(won);
    }
  });
});

describe('failureReason', () => {
  it('names the DESTROY reason, the failure kind, a typed error code, or "error"', () => {
    expect(failureReason(new CircuitError(DestroyReason.CONNECTFAILED, 'x'))).toBe('connectfailed');
    expect(failureReason(new CircuitError(DestroyReason.TIMEOUT, 'x', 'timeout'))).toBe('timeout');
    expect(failureReason(new HopSilentError('id', 'relay'))).toBe('timeout');
    expect(failureReason(new NoConsensusError())).toBe('no_consensus');
    expect(failureReason(new Error('plain'))).toBe('error');
  });
});
