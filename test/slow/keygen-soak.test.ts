// Issue 12 item 2: in Node 20 a garbage collection during a JWK key export
// could deadlock the main thread for good, and every CREATE2 generates an
// X25519 key. The keygen path (x25519Generate, as the relay calls it) runs
// 200,000 times in a child process with a tiny young generation, so
// collections land inside exports all the time; a watchdog kills the child
// if it stops making progress, which fails the test instead of hanging it.
// Needs `npm run build` (done by `npm run test:all`).
import { spawn } from 'node:child_process';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { expect, it } from 'vitest';

const KEYS = 200_000;
const crypto = pathToFileURL(path.resolve('dist/services/core/crypto.js')).href;

const script = `
import { x25519Generate, x25519PublicFromSecret, x25519 } from ${JSON.stringify(crypto)};
const seen = new Set();
let garbage = [];
for (let i = 1; i <= ${KEYS}; i++) {
  const k = x25519Generate();
  garbage.push(new Array(64).fill(i));
  if (garbage.length > 256) garbage = [];
  if (i % 1000 === 0) {
    // A sample checked against the slow path: the DER slices are the real keys.
    if (Buffer.compare(Buffer.from(x25519PublicFromSecret(k.secret)), Buffer.from(k.public)) !== 0) throw new Error('public key mismatch at ' + i);
    seen.add(Buffer.from(k.public).toString('hex'));
    process.stdout.write('progress ' + i + '\\n');
  }
}
const a = x25519Generate(), b = x25519Generate();
const same = Buffer.compare(Buffer.from(x25519(a.secret, b.public)), Buffer.from(x25519(b.secret, a.public))) === 0;
process.stdout.write('done ' + seen.size + ' ' + same + '\\n');
`;

it(`generates ${KEYS} X25519 keys without a hang (GC forced into exports)`, async () => {
  const child = spawn(process.execPath, ['--max-semi-space-size=1', '--input-type=module', '-e', script], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  let lastProgress = Date.now();
  child.stdout.on('data', (d: Buffer) => {
    out += d.toString();
    lastProgress = Date.now();
  });
  child.stderr.on('data', (d: Buffer) => {
    err += d.toString();
  });
  // No progress line for 20 s (1,000 keys take well under a second) is a hang.
  const watchdog = setInterval(() => {
    if (Date.now() - lastProgress > 20_000) child.kill('SIGKILL');
  }, 1_000);
  const code = await new Promise<number | null>((r) => child.on('exit', (c) => r(c)));
  clearInterval(watchdog);
  const last = out.trim().split('\n').at(-1) ?? '';
  expect(code, `child stopped at "${last}" ${err}`).toBe(0);
  expect(last).toBe(`done ${KEYS / 1000} true`);
}, 600_000);
