/**
 * Helpers shared by the dashboard tests (test/dashboards/dashboards.test.ts
 * checks the files offline; test/slow/dashboards-prometheus.test.ts runs
 * every query against a real Prometheus): load dashboards/*.json, list every
 * PromQL expression with Grafana's variables substituted, parse it with
 * Prometheus's own lezer grammar, and list the metric names and label names
 * services/metrics/metrics.ts registers.
 */
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parser } from '@prometheus-io/lezer-promql';
import { createRegistry } from '../../services/metrics/metrics.js';

export const DASHBOARD_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../dashboards');

/**
 * Labels that come from the scrape rather than from prom-client: Prometheus
 * adds job and instance; `shallot up`'s file_sd targets add network, node
 * and role; Kubernetes service discovery adds namespace.
 */
export const TARGET_LABELS = ['job', 'instance', 'namespace', 'network', 'node', 'role'] as const;

/** Grafana's built-in interval variables, at the values the tests use. */
export const BUILTIN_DURATIONS: Record<string, string> = {
  __rate_interval: '1m',
  __interval: '1m',
  __range: '1h',
};

// Grafana's dashboard JSON is loosely typed; the schema test pins its shape.
export type Json = Record<string, unknown>;

export interface DashboardFile {
  file: string;
  /** File name without `.json`. */
  name: string;
  json: Json;
}

export interface PanelInfo {
  id: number;
  type: string;
  title: string;
  description: string;
  raw: Json;
}

export interface PanelQuery {
  dashboard: string;
  panel: string;
  refId: string;
  /** The expression as stored (with Grafana variables). */
  expr: string;
  legendFormat: string;
  instant: boolean;
}

export function loadDashboards(): DashboardFile[] {
  return readdirSync(DASHBOARD_DIR)
    .filter((f) => f.endsWith('.json'))
    .sort()
    .map((file) => ({
      file,
      name: file.replace(/\.json$/, ''),
      json: JSON.parse(readFileSync(path.join(DASHBOARD_DIR, file), 'utf8')) as Json,
    }));
}

const asArray = (v: unknown): Json[] => (Array.isArray(v) ? (v as Json[]) : []);

/** Every panel, rows' nested panels included; rows themselves are left out. */
export function panelsOf(d: Json): PanelInfo[] {
  const out: PanelInfo[] = [];
  const visit = (list: Json[]) => {
    for (const p of list) {
      if (p.type === 'row') {
        visit(asArray(p.panels));
        continue;
      }
      out.push({
        id: Number(p.id),
        type: String(p.type),
        title: typeof p.title === 'string' ? p.title : '',
        description: typeof p.description === 'string' ? p.description : '',
        raw: p,
      });
    }
  };
  visit(asArray(d.panels));
  return out;
}

export function variablesOf(d: Json): Json[] {
  return asArray((d.templating as Json | undefined)?.list);
}

export function panelQueries(dash: DashboardFile): PanelQuery[] {
  const out: PanelQuery[] = [];
  for (const p of panelsOf(dash.json)) {
    for (const t of asArray(p.raw.targets)) {
      out.push({
        dashboard: dash.name,
        panel: p.title,
        refId: String(t.refId ?? ''),
        expr: String(t.expr ?? ''),
        legendFormat: String(t.legendFormat ?? ''),
        instant: t.instant === true,
      });
    }
  }
  return out;
}

/** A query variable's `label_values(selector, label)`, split up. */
export function labelValuesQuery(v: Json): { selector: string | null; label: string } | null {
  const q = typeof v.query === 'string' ? v.query : String((v.query as Json | undefined)?.query ?? '');
  const m = /^\s*label_values\(\s*(?:(.*),\s*)?([A-Za-z_][A-Za-z0-9_]*)\s*\)\s*$/s.exec(q);
  if (!m) return null;
  return { selector: m[1] ?? null, label: m[2] ?? '' };
}

/**
 * Replaces Grafana variables (`$name`, `${name}`, `${name:fmt}`, `[[name]]`)
 * the way Grafana would with every variable at "All": a query variable
 * becomes its allValue, an interval variable its current value, and the
 * built-in intervals the values in BUILTIN_DURATIONS (or `durations`).
 * An unknown variable throws: the panel would show an error in Grafana.
 */
export function substitute(
  expr: string,
  dash: Json,
  durations: Record<string, string> = BUILTIN_DURATIONS,
): string {
  const vars = new Map<string, string>();
  for (const v of variablesOf(dash)) {
    const name = String(v.name);
    if (v.type === 'query' || v.type === 'custom') vars.set(name, String(v.allValue ?? '.*'));
    else if (v.type === 'interval' || v.type === 'constant' || v.type === 'textbox') {
      const cur = (v.current as Json | undefined)?.value;
      vars.set(name, String(Array.isArray(cur) ? cur[0] : (cur ?? v.query)));
    } else vars.set(name, String(v.name));
  }
  return expr.replace(
    /\$\{([A-Za-z0-9_]+)(?::[^}]*)?\}|\[\[([A-Za-z0-9_]+)\]\]|\$([A-Za-z0-9_]+)/g,
    (_all, a?: string, b?: string, c?: string) => {
      const name = a ?? b ?? c ?? '';
      const builtin = durations[name];
      if (builtin !== undefined) return builtin;
      const v = vars.get(name);
      if (v === undefined) throw new Error(`unknown Grafana variable $${name} in ${expr}`);
      return v;
    },
  );
}

