// curl through a Shallot client's SOCKS port, each request under its own
// SOCKS username (C tor IsolateSOCKSAuth: fresh circuits), body checked by
// SHA-256; for the slow suites that start client processes and count what
// a user's curl would see (fresh-client, onion-dead-relays).
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';

export interface Outcome {
  label: string;
  ok: boolean;
  ms: number;
  error: string;
}

/** One curl of `url` under username `user`; ok when the body's SHA-256 is `wantSha256`. */
export function isolatedCurl(socks: string, url: string, user: string, wantSha256: string): Promise<Outcome> {
  const t0 = performance.now();
  return new Promise((resolve) =>
    execFile(
      'curl',
      // 130 s: past the client's SocksTimeout (120 s), so the client's answer is what counts.
      ['-sS', '--max-time', '130', '--socks5-hostname', socks, '--proxy-user', `${user}:x`, url],
      { encoding: 'buffer', maxBuffer: 16 << 20 },
      (err, stdout, stderr) => {
        const ms = performance.now() - t0;
        const ok = !err && createHash('sha256').update(stdout).digest('hex') === wantSha256;
        const error = err ? stderr.toString().trim() || err.message : ok ? '' : 'wrong body';
        resolve({ label: `${user} ${url}`, ok, ms, error });
      },
    ),
  );
}

/** `n` fetches, `parallel` at a time, each under a username of its own (`<prefix><i>`). */
export async function isolatedFetches(
  socks: string,
  url: string,
  wantSha256: string,
  o: { prefix: string; n: number; parallel: number },
): Promise<Outcome[]> {
  const out: Outcome[] = [];
  let next = 0;
  await Promise.all(
    Array.from({ length: o.parallel }, async () => {
      while (next < o.n) {
        const i = next++;
        out.push(await isolatedCurl(socks, url, `${o.prefix}${i}`, wantSha256));
      }
    }),
  );
  return out;
}

/** Prints ok count, median and max time and each failure; returns the ok ratio. */
export function reportOutcomes(what: string, r: Outcome[]): number {
  const failed = r.filter((o) => !o.ok);
  const ms = r.map((o) => o.ms).sort((a, b) => a - b);
  console.log(
    `${what}: ${r.length - failed.length}/${r.length} ok, median ${(ms[Math.floor(ms.length / 2)] ?? 0).toFixed(0)} ms, max ${(ms.at(-1) ?? 0).toFixed(0)} ms`,
  );
  for (const f of failed) console.log(`  FAILED ${f.label} after ${f.ms.toFixed(0)} ms: ${f.error}`);
  return r.length === 0 ? 0 : (r.length - failed.length) / r.length;
}
