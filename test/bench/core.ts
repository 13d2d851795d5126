/**
 * Micro-benchmarks of the pure core: layered relay-cell crypto, ntor,
 * hs-ntor, key blinding and v3 onion-service descriptors.
 *
 * Every operation is checked once before it is timed (a recognized cell,
 * matching keys, a parsed descriptor), so a figure never describes code
 * that silently does nothing.
 */

import { createCipheriv, createHash } from 'node:crypto';
import { equalBytes, int8 } from '../../services/core/bytes.js';
import { CELL_BODY_LEN } from '../../services/core/cells.js';
import { serverHandshake, startClientHandshake } from '../../services/core/create-handshake.js';
import { ed25519Expand, ed25519SignExpanded } from '../../services/core/crypto/ed25519-math.js';
import {
  ed25519Generate,
  ed25519PublicFromSeed,
  ed25519Verify,
  type Rng,
  randomBytes,
  shake256,
  x25519Generate,
} from '../../services/core/crypto.js';
import {
  buildHsDescriptor,
  decryptHsDescriptor,
  parseHsDescriptorOuter,
} from '../../services/core/hs-descriptor.js';
import { blindExpandedKey, blindIdentity, hsSubcredential } from '../../services/core/hs-keys.js';
import {
  hsNtorClientIntroKeys,
  hsNtorClientRendezvous,
  hsNtorServiceIntroKeys,
  hsNtorServiceRendezvous,
  hsRendHopKeys,
} from '../../services/core/hs-ntor.js';
import {
  ntorClientFinish,
  ntorClientStart,
  ntorExpandKeys,
  ntorServerHandshake,
} from '../../services/core/ntor.js';
import { encodeRelayCellBody, RELAY_DATA_MAX, RelayCommand } from '../../services/core/relay-cell.js';
import { ClientCircuitCrypto, RelayHopCrypto, tor1Hop } from '../../services/core/relay-crypto.js';
import { type BenchOptions, type BenchResult, benchSync } from './harness.js';

/** A deterministic Rng, so runs are comparable and setup is cheap. */
export function benchRng(seed = 0): Rng {
  let n = BigInt(seed) << 32n;
  return (len: number) => shake256(len, int8(n++));
}

function check(ok: boolean, what: string): void {
  if (!ok) throw new Error(`bench self-check failed: ${what}`);
}

/* ------------------------------------------------------------ relay cells */

export function relayCellBenches(budgetMs: number): BenchResult[] {
  const rng = benchRng(1);
  // Client and relay build their layers from the same keys, as after ntor.
  const circuit = (hops: number) => {
    const client = new ClientCircuitCrypto();
    const relays: RelayHopCrypto[] = [];
    for (let i = 0; i < hops; i++) {
      const keys = ntorExpandKeys(rng(64));
      client.addHop(tor1Hop(keys));
      relays.push(new RelayHopCrypto(tor1Hop(keys)));
    }
    return { client, relays };
  };
  const data = rng(RELAY_DATA_MAX);
  const cell = () => encodeRelayCellBody({ command: RelayCommand.DATA, streamId: 7, data }, rng);
  check(cell().length === CELL_BODY_LEN, 'cell length');

  const opts: BenchOptions = { unit: 'cell', bytesPerOp: RELAY_DATA_MAX, budgetMs };
  const out: BenchResult[] = [];

  {
    const { client, relays } = circuit(1);
    const r0 = relays[0]!;
    const fwd = () => {
      const b = cell();
      client.encryptForward(b, 0);
      if (!r0.decryptForward(b)) throw new Error('hop 0 did not recognize its cell');
    };
    fwd();
    out.push(benchSync('relay cell fwd, 1 hop (encode+enc+dec)', fwd, opts));
    const bwd = () => {
      const b = cell();
      r0.encryptBackward(b, true);
      if (client.decryptBackward(b)?.hop !== 0) throw new Error('client did not recognize hop 0');
    };
    bwd();
    out.push(benchSync('relay cell bwd, 1 hop (encode+enc+dec)', bwd, opts));
  }
  {
    const { client, relays } = circuit(3);
    const [r0, r1, r2] = relays as [RelayHopCrypto, RelayHopCrypto, RelayHopCrypto];
    const fwd3 = () => {
      const b = cell();
      client.encryptForward(b, 2);
      // Hops 0 and 1 peel their layer and pass the cell on, as a relay would.
      if (r0.decryptForward(b) || r1.decryptForward(b) || !r2.decryptForward(b)) {
        throw new Error('3-hop cell recognized at the wrong hop');
      }
    };
    fwd3();
    out.push(benchSync('relay cell fwd, 3 hops (exit recognizes)', fwd3, opts));
    const bwd3 = () => {
      const b = cell();
      r2.encryptBackward(b, true);
      r1.encryptBackward(b, false);
      r0.encryptBackward(b, false);
      if (client.decryptBackward(b)?.hop !== 2) throw new Error('client did not recognize hop 2');
    };
    bwd3();
    out.push(benchSync('relay cell bwd, 3 hops (from exit)', bwd3, opts));
  }
  return out;
}

