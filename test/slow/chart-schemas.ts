/**
 * JSON Schemas for kubeconform, made from what the cluster itself enforces:
 * the chart's CRDs (their openAPIV3Schema) and a kube-apiserver's
 * /openapi/v2 document for the built-in kinds. kubeconform cannot download
 * its usual schema catalogue here (MACHINE-NOTES), so the chart test points
 * `-schema-location` at a directory this module writes.
 *
 * Design notes:
 * - kubeconform's `-strict` only rejects duplicate keys; unknown fields are
 *   rejected by the schema (its "-strict" catalogue sets
 *   additionalProperties: false). `strictify` does the same here for every
 *   object that lists its properties and does not say otherwise
 *   (additionalProperties, x-kubernetes-preserve-unknown-fields).
 * - OpenAPI's extensions become plain JSON Schema: x-kubernetes-int-or-string
 *   and IntOrString take an integer or a string, Quantity a string or a
 *   number, `nullable` adds "null" to the type.
 * - Built-in kinds keep the /openapi/v2 `definitions` they reach (and only
 *   those), so `#/definitions/...` references resolve inside each file.
 *   Descriptions are dropped: they are most of the size and validate nothing.
 * - Layout: `<dir>/<group or "v1">/<kind lowercased>_<version>.json`, which is
 *   what kubeconform's template `{{ .Group }}/{{ .ResourceKind }}_{{ .ResourceAPIVersion }}.json`
 *   expands to (for apiVersion "v1" its Group is "v1").
 *
 * Limitations: CEL rules (x-kubernetes-validations), defaulting and
 * admission are the apiserver's; test/slow/chart-apiserver.test.ts checks
 * them with a server-side dry run.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';

type Json = Record<string, unknown>;

export interface KindSchema {
  /** apiVersion as written in manifests ("v1", "apps/v1", "shallot.dev/v1alpha1"). */
  apiVersion: string;
  kind: string;
  schema: Json;
}

const isObj = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);

/** One OpenAPI (v2 or v3-in-CRD) schema as strict JSON Schema draft 4, recursively. */
export function strictify(s: Json, dropDescriptions = false): Json {
  const out: Json = {};
  for (const [k, v] of Object.entries(s)) {
    if (dropDescriptions && k === 'description') continue;
    if (k === 'properties' && isObj(v)) {
      out[k] = Object.fromEntries(
        Object.entries(v).map(([name, p]) => [name, isObj(p) ? strictify(p, dropDescriptions) : p]),
      );
    } else if ((k === 'items' || k === 'additionalProperties' || k === 'not') && isObj(v)) {
      out[k] = strictify(v, dropDescriptions);
    } else if ((k === 'anyOf' || k === 'oneOf' || k === 'allOf') && Array.isArray(v)) {
      out[k] = v.map((x) => (isObj(x) ? strictify(x, dropDescriptions) : x));
    } else {
      out[k] = v;
    }
  }
  if (s['x-kubernetes-int-or-string'] === true) {
    delete out.type;
    if (!out.anyOf) out.anyOf = [{ type: 'integer' }, { type: 'string' }];
  }
  if (s.nullable === true && typeof out.type === 'string') out.type = [out.type, 'null'];
  if (
    isObj(s.properties) &&
    s.additionalProperties === undefined &&
    s['x-kubernetes-preserve-unknown-fields'] !== true
  ) {
    out.additionalProperties = false;
  }
  return out;
}

function pinKind(schema: Json, apiVersion: string, kind: string): Json {
  const props = isObj(schema.properties) ? { ...schema.properties } : {};
  props.apiVersion = { type: 'string', enum: [apiVersion] };
  props.kind = { type: 'string', enum: [kind] };
  return { ...schema, properties: props };
}

/** The schemas of a CustomResourceDefinition (apiextensions.k8s.io/v1), one per served version. */
export function crdSchemas(crd: Json): KindSchema[] {
  const spec = crd.spec as {
    group: string;
    names: { kind: string };
    versions: { name: string; served: boolean; schema?: { openAPIV3Schema?: Json } }[];
  };
  const out: KindSchema[] = [];
  for (const v of spec.versions) {
    const raw = v.schema?.openAPIV3Schema;
    if (!v.served || !raw) continue;
    const apiVersion = `${spec.group}/${v.name}`;
    const schema = pinKind(strictify(raw), apiVersion, spec.names.kind);
    out.push({
      apiVersion,
      kind: spec.names.kind,
      schema: { $schema: 'http://json-schema.org/draft-04/schema#', ...schema },
    });
  }
  return out;
}

