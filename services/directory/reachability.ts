/**
 * The authority's reachability test and bandwidth scanner (dir-spec §3.4.2
 * "Running"; C tor dirserv_single_reachability_test, and the bandwidth
 * authorities' scanner of dir-spec §3.4.1 `Measured=`).
 *
 * Overview:
 * - `probe` dials the relay's advertised address:orPort and completes the
 *   link handshake as a client with `expectedIdentity` = the descriptor's
 *   identity (tor-spec §4: the responder's CERTS chain is checked). A bare
 *   TCP accept, or another relay's port, does not pass. The channel stays
 *   open: while it is, the relay is still reachable at that address and the
 *   next probe costs nothing (C tor authorities likewise keep OR
 *   connections to relays they test).
 * - `measure`, for a relay held reachable, dials a channel of its own
 *   (closed afterwards: see measure), builds a one-hop circuit over it,
 *   opens BEGIN_DIR and times a fetch of the relay's cached consensus, at
 *   most MEASURE_BYTES of it: bytes / seconds from the request to the last
 *   byte counted. It is the relay's throughput as this authority sees it,
 *   never the relay's claim.
 * - At most `concurrency` tests of new descriptors run at once, as many
 *   re-tests of listed relays in their own slots (a flood of forged
 *   descriptors queues only behind itself and never delays a vote), and a
 *   quarter as many measurements in theirs; the rest wait in FIFOs, so a
 *   flood costs bounded effort.
 * - One test per relay and address at a time, whichever kind: a test of
 *   identity X at address:orPort A is one entry, waiting for a slot or
 *   dialling, and any probe of X at A while it exists (a second re-test, or
 *   the test of a descriptor X uploaded at A, and the reverse) shares it:
 *   one dial, one result, in the slots of the kind that started it. C tor
 *   likewise credits X with any handshake that proved X's identity at the
 *   address its descriptor names, whatever launched the connection
 *   (dirserv_orconn_tls_done checks identity and router_has_orport), so
 *   the two kinds are the same test. A probe of X at another address (X
 *   moved) is another test, with its own entry; the round counts a re-test
 *   only if X's descriptor still names its address (descriptors.ts).
 * - `isQueued(t)` says whether the test of t (its identity at its address)
 *   is still waiting for a slot. The round counts such a re-test as no test
 *   (descriptors.ts; C tor records only tests that ran), one that started
 *   and outlived the round's deadline as a failure. Started is a property
 *   of the entry: a test of X at another address, or one of another kind
 *   that already ended, does not change what the round sees (issue 17:
 *   before, a set of identities being dialled, which both kinds touched,
 *   made a waiting re-test look started while X's new descriptor was being
 *   tested, and a running one look waiting once that test ended).
 *
 * Not in this module: which relays to probe or when (authority.ts), what
 * the results mean for flags (admission.ts, core/dir/flags.ts assignFlags).
 *
 * Limitations: a relay whose process hangs with its channel open still
 * counts as reachable until the channel closes (as a TCP test would). The
 * measurement moves one consensus document, so on a loopback testnet it is
 * dominated by latency and CPU load: honest and comparable between relays,
 * not a capacity test.
 */
import type { Duplex } from 'node:stream';
import { toHex } from '../core/bytes.js';
import type { HandshakeName } from '../core/create-handshake.js';
import type { RelayDescriptor } from '../core/dir/descriptor.js';
import { Channel } from '../net/channel.js';
import { CONSENSUS_PATH } from '../net/dir-client.js';
import { hopTargetOf } from '../net/hop-target.js';
import type { LinkShaping } from '../net/link-delay.js';
import { ChannelError } from '../net/link-handshake.js';
import { OriginCircuit } from '../net/origin-circuit.js';
import { dialLink, linkUrl } from '../net/transport.js';

/** Bytes timed per measurement: enough to leave the latency behind, bounded for large networks. */
export const MEASURE_BYTES = 64 * 1024;
const MAX_FETCHES = 8;

export type ProbeResult = 'up' | 'refused' | 'timeout' | 'wrong-identity' | 'failed';

/** What a probe needs of a descriptor; of its link URL only the scheme (ws/wss) is used. */
export type ProbeTarget = Pick<
  RelayDescriptor,
  'nickname' | 'identity' | 'ntorOnionKey' | 'address' | 'orPort' | 'linkUrl'
>;

export interface ReachabilityOptions {
  /** Per probe (dial + handshake) and per measurement. */
  timeoutMs: number;
  /** Probes and measurements in flight at once. */
  concurrency: number;
  /** Dial wss when the descriptor names no scheme (default true). */
  tls?: boolean;
  /** CREATE2 handshake of the measurement circuits (default ntor): the network's own. */
  handshake?: HandshakeName;
  /** The authority's link name and model location (net/link-delay.ts), on every probe link. */
  shaping?: LinkShaping | null;
}

interface Held {
  where: string;
  channel: Channel;
}

/** A FIFO semaphore: `run` waits for one of `limit` slots. */
class Slots {
  private active = 0;
  private readonly waiting: (() => void)[] = [];
  constructor(private readonly limit: number) {}