/**
 * Our layer's crypto against the least node:crypto can do for the same
 * work (issue 16): a cell sealed and encrypted by one end, then decrypted
 * and recognized by the other (tor-spec §6.1), versus the bare calls that
 * work needs — per end one AES-128-CTR update, one SHA-1 update and one
 * read of the running digest (copy + digest), on a preallocated 509-byte
 * body. node:crypto is imported here, not through services/core/crypto.ts,
 * because the ceiling is node:crypto itself. Our SHA-1 running digest is
 * not node:crypto's (core/crypto/sha1.ts reads it without a Hash copy), so
 * the share can pass 100 %: the ceiling stays a fixed yardstick.
 */
export function relayCryptoShare(budgetMs: number): BenchResult[] {
  const rng = benchRng(3);
  const keys = ntorExpandKeys(rng(64));
  const client = new ClientCircuitCrypto();
  client.addHop(tor1Hop(keys));
  const relay = new RelayHopCrypto(tor1Hop(keys));
  const body = encodeRelayCellBody(
    { command: RelayCommand.DATA, streamId: 7, data: rng(RELAY_DATA_MAX) },
    rng,
  );
  // Decryption leaves the plaintext again, so one body serves every round.
  const ours = () => {
    client.encryptForward(body, 0);
    if (!relay.decryptForward(body)) throw new Error('relay did not recognize its cell');
  };
  ours();
  const ends = [0, 1].map(() => ({
    cipher: createCipheriv('aes-128-ctr', keys.kf, Buffer.alloc(16)),
    hash: createHash('sha1').update(keys.df),
  }));
  const raw = Buffer.from(body);
  const ceiling = () => {
    for (const e of ends) {
      e.hash.update(raw);
      e.hash.copy().digest();
      e.cipher.update(raw);
    }
  };
  // On a shared machine the two figures drift with the load: they are
  // measured in alternating rounds, and the share compares median per-cell
  // times (p50 of batch averages) of the rounds.
  const ROUNDS = 5;
  const opts: BenchOptions = { unit: 'cell', bytesPerOp: RELAY_DATA_MAX, budgetMs: budgetMs / ROUNDS };
  const oursRounds: BenchResult[] = [];
  const ceilingRounds: BenchResult[] = [];
  for (let i = 0; i < ROUNDS; i++) {
    oursRounds.push(benchSync('relay cell crypto, 1 hop (seal+encrypt, decrypt+recognize)', ours, opts));
    ceilingRounds.push(benchSync('relay cell crypto ceiling, node:crypto calls only', ceiling, opts));
  }
  const p50 = (r: BenchResult) => r.p50Ms ?? Number.NaN;
  const median = (rs: BenchResult[]) => [...rs].sort((a, b) => p50(a) - p50(b))[rs.length >> 1]!;
  const oursRow = median(oursRounds);
  const ceilingRow = median(ceilingRounds);
  oursRow.extra = {
    shareOfCeilingPct: Number(((100 * p50(ceilingRow)) / p50(oursRow)).toFixed(1)),
  };
  return [oursRow, ceilingRow];
}

/* ------------------------------------------------------------ handshakes */

export function handshakeBenches(budgetMs: number): BenchResult[] {
  const out: BenchResult[] = [];

  // ntor: what a client and a relay each do once per hop of a circuit.
  const onion = x25519Generate(randomBytes);
  const server = { id: randomBytes(20), onionKeys: [onion] };
  const ntor = () => {
    const { state, hdata } = ntorClientStart(randomBytes, { id: server.id, ntorKey: onion.public });
    const s = ntorServerHandshake(randomBytes, server, hdata);
    const c = ntorClientFinish(state, s.reply);
    if (c.kf[0] !== s.keys.kf[0]) throw new Error('ntor keys differ');
  };
  ntor();
  out.push(benchSync('ntor (client start+server+client finish)', ntor, { unit: 'hs', budgetMs }));

  // ntor-v3 as relays answer CREATE2 type 3: empty extension lists both ways.
  const relay = { identity: ed25519Generate(randomBytes).public, onionKeys: [onion] };
  const ntorV3 = () => {
    const c = startClientHandshake('ntor-v3', randomBytes, {
      identity: relay.identity,
      ntorKey: onion.public,
    });
    const s = serverHandshake(c.htype, randomBytes, relay, c.hdata);
    if (c.finish(s.reply).kf[0] !== s.keys.kf[0]) throw new Error('ntor-v3 keys differ');
  };
  ntorV3();
  out.push(benchSync('ntor-v3 (client start+server+client finish)', ntorV3, { unit: 'hs', budgetMs }));

  // hs-ntor: INTRODUCE1/2 keys on both sides, then RENDEZVOUS1/2 on both sides.
  const b = x25519Generate(randomBytes);
  const authKey = ed25519Generate(randomBytes).public;
  const subcredential = randomBytes(32);
  const hsNtor = () => {
    const c = hsNtorClientIntroKeys(randomBytes, { B: b.public, authKey, subcredential });
    const s = hsNtorServiceIntroKeys({ b: b.secret, B: b.public, authKey, subcredential, X: c.X });
    if (!equalBytes(c.macKey, s.macKey)) throw new Error('hs-ntor intro keys differ');
    const r = hsNtorServiceRendezvous({ b: b.secret, B: b.public, authKey, X: c.X }, randomBytes);
    const seed = hsNtorClientRendezvous({ x: c.x, X: c.X, B: b.public, authKey, Y: r.Y, auth: r.auth });
    hsRendHopKeys(seed);
  };
  hsNtor();
  out.push(benchSync('hs-ntor (intro both sides + rend both sides)', hsNtor, { unit: 'hs', budgetMs }));
  return out;
}

