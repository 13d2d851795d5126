import { availableParallelism } from 'node:os';
import { defineConfig } from 'vitest/config';

// `npm test` is the fast inner loop: unit, vector and property tests plus the
// in-process integration tests. Suites that need outside tools (Prometheus,
// helm, kube-apiserver, podman) live under test/slow and run from test:all.
// Two groups run after the rest, each alone: "solo" holds the suites that
// assert a time users see (the first progress line of `npm start` within
// 2 s), which other suites' load on 2 cores would make a coin toss; the
// cluster suite (test/cluster: a real single-node Kubernetes) comes last so
// its pods never compete with the others. `npm run test:cluster` runs it
// by itself.
//
// At least two test files at a time: vitest's default for `run` is one
// worker per core less one, a single worker on the 2-core machines CI runs
// on, which left the second core mostly idle (load average about 1 through
// the 50-minute `test:all`). Every suite must pass beside another anyway (a
// flaky test under CPU load is a bug). SHALLOT_TEST_WORKERS overrides it.
const workers = Number(process.env.SHALLOT_TEST_WORKERS) || Math.max(2, availableParallelism() - 1);
const all = Boolean(process.env.SHALLOT_TEST_ALL);
const cluster = all || Boolean(process.env.SHALLOT_TEST_CLUSTER);
const solo = ['test/slow/first-five-minutes.test.ts'];

export default defineConfig({
  test: {
    maxWorkers: workers,
    testTimeout: 30_000,
    hookTimeout: 60_000,
    projects: [
      {
        extends: true,
        test: {
          name: 'main',
          include: ['test/**/*.test.ts'],
          exclude: [
            'node_modules/**',
            'dist/**',
            'test/cluster/**',
            ...solo,
            ...(all ? [] : ['test/slow/**']),
          ],
          sequence: { groupOrder: 0 },
        },
      },
      ...(all ? [{ extends: true, test: { name: 'solo', include: solo, sequence: { groupOrder: 1 } } }] : []),
      ...(cluster
        ? [
            {
              extends: true,
              test: {
                name: 'cluster',
                include: ['test/cluster/**/*.test.ts'],
                sequence: { groupOrder: 2 },
              },
            },
          ]
        : []),
    ],
  },
});
