/**
 * The layering of services/ and operator/, checked from their imports
 * (issue 15 part 6; README "Layout": dependencies point one way).
 *
 * Overview: every .ts file's imports are read with TypeScript's own
 * pre-processor (comments and strings are not imports; `import type`,
 * re-exports and `import('…')` are) into a graph of files and packages,
 * and pure rules turn the graph into a list of violations:
 * - layers: core < net < runtime < metrics < the services < testnet; an
 *   import from a lower layer to a higher one is `upward`;
 * - `sideways`: a service (relay, directory, onion-service, client,
 *   loadgen) importing another, except onion-service → client (the service
 *   builds its circuits with the client's circuit manager);
 * - `operator`: the operator imports only core, runtime and metrics from
 *   services/, and nothing in services/ imports the operator;
 * - `core-package`: core is pure (no I/O): no core file outside the
 *   crypto room (core/crypto.ts and core/crypto/*.ts) imports a package,
 *   and the room only node:crypto and @noble/*; and `crypto-package`:
 *   nothing outside the room imports node:crypto or @noble/*;
 * - `cycle`: files importing each other, directly or around a loop;
 * - `unresolved` / `unknown-layer`: an import of a file that is not there,
 *   or a directory the layer order does not place, so nothing slips past
 *   the rules unread.
 *
 * KNOWN lists today's violations, each with the issue part that removes
 * it. The tree must show exactly those: a new violation fails, and so does
 * a listed one that is gone (delete its line), so the list only shrinks.
 * The fixtures at the end feed in-memory graphs with deliberate violations
 * to the same rules, showing that each one is caught.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';

/** Repo-relative posix path of a .ts file → the module specifiers it imports, as written. */
type ImportGraph = ReadonlyMap<string, readonly string[]>;

const SERVICES = new Set(['relay', 'directory', 'onion-service', 'client', 'loadgen']);

/**
 * Layer order, low to high; a layer may import its own files and lower
 * layers. `runtime` (process plumbing: logs, CLI, servers; issue 15 part 4)
 * sits above the protocol in net and below what uses it.
 */
const RANK: Readonly<Record<string, number>> = {
  core: 0,
  net: 1,
  runtime: 2,
  metrics: 3,
  ...Object.fromEntries([...SERVICES].map((s) => [s, 4])),
  testnet: 5,
};

/**
 * What the operator may import from services/: core for key generation and
 * file formats, runtime for the process plumbing every process shares (its
 * ops server), metrics for its metric names.
 */
const OPERATOR_MAY_USE = new Set(['core', 'runtime', 'metrics']);

const CRYPTO_MODULE = 'services/core/crypto.ts';
/**
 * The crypto room: crypto.ts and the files of core/crypto/ (split so none
 * passes ~450 lines; issue 15). Only these import node:crypto or @noble/*.
 */
const isCryptoRoom = (file: string): boolean =>
  file === CRYPTO_MODULE || /^services\/core\/crypto\/[^/]+\.ts$/.test(file);
const isCryptoPackage = (spec: string): boolean => spec === 'node:crypto' || spec.startsWith('@noble/');

/** `services/<layer>/…` or `operator/…`; undefined for anything else. */
function layerOf(file: string): string | undefined {
  const [top, second] = file.split('/');
  if (top === 'operator') return 'operator';
  if (top === 'services' && second !== undefined && file.split('/').length > 2) return second;
  return undefined;
}

/** The file a relative specifier names ('./x.js' is x.ts, as NodeNext resolution writes it). */
function resolve(from: string, spec: string): string {
  const joined = path.posix.normalize(path.posix.join(path.posix.dirname(from), spec));
  return joined.replace(/\.js$/, '.ts');
}

