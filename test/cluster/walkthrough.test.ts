// README's Kubernetes walkthrough, run for real on a single-node cluster
// built on this machine (test/setup/cluster/): the same npm scripts, helm
// and kubectl commands a user types, then what the operator promises —
// load at >= 99 % success, relays scaled up and down with the consensus
// following, key rotation with fetches succeeding throughout, a
// two-instance onion service whose descriptor carries both instances' intro
// points and whose load reaches both, NetworkFault pause and cut reaching the
// relays and a pause reaching an authority, all healing — and a teardown
// that leaves nothing.
//
// Needs root, containerd, podman and the tool cache that
// `bash test/setup/install-tools.sh` fills; without them it fails with the
// reason (CI must never skip it). Runs in `npm run test:all` after every
// other suite (vitest project "cluster"), or alone: `npm run test:cluster`.
import { existsSync, readFileSync } from 'node:fs';
import { afterAll, describe, expect, it } from 'vitest';
import { builtinSha256 } from '../../services/onion-service/builtin-http.js';
import { background, CLUSTER_DIR, ENV, jsonpath, kubectl, log, sh, step, until } from './cluster.js';

const NET = 'demo';
const SERVICE = 'demo-web';
const SIZE = 65_536;
const WANT = builtinSha256(SIZE);
const MIN = 60_000;

let onion = '';
let socks = '';
let votingMs = 60_000;

function preflight(): string[] {
  const missing: string[] = [];
  if (process.getuid?.() !== 0) missing.push('root (the kubelet and containerd need it)');
  for (const c of ['containerd', 'runc', 'podman', 'conntrack', 'iptables', 'curl']) {
    if (!(ENV.PATH ?? '').split(':').some((d) => existsSync(`${d}/${c}`))) missing.push(c);
  }
  if (!existsSync('/usr/lib/cni/bridge')) missing.push('CNI plugins (/usr/lib/cni)');
  for (const c of ['kubelet', 'kubectl', 'kube-proxy']) {
    if (!(ENV.PATH ?? '').split(':').some((d) => existsSync(`${d}/${c}`))) missing.push(c);
  }
  return missing;
}

/** One download through the client Service's ClusterIP, digest checked. */
async function fetchOnce(timeoutS = 60): Promise<boolean> {
  try {
    const out = await sh(
      `curl -sS --max-time ${timeoutS} --socks5-hostname ${socks} http://${onion}/bytes/${SIZE} | sha256sum`,
      { timeoutMs: (timeoutS + 10) * 1000 },
    );
    return out.startsWith(WANT);
  } catch {
    return false;
  }
}

/** Fetches back to back (bounded in count and time) until `stop()`; the tally. */
function fetchLoop(maxCount: number, maxMs: number) {
  const tally = { ok: 0, failed: 0 };
  let stopped = false;
  const end = Date.now() + maxMs;
  const done = (async () => {
    while (!stopped && Date.now() < end && tally.ok + tally.failed < maxCount) {
      if (await fetchOnce(30)) tally.ok++;
      else {
        tally.failed++;
        log(`fetch failed (${tally.failed} so far, ${tally.ok} ok)`);
      }
    }
  })();
  return {
    tally,
    started: Date.now(),
    stop: async () => {
      stopped = true;
      await done;
      return tally;
    },
  };
}

/** Relays in the latest consensus, read from the first authority's DirPort. */
async function listedRelays(): Promise<number> {
  const ip = await jsonpath(`pod ${NET}-auth-0`, '{.status.podIP}');
  const body = await sh(`curl -sf --max-time 10 http://${ip}:7000/tor/status-vote/current/consensus`, {
    timeoutMs: 20_000,
  });
  const doc = JSON.parse(body) as { consensus?: { relays: unknown[] }; relays?: unknown[] };
  return (doc.consensus?.relays ?? doc.relays ?? []).length;
}

async function relaysSettled(n: number): Promise<true | undefined> {
  const s = JSON.parse(await jsonpath(`onionnetwork ${NET}`, '{.status.relays}')) as Record<string, number>;
  const ready = await jsonpath(`onionnetwork ${NET}`, '{.status.conditions[?(@.type=="Ready")].status}');
  return s.ready === n && s.desired === n && (s.retiring ?? 0) === 0 && ready === 'True' ? true : undefined;
}

