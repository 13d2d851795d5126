// OnionClient against fake circuits: the intro-phase outcomes a live network
// cannot easily produce (every INTRODUCE_ACK timing out -> 0xF7, a NACK then a
// timeout -> 0xF2), refetching a cached descriptor when its intro points all
// fail, HSDir answers (404 everywhere -> 0xF0, garbage -> 0xF1), a
// rendezvous point that cannot be reached -> 0xF3 after trying another, and
// the connect's retries on new circuits (bounded in count and time).
import type { Duplex } from 'node:stream';
import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import type { CircuitManager } from '../../../services/client/circuit-manager.js';
import { ConnectError } from '../../../services/client/connect.js';
import { connectReply } from '../../../services/client/connect-reply.js';
import { NetDir } from '../../../services/client/netdir.js';
import { OnionClient, type OnionClientOptions, onionRetry } from '../../../services/client/onion.js';
import { onionPeriodKeys, otherPeriodKeys } from '../../../services/client/onion-params.js';
import { RetriableConnectError } from '../../../services/client/onion-rendezvous.js';
import { DestroyReason } from '../../../services/core/cells.js';
import { ed25519Expand } from '../../../services/core/crypto/ed25519-math.js';
import {
  ed25519Generate,
  legacyIdFromEd25519,
  randomBytes,
  x25519Generate,
} from '../../../services/core/crypto.js';
import type { ConsensusRelay } from '../../../services/core/dir/relay-entry.js';
import { encodeIntroduceAck } from '../../../services/core/hs-cells.js';
import { buildHsDescriptor, type IntroPointInfo } from '../../../services/core/hs-descriptor.js';
import { blindExpandedKey } from '../../../services/core/hs-keys.js';
import { relayLinkSpecifiers } from '../../../services/core/link-specifiers.js';
import { encodeOnionAddress } from '../../../services/core/onion-address.js';
import type { RelayMessage } from '../../../services/core/relay-cell.js';
import { SocksReply } from '../../../services/core/socks5.js';
import { CircuitError } from '../../../services/net/circuit-error.js';
import { dirStream } from '../../helpers/dir-stream.js';
import { testConsensus, testRelay } from '../../helpers/fake-consensus.js';

const FLAGS = ['Fast', 'Guard', 'HSDir', 'Running', 'Stable', 'Valid'];

function consensusRelay(i: number): ConsensusRelay {
  return testRelay({
    nickname: `r${i}`,
    identity: ed25519Generate().public,
    ntorOnionKey: x25519Generate().public,
    address: `10.0.0.${i + 1}`,
    orPort: 9000 + i,
    flags: FLAGS,
  });
}

const now = Date.now();
const consensus = testConsensus(
  Array.from({ length: 6 }, (_, i) => consensusRelay(i)),
  { validAfterMs: now, freshUntilMs: now + 60_000, validUntilMs: now + 180_000, knownFlags: FLAGS },
);
const dir = new NetDir(consensus);

function descriptorFor(seed: Uint8Array, intros: number[], period = onionPeriodKeys): string {
  const pub = ed25519Generate(() => seed).public;
  const k = period(pub, consensus);
  const introPoints: IntroPointInfo[] = intros.map((i) => {
    const r = dir.relays[i]!;
    return {
      linkSpecifiers: relayLinkSpecifiers({
        address: r.address,
        port: r.port,
        legacyId: legacyIdFromEd25519(r.identity),
        ed25519Id: r.identity,
      }),
      onionKey: r.ntorKey,
      authKey: ed25519Generate().public,
      encKey: x25519Generate().public,
    };
  });
  return buildHsDescriptor(
    {
      blindedKey: blindExpandedKey(ed25519Expand(seed), k.tp, k.len),
      blindedPub: k.blindedPub,
      descSigningSeed: randomBytes(32),
      revisionCounter: 1n,
      introPoints,
      subcredential: k.subcredential,
      nowMs: Date.now(),
    },
    randomBytes,
  );
}

type IntroBehaviour = 'nack' | 'timeout' | 'build-timeout';

interface Scenario {
  /** HSDir answer: status and body. */
  hsdir: () => { status: number; body: string };
  /** What each successive intro circuit does with INTRODUCE1. */
  intro: IntroBehaviour[];
  /** This many rendezvous circuit builds fail first (CONNECTFAILED), then they succeed. */
  rendFails?: number;
  /** Called on each rendezvous build (to move a fake clock). */
  onRendBuild?: () => void;
}