/** Definitions that stand for scalars in manifests (their swagger form is too narrow or too loose). */
const SCALAR_DEFINITIONS: Record<string, Json> = {
  'io.k8s.apimachinery.pkg.util.intstr.IntOrString': { anyOf: [{ type: 'integer' }, { type: 'string' }] },
  'io.k8s.apimachinery.pkg.api.resource.Quantity': { anyOf: [{ type: 'string' }, { type: 'number' }] },
};

function refsIn(v: unknown, into: Set<string>): void {
  if (Array.isArray(v)) {
    for (const x of v) refsIn(x, into);
  } else if (isObj(v)) {
    const ref = v.$ref;
    if (typeof ref === 'string' && ref.startsWith('#/definitions/'))
      into.add(ref.slice('#/definitions/'.length));
    for (const x of Object.values(v)) refsIn(x, into);
  }
}

/**
 * Schemas of the built-in kinds in a kube-apiserver's /openapi/v2 document.
 * `kinds` limits the output to "apiVersion/Kind" pairs ("apps/v1/Deployment").
 */
export function openApiV2Schemas(doc: Json, kinds?: Set<string>): KindSchema[] {
  const defs = (doc.definitions ?? {}) as Record<string, Json>;
  const converted = new Map<string, Json>();
  const convert = (name: string): Json => {
    let c = converted.get(name);
    if (!c) {
      c = SCALAR_DEFINITIONS[name] ?? strictify(defs[name] ?? {}, true);
      converted.set(name, c);
    }
    return c;
  };
  const out: KindSchema[] = [];
  for (const [name, def] of Object.entries(defs)) {
    const gvks = def['x-kubernetes-group-version-kind'] as
      | { group: string; version: string; kind: string }[]
      | undefined;
    // Option types (DeleteOptions, ...) name many group-versions; a resource names one.
    const gvk = gvks?.length === 1 ? gvks[0] : undefined;
    if (!gvk) continue;
    const apiVersion = gvk.group ? `${gvk.group}/${gvk.version}` : gvk.version;
    if (kinds && !kinds.has(`${apiVersion}/${gvk.kind}`)) continue;
    // The closure of referenced definitions, so `#/definitions/...` resolves in this file.
    const reach = new Set<string>();
    const todo = [name];
    while (todo.length > 0) {
      const n = todo.pop()!;
      if (reach.has(n)) continue;
      reach.add(n);
      const found = new Set<string>();
      refsIn(convert(n), found);
      todo.push(...found);
    }
    reach.delete(name);
    const definitions = Object.fromEntries([...reach].sort().map((n) => [n, convert(n)]));
    out.push({
      apiVersion,
      kind: gvk.kind,
      schema: {
        $schema: 'http://json-schema.org/draft-04/schema#',
        ...pinKind(convert(name), apiVersion, gvk.kind),
        definitions,
      },
    });
  }
  return out;
}

/** The file kubeconform looks for, relative to the schema directory. */
export function schemaFileName(apiVersion: string, kind: string): string {
  const parts = apiVersion.split('/');
  const group = parts[0]!;
  const version = parts[parts.length - 1]!;
  return path.join(group, `${kind.toLowerCase()}_${version}.json`);
}

/** kubeconform's -schema-location for a directory written by `writeSchemas`. */
export function schemaLocation(dir: string): string {
  return `${dir}/{{ .Group }}/{{ .ResourceKind }}_{{ .ResourceAPIVersion }}.json`;
}

export function writeSchemas(dir: string, schemas: KindSchema[]): void {
  for (const s of schemas) {
    const file = path.join(dir, schemaFileName(s.apiVersion, s.kind));
    mkdirSync(path.dirname(file), { recursive: true });
    writeFileSync(file, `${JSON.stringify(s.schema, null, 2)}\n`);
  }
}

/** prometheus-operator's Duration pattern (monitoring.coreos.com/v1). */
const DURATION =
  '^(0|(([0-9]+)y)?(([0-9]+)w)?(([0-9]+)d)?(([0-9]+)h)?(([0-9]+)m)?(([0-9]+)s)?(([0-9]+)ms)?)$';

/**
 * ServiceMonitor, PodMonitor and PrometheusRule (monitoring.coreos.com/v1):
 * minimal strict schemas written here, not copied. Their CRDs are not part
 * of this repository (and run to 70 kB each), so these list only the
 * fields the chart writes or a user plausibly adds, with the names and
 * types of prometheus-operator v0.87's CRDs; any other field fails, which
 * is what catches a misspelt key. The rules' PromQL is checked separately
 * by promtool.
 */