/** Every rule but cycles, one line per offending import. */
function importViolations(graph: ImportGraph): string[] {
  const out: string[] = [];
  for (const [from, specs] of graph) {
    const fromLayer = layerOf(from);
    if (fromLayer === undefined || (fromLayer !== 'operator' && RANK[fromLayer] === undefined)) {
      out.push(`unknown-layer: ${from}`);
      continue;
    }
    for (const spec of specs) {
      if (!spec.startsWith('.')) {
        if (fromLayer === 'core' && !isCryptoRoom(from)) out.push(`core-package: ${from} -> ${spec}`);
        else if (isCryptoRoom(from) && !isCryptoPackage(spec)) out.push(`core-package: ${from} -> ${spec}`);
        else if (!isCryptoRoom(from) && isCryptoPackage(spec)) out.push(`crypto-package: ${from} -> ${spec}`);
        continue;
      }
      const to = resolve(from, spec);
      if (!graph.has(to)) {
        out.push(`unresolved: ${from} -> ${spec}`);
        continue;
      }
      const toLayer = layerOf(to);
      if (toLayer === undefined || toLayer === fromLayer) continue;
      if (fromLayer === 'operator') {
        if (!OPERATOR_MAY_USE.has(toLayer)) out.push(`operator: ${from} -> ${to}`);
      } else if (toLayer === 'operator') {
        out.push(`operator: ${from} -> ${to}`);
      } else if ((RANK[toLayer] ?? Number.POSITIVE_INFINITY) > (RANK[fromLayer] ?? 0)) {
        out.push(`upward: ${from} -> ${to}`);
      } else if (SERVICES.has(fromLayer) && SERVICES.has(toLayer)) {
        if (!(fromLayer === 'onion-service' && toLayer === 'client')) out.push(`sideways: ${from} -> ${to}`);
      }
    }
  }
  return out;
}

/**
 * Strongly connected components of the file graph with more than one file
 * (or a file importing itself), each as `cycle: a <-> b <-> …` in sorted
 * order (Tarjan's algorithm, iterative so a long chain cannot overflow).
 */
function cycleViolations(graph: ImportGraph): string[] {
  const next = new Map<string, string[]>();
  for (const [from, specs] of graph) {
    next.set(
      from,
      specs
        .filter((s) => s.startsWith('.'))
        .map((s) => resolve(from, s))
        .filter((t) => graph.has(t)),
    );
  }
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const onStack = new Set<string>();
  const stack: string[] = [];
  const out: string[] = [];
  let counter = 0;
  for (const root of [...next.keys()].sort()) {
    if (index.has(root)) continue;
    const work: { node: string; i: number }[] = [{ node: root, i: 0 }];
    index.set(root, counter);
    low.set(root, counter++);
    stack.push(root);
    onStack.add(root);
    while (work.length > 0) {
      const top = work[work.length - 1]!;
      const targets = next.get(top.node)!;
      if (top.i < targets.length) {
        const t = targets[top.i++]!;
        if (!index.has(t)) {
          index.set(t, counter);
          low.set(t, counter++);
          stack.push(t);
          onStack.add(t);
          work.push({ node: t, i: 0 });
        } else if (onStack.has(t)) {
          low.set(top.node, Math.min(low.get(top.node)!, index.get(t)!));
        }
        continue;
      }
      work.pop();
      const parent = work[work.length - 1];
      if (parent) low.set(parent.node, Math.min(low.get(parent.node)!, low.get(top.node)!));
      if (low.get(top.node) !== index.get(top.node)) continue;
      const scc: string[] = [];
      for (;;) {
        const n = stack.pop()!;
        onStack.delete(n);
        scc.push(n);
        if (n === top.node) break;
      }
      if (scc.length > 1 || targets.includes(top.node)) out.push(`cycle: ${scc.sort().join(' <-> ')}`);
    }
  }
  return out;
}

function violations(graph: ImportGraph): string[] {
  return [...importViolations(graph), ...cycleViolations(graph)].sort();
}

/** The specifiers a source file imports: static, type-only, re-exported and dynamic. */
function importsOf(src: string): string[] {
  return ts.preProcessFile(src, true, true).importedFiles.map((f) => f.fileName);
}