class FakeCirc {
  isOpen = true;
  destroyed = false;
  private waiters: {
    match: (h: number, m: RelayMessage, s: number) => boolean;
    res: (v: unknown) => void;
    rej: (e: Error) => void;
  }[] = [];

  constructor(
    readonly purpose: string,
    private readonly scenario: Scenario,
    private readonly introBehaviour: IntroBehaviour | undefined,
  ) {}

  waitFor(
    match: (h: number, m: RelayMessage, s: number) => boolean,
  ): Promise<{ hop: number; msg: RelayMessage }> {
    return new Promise((res, rej) => {
      this.waiters.push({ match, res: res as (v: unknown) => void, rej });
    });
  }

  private deliver(msg: RelayMessage): void {
    const i = this.waiters.findIndex((w) => w.match(2, msg, 0));
    if (i >= 0) this.waiters.splice(i, 1)[0]!.res({ hop: 2, msg });
  }

  sendControl(msg: RelayMessage): void {
    if (msg.type === 'ESTABLISH_RENDEZVOUS')
      this.deliver({ type: 'RENDEZVOUS_ESTABLISHED', body: new Uint8Array(0) });
    if (msg.type === 'INTRODUCE1') {
      if (this.introBehaviour === 'nack') {
        this.deliver({ type: 'INTRODUCE_ACK', body: encodeIntroduceAck({ status: 1, extensions: [] }) });
      } else {
        const err = new CircuitError(DestroyReason.TIMEOUT, 'timed out', 'timeout');
        for (const w of this.waiters.splice(0)) w.rej(err);
      }
    }
  }

  async openDirStream(): Promise<Duplex> {
    return dirStream(this.scenario.hsdir());
  }

  once(): void {}

  destroy(): void {
    this.destroyed = true;
    this.isOpen = false;
    const err = new CircuitError(DestroyReason.FINISHED, 'destroyed');
    for (const w of this.waiters.splice(0)) w.rej(err);
  }
}

const SIX = { maxRendezvousTries: 6 };

function harness(scenario: Scenario, opts: OnionClientOptions = {}) {
  const builds: string[] = [];
  const circs: FakeCirc[] = [];
  let intro = 0;
  const circuits = {
    opts: { maxDirtinessMs: 600_000 },
    isUnresponsive: () => false,
    unresponsiveIds: () => new Set<string>(),
    retire() {},
    streamTimedOut() {},
    isRetired: () => false,
    watchStream: (_c: unknown, s: unknown) => s,
    expireWhenIdle() {},
    // No network model here: nothing by location (client/location-metrics.ts has its own test).
    locations: { onionConnected() {} },
    async build(req: { purpose: string }) {
      builds.push(req.purpose);
      if (req.purpose === 'onion-rend') scenario.onRendBuild?.();
      if (req.purpose === 'onion-rend' && count('onion-rend') <= (scenario.rendFails ?? 0))
        throw new CircuitError(DestroyReason.CONNECTFAILED, 'no');
      let behaviour: IntroBehaviour | undefined;
      if (req.purpose === 'onion-intro') {
        behaviour = scenario.intro[intro++ % scenario.intro.length];
        if (behaviour === 'build-timeout')
          throw new CircuitError(DestroyReason.TIMEOUT, 'build timed out', 'timeout');
      }
      const c = new FakeCirc(req.purpose, scenario, behaviour);
      circs.push(c);
      return c;
    },
  } as unknown as CircuitManager;
  const registry = new Registry();
  const oc = new OnionClient(
    { circuits, dir },
    { registry, refetchBackoffMs: 0, maxRendezvousTries: 1, ...opts },
  );
  const connect = (host: string) =>
    oc.connect({ command: 1, host, port: 80, addressType: 'domain', isolationKey: 'k' }).then(
      () => 'ok' as const,
      // The SOCKS5 code the edge answers with, so each case pins its prop 304 code.
      (e: unknown) => (e instanceof ConnectError ? connectReply(e).socks5 : e),
    );
  const count = (purpose: string) => builds.filter((b) => b === purpose).length;
  return { oc, connect, count, circs, registry };
}