export interface ParsedQuery {
  /** Syntax errors as "offset: text". */
  errors: string[];
  /** Metric names selected, by name or by a `__name__="..."` matcher. */
  metrics: string[];
  /** Label matchers per selector: the selector's metric (or null) and the label name. */
  matchers: { metric: string | null; label: string }[];
  /** Labels named in by/without/on/ignoring/group_left/group_right. */
  groupingLabels: string[];
  /** The duration text inside every range selector `[...]`. */
  ranges: string[];
}

/** Parses PromQL with @prometheus-io/lezer-promql (the grammar Prometheus's own UI uses). */
export function parsePromQL(expr: string): ParsedQuery {
  const out: ParsedQuery = { errors: [], metrics: [], matchers: [], groupingLabels: [], ranges: [] };
  const text = (n: { from: number; to: number }) => expr.slice(n.from, n.to);
  const unquote = (s: string) => s.replace(/^["'`]|["'`]$/g, '');
  const tree = parser.parse(expr);
  const cursor = tree.cursor();
  do {
    const node = cursor.node;
    if (node.type.isError)
      out.errors.push(`${node.from}: ${JSON.stringify(expr.slice(node.from, node.to + 10))}`);
    if (node.name === 'VectorSelector') {
      const id = node.getChild('Identifier');
      let metric = id ? text(id) : null;
      const ms = node.getChild('LabelMatchers');
      const matchers = ms
        ? [...ms.getChildren('UnquotedLabelMatcher'), ...ms.getChildren('QuotedLabelMatcher')]
        : [];
      for (const m of matchers) {
        const ln = m.getChild('LabelName') ?? m.getChild('QuotedLabelName');
        const label = ln ? unquote(text(ln)) : '';
        if (label === '__name__') {
          const s = m.getChild('StringLiteral');
          if (s) metric = unquote(text(s));
        }
      }
      for (const m of matchers) {
        const ln = m.getChild('LabelName') ?? m.getChild('QuotedLabelName');
        const label = ln ? unquote(text(ln)) : '';
        if (label !== '__name__') out.matchers.push({ metric, label });
      }
      if (metric) out.metrics.push(metric);
    }
    if (node.name === 'GroupingLabels') {
      for (const l of node.getChildren('LabelName')) out.groupingLabels.push(text(l));
    }
    if (node.name === 'MatrixSelector' || node.name === 'SubqueryExpr') {
      const m = /\[([^\]]*)\]\s*$/.exec(text(node));
      if (m?.[1] !== undefined) out.ranges.push(m[1]);
    }
  } while (cursor.next());
  return out;
}

/** What a metric name exposes: its own label names (plus `le` / `quantile`). */
export interface RegisteredMetric {
  name: string;
  type: string;
  labels: Set<string>;
}

/**
 * Every series name a Shallot process exposes, from a registry built with
 * createRegistry (Shallot's metric set and prom-client's default process
 * metrics, prefixed shallot_): histograms as _bucket/_sum/_count, summaries
 * as the name and _sum/_count.
 */
export async function registeredMetrics(): Promise<Map<string, RegisteredMetric>> {
  const registry = createRegistry();
  const out = new Map<string, RegisteredMetric>();
  const json = await registry.getMetricsAsJSON();
  const types = new Map(json.map((m) => [m.name, String(m.type)]));
  for (const metric of registry.getMetricsAsArray()) {
    const name = (metric as unknown as { name: string }).name;
    const own = (metric as unknown as { labelNames?: string[] }).labelNames ?? [];
    // Default metrics such as nodejs_gc_duration_seconds only show their labels in their values.
    const seen = json.find((m) => m.name === name)?.values.flatMap((v) => Object.keys(v.labels)) ?? [];
    const labels = new Set([...own, ...seen]);
    const type = types.get(name) ?? 'unknown';
    const add = (n: string, extra: string[] = []) =>
      out.set(n, { name: n, type, labels: new Set([...labels, ...extra]) });
    if (type === 'histogram') {
      add(`${name}_bucket`, ['le']);
      add(`${name}_sum`);
      add(`${name}_count`);
    } else if (type === 'summary') {
      add(name, ['quantile']);
      add(`${name}_sum`);
      add(`${name}_count`);
    } else add(name);
  }
  return out;
}