  async run<T>(fn: () => Promise<T>): Promise<T> {
    if (this.active >= this.limit) await new Promise<void>((r) => this.waiting.push(r));
    else this.active++;
    try {
      return await fn();
    } finally {
      const next = this.waiting.shift();
      if (next) next();
      else this.active--;
    }
  }
}

/** Where a relay says it listens: what a test, a held channel and a descriptor's verified address are keyed by. */
export const whereOf = (t: ProbeTarget) => `${t.address}:${t.orPort}`;
/** What one test is of: an identity at an address. */
const testKey = (t: ProbeTarget) => `${toHex(t.identity)}@${whereOf(t)}`;

/** One test of a relay at an address, waiting for a slot or dialling, shared by every probe of it. */
interface Test {
  started: boolean;
  result: Promise<ProbeResult>;
}

function classify(e: unknown): ProbeResult {
  if (e instanceof ChannelError) {
    if (e.reason === 'identity') return 'wrong-identity';
    if (e.reason === 'timeout') return 'timeout';
    return 'failed';
  }
  const msg = (e as Error).message ?? '';
  if (/ECONNREFUSED/.test(msg)) return 'refused';
  if (/timed? ?out|ETIMEDOUT/i.test(msg)) return 'timeout';
  return 'failed';
}

/**
 * Sends the consensus request on a BEGIN_DIR stream and counts the reply's
 * bytes, up to `limit`; the bytes, or undefined unless the status is 200.
 */
function fetchCounted(stream: Duplex, limit: number): Promise<number | undefined> {
  return new Promise((resolve, reject) => {
    let bytes = 0;
    let head = '';
    const finish = () => {
      stream.off('data', onData);
      stream.destroy();
      resolve(/^HTTP\/1\.[01] 200 /.test(head) ? bytes : undefined);
    };
    const onData = (c: Buffer) => {
      if (head.length < 16) head += c.subarray(0, 16).toString('latin1');
      bytes += c.length;
      if (bytes >= limit) finish();
    };
    stream.on('data', onData);
    stream.once('end', finish);
    stream.once('error', reject);
    stream.write(Buffer.from(`GET ${CONSENSUS_PATH} HTTP/1.0\r\nContent-Length: 0\r\n\r\n`, 'latin1'));
  });
}

interface Tally {
  bytes: number;
  ms: number;
}

const rate = (t: Tally) => (t.bytes > 0 ? Math.round((t.bytes * 1000) / Math.max(1, t.ms)) : undefined);

/**
 * Fetches the consensus on fresh BEGIN_DIR streams of `circ` until
 * MEASURE_BYTES arrived (at most MAX_FETCHES streams, so a small consensus
 * is fetched a few times and one slow moment weighs less), adding each
 * completed fetch to `tally` (what a timeout leaves counts: a slow relay is
 * measured slow, not unmeasured).
 */
async function timedFetches(circ: OriginCircuit, timeoutMs: number, tally: Tally): Promise<void> {
  for (let i = 0; i < MAX_FETCHES && tally.bytes < MEASURE_BYTES; i++) {
    const started = performance.now();
    const stream = await circ.openDirStream(timeoutMs);
    const got = await fetchCounted(stream, MEASURE_BYTES - tally.bytes);
    if (got === undefined) return;
    tally.bytes += got;
    tally.ms += performance.now() - started;
  }
}

/**
 * Dials `t`'s advertised address and completes the link handshake as a
 * client that expects the descriptor's identity (tor-spec §4); the scheme
 * (ws/wss) from its link URL, else from `opts.tls`.
 */
function openChannel(t: ProbeTarget, opts: ReachabilityOptions): Promise<Channel> {
  const tls = t.linkUrl ? t.linkUrl.startsWith('wss:') : (opts.tls ?? true);
  return dialLink(linkUrl(t.address, t.orPort, tls), opts.timeoutMs, opts.shaping).then((link) =>
    Channel.initiate(link, {
      keys: null,
      expectedIdentity: t.identity,
      limits: { handshakeTimeoutMs: opts.timeoutMs },
    }),
  );
}

export class ReachabilityTester {
  private readonly slots: Slots;
  private readonly listedSlots: Slots;
  private readonly measureSlots: Slots;
  private readonly held = new Map<string, Held>();
  /** Tests waiting for or holding a slot, by testKey (one per relay and address). */
  private readonly tests = new Map<string, Test>();
  private closed = false;

  constructor(private readonly opts: ReachabilityOptions) {
    this.slots = new Slots(Math.max(1, opts.concurrency));
    this.listedSlots = new Slots(Math.max(1, opts.concurrency));
    this.measureSlots = new Slots(Math.max(1, Math.ceil(opts.concurrency / 4)));
  }

  /** Whether an open, identity-checked channel to `t` at its advertised address is held. */
  isHeld(t: ProbeTarget): boolean {
    const h = this.held.get(toHex(t.identity));
    return h !== undefined && h.where === whereOf(t) && h.channel.isOpen;
  }