/** shallot_client_stream_retries_total{server="onion"} by reason (non-zero ones). */
async function retries(registry: Registry): Promise<Record<string, number>> {
  const m = await registry.getSingleMetric('shallot_client_stream_retries_total')?.get();
  return Object.fromEntries(
    (m?.values ?? [])
      .filter((v) => v.value > 0 && v.labels.server === 'onion')
      .map((v) => [String(v.labels.reason), v.value]),
  );
}

function service(intros: number[]) {
  const seed = randomBytes(32);
  const address = encodeOnionAddress(ed25519Generate(() => seed).public);
  return { address, seed, text: descriptorFor(seed, intros) };
}

describe('OnionClient intro phase', () => {
  it('0xF7 when every intro point times out (ACK or circuit build), after the connect attempts', async () => {
    const s = service([1, 2, 3]);
    const h = harness(
      { hsdir: () => ({ status: 200, body: s.text }), intro: ['timeout', 'build-timeout'] },
      SIX,
    );
    expect(await h.connect(s.address)).toBe(SocksReply.ONION_INTRO_TIMEOUT);
    // 6 attempts (maxRendezvousTries), each after a fresh fetch, on new circuits to the 3 intro points.
    expect(h.count('onion-intro')).toBe(18);
    expect(h.count('hsdir')).toBe(6);
    expect(await retries(h.registry)).toEqual({ descriptor: 5 });
    // Nothing is left open: intro and rendezvous circuits are all torn down.
    expect(h.circs.filter((c) => c.purpose !== 'hsdir').every((c) => c.destroyed)).toBe(true);
  });

  it('0xF2 when the failures are not all timeouts', async () => {
    const s = service([1, 2]);
    const h = harness(
      {
        hsdir: () => ({ status: 200, body: s.text }),
        intro: ['nack', 'timeout'],
      },
      { maxRendezvousTries: 1 },
    );
    expect(await h.connect(s.address)).toBe(SocksReply.ONION_INTRO_FAILED);
    expect(h.count('onion-intro')).toBe(2);
  });

  it('every intro point NACKing: fetches the descriptor again and uses the new intro points', async () => {
    const old = service([1, 2]);
    // The service moved its intro points (the old ones lost their circuits) and republished.
    const moved = { ...old, text: descriptorFor(old.seed, [3]) };
    let fetches = 0;
    const h = harness(
      { hsdir: () => ({ status: 200, body: fetches++ === 0 ? old.text : moved.text }), intro: ['nack'] },
      { maxRendezvousTries: 2 },
    );
    expect(await h.connect(old.address)).toBe(SocksReply.ONION_INTRO_FAILED);
    expect(await retries(h.registry)).toEqual({ descriptor: 1 });
    expect(h.count('hsdir')).toBe(2);
    // Attempt 1 tried the 2 old intro points, attempt 2 the single new one.
    expect(h.count('onion-intro')).toBe(2 + 1);
  });

  it('0xF2 when no intro point is in the consensus', async () => {
    const s = service([]);
    const h = harness({ hsdir: () => ({ status: 200, body: s.text }), intro: ['nack'] });
    expect(await h.connect(s.address)).toBe(SocksReply.ONION_INTRO_FAILED);
    expect(h.count('onion-rend')).toBe(0);
  });

  it('an intro point that NACKed is not tried again: one refetch, then 0xF2 (C tor client_desc_has_arrived)', async () => {
    const s = service([1, 2]);
    const h = harness(
      { hsdir: () => ({ status: 200, body: s.text }), intro: ['nack'] },
      { maxRendezvousTries: 6 },
    );
    expect(await h.connect(s.address)).toBe(SocksReply.ONION_INTRO_FAILED);
    // Both intro points NACKed; the refetched descriptor lists the same two: no further attempt.
    expect(h.count('hsdir')).toBe(2);
    expect(h.count('onion-intro')).toBe(2);
    expect(await retries(h.registry)).toEqual({ descriptor: 1 });
    expect(h.oc.cachedDescriptor(s.address)).not.toBeNull();
    // A second connection within the 2 minutes: the cached descriptor has no usable intro point,
    // so it is fetched again at once and, still listing the same ones, the answer is 0xF2 unintroduced.
    expect(await h.connect(s.address.toUpperCase())).toBe(SocksReply.ONION_INTRO_FAILED);
    expect(h.count('hsdir')).toBe(3);
    expect(h.count('onion-intro')).toBe(2);
  });

  it('0xF3 after trying three rendezvous points', async () => {
    const s = service([1]);
    const h = harness(
      { hsdir: () => ({ status: 200, body: s.text }), intro: ['nack'], rendFails: Infinity },
      { maxRendezvousTries: 1 },
    );
    expect(await h.connect(s.address)).toBe(SocksReply.ONION_REND_FAILED);
    expect(h.count('onion-rend')).toBe(3);
    const m = await h.registry.getSingleMetric('shallot_client_rendezvous_chosen_total')?.get();
    const relays = (m?.values ?? []).filter((v) => v.value > 0).map((v) => v.labels.relay);
    expect(new Set(relays).size).toBe(3);
  });

  it('a rendezvous circuit that cannot be built is tried again on new circuits (C tor circuit_build_failed)', async () => {
    const s = service([1]);
    // The first 3 rendezvous builds fail (a dead relay on the way): attempt 1 loses both its
    // rendezvous points, attempt 2 builds on its second and goes on to introduction.
    const h = harness(
      { hsdir: () => ({ status: 200, body: s.text }), intro: ['nack'], rendFails: 3 },
      { maxRendezvousTries: 2, maxRendAttempts: 2 },
    );
    expect(await h.connect(s.address)).toBe(SocksReply.ONION_INTRO_FAILED);
    expect(h.count('onion-rend')).toBe(4);
    // One intro circuit per attempt (built beside the rendezvous circuit; attempt 1's is closed unused).
    expect(h.count('onion-intro')).toBe(2);
    expect(await retries(h.registry)).toEqual({ rendezvous: 1 });
  });

  it('gives up after maxRendezvousTries rendezvous attempts, counting each retry', async () => {
    const s = service([1]);
    const h = harness(
      { hsdir: () => ({ status: 200, body: s.text }), intro: ['nack'], rendFails: Infinity },
      { ...SIX, maxRendAttempts: 2 },
    );
    expect(await h.connect(s.address)).toBe(SocksReply.ONION_REND_FAILED);
    expect(h.count('onion-rend')).toBe(12);
    expect(await retries(h.registry)).toEqual({ rendezvous: 5 });
  });

  it('starts no attempt past connectTimeoutMs', async () => {
    const s = service([1]);
    let t = 0;
    const h = harness(
      {
        hsdir: () => ({ status: 200, body: s.text }),
        intro: ['nack'],
        rendFails: Infinity,
        onRendBuild: () => (t += 40_000),
      },
      { now: () => t, connectTimeoutMs: 100_000, maxRendezvousTries: 6, maxRendAttempts: 2 },
    );
    expect(await h.connect(s.address)).toBe(SocksReply.ONION_REND_FAILED);
    // Attempt 1 ends at 80 s (two builds of 40 s), attempt 2 at 160 s: past the deadline, none after.
    expect(h.count('onion-rend')).toBe(4);
    expect(await retries(h.registry)).toEqual({ rendezvous: 1 });
  });
});