/* ------------------------------------------------------------ blinding */

export function blindingBenches(budgetMs: number): BenchResult[] {
  const seed = randomBytes(32);
  const pub = ed25519PublicFromSeed(seed);
  const expanded = ed25519Expand(seed);
  const msg = randomBytes(140); // about the size of a cert 08 body
  let tp = 20_000n;

  const blindedPub = blindIdentity(pub, tp, 1440n);
  const blinded = blindExpandedKey(expanded, tp, 1440n);
  check(ed25519Verify(blindedPub, msg, ed25519SignExpanded(blinded, msg)), 'blinded signature verifies');

  const opts: BenchOptions = { unit: 'op', budgetMs };
  // A new time period each call, so no layer can cache the factor.
  return [
    benchSync("blindIdentity (A -> A')", () => void blindIdentity(pub, tp++, 1440n), opts),
    benchSync(
      "blindExpandedKey ((a,RH) -> (a',RH'))",
      () => void blindExpandedKey(expanded, tp++, 1440n),
      opts,
    ),
    benchSync('sign with blinded key (Ed25519 expanded)', () => void ed25519SignExpanded(blinded, msg), opts),
    benchSync(
      'blind both + sign (per time period)',
      () => {
        const t = tp++;
        blindIdentity(pub, t, 1440n);
        ed25519SignExpanded(blindExpandedKey(expanded, t, 1440n), msg);
      },
      opts,
    ),
  ];
}

/* ------------------------------------------------------------ descriptors */

export function descriptorBenches(budgetMs: number): BenchResult[] {
  const NOW = Date.UTC(2026, 0, 1, 12, 0, 0);
  const TP = 20_454n;
  const rng = benchRng(7);
  const idSeed = rng(32);
  const identityPub = ed25519PublicFromSeed(idSeed);
  const blindedPub = blindIdentity(identityPub, TP, 1440n);
  const params = {
    identityPub,
    blindedKey: blindExpandedKey(ed25519Expand(idSeed), TP, 1440n),
    blindedPub,
    descSigningSeed: rng(32),
    subcredential: hsSubcredential(identityPub, blindedPub),
    revisionCounter: 42n,
    nowMs: NOW,
    introPoints: [0, 1, 2].map((i) => ({
      linkSpecifiers: [
        { type: 'ipv4' as const, addr: `127.0.0.${i + 1}`, port: 9000 + i },
        { type: 'legacy-id' as const, id: rng(20) },
        { type: 'ed25519' as const, id: ed25519Generate(rng).public },
      ],
      onionKey: x25519Generate(rng).public,
      authKey: ed25519Generate(rng).public,
      encKey: x25519Generate(rng).public,
    })),
  };
  const keys = { blindedPub, subcredential: params.subcredential, nowMs: NOW };
  const desc = buildHsDescriptor(params, rng);
  check(decryptHsDescriptor(desc, keys).introPoints.length === 3, 'descriptor round trip');

  const opts: BenchOptions = { unit: 'desc', budgetMs };
  const build = benchSync(
    'hs descriptor build (3 intro points)',
    () => void buildHsDescriptor(params, rng),
    opts,
  );
  build.extra = { bytes: desc.length };
  return [
    build,
    benchSync(
      'hs descriptor parse outer (cert+sig)',
      () => void parseHsDescriptorOuter(desc, { nowMs: NOW }),
      opts,
    ),
    benchSync(
      'hs descriptor decrypt (outer+2 layers+inner)',
      () => void decryptHsDescriptor(desc, keys),
      opts,
    ),
  ];
}
