// The expiry rule for circuits handed to the CircuitManager by the onion
// client (joined rendezvous circuits), with a fake clock: dirty from the
// hand-over, closed at the first check after MaxCircuitDirtiness with no
// stream open (C tor `circuit_expire_old_circuits_clientside`); retired ones
// (a stream timed out on them) at the first check with no stream open.
import { EventEmitter } from 'node:events';
import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { CircuitManager } from '../../../services/client/circuit-manager.js';
import { DEFAULT_CIRCUIT_OPTIONS } from '../../../services/client/circuit-options.js';
import type { OriginCircuit } from '../../../services/net/origin-circuit.js';
import { silentLogger } from '../../../services/runtime/log.js';

class FakeCirc extends EventEmitter {
  isOpen = true;
  streamCount = 0;
  destroyed = false;
  destroy(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    this.isOpen = false;
    this.emit('destroyed', { reason: 0, remote: false });
  }
}

function manager() {
  let now = 1_000_000;
  const registry = new Registry();
  const cm = new CircuitManager(
    { logger: silentLogger, registry, now: () => now },
    { ...DEFAULT_CIRCUIT_OPTIONS, maxDirtinessMs: 10 * 60_000 },
  );
  const advance = (ms: number) => {
    now += ms;
  };
  const open = async () =>
    (await registry.getSingleMetric('shallot_client_circuits_open')?.get())?.values[0]?.value;
  return { cm, advance, open };
}

const asCirc = (c: FakeCirc) => c as unknown as OriginCircuit;

describe('rendezvous circuit expiry', () => {
  it('is kept for MaxCircuitDirtiness, then closed once no stream is open', async () => {
    const { cm, advance, open } = manager();
    const c = new FakeCirc();
    cm.expireWhenIdle(asCirc(c));
    expect(await open()).toBe(1);
    advance(10 * 60_000 - 1);
    cm.expireOld();
    expect(c.destroyed).toBe(false);
    advance(1);
    c.streamCount = 1;
    cm.expireOld();
    expect(c.destroyed).toBe(false);
    c.streamCount = 0;
    cm.expireOld();
    expect(c.destroyed).toBe(true);
    expect(await open()).toBe(0);
    cm.close();
  });

  it('a retired circuit (stream timeout) closes at the first check with no stream open', () => {
    const { cm } = manager();
    const c = new FakeCirc();
    cm.expireWhenIdle(asCirc(c));
    c.streamCount = 1;
    cm.retire(asCirc(c), 'stream_timeout');
    cm.expireOld();
    expect(c.destroyed).toBe(false);
    c.streamCount = 0;
    cm.expireOld();
    expect(c.destroyed).toBe(true);
    cm.close();
  });

  it('close() closes handed-over circuits too', () => {
    const { cm } = manager();
    const c = new FakeCirc();
    cm.expireWhenIdle(asCirc(c));
    cm.close();
    expect(c.destroyed).toBe(true);
  });
});
