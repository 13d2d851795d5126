/**
 * The CRDs: the chart's YAML is what operator/api generates, and each
 * CRD's spec/status schema matches its TypeScript types (STYLE 15) —
 * checked by generating JSON Schema from the types with
 * ts-json-schema-generator and walking both side by side.
 */
// biome-ignore-all lint/suspicious/noExplicitAny: assertions read untyped Kubernetes objects
import { readFileSync } from 'node:fs';
import { createGenerator } from 'ts-json-schema-generator';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { CRDS, crdObject } from '../../../operator/api/crds.js';
import { onionNetworkSpecSchema } from '../../../operator/api/onion-network.js';
import { applyDefaults, type JSONSchema } from '../../../operator/api/schema.js';
import { crdFileName, crdYaml } from '../../../operator/gen-crds.js';

type TsSchema = {
  type?: string | string[];
  properties?: Record<string, TsSchema>;
  required?: string[];
  items?: TsSchema;
  enum?: unknown[];
  additionalProperties?: TsSchema | boolean;
  anyOf?: TsSchema[];
  $ref?: string;
  definitions?: Record<string, TsSchema>;
};

function resolve(s: TsSchema, defs: Record<string, TsSchema>): TsSchema {
  if (s.$ref) {
    const name = decodeURIComponent(s.$ref.replace('#/definitions/', ''));
    const d = defs[name];
    if (!d) throw new Error(`unresolved ${s.$ref}`);
    return resolve(d, defs);
  }
  return s;
}

function tsTypes(s: TsSchema): Set<string> {
  if (s.anyOf) return new Set(s.anyOf.flatMap((x) => [...tsTypes(x)]));
  return new Set(Array.isArray(s.type) ? s.type : s.type ? [s.type] : []);
}

/** Differences between a CRD schema and the TS-derived one, as readable paths. */
function compare(
  crd: JSONSchema,
  ts: TsSchema,
  defs: Record<string, TsSchema>,
  path: string,
  isSpec: boolean,
): string[] {
  const t = resolve(ts, defs);
  const out: string[] = [];
  const types = tsTypes(t);
  if (crd['x-kubernetes-int-or-string']) {
    if (!(types.has('string') && types.has('number'))) out.push(`${path}: int-or-string vs ${[...types]}`);
    return out;
  }
  const want = new Set<string>([crd.type === 'integer' ? 'number' : String(crd.type)]);
  if (crd.nullable) want.add('null');
  if ([...want].sort().join() !== [...types].sort().join())
    out.push(`${path}: ${[...want]} vs ${[...types]}`);
  if (crd.enum && JSON.stringify([...crd.enum].sort()) !== JSON.stringify([...(t.enum ?? [])].sort())) {
    out.push(`${path}: enum ${crd.enum} vs ${t.enum}`);
  }
  if (crd.type === 'object' && crd.properties) {
    const a = Object.keys(crd.properties).sort();
    const b = Object.keys(t.properties ?? {}).sort();
    if (a.join() !== b.join()) out.push(`${path}: properties ${a} vs ${b}`);
    const tsReq = new Set(t.required ?? []);
    for (const r of crd.required ?? [])
      if (!tsReq.has(r)) out.push(`${path}.${r}: required in CRD, optional in TS`);
    if (isSpec) {
      for (const r of tsReq) {
        const p = crd.properties[r];
        if (p && !(crd.required ?? []).includes(r) && p.default === undefined) {
          out.push(`${path}.${r}: required in TS but neither required nor defaulted in CRD`);
        }
      }
    }
    for (const k of a) {
      if (t.properties?.[k])
        out.push(...compare(crd.properties[k]!, t.properties[k]!, defs, `${path}.${k}`, isSpec));
    }
  } else if (crd.type === 'object' && typeof crd.additionalProperties === 'object') {
    const ap = t.additionalProperties;
    if (typeof ap !== 'object') out.push(`${path}: map vs ${JSON.stringify(t)}`);
    else out.push(...compare(crd.additionalProperties, ap, defs, `${path}[*]`, isSpec));
  }
  if (crd.type === 'array' && crd.items) {
    if (!t.items) out.push(`${path}: array without items in TS`);
    else out.push(...compare(crd.items, t.items, defs, `${path}[]`, isSpec));
  }
  return out;
}