describe('onionRetry', () => {
  const rend = new RetriableConnectError('rend_failed', 'could not establish a rendezvous: x');
  const late = new RetriableConnectError('rend_failed', 'no RENDEZVOUS2 in time');
  const intro = new ConnectError('intro_failed', 'introduction failed: x');
  const o = { attempt: 1, max: 6, deadline: 1_000, backoffMs: 100 };
  it('retries circuit failures and timeouts at once, intro failures by a refetch after a doubling wait', () => {
    expect(onionRetry(rend, o, 0)).toEqual({ reason: 'rendezvous', delayMs: 0 });
    expect(onionRetry(late, o, 0)).toEqual({ reason: 'rendezvous', delayMs: 0 });
    expect(onionRetry(intro, o, 0)).toEqual({ reason: 'descriptor', delayMs: 100 });
    expect(onionRetry(intro, { ...o, attempt: 3 }, 0)).toEqual({ reason: 'descriptor', delayMs: 400 });
    expect(onionRetry(intro, { ...o, attempt: 5 }, 0)).toEqual({ reason: 'descriptor', delayMs: 800 });
  });
  it('gives up on final failures, at the last attempt and at the deadline', () => {
    expect(
      onionRetry(new ConnectError('rend_failed', 'RENDEZVOUS2 handshake does not verify'), o, 0),
    ).toBeNull();
    expect(onionRetry(new ConnectError('bad_address', 'x'), o, 0)).toBeNull();
    expect(onionRetry(new Error('x'), o, 0)).toBeNull();
    expect(onionRetry(rend, { ...o, attempt: 6 }, 0)).toBeNull();
    expect(onionRetry(rend, o, 1_000)).toBeNull();
  });
});

