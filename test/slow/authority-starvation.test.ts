// Authorities starved of CPU do not delist a reachable network (issue 17):
// on a process-per-node network (3 authorities, 6 relays, 5 s voting, so
// the reachability test's budget is 800 ms), every authority process is
// stopped with SIGSTOP for 2 s (longer than a probe may take) and let run
// for 250 ms, again and again for five voting intervals, as a host too
// loaded to serve them would. Afterwards every consensus any authority
// serves lists all 6 relays as Running, and every authority's next vote
// lists all 6 with each Running in a majority of the votes
// (services/directory/admission.ts: a round in which most tests
// failed trusts none of its failures; a listed relay needs two failed
// trusted rounds to lose Running, as C tor's authorities need a relay
// unreachable for REACHABLE_TIMEOUT). Not timed: the assertions are on what
// is listed, not on how fast. The authorities get SIGCONT in a finally.
// Re-tests mostly pass over the channels the authorities keep open to the
// relays, so what this shows is that votes, flags and publishing survive
// the starvation; the rule for a round in which most tests fail, where
// every test must dial, is shown in test/integration/reachability-failsafe.
// Consensuses published while the authorities were starved are seldom
// served to the test (the authorities are stopped nearly all the time), so
// their own logs say what each published, starvation included: every one
// lists all 6 relays (an authority computes a consensus only from a
// majority of votes: test/integration/consensus-majority).
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeSignedConsensus } from '../../services/core/dir/consensus.js';
import { decodeVote } from '../../services/core/dir/vote.js';
import { httpRequest } from '../../services/net/dir-client.js';
import type { RunningNetwork } from '../../services/testnet/up.js';
import { upProcessNetwork } from '../helpers/testnet.js';

const RELAYS = 6;
const MAX_DOC = 8 << 20;
let dataDir: string;
let net: RunningNetwork;

beforeAll(async () => {
  dataDir = await mkdtemp(path.join(tmpdir(), 'shallot-starve-'));
  net = await upProcessNetwork({ relays: RELAYS, exits: 2, dataDir, logLevel: 'info' });
}, 300_000);

afterAll(async () => {
  await net?.stop();
  if (dataDir) await rm(dataDir, { recursive: true, force: true });
}, 60_000);

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Seen {
  from: string;
  validAfterMs: number;
  relays: number;
  running: number;
}

/** The consensus each authority serves now (authorities that do not answer in 3 s are left out). */
async function served(): Promise<Seen[]> {
  const out = await Promise.all(
    net.state.authorities.map(async (a) => {
      const r = await httpRequest(a.url, 'GET', '/tor/status-vote/current/consensus', {
        maxBytes: MAX_DOC,
        maxInflatedBytes: MAX_DOC,
        timeoutMs: 3_000,
      }).catch(() => null);
      if (r?.status !== 200) return null;
      const c = decodeSignedConsensus(r.body, MAX_DOC).consensus;
      return {
        from: a.url,
        validAfterMs: c.validAfterMs,
        relays: c.relays.length,
        running: c.relays.filter((x) => x.flags.includes('Running')).length,
      };
    }),
  );
  return out.filter((s): s is Seen => s !== null);
}

describe('authorities under CPU starvation', () => {
  it('keep every reachable relay Running in every consensus and vote', async () => {
    // Bootstrapped: every authority serves a consensus with all relays Running.
    const deadline = Date.now() + 60_000;
    for (;;) {
      const now = await served();
      if (now.length === 3 && now.every((s) => s.running === RELAYS)) break;
      if (Date.now() > deadline) throw new Error(`not bootstrapped: ${JSON.stringify(now)}`);
      await sleep(500);
    }
    const bootstrappedAt = Date.now();
    const pids = net.state.nodes.filter((n) => n.role === 'authority').map((n) => n.pid);
    expect(pids).toHaveLength(3);
    const stopped = Date.now();
    try {
      while (Date.now() - stopped < 25_000) {
        for (const pid of pids) process.kill(pid as number, 'SIGSTOP');
        await sleep(2_000);
        for (const pid of pids) process.kill(pid as number, 'SIGCONT');
        await sleep(250);
      }
    } finally {
      for (const pid of pids) process.kill(pid as number, 'SIGCONT');
    }
    const resumedAt = Date.now();

    // Until every authority served three rounds after the starvation (at most 60 s: a loaded
    // host may miss rounds): every document served lists every relay as Running.
    const seen = new Map<string, Seen>();
    const newRounds = (url: string) =>
      [...seen.values()].filter((d) => d.from === url && d.validAfterMs > resumedAt).length;
    while (Date.now() - resumedAt < 60_000 && !net.state.authorities.every((a) => newRounds(a.url) >= 3)) {
      for (const s of await served()) seen.set(`${s.from} ${s.validAfterMs}`, s);
      await sleep(500);
    }
    const docs = [...seen.values()];
    console.log(
      `consensuses served after ${Math.round((resumedAt - stopped) / 1000)} s of starvation: ${JSON.stringify(docs)}`,
    );
    // Publishing went on: at least three new rounds after the starvation at every authority.
    for (const a of net.state.authorities) expect(newRounds(a.url)).toBeGreaterThanOrEqual(3);
    for (const d of docs) expect(d).toMatchObject({ relays: RELAYS, running: RELAYS });

    // What each authority published from bootstrap on, by its log ("published consensus", info).
    const logs = path.join(dataDir, 'logs');
    const published: { log: string; validAfter: string; relays: number }[] = [];
    for (const f of (await readdir(logs)).filter((n) => /^auth.*\.log$/.test(n))) {
      for (const line of (await readFile(path.join(logs, f), 'utf8')).split('\n')) {
        const m = / published consensus (\{.*\})$/.exec(line);
        if (!m) continue;
        const fields = JSON.parse(m[1]!) as { validAfter: string; relays: number };
        if (Date.parse(fields.validAfter) > bootstrappedAt) published.push({ log: f, ...fields });
      }
    }
    expect(published.length).toBeGreaterThanOrEqual(9);
    for (const p of published) expect(p, JSON.stringify(p)).toMatchObject({ relays: RELAYS });

    // The authorities' own views: in their next votes, every relay is Running
    // in a majority (so the consensus keeps it). One vote may still miss a
    // relay whose re-test timed out on a host this loaded (2 cores shared by
    // every suite), as any single authority's could; a majority cannot.
    const running = new Map<string, number>();
    for (const a of net.state.authorities) {
      // Served from its vote step until valid-after: ask again for up to two intervals.
      let r = await httpRequest(a.url, 'GET', '/tor/status-vote/next/vote', { maxBytes: MAX_DOC });
      for (let i = 0; i < 40 && r.status === 404; i++) {
        await sleep(250);
        r = await httpRequest(a.url, 'GET', '/tor/status-vote/next/vote', { maxBytes: MAX_DOC });
      }
      expect(r.status).toBe(200);
      const vote = decodeVote(r.body, { maxBytes: MAX_DOC });
      expect(vote.relays).toHaveLength(RELAYS);
      for (const x of vote.relays) {
        running.set(x.nickname, (running.get(x.nickname) ?? 0) + (x.flags.includes('Running') ? 1 : 0));
      }
    }
    expect(running.size).toBe(RELAYS);
    for (const [nickname, n] of running)
      expect(n, `${nickname} Running in ${n} of 3 votes`).toBeGreaterThanOrEqual(2);
  }, 240_000);
});
