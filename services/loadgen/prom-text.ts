/**
 * A reader for the Prometheus text exposition format (version 0.0.4), as
 * prom-client writes it: enough to take counters and histogram buckets
 * from the relays' and the client's /metrics before and after a load run.
 *
 * Not in this module: fetching (scrape.ts), OpenMetrics exemplars, or
 * timestamps (ignored when present).
 *
 * Limitations: a malformed line is skipped rather than failing the scrape;
 * a load report with one metric missing is more useful than none.
 */

export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

const NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*/;

function parseValue(s: string): number | null {
  switch (s) {
    case '+Inf':
      return Number.POSITIVE_INFINITY;
    case '-Inf':
      return Number.NEGATIVE_INFINITY;
    case 'NaN':
      return Number.NaN;
  }
  if (!/^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$/.test(s)) return null;
  return Number(s);
}

/** Parses `{a="x",b="y\"z"}` starting at `s[0] === '{'`; returns labels and the rest. */
function parseLabels(s: string): { labels: Record<string, string>; rest: string } | null {
  const labels: Record<string, string> = {};
  let i = 1;
  for (;;) {
    while (s[i] === ' ' || s[i] === ',') i++;
    if (s[i] === '}') return { labels, rest: s.slice(i + 1) };
    const m = NAME.exec(s.slice(i));
    if (!m) return null;
    const key = m[0];
    i += key.length;
    while (s[i] === ' ') i++;
    if (s[i] !== '=' || s[i + 1] !== '"') return null;
    i += 2;
    let v = '';
    for (;;) {
      const ch = s[i];
      if (ch === undefined) return null;
      if (ch === '"') break;
      if (ch === '\\') {
        const nx = s[i + 1];
        v += nx === 'n' ? '\n' : (nx ?? '');
        i += 2;
      } else {
        v += ch;
        i++;
      }
    }
    i++;
    labels[key] = v;
  }
}

/** Every sample in `text`; comments, blank and malformed lines are skipped. */
export function parsePromText(text: string): Sample[] {
  const out: Sample[] = [];
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    const m = NAME.exec(line);
    if (!m) continue;
    const name = m[0];
    let rest = line.slice(name.length);
    let labels: Record<string, string> = {};
    if (rest.startsWith('{')) {
      const l = parseLabels(rest);
      if (!l) continue;
      labels = l.labels;
      rest = l.rest;
    }
    const value = parseValue(rest.trim().split(/\s+/)[0] ?? '');
    if (value === null) continue;
    out.push({ name, labels, value });
  }
  return out;
}

/** A stable identity for a series: its name and sorted labels. */
export function seriesKey(s: { name: string; labels: Record<string, string> }): string {
  const parts = Object.keys(s.labels)
    .sort()
    .map((k) => `${k}=${JSON.stringify(s.labels[k])}`);
  return `${s.name}{${parts.join(',')}}`;
}
