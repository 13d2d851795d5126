/**
 * Link faults on demand (issue 18): cut or slow the links between two named
 * nodes, and hold every link of a paused node, inside Shallot's link layer
 * (no `tc`, no NET_ADMIN), so they work the same in one process, in worker
 * threads, in one process per node and in pods.
 *
 * Overview: one table per thread (module state, as the link-delay queues it
 * feeds are per thread) says which node pairs are cut, which are slowed by
 * how many ms, and which nodes are paused. Links learn both names from the
 * WebSocket upgrade (link-delay.ts NODE_HEADER) and ask the table:
 *   - cut:   every link between the pair is dropped at once, as a TCP
 *            reset would (the peers see the connection fail, with no
 *            DESTROY cell: tor-spec §3 says nothing reaches them either), and
 *            new links between them are refused until it heals. Circuits
 *            over the link die with their channel and clients build new ones
 *            elsewhere, as C tor's circuit_unlink_all_from_channel.
 *   - slow:  `delayMs` more one-way delay on each message between the pair,
 *            both directions, order kept (link-delay.ts InboundShaper).
 *   - pause: a link with a paused node at either end delivers nothing
 *            either way, in order once the pause ends; its reads stop past
 *            the shaper's high-water mark, so the peer's writes back up as
 *            against a SIGSTOPped process. Only for nodes that share a
 *            process (a separate process is paused with SIGSTOP instead).
 *   - kill:  `dropLinksOf(node)` drops every link of one node at once, as
 *            the kernel closes a dead process's sockets.
 * `applyLinkFaults` replaces the whole table (level-triggered: the launcher
 * sends it again whole to every thread or process after each change and to
 * every node it starts, so a restarted node never misses a fault).
 *
 * Not in this module: which faults are in force and for how long
 * (testnet/fault.ts), the delay queues (link-delay.ts).
 *
 * Limitations: only WebSocket links of nodes that announce a name (relays,
 * the client, onion-service instances, authorities' reachability probes)
 * are seen; raw TLS links (tls-transport.ts, C tor interop) are not. An
 * authority's DirPort HTTP is held by a pause (`whileHeld`, as a hung
 * process answers nothing) but neither cut nor slowed: HTTP requests carry
 * no node name.
 */

export interface LinkFaultTable {
  /** Node pairs whose links are cut. */
  cuts: [string, string][];
  /** Node pairs with extra one-way delay, ms. */
  slows: { a: string; b: string; delayMs: number }[];
  /** Nodes whose links hold everything (nodes sharing a process). */
  paused: string[];
}

export const EMPTY_LINK_FAULTS: LinkFaultTable = { cuts: [], slows: [], paused: [] };

/** Largest extra delay: as the network model's own bound (core/network-model.ts MAX_LATENCY_MS). */
export const MAX_SLOW_MS = 10_000;

/** A link as the table sees it: its two ends, and how to drop it or wake its queue. */
export interface FaultableLink {
  readonly self: string;
  readonly peer: string | null;
  drop(): void;
  /** Called when a pause that held it ends. */
  release(): void;
}

const pair = (a: string, b: string) => (a <= b ? `${a}\n${b}` : `${b}\n${a}`);

const cuts = new Set<string>();
const delays = new Map<string, number>();
const paused = new Set<string>();
const links = new Set<FaultableLink>();

/** Extra one-way delay between two named nodes, ms (0 none). */
export function extraDelayMs(self: string, peer: string | null): number {
  if (delays.size === 0 || peer === null) return 0;
  return delays.get(pair(self, peer)) ?? 0;
}

/** Adds `ms` of one-way delay to every link between nodes `a` and `b` (0 removes it). */
export function setExtraDelay(a: string, b: string, ms: number): void {
  if (ms > 0) delays.set(pair(a, b), ms);
  else delays.delete(pair(a, b));
}

/** Whether links between the two nodes are cut. */
export function isCut(self: string, peer: string | null): boolean {
  return cuts.size > 0 && peer !== null && cuts.has(pair(self, peer));
}