  /**
   * Tests `t`; `listed` relays (verified before) use their own slots. A
   * test of the same relay at the same address already waiting or running,
   * of either kind, is shared, not queued again (issue 17: at 2,000 relays
   * a round's re-tests outlasted the interval, and each round queued the
   * same relays once more).
   */
  async probe(t: ProbeTarget, listed = false): Promise<ProbeResult> {
    if (this.isHeld(t)) return 'up';
    const key = testKey(t);
    const have = this.tests.get(key);
    if (have) return have.result;
    const test: Test = { started: false, result: Promise.resolve<ProbeResult>('failed') };
    test.result = (listed ? this.listedSlots : this.slots)
      .run(() => {
        test.started = true;
        return this.dial(t);
      })
      .finally(() => {
        if (this.tests.get(key) === test) this.tests.delete(key);
      });
    this.tests.set(key, test);
    return test.result;
  }

  /**
   * Whether the test of `t` (its identity at its address) is still waiting
   * for a slot (not started): what it will find is unknown, and the wait is
   * this authority's own backlog, not the relay's doing.
   */
  isQueued(t: ProbeTarget): boolean {
    return this.tests.get(testKey(t))?.started === false;
  }

  private async dial(t: ProbeTarget): Promise<ProbeResult> {
    if (this.closed) return 'failed';
    if (this.isHeld(t)) return 'up';
    const id = toHex(t.identity);
    let timer: NodeJS.Timeout | undefined;
    try {
      const timeout = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error('probe timed out')), this.opts.timeoutMs);
      });
      const attempt = openChannel(t, this.opts);
      // A channel that completes after the timeout is closed, not leaked.
      attempt.then(
        (ch) => {
          if (this.held.get(id)?.channel !== ch) setTimeout(() => this.releaseIfStray(id, ch), 0);
        },
        () => {},
      );
      const ch = await Promise.race([attempt, timeout]);
      if (this.closed) {
        ch.close('authority stopping');
        return 'failed';
      }
      this.hold(id, whereOf(t), ch);
      return 'up';
    } catch (e) {
      return classify(e);
    } finally {
      clearTimeout(timer);
    }
  }

  private releaseIfStray(id: string, ch: Channel): void {
    if (this.held.get(id)?.channel !== ch) ch.close('reachability test over');
  }

  private hold(id: string, where: string, ch: Channel): void {
    const old = this.held.get(id);
    if (old && old.channel !== ch) old.channel.close('replaced');
    this.held.set(id, { where, channel: ch });
    ch.once('closed', () => {
      if (this.held.get(id)?.channel === ch) this.held.delete(id);
    });
  }

  /**
   * Bytes/s of consensus fetches over a one-hop circuit (timedFetches) on a
   * channel of the scanner's own, closed when it is done; undefined when the
   * relay is not held reachable at its address, has no consensus yet, or
   * nothing arrived before the timeout.
   *
   * Why not the held channel (issue 17): a TLS socket keeps the read and
   * write buffers a burst made it allocate until it closes (Node's NodeBIO
   * rings of 16-64 KiB buffers, sized by libuv's 64 KiB read suggestion),
   * so each 64 KiB measurement left both ends of every held channel about
   * 0.4 MiB heavier for good: 1.2 MiB per relay with three authorities, when
   * the relays share this process. sbws, whose results C tor's bandwidth
   * authorities vote, likewise measures from a client of its own over
   * connections of its own, not over the authority's OR connections.
   */
  async measure(t: ProbeTarget): Promise<number | undefined> {
    return this.measureSlots.run(async () => {
      if (this.closed || !this.isHeld(t)) return undefined;
      let ch: Channel | null = null;
      let circ: OriginCircuit | null = null;
      let over = false;
      let timer: NodeJS.Timeout | undefined;
      const tally: Tally = { bytes: 0, ms: 0 };
      try {
        const timeout = new Promise<void>((resolve) => {
          timer = setTimeout(resolve, this.opts.timeoutMs);
        });
        const run = (async () => {
          const opened = await openChannel(t, this.opts);
          // Opened after the timeout: closed, not leaked.
          if (over) return opened.close('measurement over');
          ch = opened;
          circ = await OriginCircuit.create(ch, hopTargetOf(t), {
            handshake: this.opts.handshake ?? 'ntor',
          });
          await timedFetches(circ, this.opts.timeoutMs, tally);
        })();
        run.catch(() => {});
        await Promise.race([run, timeout]);
        return rate(tally);
      } catch {
        return rate(tally);
      } finally {
        over = true;
        clearTimeout(timer);
        (circ as OriginCircuit | null)?.destroy();
        (ch as Channel | null)?.close('measurement over');
      }
    });
  }

  /** Closes the channel held to `idHex`, if any. */
  forget(idHex: string): void {
    const h = this.held.get(idHex);
    this.held.delete(idHex);
    h?.channel.close('relay forgotten');
  }

  close(): void {
    this.closed = true;
    for (const h of this.held.values()) h.channel.close('authority stopping');
    this.held.clear();
  }
}