const FILES: Record<string, string> = {
  OnionNetwork: 'operator/api/onion-network.ts',
  OnionService: 'operator/api/onion-service.ts',
  LoadTest: 'operator/api/load-test.ts',
};

describe('CRDs', () => {
  for (const c of CRDS) {
    it(`${c.kind}: charts/shallot/crds/${crdFileName(c)} is generated from operator/api (run gen-crds)`, () => {
      const file = readFileSync(`charts/shallot/crds/${crdFileName(c)}`, 'utf8');
      expect(file).toBe(crdYaml(c));
      expect(parse(file)).toEqual(JSON.parse(JSON.stringify(crdObject(c))));
    });

    it(`${c.kind}: spec and status schemas match the TypeScript types`, () => {
      const gen = createGenerator({
        path: FILES[c.kind]!,
        tsconfig: 'tsconfig.json',
        skipTypeCheck: true,
        expose: 'all',
        topRef: false,
        jsDoc: 'none',
        type: `${c.kind}Spec`,
      });
      for (const [part, schema] of [
        ['Spec', c.spec],
        ['Status', c.status],
      ] as const) {
        const ts = gen.createSchema(`${c.kind}${part}`) as TsSchema;
        expect(
          compare(schema, ts, ts.definitions ?? {}, `${c.kind}.${part.toLowerCase()}`, part === 'Spec'),
        ).toEqual([]);
      }
    }, 60_000);

    it(`${c.kind}: group shallot.dev/v1alpha1, status subresource, Ready printer column`, () => {
      const o = crdObject(c) as any;
      expect(o.spec.group).toBe('shallot.dev');
      const v = o.spec.versions[0];
      expect(v.name).toBe('v1alpha1');
      expect(v.subresources).toEqual({ status: {} });
      expect(v.additionalPrinterColumns.map((x: any) => x.name)).toContain('Age');
      // LoadTest and NetworkFault show a Phase column instead (they run once and end).
      if (c.kind !== 'LoadTest' && c.kind !== 'NetworkFault')
        expect(v.additionalPrinterColumns.map((x: any) => x.name)).toContain('Ready');
    });
  }

  it('a comparison that should fail does (the checker is not vacuous)', () => {
    const crd: JSONSchema = {
      type: 'object',
      properties: { a: { type: 'integer' }, b: { type: 'string', enum: ['x'] } },
    };
    const ts: TsSchema = { type: 'object', properties: { a: { type: 'string' }, c: { type: 'number' } } };
    expect(compare(crd, ts, {}, 'T', true).length).toBeGreaterThanOrEqual(2);
  });

  it('defaults fill an empty OnionNetwork spec the way the apiserver does', () => {
    expect(applyDefaults(onionNetworkSpecSchema, {})).toEqual({
      authorities: { replicas: 3, votingIntervalSeconds: 60 },
      relays: {
        replicas: 5,
        exitFraction: 0.34,
        bandwidth: 1_000_000,
        bandwidthRate: 0,
        bandwidthBurst: 0,
        relaysPerPod: 1,
      },
      keyRotation: { onionKeyIntervalMinutes: 0, authorityKeyIntervalMinutes: 0, gracePeriodMinutes: 60 },
      metrics: { enabled: true, port: 9100 },
      tls: true,
    });
    expect(
      applyDefaults(onionNetworkSpecSchema, { relays: { replicas: 1, autoscale: { min: 1, max: 3 } } }),
    ).toMatchObject({
      relays: { replicas: 1, exitFraction: 0.34, autoscale: { min: 1, max: 3, targetCircuitsPerRelay: 50 } },
    });
  });
});