/** A counter of one pod's /metrics, summed over the series matching `match`. */
async function podCounter(pod: string, metric: string, match: RegExp): Promise<number> {
  const ip = await jsonpath(`pod ${pod}`, '{.status.podIP}');
  const text = await sh(`curl -sf --max-time 10 http://${ip}:9100/metrics`, { timeoutMs: 20_000 });
  let sum = 0;
  for (const line of text.split('\n')) {
    if (line.startsWith(`${metric}{`) && match.test(line))
      sum += Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return sum;
}

const missing = preflight();
const ipForwardBefore = readFileSync('/proc/sys/net/ipv4/ip_forward', 'utf8').trim();

afterAll(async () => {
  if (missing.length > 0 || !existsSync(CLUSTER_DIR)) return;
  await sh('npm run -s cluster:down', { echo: true, timeoutMs: 5 * MIN }).catch((e: unknown) => {
    log(`cluster:down failed: ${(e as Error).message}`);
  });
}, 6 * MIN);

describe('the Kubernetes walkthrough on a real single-node cluster', () => {
  it('has what it needs: root, containerd, runc, podman, CNI plugins and the node binaries', () => {
    expect(
      missing,
      `the cluster test cannot run here; missing: ${missing.join(', ')} (bash test/setup/install-tools.sh installs the tools; root is required)`,
    ).toEqual([]);
  });

  it(
    'npm run cluster:up starts a single-node cluster (containerd, kubelet, kube-proxy, CoreDNS)',
    async () => {
      await step('npm run cluster:up', () =>
        sh('npm run -s cluster:up', { echo: true, timeoutMs: 20 * MIN }),
      );
      expect(
        await sh(
          'kubectl get node shallot-node -o jsonpath=\'{.status.conditions[?(@.type=="Ready")].status}\'',
        ),
      ).toBe('True');
    },
    25 * MIN,
  );

  it(
    'builds, loads and deploys the images as README says, and the network becomes Ready',
    async () => {
      await step('npm run images (podman, local base image)', async () => {
        await sh('bash test/setup/base-image.sh localhost/node:20-slim', { timeoutMs: 5 * MIN });
        await sh('BASE_IMAGE=localhost/node:20-slim npm run -s images', { echo: true, timeoutMs: 20 * MIN });
      });
      await step('npm run images:load', () => sh('npm run -s images:load', { timeoutMs: 10 * MIN }));
      await step('npm run deploy (helm upgrade --install, wait for the network and onion service)', () =>
        sh('npm run -s deploy', { echo: true, timeoutMs: 25 * MIN }),
      );
      const pods = await kubectl('get pods --no-headers');
      log(`pods:\n${pods}`);
      expect(pods.split('\n').filter((l) => l.trim() && !/Running|Completed/.test(l))).toEqual([]);
      onion = await jsonpath(`onionservice ${SERVICE}`, '{.status.onionAddress}');
      expect(onion).toMatch(/^[a-z2-7]{56}\.onion$/);
      socks = `${await jsonpath('svc shallot-client', '{.spec.clusterIP}')}:9050`;
      votingMs =
        Number(await jsonpath(`onionnetwork ${NET}`, '{.spec.authorities.votingIntervalSeconds}')) * 1000 ||
        votingMs;
    },
    60 * MIN,
  );

  it(
    'helm test shallot -n shallot --logs passes and shows the test pod log',
    async () => {
      const out = await step('helm test shallot -n shallot --logs', () =>
        sh('helm test shallot -n shallot --logs --timeout 10m', { timeoutMs: 12 * MIN }),
      );
      expect(out).toMatch(/Phase:\s+Succeeded/);
      expect(out).toContain('POD LOGS');
    },
    15 * MIN,
  );

  it(
    'curl through `kubectl port-forward svc/shallot-client` reaches the onion service (digest checked)',
    async () => {
      await step('port-forward + curl --socks5-hostname, as README', async () => {
        const port = 19050;
        const pf = background(`kubectl -n shallot port-forward svc/shallot-client ${port}:9050`);
        try {
          const got = await until('a download through the port-forward', 2 * MIN, async () => {
            const out = await sh(
              `curl -sS --max-time 60 --socks5-hostname 127.0.0.1:${port} http://${onion}/bytes/1048576 | sha256sum`,
              { timeoutMs: 70_000 },
            );
            if (!out.startsWith(builtinSha256(1_048_576)))
              throw new Error(`digest mismatch or no body: ${out.trim()}`);
            return out;
          });
          log(`sha256 ${got.split(' ')[0]} matches /sha256/1048576`);
        } finally {
          pf.stop();
        }
      });
    },
    5 * MIN,
  );

  it(
    'npm run loadtest: the LoadTest Succeeds at >= 99 % success',
    async () => {
      const name = `load-ci-${Date.now() % 100_000}`;
      const out = await step('npm run loadtest (30 s)', () =>
        sh('npm run -s loadtest', {
          env: { LOADTEST_NAME: name, LOADTEST_DURATION: '30' },
          echo: true,
          timeoutMs: 15 * MIN,
        }),
      );
      expect(out).toContain('Succeeded');
      const ratio = Number(await jsonpath(`loadtest ${name}`, '{.status.summary.successRatio}'));
      log(`LoadTest ${name}: success ratio ${ratio}`);
      expect(ratio).toBeGreaterThanOrEqual(0.99);
    },
    20 * MIN,
  );

  it(
    'relays scale 6 -> 8 -> 4 and the consensus follows within two voting intervals',
    async () => {
      for (const n of [8, 4]) {
        await step(`scale relays to ${n}`, async () => {
          await kubectl(`patch onionnetwork ${NET} --type merge -p '{"spec":{"relays":{"replicas":${n}}}}'`);
          await until(`OnionNetwork ${NET} with ${n} ready relays`, 10 * MIN, () => relaysSettled(n), 3000);
          const settled = Date.now();
          // A relay's first inclusion (or its removal after reachability
          // probes fail) takes effect at the next vote; two intervals bound it.
          await until(`a consensus listing ${n} relays`, 2 * votingMs + 30_000, async () =>
            (await listedRelays()) === n ? true : undefined,
          );
          log(
            `consensus lists ${n} relays ${((Date.now() - settled) / 1000).toFixed(0)} s after the scale settled`,
          );
          const keys = (await kubectl('get secrets --no-headers -o name'))
            .split('\n')
            .filter((l) => /-relay-\d+-keys$/.test(l));
          expect(keys).toHaveLength(n);
        });
      }
      await step('fetch after scaling', async () => {
        await until('a fetch after scaling', 3 * MIN, async () => ((await fetchOnce()) ? true : undefined));
      });
    },
    45 * MIN,
  );

  it(
    'key rotation (shallot.dev/rotate-now): relays take new onion keys in place, fetches succeed throughout (>= 99 %)',
    async () => {
      await step('rotate relay onion keys under a fetch loop', async () => {
        const relayPods = async () =>
          (
            await kubectl(
              `get pods -l shallot.dev/network=${NET},app.kubernetes.io/component=relay --no-headers -o custom-columns=N:.metadata.name,U:.metadata.uid`,
            )
          )
            .trim()
            .split('\n')
            .map((l) => l.trim().split(/\s+/))
            .sort((a, b) => (a[0] ?? '').localeCompare(b[0] ?? ''));
        const pods = await relayPods();
        expect(pods).toHaveLength(4);
        const rotations = (pod: string) =>
          podCounter(pod, 'shallot_relay_key_rotations_total', /key="onion"/);
        const before = await Promise.all(pods.map(([name]) => rotations(name ?? '')));
        const statusBefore = Number(
          (await jsonpath(`onionnetwork ${NET}`, '{.status.keyRotation.onionKeyRotations}')) || 0,
        );
        const loop = fetchLoop(50_000, 15 * MIN);
        await new Promise((r) => setTimeout(r, 15_000));
        await kubectl(`annotate onionnetwork ${NET} --overwrite shallot.dev/rotate-now=${Date.now()}`);
        await until('onionKeyRotations in the OnionNetwork status to increase', 5 * MIN, async () => {
          const now = Number(
            (await jsonpath(`onionnetwork ${NET}`, '{.status.keyRotation.onionKeyRotations}')) || 0,
          );
          return now > statusBefore ? now : undefined;
        });
        // kubelet updates the mounted key Secrets in place (about a minute);
        // every running relay then takes its new onion key without a restart.
        await until(
          'every relay to take its rotated onion key',
          5 * MIN,
          async () => {
            const now = await Promise.all(pods.map(([name]) => rotations(name ?? '')));
            return now.every((n, i) => n > (before[i] ?? 0)) ? now : undefined;
          },
          5000,
        );
        log(
          `every relay took its rotated onion key ${((Date.now() - loop.started) / 1000).toFixed(0)} s into the fetch loop`,
        );
        // Keep fetching until the new keys are in a consensus and one more interval has passed.
        await new Promise((r) => setTimeout(r, 2 * votingMs));
        const t = await loop.stop();
        const ratio = t.ok / Math.max(1, t.ok + t.failed);
        log(`during rotation: ${t.ok} fetches ok, ${t.failed} failed (${(ratio * 100).toFixed(1)} %)`);
        expect(t.ok + t.failed).toBeGreaterThan(20);
        expect(ratio).toBeGreaterThanOrEqual(0.99);
        expect(await relayPods(), 'the same relay pods (no restart)').toEqual(pods);
        expect(await relaysSettled(4)).toBe(true);
      });
    },
    25 * MIN,
  );

  it(
    `${SERVICE} runs 2 instances: both instances' intro points are published and load reaches both`,
    async () => {
      await step('two instances share the descriptor and the load', async () => {
        const pods = (
          await kubectl(
            `get pods -l shallot.dev/onion-service=${SERVICE} --no-headers -o custom-columns=N:.metadata.name`,
          )
        )
          .split('\n')
          .map((l) => l.trim())
          .filter(Boolean);
        expect(pods, 'the example OnionService has 2 instances').toHaveLength(2);
        const rendOk = (pod: string) => podCounter(pod, 'shallot_hs_rend_total', /outcome="success"/);
        const before = await Promise.all(pods.map(rendOk));
        for (const pod of pods) {
          const published = await podCounter(pod, 'shallot_hs_descriptor_intro_points', /.*/);
          const own = await podCounter(pod, 'shallot_hs_intro_points', /.*/);
          log(`${pod}: ${own} own intro points, ${published} in its last published descriptor`);
          expect(published).toBeGreaterThan(own);
        }
        // A LoadTest, as a user would drive load, with a fresh circuit (and so a
        // fresh rendezvous through a randomly chosen intro point) per request.
        // Its client pods start now, so they fetch the descriptor the instances
        // publish together. The long-running shallot-client is not used: it may
        // hold a descriptor fetched before the instances exchanged records,
        // and keeps it while it works, as C tor keeps a cached descriptor
        // until it expires (rend-spec-v3 §2.4; README, Multi-instance services).
        const name = `spread-ci-${Date.now() % 100_000}`;
        await sh('npm run -s loadtest', {
          env: {
            LOADTEST_NAME: name,
            LOADTEST_COUNT: '20',
            LOADTEST_NEW_CIRCUIT: 'true',
            LOADTEST_DURATION: '120',
            LOADTEST_SIZE: '16k',
          },
          echo: true,
          timeoutMs: 15 * MIN,
        });
        const summary = JSON.parse(await jsonpath(`loadtest ${name}`, '{.status.summary}')) as {
          successRatio: number;
        };
        const after = await Promise.all(pods.map(rendOk));
        const served = after.map((a, i) => a - (before[i] ?? 0));
        log(
          `rendezvous completed per instance: ${pods.map((p, i) => `${p}=${served[i]}`).join(', ')}; LoadTest ${name}: ${JSON.stringify(summary)}`,
        );
        expect(summary.successRatio).toBeGreaterThanOrEqual(0.99);
        // 40 fresh rendezvous over 6 intro points, 3 per instance: all on one
        // instance has probability 2^-39 when both are listed.
        for (const s of served) expect(s).toBeGreaterThan(0);
      });
    },
    15 * MIN,
  );

  it(
    'NetworkFault pause and cut reach the relays (and a pause an authority) on a running network, downloads verify, and they heal',
    async () => {
      const relay0 = `${NET}-relay-0-0`;
      const applied = () => podCounter(relay0, 'shallot_link_fault_tables_total', /result="applied"/);
      const restarts = async () =>
        (
          await kubectl(
            `get pods -l shallot.dev/network=${NET} -o jsonpath='{.items[*].status.containerStatuses[*].restartCount}'`,
          )
        )
          .split(/\s+/)
          .filter(Boolean)
          .reduce((a, b) => a + Number(b), 0);
      const restartsBefore = await restarts();
      const appliedBefore = await applied();
      const fault = (name: string, spec: string) =>
        kubectl(
          `apply -f - <<'EOF'\napiVersion: shallot.dev/v1alpha1\nkind: NetworkFault\nmetadata:\n  name: ${name}\nspec:\n  network: ${NET}\n${spec}\nEOF`,
        );
      const phase = (name: string) => jsonpath(`networkfault ${name}`, '{.status.phase}');
      await step('NetworkFault pause relay 0 for 30 s, fetches through it', async () => {
        await fault('pause-relay-0', '  kind: pause\n  target: { relay: 0 }\n  durationSeconds: 30');
        await until('the pause Active', 2 * MIN, async () =>
          (await phase('pause-relay-0')) === 'Active' ? true : undefined,
        );
        const updated = Number(await jsonpath('networkfault pause-relay-0', '{.status.podsUpdated}'));
        log(`pause Active; the table reached ${updated} pods`);
        expect(updated, 'every relay pod and onion-service instance got the table').toBeGreaterThanOrEqual(4);
        expect(await applied()).toBeGreaterThan(appliedBefore);
        // A paused relay holds its links silently (as a hung C tor does); a
        // fetch whose circuit crosses it can time out, but none may carry a
        // wrong byte (fetchOnce checks the digest), and the rest go through.
        const loop = fetchLoop(20, 25_000);
        await new Promise((r) => setTimeout(r, 25_000));
        const t = await loop.stop();
        log(`during the pause: ${t.ok} fetches ok, ${t.failed} failed`);
        expect(t.ok).toBeGreaterThan(0);
        await until('the pause Healed', 2 * MIN, async () =>
          (await phase('pause-relay-0')) === 'Healed' ? true : undefined,
        );
        for (let i = 0; i < 3; i++)
          expect(await fetchOnce(), `fetch ${i + 1} after the pause healed`).toBe(true);
      });
      await step('NetworkFault cut relay 1 ~ relay 2, then delete it', async () => {
        await fault(
          'cut-1-2',
          '  kind: cut\n  target: { relay: 1 }\n  peer: { relay: 2 }\n  durationSeconds: 600',
        );
        await until('the cut Active', 2 * MIN, async () =>
          (await phase('cut-1-2')) === 'Active' ? true : undefined,
        );
        expect(await fetchOnce(), 'a fetch during the cut').toBe(true);
        await kubectl('delete networkfault cut-1-2 --wait=true');
        const events = await kubectl(
          `get events --field-selector involvedObject.kind=NetworkFault -o custom-columns=R:.reason,O:.involvedObject.name --no-headers`,
        );
        log(`NetworkFault events:\n${events}`);
        expect(events).toMatch(/FaultStarted\s+pause-relay-0/);
        expect(events).toMatch(/FaultHealed\s+pause-relay-0/);
        expect(events).toMatch(/FaultStarted\s+cut-1-2/);
        for (let i = 0; i < 3; i++)
          expect(await fetchOnce(), `fetch ${i + 1} after the cut was deleted`).toBe(true);
        expect(await restarts(), 'no container restarted').toBe(restartsBefore);
      });
      await step(
        'NetworkFault pause authority 0 for 20 s: its pod takes the table, then it heals',
        async () => {
          const authApplied = () =>
            podCounter(`${NET}-auth-0`, 'shallot_link_fault_tables_total', /result="applied"/);
          const before = await authApplied();
          await fault('pause-auth-0', '  kind: pause\n  target: { authority: 0 }\n  durationSeconds: 20');
          await until('the authority pause Active', 2 * MIN, async () =>
            (await phase('pause-auth-0')) === 'Active' ? true : undefined,
          );
          expect(await authApplied(), 'the authority pod took the table').toBeGreaterThan(before);
          await until('the authority pause Healed', 2 * MIN, async () =>
            (await phase('pause-auth-0')) === 'Healed' ? true : undefined,
          );
          for (let i = 0; i < 3; i++)
            expect(await fetchOnce(), `fetch ${i + 1} after the authority pause healed`).toBe(true);
          await kubectl('delete networkfault pause-auth-0 --wait=true');
        },
      );
    },
    10 * MIN,
  );

  it(
    'npm run cluster:down leaves nothing behind',
    async () => {
      await step('npm run cluster:down', () =>
        sh('npm run -s cluster:down', { echo: true, timeoutMs: 5 * MIN }),
      );
      const leftovers = await sh(
        [
          'ip link show shallotbr0 2>/dev/null | head -1',
          'ip route show 10.96.0.0/16',
          "iptables -S FORWARD | grep -e 'shallot-cluster' || true",
          "iptables -t nat -S | grep -e '^-N KUBE-' || true",
          'grep -c " /tmp/shallot-cluster/" /proc/mounts || true',
        ].join('; '),
      );
      expect(
        leftovers
          .trim()
          .split('\n')
          .filter((l) => l.trim() && l.trim() !== '0'),
      ).toEqual([]);
      expect(existsSync(CLUSTER_DIR)).toBe(false);
      expect(readFileSync('/proc/sys/net/ipv4/ip_forward', 'utf8').trim()).toBe(ipForwardBefore);
    },
    6 * MIN,
  );
});
