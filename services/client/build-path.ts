/**
 * The path of one client circuit build (path-spec §2.2 via core/path.ts),
 * from the consensus, the request and what the client knows right now: the
 * guard it picked, its layer-2 vanguards (prop 333) and the relays that
 * stopped answering lately (relay-liveness.ts).
 *
 * Exit circuits with a known destination host only take exits whose policy
 * allows host:port (path-spec §2.2: "the exit node must allow the
 * connection"); a relay whose policy refuses it still serves as guard or
 * middle, as in C tor (a C tor testnet votes Exit for every relay, most of
 * which exit nowhere: filtering the whole path left no middle). Relays that stopped answering are left out while a path
 * exists without them, else tried anyway (a path through a slow relay beats
 * no path; C tor keeps no such list at all).
 */
import type { Rng } from '../core/crypto.js';
import { choosePath, PathError } from '../core/path.js';
import type { BuildRequest } from './circuit-options.js';
import { type CircuitTarget, NetDir, type NetRelay } from './netdir.js';

/** Picks the guard once the later hops are known: `fits` says which relays may sit beside them. */
export type GuardChooser = (fits: (r: NetRelay) => boolean) => NetRelay | undefined;

export interface BuildPathInput {
  dir: NetDir;
  req: BuildRequest;
  /**
   * The entry guard: a relay picked already, or (exit circuits) a function
   * that picks one after the exit, among the relays that fit beside it
   * (core/path.ts PathOptions.guard); undefined: a weighted Guard pick.
   */
  guard: NetRelay | undefined | GuardChooser;
  /** Layer-2 vanguards (onion-service circuits under vanguards-lite). */
  layer2: NetRelay[] | undefined;
  /** Relays (hex ids) that stopped answering lately. */
  silent: ReadonlySet<string>;
  enforceSubnets: boolean;
  rng: Rng;
}

/** The hops, first to last; throws PathError when no path exists. */
export function chooseBuildPath(i: BuildPathInput): CircuitTarget[] {
  const { dir, req, guard, layer2, silent } = i;
  // The exit's policy is checked against the host itself (an IP literal exactly, a name by port).
  const host = req.exitHost;
  const relays =
    host === undefined
      ? dir.relays
      : dir.relays.map((r) => ({ ...r, allowsExitPort: (p: number) => NetDir.exitAllows(r, host, p) }));
  const heard = (r: NetRelay) => !silent.has(r.id) || r.id === req.lastHop?.id;
  const choose = (
    candidates: NetRelay[],
    g: NetRelay | GuardChooser | undefined,
    l2: NetRelay[] | undefined,
  ) =>
    choosePath<CircuitTarget>(
      candidates,
      {
        purpose: req.purpose,
        length: req.length ?? (req.lastHop && !layer2 ? 2 : 3),
        enforceSubnets: i.enforceSubnets,
        enforceFamily: true,
        weights: dir.consensus.bandwidthWeights,
        ...(req.exitPort !== undefined ? { exitPort: req.exitPort } : {}),
        ...(g ? { guard: g } : {}),
        ...(req.lastHop ? { lastHop: req.lastHop } : {}),
        ...(l2 ? { vanguards: l2 } : {}),
      },
      i.rng,
    );
  // Layer-2 vanguards that stopped answering sit out while another member answers (the set itself stays).
  const heardL2 = layer2?.some(heard) ? layer2.filter(heard) : layer2;
  try {
    const heardGuard: NetRelay | GuardChooser | undefined =
      typeof guard === 'function'
        ? (fits) => {
            const g = guard(fits);
            return g && heard(g) ? g : undefined;
          }
        : guard && heard(guard)
          ? guard
          : undefined;
    return choose(relays.filter(heard), heardGuard, heardL2);
  } catch (e) {
    if (!(e instanceof PathError) || silent.size === 0) throw e;
    // Silent vanguards stay out even now while another member answers: when every answering one is
    // this path's guard or target, the caller does better with another target (rendezvous point).
    return choose(relays, guard, heardL2);
  }
}
