// Offline checks of dashboards/*.json: Grafana's dashboard JSON model (a JSON
// Schema generated from @grafana/schema's Dashboard type, checked with ajv),
// conventions (datasource variable, filename uid, titles, descriptions, units,
// $__rate_interval), every PromQL expression parses with Prometheus's lezer
// grammar, and every metric and label it names exists in
// services/metrics/metrics.ts. test/slow/dashboards-prometheus.test.ts runs
// the same queries against a real Prometheus.
import { createRequire } from 'node:module';
import path from 'node:path';
import { Ajv, type ErrorObject } from 'ajv';
import { createGenerator } from 'ts-json-schema-generator';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  type DashboardFile,
  type Json,
  labelValuesQuery,
  loadDashboards,
  panelQueries,
  panelsOf,
  parsePromQL,
  type RegisteredMetric,
  registeredMetrics,
  substitute,
  TARGET_LABELS,
  variablesOf,
} from './dashboards.js';

const EXPECTED = ['circuits', 'network-overview', 'onion-services', 'operator', 'relays'];
const dashboards = loadDashboards();
let metrics: Map<string, RegisteredMetric>;
let validate: ((d: unknown) => boolean) & { errors?: ErrorObject[] | null };

/** Grafana's dashboard model as JSON Schema, from the installed @grafana/schema's TypeScript types. */
function grafanaDashboardSchema(): object {
  const require = createRequire(import.meta.url);
  const pkg = path.dirname(require.resolve('@grafana/schema/package.json'));
  return createGenerator({
    path: path.join(pkg, 'dist/types/raw/dashboard/x/types.gen.d.ts'),
    type: 'Dashboard',
    skipTypeCheck: true,
    expose: 'export',
    topRef: true,
    jsDoc: 'basic',
  }).createSchema('Dashboard');
}

beforeAll(async () => {
  metrics = await registeredMetrics();
  const ajv = new Ajv({ allErrors: true, strict: false });
  validate = ajv.compile(grafanaDashboardSchema());
}, 60_000);

/** Every PromQL text in a dashboard: panel targets and query variables' selectors. */
function expressions(d: DashboardFile): { where: string; expr: string; legend: string }[] {
  const out = panelQueries(d).map((q) => ({
    where: `${d.file} / ${q.panel} / ${q.refId}`,
    expr: q.expr,
    legend: q.legendFormat,
  }));
  for (const v of variablesOf(d.json)) {
    if (v.type !== 'query') continue;
    const lv = labelValuesQuery(v);
    if (lv?.selector) out.push({ where: `${d.file} / $${String(v.name)}`, expr: lv.selector, legend: '' });
  }
  return out;
}