/** Whether a link between the two nodes holds what it receives (either end paused). */
export function isHeld(self: string, peer: string | null): boolean {
  return paused.size > 0 && (paused.has(self) || (peer !== null && paused.has(peer)));
}

/** Tracks a live link until `untrack` (its close); a cut pair's link is dropped at once. */
export function trackLink(link: FaultableLink): () => void {
  links.add(link);
  return () => links.delete(link);
}

/**
 * Waits while a pause holds `self`~`peer` (at once when none does): the
 * same hold a link's queue gets, for traffic that is no link of ours, e.g.
 * a directory authority's HTTP requests (directory/http.ts). `drop` runs
 * instead if the node's links are dropped meanwhile (a kill); the promise
 * then stays pending, as the hung request never ends.
 */
export function whileHeld(self: string, peer: string | null, drop: () => void = () => {}): Promise<void> {
  if (!isHeld(self, peer)) return Promise.resolve();
  return new Promise((resolve) => {
    const untrack = trackLink({
      self,
      peer,
      drop,
      release: () => {
        untrack();
        resolve();
      },
    });
  });
}

/** Drops every link of `node` (a kill of a node sharing the process). */
export function dropLinksOf(node: string): number {
  let n = 0;
  for (const l of [...links])
    if (l.self === node || l.peer === node) {
      links.delete(l);
      l.drop();
      n++;
    }
  return n;
}

/** Replaces the table; links of newly cut pairs drop, links of nodes no longer paused release. */
export function applyLinkFaults(t: LinkFaultTable): void {
  cuts.clear();
  for (const [a, b] of t.cuts) cuts.add(pair(a, b));
  delays.clear();
  for (const s of t.slows) if (s.delayMs > 0) delays.set(pair(s.a, s.b), Math.min(s.delayMs, MAX_SLOW_MS));
  const wasPaused = [...paused];
  paused.clear();
  for (const n of t.paused) paused.add(n);
  for (const l of [...links]) {
    if (isCut(l.self, l.peer)) {
      links.delete(l);
      l.drop();
    } else if (wasPaused.length > 0 && !isHeld(l.self, l.peer)) l.release();
  }
}

/** The table as it stands (tests, and a node reporting what it applied). */
export function currentLinkFaults(): LinkFaultTable {
  const split = (k: string) => k.split('\n') as [string, string];
  return {
    cuts: [...cuts].map(split),
    slows: [...delays].map(([k, delayMs]) => {
      const [a, b] = split(k);
      return { a, b, delayMs };
    }),
    paused: [...paused],
  };
}

const NAME = /^[a-z0-9-]{1,63}$/;

/**
 * A table as decoded JSON from the launcher (a pipe or a MessagePort),
 * checked field by field; null when it is not one.
 */
export function parseLinkFaultTable(v: unknown): LinkFaultTable | null {
  if (typeof v !== 'object' || v === null) return null;
  const o = v as Record<string, unknown>;
  const names = (x: unknown): x is string[] =>
    Array.isArray(x) && x.length <= 4096 && x.every((n) => typeof n === 'string' && NAME.test(n));
  if (!Array.isArray(o.cuts) || !o.cuts.every((c) => names(c) && c.length === 2)) return null;
  if (
    !Array.isArray(o.slows) ||
    !o.slows.every((s: unknown) => {
      const x = s as Record<string, unknown>;
      return (
        typeof s === 'object' &&
        s !== null &&
        names([x.a, x.b]) &&
        typeof x.delayMs === 'number' &&
        Number.isFinite(x.delayMs) &&
        x.delayMs >= 0 &&
        x.delayMs <= MAX_SLOW_MS
      );
    })
  )
    return null;
  if (!names(o.paused)) return null;
  return {
    cuts: o.cuts as [string, string][],
    slows: (o.slows as { a: string; b: string; delayMs: number }[]).map(({ a, b, delayMs }) => ({
      a,
      b,
      delayMs,
    })),
    paused: o.paused,
  };
}
