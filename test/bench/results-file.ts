/**
 * Where the benches write their JSON: bench-results/<name>-<time>.json at
 * the repository root, found from this file's own place (test/bench/ when
 * run from source, dist/test/bench/ when built: three levels up either way).
 */
import { mkdirSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));

/** The repository root. */
export const REPO_ROOT = resolve(here, here.split('/').includes('dist') ? '../../..' : '../..');

/** A new bench-results/<name>-<time>.json path; the directory is made if missing. */
export function benchResultsPath(name: string): string {
  const dir = join(REPO_ROOT, 'bench-results');
  mkdirSync(dir, { recursive: true });
  return join(dir, `${name}-${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
}