describe('dashboards/*.json', () => {
  it('holds the five dashboards', () => {
    expect(dashboards.map((d) => d.name)).toEqual(EXPECTED);
  });

  it('the schema check rejects a broken dashboard (so passing means something)', () => {
    expect(validate({ schemaVersion: 39, panels: [{ title: 'no type' }] })).toBe(false);
    expect(validate({ schemaVersion: 39, templating: { list: [{ name: 'x', type: 'nope' }] } })).toBe(false);
    expect(validate({ title: 'no schemaVersion' })).toBe(false);
  });

  for (const d of dashboards) {
    describe(d.file, () => {
      const panels = panelsOf(d.json);

      it("matches Grafana's dashboard JSON model (@grafana/schema)", () => {
        const ok = validate(d.json);
        expect(
          ok ? [] : validate.errors?.map((e) => `${e.instancePath} ${e.message} ${JSON.stringify(e.params)}`),
        ).toEqual([]);
        expect(Number(d.json.schemaVersion)).toBeGreaterThanOrEqual(36); // Grafana 10+
      });

      it('has a filename-derived uid, a title, tags and a description', () => {
        expect(d.json.uid).toBe(`shallot-${d.name}`);
        expect(String(d.json.uid).length).toBeLessThanOrEqual(40); // Grafana's uid limit
        expect(String(d.json.title)).toMatch(/^Shallot \/ \S/);
        expect(d.json.tags).toContain('shallot');
        expect(String(d.json.description ?? '').length).toBeGreaterThan(20);
        expect(d.json.id ?? null).toBeNull(); // ids are per Grafana instance; imports must not carry one
      });

      // biome-ignore lint/suspicious/noTemplateCurlyInString: Grafana's variable syntax, not a JS template
      it('takes its Prometheus datasource from a ${datasource} variable everywhere', () => {
        const vars = variablesOf(d.json);
        const ds = vars.find((v) => v.name === 'datasource');
        expect(ds).toMatchObject({ type: 'datasource', query: 'prometheus' });
        const refs: unknown[] = [];
        for (const p of panels) {
          refs.push(p.raw.datasource);
          for (const t of (p.raw.targets as Json[] | undefined) ?? []) refs.push(t.datasource);
        }
        for (const v of vars) if (v.type === 'query') refs.push(v.datasource);
        // biome-ignore lint/suspicious/noTemplateCurlyInString: Grafana's variable syntax, not a JS template
        for (const r of refs) expect(r).toEqual({ type: 'prometheus', uid: '${datasource}' });
      });

      it('has namespace and network variables (All matches series without the label)', () => {
        const vars = variablesOf(d.json);
        for (const name of ['namespace', 'network']) {
          const v = vars.find((x) => x.name === name);
          expect(v, name).toMatchObject({ type: 'query', includeAll: true, allValue: '.*' });
          expect(labelValuesQuery(v as Json)?.label).toBe(name);
        }
        for (const v of vars)
          if (v.type === 'query') expect(labelValuesQuery(v), String(v.name)).not.toBeNull();
      });

      it('titles, describes and sets a unit on every panel', () => {
        expect(panels.length).toBeGreaterThan(0);
        for (const p of panels) {
          expect(p.title, `panel ${p.id}`).not.toBe('');
          expect(p.description.length, `description of "${p.title}"`).toBeGreaterThan(20);
          const defaults = ((p.raw.fieldConfig as Json | undefined)?.defaults ?? {}) as Json;
          expect(typeof defaults.unit, `unit of "${p.title}"`).toBe('string');
          expect(
            ((p.raw.targets as Json[] | undefined) ?? []).length,
            `targets of "${p.title}"`,
          ).toBeGreaterThan(0);
        }
        const titles = panels.map((p) => p.title);
        expect(new Set(titles).size).toBe(titles.length);
      });

      it('lays panels out on the 24-column grid without overlaps, with unique ids', () => {
        const all = (d.json.panels as Json[]) ?? [];
        const ids = all.map((p) => p.id);
        expect(new Set(ids).size).toBe(ids.length);
        const boxes = all.map((p) => p.gridPos as { x: number; y: number; w: number; h: number });
        for (const [i, a] of boxes.entries()) {
          expect(a.x + a.w, `panel ${String(all[i]?.title)}`).toBeLessThanOrEqual(24);
          for (const b of boxes.slice(i + 1)) {
            const overlap = a.x < b.x + b.w && b.x < a.x + a.w && a.y < b.y + b.h && b.y < a.y + a.h;
            expect(overlap, `${String(all[i]?.title)} overlaps another panel`).toBe(false);
          }
        }
      });

      it('every PromQL expression parses (lezer-promql) once Grafana variables are substituted', () => {
        for (const e of expressions(d)) {
          const parsed = parsePromQL(substitute(e.expr, d.json));
          expect(parsed.errors, `${e.where}: ${e.expr}`).toEqual([]);
          expect(parsed.metrics.length, `${e.where} selects no metric`).toBeGreaterThan(0);
        }
      });

      it('matches multi-value variables with =~ (Grafana joins several values into a regex)', () => {
        for (const e of expressions(d)) {
          expect(e.expr, e.where).not.toMatch(/[^=~!]=\s*"\$/);
          expect(e.expr, e.where).not.toMatch(/!=\s*"\$/);
        }
      });

      it('ranges use $__rate_interval, $__range or an interval variable, never a fixed duration', () => {
        const intervalVars = variablesOf(d.json)
          .filter((v) => v.type === 'interval')
          .map((v) => `$${String(v.name)}`);
        const allowed = new Set(['$__rate_interval', '$__range', ...intervalVars]);
        for (const e of expressions(d)) {
          for (const r of parsePromQL(
            substitute(e.expr, d.json, { __rate_interval: 'RI', __range: 'RA', __interval: 'IV' }),
          ).ranges) {
            expect(r, e.where).toMatch(/^(RI|RA|\d+[smhd])$/);
          }
          for (const m of e.expr.matchAll(/\[([^\]]+)\]/g))
            expect(allowed.has(m[1] ?? ''), `${e.where}: [${m[1]}]`).toBe(true);
          if (/\b(rate|irate)\(/.test(e.expr)) expect(e.expr, e.where).toContain('$__rate_interval');
        }
      });

      it('names only metrics and labels that services/metrics/metrics.ts registers', () => {
        for (const e of expressions(d)) {
          const parsed = parsePromQL(substitute(e.expr, d.json));
          const known = new Set<string>([...TARGET_LABELS]);
          for (const name of parsed.metrics) {
            const m = metrics.get(name);
            expect(m, `${e.where}: metric ${name} is not registered by createRegistry()`).toBeDefined();
            for (const l of m?.labels ?? []) known.add(l);
          }
          for (const { metric, label } of parsed.matchers) {
            const m = metric ? metrics.get(metric) : undefined;
            const ok =
              TARGET_LABELS.includes(label as (typeof TARGET_LABELS)[number]) || m?.labels.has(label);
            expect(ok, `${e.where}: ${metric} has no label ${label}`).toBe(true);
          }
          for (const l of parsed.groupingLabels)
            expect(known.has(l), `${e.where}: grouping by unknown label ${l}`).toBe(true);
          for (const m of e.legend.matchAll(/\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}/g)) {
            expect(known.has(m[1] ?? ''), `${e.where}: legend names unknown label ${m[1]}`).toBe(true);
          }
        }
      });

      it('draws at most 10 series per relay or relay process (topk), so the panel reads at 1,000 relays', () => {
        // Variables' label_values queries (where "/ $name") list values, they draw nothing.
        for (const e of expressions(d).filter((x) => !x.where.includes('/ $'))) {
          if (!/\{\{\s*relay\s*\}\}/.test(e.legend) && !e.expr.includes('role=~"relay')) continue;
          expect(e.expr, e.where).toMatch(/^(sort_desc\()?topk\(10, /);
        }
      });

      it('filters every Shallot series by $network (operator-wide reconcile metrics aside)', () => {
        const exempt = /^shallot_operator_reconcile_/;
        for (const e of expressions(d).filter((x) => !x.where.includes('/ $'))) {
          const parsed = parsePromQL(e.expr.replace(/\$__\w+/g, '1m').replace(/\$\w+/g, 'X'));
          for (const metric of parsed.metrics) {
            if (exempt.test(metric)) continue;
            const labels = parsed.matchers.filter((m) => m.metric === metric).map((m) => m.label);
            expect(labels, `${e.where}: ${metric}`).toContain('network');
          }
        }
      });
    });
  }
});

describe('the PromQL checks themselves', () => {
  it('the top-k rule catches a panel with one line per relay', () => {
    const expr = 'sum by (relay) (shallot_relay_circuits_active{network=~"$network"})';
    expect(expr).not.toMatch(/^(sort_desc\()?topk\(10, /);
    expect(`topk(10, ${expr})`).toMatch(/^(sort_desc\()?topk\(10, /);
  });

  it('catch a syntax error, an unknown metric and an unknown label', () => {
    expect(parsePromQL('sum(rate(shallot_circuits_total[1m])').errors.length).toBeGreaterThan(0);
    expect(parsePromQL('rate(x[$__rate_interval])').errors.length).toBeGreaterThan(0);
    const p = parsePromQL(
      'sum by (purpose) (rate(shallot_circuit_build_seconds_bucket{le="1", bogus="x"}[1m]))',
    );
    expect(p.errors).toEqual([]);
    expect(p.metrics).toEqual(['shallot_circuit_build_seconds_bucket']);
    expect(p.matchers.map((m) => m.label)).toEqual(['le', 'bogus']);
    expect(metrics.get('shallot_circuit_build_seconds_bucket')?.labels.has('bogus')).toBe(false);
    expect(metrics.has('shallot_circuit_build_seconds')).toBe(false); // only its _bucket/_sum/_count series exist
    expect(metrics.has('shallot_process_cpu_seconds_total')).toBe(true);
    expect(parsePromQL('{__name__="shallot_relay_cells_total", relay="r"}').metrics).toEqual([
      'shallot_relay_cells_total',
    ]);
  });

  it('substitutes variables as Grafana does with All selected, and refuses unknown ones', () => {
    const d = { templating: { list: [{ name: 'relay', type: 'query', allValue: '.*' }] } };
    expect(substitute('x{relay=~"$relay"}[$__rate_interval]', d)).toBe('x{relay=~".*"}[1m]');
    // biome-ignore lint/suspicious/noTemplateCurlyInString: Grafana's variable syntax, not a JS template
    expect(substitute('x{relay=~"${relay:regex}"}', d)).toBe('x{relay=~".*"}');
    expect(() => substitute('x{a="$nope"}', d)).toThrow(/nope/);
  });
});