describe('OnionClient descriptor fetch', () => {
  it('0xF0 after asking every responsible HSDir, for both time periods', async () => {
    const s = service([1]);
    const h = harness({ hsdir: () => ({ status: 404, body: 'Not found\n' }), intro: ['nack'] });
    expect(await h.connect(s.address)).toBe(SocksReply.ONION_DESC_NOT_FOUND);
    expect(h.count('hsdir')).toBe(12);
  });

  it('falls back to the other time period when no HSDir has the current one (rend-spec-v3 §2.2.1)', async () => {
    const seed = randomBytes(32);
    const address = encodeOnionAddress(ed25519Generate(() => seed).public);
    const other = descriptorFor(seed, [1], otherPeriodKeys);
    let n = 0;
    // The six current-period fetches find nothing; the first other-period one finds it.
    const h = harness({
      hsdir: () => (++n <= 6 ? { status: 404, body: '' } : { status: 200, body: other }),
      intro: ['nack'],
    });
    // Decrypting it at all needs the other period's blinded key and subcredential; the NACK then ends the connect.
    expect(await h.connect(address)).toBe(SocksReply.ONION_INTRO_FAILED);
    expect(h.count('hsdir')).toBe(7);
    const cached = h.oc.cachedDescriptor(address);
    expect(cached?.introPoints.length).toBe(1);
  });

  it('0xF1 when the only copies found do not verify, and counts it', async () => {
    const s = service([1]);
    const other = service([1]);
    let n = 0;
    // One HSDir has garbage, one has another service's descriptor, the rest have nothing.
    const h = harness({
      hsdir: () => {
        n++;
        if (n === 1) return { status: 200, body: 'hs-descriptor 3\nnonsense\n' };
        if (n === 2) return { status: 200, body: other.text };
        return { status: 404, body: '' };
      },
      intro: ['nack'],
    });
    expect(await h.connect(s.address)).toBe(SocksReply.ONION_DESC_INVALID);
    const m = await h.registry.getSingleMetric('shallot_onion_connects_total')?.get();
    expect(m?.values.find((v) => v.labels.outcome === 'desc_invalid')?.value).toBe(1);
  });

  it('shares one fetch between concurrent requests for the same address', async () => {
    const s = service([1]);
    const h = harness({ hsdir: () => ({ status: 200, body: s.text }), intro: ['nack'] });
    const replies = await Promise.all([h.connect(s.address), h.connect(`www.${s.address}`)]);
    expect(replies).toEqual([SocksReply.ONION_INTRO_FAILED, SocksReply.ONION_INTRO_FAILED]);
    expect(h.count('hsdir')).toBe(1);
  });

  it('uses a good copy from a later HSDir after a bad one', async () => {
    const s = service([1]);
    let n = 0;
    const h = harness({
      hsdir: () => (++n === 1 ? { status: 200, body: 'garbage' } : { status: 200, body: s.text }),
      intro: ['nack'],
    });
    // It gets as far as the intro point: the descriptor was accepted.
    expect(await h.connect(s.address)).toBe(SocksReply.ONION_INTRO_FAILED);
    expect(h.count('hsdir')).toBe(2);
  });

  it('0xF6 for a bad address and NETWORK_UNREACHABLE before a consensus', async () => {
    const s = service([1]);
    const h = harness({ hsdir: () => ({ status: 404, body: '' }), intro: ['nack'] });
    expect(await h.connect(`x${s.address}`)).toBe(SocksReply.ONION_BAD_ADDRESS);
    expect(h.count('hsdir')).toBe(0);
    const none = new OnionClient({
      circuits: { opts: { maxDirtinessMs: 1 } } as unknown as CircuitManager,
      dir: null,
    });
    const r = await none
      .connect({ command: 1, host: s.address, port: 80, addressType: 'domain', isolationKey: 'k' })
      .catch((e: unknown) => e);
    expect(r).toBeInstanceOf(ConnectError);
    expect((r as ConnectError).kind).toBe('not_bootstrapped');
    expect(connectReply(r).socks5).toBe(SocksReply.NETWORK_UNREACHABLE);
  });
});