/** The import graph of every .ts file under services/ and operator/. */
function readTree(root: string): ImportGraph {
  const graph = new Map<string, string[]>();
  const walk = (dir: string): void => {
    for (const e of fs.readdirSync(path.join(root, dir), { withFileTypes: true })) {
      const rel = `${dir}/${e.name}`;
      if (e.isDirectory()) walk(rel);
      else if (e.name.endsWith('.ts') && !e.name.endsWith('.d.ts'))
        graph.set(rel, importsOf(fs.readFileSync(path.join(root, rel), 'utf8')));
    }
  };
  walk('services');
  walk('operator');
  return graph;
}

/**
 * Today's violations, each removed by a named part of issue 15; the tree
 * must show exactly these. When a part lands, its lines go.
 */
const KNOWN: readonly (readonly [violation: string, removedBy: string])[] = [
  // Part 4 (the runtime room) removed the last ones; a violation added here needs the part that removes it.
];

/** What the tree adds to the known list, and what it no longer shows. */
function againstKnown(found: readonly string[]): { added: string[]; gone: string[] } {
  const known = new Set(KNOWN.map(([v]) => v));
  const seen = new Set(found);
  return { added: found.filter((v) => !known.has(v)), gone: [...known].filter((v) => !seen.has(v)) };
}

const ROOT = path.resolve(import.meta.dirname, '../..');

describe('architecture of services/ and operator/', () => {
  const tree = readTree(ROOT);

  it('reads the whole tree', () => {
    // A walk that found nothing would pass every rule.
    expect(tree.size).toBeGreaterThan(100);
    for (const f of [CRYPTO_MODULE, 'services/net/channel.ts', 'operator/main.ts'])
      expect(tree.has(f)).toBe(true);
  });

  it('has no violations but the known ones, and every known one still occurs', () => {
    expect(againstKnown(violations(tree))).toEqual({ added: [], gone: [] });
  });

  it('names the issue part that removes each known violation', () => {
    for (const [, by] of KNOWN) expect(by).toMatch(/^issue 15 part \d$/);
    expect(new Set(KNOWN.map(([v]) => v)).size).toBe(KNOWN.length);
  });
});