export function prometheusOperatorSchemas(): KindSchema[] {
  const str = { type: 'string' };
  const strMap = { type: 'object', additionalProperties: str };
  const labelSelector = {
    type: 'object',
    additionalProperties: false,
    properties: {
      matchLabels: strMap,
      matchExpressions: {
        type: 'array',
        items: {
          type: 'object',
          additionalProperties: false,
          required: ['key', 'operator'],
          properties: { key: str, operator: str, values: { type: 'array', items: str } },
        },
      },
    },
  };
  const namespaceSelector = {
    type: 'object',
    additionalProperties: false,
    properties: { any: { type: 'boolean' }, matchNames: { type: 'array', items: str } },
  };
  const relabel = {
    type: 'array',
    items: {
      type: 'object',
      additionalProperties: false,
      properties: {
        sourceLabels: { type: 'array', items: { type: 'string', pattern: '^[a-zA-Z_][a-zA-Z0-9_]*$' } },
        separator: str,
        targetLabel: str,
        regex: str,
        modulus: { type: 'integer' },
        replacement: str,
        action: {
          type: 'string',
          enum: [
            'replace',
            'Replace',
            'keep',
            'Keep',
            'drop',
            'Drop',
            'hashmod',
            'HashMod',
            'labelmap',
            'LabelMap',
            'labeldrop',
            'LabelDrop',
            'labelkeep',
            'LabelKeep',
            'lowercase',
            'Lowercase',
            'uppercase',
            'Uppercase',
            'keepequal',
            'KeepEqual',
            'dropequal',
            'DropEqual',
          ],
        },
      },
    },
  };
  const endpoint = (portField: Json) => ({
    type: 'object',
    additionalProperties: false,
    properties: {
      ...portField,
      path: str,
      scheme: { type: 'string', enum: ['http', 'https', 'HTTP', 'HTTPS'] },
      params: { type: 'object', additionalProperties: { type: 'array', items: str } },
      interval: { type: 'string', pattern: DURATION },
      scrapeTimeout: { type: 'string', pattern: DURATION },
      honorLabels: { type: 'boolean' },
      honorTimestamps: { type: 'boolean' },
      relabelings: relabel,
      metricRelabelings: relabel,
    },
  });
  const metadata = { type: 'object' };
  const resource = (kind: string, spec: Json): KindSchema => ({
    apiVersion: 'monitoring.coreos.com/v1',
    kind,
    schema: {
      $schema: 'http://json-schema.org/draft-04/schema#',
      type: 'object',
      additionalProperties: false,
      required: ['apiVersion', 'kind', 'metadata', 'spec'],
      properties: {
        apiVersion: { type: 'string', enum: ['monitoring.coreos.com/v1'] },
        kind: { type: 'string', enum: [kind] },
        metadata,
        spec,
      },
    },
  });
  const intOrString = { anyOf: [{ type: 'integer' }, { type: 'string' }] };
  return [
    resource('ServiceMonitor', {
      type: 'object',
      additionalProperties: false,
      required: ['selector'],
      properties: {
        jobLabel: str,
        targetLabels: { type: 'array', items: str },
        podTargetLabels: { type: 'array', items: str },
        endpoints: { type: 'array', items: endpoint({ port: str, targetPort: intOrString }) },
        selector: labelSelector,
        namespaceSelector,
        sampleLimit: { type: 'integer', minimum: 0 },
      },
    }),
    resource('PodMonitor', {
      type: 'object',
      additionalProperties: false,
      required: ['selector'],
      properties: {
        jobLabel: str,
        podTargetLabels: { type: 'array', items: str },
        podMetricsEndpoints: {
          type: 'array',
          items: endpoint({ port: str, portNumber: { type: 'integer', minimum: 1, maximum: 65535 } }),
        },
        selector: labelSelector,
        namespaceSelector,
        sampleLimit: { type: 'integer', minimum: 0 },
      },
    }),
    resource('PrometheusRule', {
      type: 'object',
      additionalProperties: false,
      properties: {
        groups: {
          type: 'array',
          items: {
            type: 'object',
            additionalProperties: false,
            required: ['name'],
            properties: {
              name: { type: 'string', minLength: 1 },
              interval: { type: 'string', pattern: DURATION },
              query_offset: { type: 'string', pattern: DURATION },
              limit: { type: 'integer' },
              labels: strMap,
              partial_response_strategy: str,
              rules: {
                type: 'array',
                items: {
                  type: 'object',
                  additionalProperties: false,
                  required: ['expr'],
                  properties: {
                    record: str,
                    alert: str,
                    expr: intOrString,
                    for: { type: 'string', pattern: DURATION },
                    keep_firing_for: { type: 'string', pattern: DURATION },
                    labels: strMap,
                    annotations: strMap,
                  },
                },
              },
            },
          },
        },
      },
    }),
  ];
}
