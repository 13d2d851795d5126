/**
 * Building blocks for the CRDs' OpenAPI v3 schemas (structural schemas, as
 * apiextensions.k8s.io/v1 requires) and a few shared API types.
 *
 * Overview: each CRD file (onion-network.ts, onion-service.ts, load-test.ts)
 * declares its `spec`/`status` TypeScript types next to the schema that the
 * apiserver enforces; `crds.ts` wraps them into CustomResourceDefinitions
 * and `gen-crds.ts` writes charts/shallot/crds/*.yaml from them. A unit test
 * checks the YAML is current and the TS types match the schemas.
 *
 * Design notes: `applyDefaults` mirrors the apiserver's structural
 * defaulting so unit tests (and the operator, defensively) see the same
 * spec a real cluster would store.
 */

export interface JSONSchema {
  type?: 'object' | 'array' | 'string' | 'integer' | 'number' | 'boolean';
  description?: string;
  properties?: Record<string, JSONSchema>;
  required?: string[];
  items?: JSONSchema;
  additionalProperties?: JSONSchema | boolean;
  enum?: (string | number)[];
  default?: unknown;
  minimum?: number;
  maximum?: number;
  minLength?: number;
  maxLength?: number;
  maxItems?: number;
  pattern?: string;
  format?: string;
  nullable?: boolean;
  'x-kubernetes-validations'?: { rule: string; message: string }[];
  'x-kubernetes-int-or-string'?: boolean;
  'x-kubernetes-list-type'?: 'map' | 'set' | 'atomic';
  'x-kubernetes-list-map-keys'?: string[];
  anyOf?: JSONSchema[];
}

export const int = (description: string, min: number, max: number, dflt?: number): JSONSchema => ({
  type: 'integer',
  description,
  minimum: min,
  maximum: max,
  ...(dflt === undefined ? {} : { default: dflt }),
});

export const num = (description: string, min: number, max: number, dflt?: number): JSONSchema => ({
  type: 'number',
  description,
  minimum: min,
  maximum: max,
  ...(dflt === undefined ? {} : { default: dflt }),
});

export const str = (description: string, extra: Partial<JSONSchema> = {}): JSONSchema => ({
  type: 'string',
  description,
  ...extra,
});

export const bool = (description: string, dflt?: boolean): JSONSchema => ({
  type: 'boolean',
  description,
  ...(dflt === undefined ? {} : { default: dflt }),
});

export const obj = (
  description: string,
  properties: Record<string, JSONSchema>,
  extra: Partial<JSONSchema> = {},
): JSONSchema => ({ type: 'object', description, properties, ...extra });

/** A DNS-1123 label: the name of another object in the same namespace. */
export const NAME_PATTERN = '^[a-z0-9]([-a-z0-9]*[a-z0-9])?$';

/** Kubernetes resource quantities ("100m", "128Mi", 2). */
const quantity: JSONSchema = {
  'x-kubernetes-int-or-string': true,
  anyOf: [{ type: 'integer' }, { type: 'string' }],
  pattern:
    '^(\\+|-)?(([0-9]+(\\.[0-9]*)?)|(\\.[0-9]+))(([KMGTPE]i)|[numkMGTPE]|([eE](\\+|-)?(([0-9]+(\\.[0-9]*)?)|(\\.[0-9]+))))?$',
};

export const resourcesSchema: JSONSchema = obj('Container resources (requests and limits), as in a Pod.', {
  requests: { type: 'object', additionalProperties: quantity },
  limits: { type: 'object', additionalProperties: quantity },
});

export interface ResourceRequirements {
  requests?: Record<string, string | number>;
  limits?: Record<string, string | number>;
}

/** metav1.Condition, as every Kubernetes API writes them. */
export interface Condition {
  type: string;
  status: 'True' | 'False' | 'Unknown';
  reason: string;
  message: string;
  lastTransitionTime: string;
  observedGeneration?: number;
}

export type ConditionType = 'Ready' | 'Progressing' | 'Degraded';

export const conditionsSchema: JSONSchema = {
  type: 'array',
  description: 'Ready, Progressing and Degraded, each with a reason and the generation it describes.',
  'x-kubernetes-list-type': 'map',
  'x-kubernetes-list-map-keys': ['type'],
  maxItems: 8,
  items: obj(
    'A metav1.Condition.',
    {
      type: str('Ready, Progressing or Degraded.', { maxLength: 316 }),
      status: str('True, False or Unknown.', { enum: ['True', 'False', 'Unknown'] }),
      reason: str('CamelCase reason.', { maxLength: 1024 }),
      message: str('Human-readable detail.', { maxLength: 32768 }),
      lastTransitionTime: str('When status last changed.', { format: 'date-time' }),
      observedGeneration: int('metadata.generation this condition describes.', 0, Number.MAX_SAFE_INTEGER),
    },
    { required: ['type', 'status', 'reason', 'message', 'lastTransitionTime'] },
  ),
};

export interface ObjectMeta {
  name: string;
  namespace?: string;
  uid?: string;
  generation?: number;
  resourceVersion?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  creationTimestamp?: string;
  deletionTimestamp?: string;
  /** Kept from deletion until each is removed (a NetworkFault's: reconcile/fault-finalizer.ts). */
  finalizers?: string[];
  ownerReferences?: OwnerReference[];
}

export interface OwnerReference {
  apiVersion: string;
  kind: string;
  name: string;
  uid: string;
  controller?: boolean;
  blockOwnerDeletion?: boolean;
}

export interface Resource<Spec, Status> {
  apiVersion: string;
  kind: string;
  metadata: ObjectMeta;
  spec: Spec;
  status?: Status;
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/**
 * Structural defaulting as the apiserver does it: a missing property with a
 * `default` gets a copy of it (and its own defaults applied), recursively
 * into objects and array items. Returns a new value; `value` is untouched.
 */
export function applyDefaults(schema: JSONSchema, value: unknown): unknown {
  if (schema.type === 'object' && isPlainObject(value)) {
    const out: Record<string, unknown> = { ...value };
    for (const [k, sub] of Object.entries(schema.properties ?? {})) {
      if (out[k] === undefined && sub.default !== undefined) out[k] = structuredClone(sub.default);
      if (out[k] !== undefined) out[k] = applyDefaults(sub, out[k]);
    }
    if (isPlainObject(schema.additionalProperties)) {
      const ap = schema.additionalProperties;
      for (const k of Object.keys(out)) {
        if (!(k in (schema.properties ?? {}))) out[k] = applyDefaults(ap, out[k]);
      }
    }
    return out;
  }
  if (schema.type === 'array' && Array.isArray(value) && schema.items) {
    const items = schema.items;
    return value.map((v) => applyDefaults(items, v));
  }
  return value;
}