describe('the rules, on fixture graphs', () => {
  const graph = (entries: Record<string, string[]>): ImportGraph => new Map(Object.entries(entries));

  it('fails when a deliberate upward import is added to the real tree', () => {
    // A new core file (imported by nothing, so no cycle) that reaches up into net.
    const tree = new Map(readTree(ROOT));
    tree.set('services/core/upward.ts', ['./bytes.js', '../net/channel.js']);
    expect(againstKnown(violations(tree)).added).toEqual([
      'upward: services/core/upward.ts -> services/net/channel.ts',
    ]);
  });

  it('upward: every pair of layers out of order', () => {
    const g = graph({
      'services/core/a.ts': ['../net/b.js', '../metrics/m.js'],
      'services/net/b.ts': ['../relay/r.js', '../core/a.js'],
      'services/metrics/m.ts': ['../net/b.js'],
      'services/relay/r.ts': ['../testnet/t.js', '../core/a.js', '../metrics/m.js'],
      'services/testnet/t.ts': ['../relay/r.js'],
    });
    expect(importViolations(g)).toEqual([
      'upward: services/core/a.ts -> services/net/b.ts',
      'upward: services/core/a.ts -> services/metrics/m.ts',
      'upward: services/net/b.ts -> services/relay/r.ts',
      'upward: services/relay/r.ts -> services/testnet/t.ts',
    ]);
  });

  it('sideways: one service importing another, except onion-service -> client', () => {
    const g = graph({
      'services/relay/r.ts': ['../client/c.js'],
      'services/client/c.ts': [],
      'services/onion-service/s.ts': ['../client/c.js', '../relay/r.js'],
      'services/loadgen/l.ts': ['../directory/d.js'],
      'services/directory/d.ts': [],
    });
    expect(importViolations(g)).toEqual([
      'sideways: services/relay/r.ts -> services/client/c.ts',
      'sideways: services/onion-service/s.ts -> services/relay/r.ts',
      'sideways: services/loadgen/l.ts -> services/directory/d.ts',
    ]);
  });

  it('operator: core, runtime and metrics only, and nothing in services/ imports it', () => {
    const g = graph({
      'operator/a.ts': [
        '../services/core/k.js',
        '../services/runtime/o.js',
        '../services/metrics/m.js',
        './b.js',
        '../services/relay/r.js',
      ],
      'operator/b.ts': ['../services/net/n.js'],
      'services/core/k.ts': [],
      'services/runtime/o.ts': [],
      'services/metrics/m.ts': [],
      'services/net/n.ts': [],
      'services/relay/r.ts': ['../../operator/b.js'],
    });
    expect(importViolations(g)).toEqual([
      'operator: operator/a.ts -> services/relay/r.ts',
      'operator: operator/b.ts -> services/net/n.ts',
      'operator: services/relay/r.ts -> operator/b.ts',
    ]);
  });

  it('core-package: core imports no package but in the crypto room; crypto-package: node:crypto and @noble stay there', () => {
    const g = graph({
      'services/core/a.ts': ['node:fs', 'ws', 'commander', 'prom-client', './crypto.js'],
      'services/core/dir/b.ts': ['node:net'],
      [CRYPTO_MODULE]: ['node:crypto', '@noble/curves/ed25519.js', 'node:fs'],
      'services/core/crypto/rsa.ts': ['node:crypto', 'node:os'],
      'services/core/crypto-extra.ts': ['@noble/hashes/sha3.js'],
      'services/core/crypto/deeper/x.ts': ['node:crypto'],
      'services/relay/r.ts': ['node:net', 'ws', '@noble/hashes/sha3.js', 'node:crypto'],
    });
    expect(importViolations(g)).toEqual([
      'core-package: services/core/a.ts -> node:fs',
      'core-package: services/core/a.ts -> ws',
      'core-package: services/core/a.ts -> commander',
      'core-package: services/core/a.ts -> prom-client',
      'core-package: services/core/dir/b.ts -> node:net',
      'core-package: services/core/crypto.ts -> node:fs',
      'core-package: services/core/crypto/rsa.ts -> node:os',
      'core-package: services/core/crypto-extra.ts -> @noble/hashes/sha3.js',
      'core-package: services/core/crypto/deeper/x.ts -> node:crypto',
      'crypto-package: services/relay/r.ts -> @noble/hashes/sha3.js',
      'crypto-package: services/relay/r.ts -> node:crypto',
    ]);
  });

  it('cycle: loops of any length and self-imports, one line each; a diamond is no cycle', () => {
    const g = graph({
      'services/net/a.ts': ['./b.js'],
      'services/net/b.ts': ['./c.js'],
      'services/net/c.ts': ['./a.js', './d.js'],
      'services/net/d.ts': [],
      'services/core/self.ts': ['./self.js'],
      'services/core/top.ts': ['./l.js', './r.js'],
      'services/core/l.ts': ['./bottom.js'],
      'services/core/r.ts': ['./bottom.js'],
      'services/core/bottom.ts': [],
    });
    expect(cycleViolations(g).sort()).toEqual([
      'cycle: services/core/self.ts',
      'cycle: services/net/a.ts <-> services/net/b.ts <-> services/net/c.ts',
    ]);
  });

  it('unresolved and unknown-layer: nothing is skipped unread', () => {
    const g = graph({
      'services/relay/r.ts': ['./missing.js'],
      'services/newthing/x.ts': [],
      'services/loose.ts': [],
    });
    expect(importViolations(g)).toEqual([
      'unresolved: services/relay/r.ts -> ./missing.js',
      'unknown-layer: services/newthing/x.ts',
      'unknown-layer: services/loose.ts',
    ]);
  });

  it('reads type-only imports, re-exports and import(), not comments or strings', () => {
    const src = [
      "import type { A } from './a.js';",
      "export { B } from './b.js';",
      "// import { C } from './c.js';",
      'const s = "import { D } from \'./d.js\'";',
      "let e: import('node:stream').Duplex;",
      "const f = await import('./f.js');",
    ].join('\n');
    expect(importsOf(src)).toEqual(['./a.js', './b.js', 'node:stream', './f.js']);
  });
});
