import { defineConfig } from 'vitest/config';

// `npm test` is the fast inner loop: unit, vector and property tests plus the
// in-process integration tests. Suites that need outside tools (Prometheus,
// helm, kube-apiserver, podman) live under test/slow and run from test:all.
// The cluster suite (test/cluster: a real single-node Kubernetes) runs in
// test:all after every other suite, alone, so its pods never compete for
// the CPU with the timing-sensitive suites; `npm run test:cluster` runs it
// by itself.
const all = Boolean(process.env.SHALLOT_TEST_ALL);
const cluster = all || Boolean(process.env.SHALLOT_TEST_CLUSTER);

export default defineConfig({
  test: {
    testTimeout: 30_000,
    hookTimeout: 60_000,
    projects: [
      {
        extends: true,
        test: {
          name: 'main',
          include: ['test/**/*.test.ts'],
          exclude: ['node_modules/**', 'dist/**', 'test/cluster/**', ...(all ? [] : ['test/slow/**'])],
          sequence: { groupOrder: 0 },
        },
      },
      ...(cluster
        ? [
            {
              extends: true,
              test: {
                name: 'cluster',
                include: ['test/cluster/**/*.test.ts'],
                sequence: { groupOrder: 1 },
              },
            },
          ]
        : []),
    ],
  },
});
