import { defineConfig } from 'vitest/config';

// `npm test` is the fast inner loop: unit, vector and property tests plus the
// in-process integration tests. Suites that need outside tools (Prometheus,
// helm, kube-apiserver, podman) live under test/slow and run from test:all.
export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    exclude: process.env.SHALLOT_TEST_ALL
      ? ['node_modules/**', 'dist/**']
      : ['test/slow/**', 'node_modules/**', 'dist/**'],
    testTimeout: 30_000,
    hookTimeout: 60_000,
  },
});
