// Onion-service fixtures for integration tests that play the service by
// hand on a LocalNetwork: the introduction point a descriptor lists for a
// relay (rend-spec-v3 §2.5.2.2) and a descriptor signed for a seed and
// stored on every HSDir (rend-spec-v3 §2.4, §2.5), with a hook to mangle
// the outer document before it is signed.
import type { ShallotClient } from '../../services/client/client.js';
import type { NetRelay } from '../../services/client/netdir.js';
import { onionPeriodKeys } from '../../services/client/onion-params.js';
import { concat, toBase64, utf8 } from '../../services/core/bytes.js';
import { ed25519Expand } from '../../services/core/crypto/ed25519-math.js';
import {
  ed25519PublicFromSeed,
  ed25519Sign,
  legacyIdFromEd25519,
  randomBytes,
} from '../../services/core/crypto.js';
import { buildHsDescriptor, type IntroPointInfo } from '../../services/core/hs-descriptor.js';
import { blindExpandedKey } from '../../services/core/hs-keys.js';
import { relayLinkSpecifiers } from '../../services/core/link-specifiers.js';
import type { LocalNetwork } from '../../services/testnet/network.js';

/** Relay `i` of `net` as `client`'s consensus lists it. */
export function clientRelayOf(net: LocalNetwork, client: ShallotClient, i: number): NetRelay {
  const node = net.relays[i];
  const r = node && client.dir?.relays.find((x) => x.nickname === node.relay.nickname);
  if (!r) throw new Error(`relay ${i} not in the client's consensus`);
  return r;
}

/** The descriptor entry for an introduction point at `relay` with these keys. */
export function introPointAt(relay: NetRelay, authPub: Uint8Array, encPub: Uint8Array): IntroPointInfo {
  return {
    linkSpecifiers: relayLinkSpecifiers({
      address: relay.address,
      port: relay.port,
      legacyId: legacyIdFromEd25519(relay.identity),
      ed25519Id: relay.identity,
    }),
    onionKey: relay.ntorKey,
    authKey: authPub,
    encKey: encPub,
  };
}

/**
 * Signs a descriptor for `seed` for the client's time period and each
 * period `periodDeltas` away (default: that period only), stores each on
 * every HSDir of `net`, and returns the store outcomes. `mangle` may change
 * the outer document before it is signed.
 */
export function storeDescriptor(
  net: LocalNetwork,
  client: ShallotClient,
  seed: Uint8Array,
  introPoints: IntroPointInfo[],
  o: { periodDeltas?: readonly bigint[]; mangle?: (outer: string) => string } = {},
): string[] {
  const consensus = client.dir?.consensus;
  if (!consensus) throw new Error('no consensus');
  const pub = ed25519PublicFromSeed(seed);
  const base = onionPeriodKeys(pub, consensus);
  const outcomes: string[] = [];
  for (const delta of o.periodDeltas ?? [0n]) {
    const tp = base.tp + delta;
    const keys = onionPeriodKeys(pub, {
      ...consensus,
      validAfterMs: consensus.validAfterMs + Number(delta) * Number(base.len) * 60_000,
    });
    if (keys.tp !== tp) throw new Error(`period ${keys.tp}, wanted ${tp}`);
    const descSigningSeed = randomBytes(32);
    const text = buildHsDescriptor(
      {
        blindedKey: blindExpandedKey(ed25519Expand(seed), tp, keys.len),
        blindedPub: keys.blindedPub,
        descSigningSeed,
        revisionCounter: BigInt(Date.now()),
        introPoints,
        subcredential: keys.subcredential,
        nowMs: Date.now(),
      },
      randomBytes,
    );
    const outer = (o.mangle ?? ((x) => x))(text.slice(0, text.lastIndexOf('signature ')));
    const sig = ed25519Sign(
      descSigningSeed,
      concat(utf8('Tor onion service descriptor sig v3'), utf8(outer)),
    );
    const signed = `${outer}signature ${toBase64(sig, false)}\n`;
    for (const roles of net.roles) outcomes.push(roles.hsdir.publish(signed).outcome);
  }
  return outcomes;
}
