/**
 * The four CustomResourceDefinitions (group shallot.dev, version v1alpha1)
 * built from the schemas beside their types. charts/shallot/crds/*.yaml are
 * generated from these (operator/gen-crds.ts); a unit test keeps them equal.
 */
import { LOAD_TEST_COLUMNS, loadTestSpecSchema, loadTestStatusSchema } from './load-test.js';
import { NETWORK_FAULT_COLUMNS, networkFaultSpecSchema, networkFaultStatusSchema } from './network-fault.js';
import { ONION_NETWORK_COLUMNS, onionNetworkSpecSchema, onionNetworkStatusSchema } from './onion-network.js';
import { ONION_SERVICE_COLUMNS, onionServiceSpecSchema, onionServiceStatusSchema } from './onion-service.js';
import type { JSONSchema } from './schema.js';

export const GROUP = 'shallot.dev';
export const VERSION = 'v1alpha1';
export const API_VERSION = `${GROUP}/${VERSION}`;

export interface CrdInfo {
  kind: 'OnionNetwork' | 'OnionService' | 'LoadTest' | 'NetworkFault';
  plural: string;
  singular: string;
  shortNames: string[];
  spec: JSONSchema;
  status: JSONSchema;
  columns: { name: string; type: string; jsonPath: string }[];
  description: string;
  /** Children's names add suffixes; this keeps them within Kubernetes' 63-character limit. */
  maxNameLength: number;
}

export const CRDS: CrdInfo[] = [
  {
    kind: 'OnionNetwork',
    plural: 'onionnetworks',
    singular: 'onionnetwork',
    shortNames: ['onet'],
    spec: onionNetworkSpecSchema,
    status: onionNetworkStatusSchema,
    columns: ONION_NETWORK_COLUMNS,
    description: 'A Shallot onion-routing testnet: directory authorities and relays.',
    maxNameLength: 40,
  },
  {
    kind: 'OnionService',
    plural: 'onionservices',
    singular: 'onionservice',
    shortNames: ['onsvc'],
    spec: onionServiceSpecSchema,
    status: onionServiceStatusSchema,
    columns: ONION_SERVICE_COLUMNS,
    description: 'A v3 onion service on an OnionNetwork; status shows its address.',
    maxNameLength: 50,
  },
  {
    kind: 'LoadTest',
    plural: 'loadtests',
    singular: 'loadtest',
    shortNames: ['lt'],
    spec: loadTestSpecSchema,
    status: loadTestStatusSchema,
    columns: LOAD_TEST_COLUMNS,
    description: 'A `shallot load` run as a Job; status holds the summary.',
    maxNameLength: 50,
  },
  {
    kind: 'NetworkFault',
    plural: 'networkfaults',
    singular: 'networkfault',
    shortNames: ['nfault'],
    spec: networkFaultSpecSchema,
    status: networkFaultStatusSchema,
    columns: NETWORK_FAULT_COLUMNS,
    description:
      'A fault (stop, kill, restart) on one node of an OnionNetwork for a while; status and Events record it.',
    maxNameLength: 63,
  },
];

export function crdFor(kind: CrdInfo['kind']): CrdInfo {
  const c = CRDS.find((x) => x.kind === kind);
  if (!c) throw new Error(`unknown kind ${kind}`);
  return c;
}

/** The apiextensions.k8s.io/v1 object for one CRD. */
export function crdObject(c: CrdInfo): Record<string, unknown> {
  return {
    apiVersion: 'apiextensions.k8s.io/v1',
    kind: 'CustomResourceDefinition',
    metadata: { name: `${c.plural}.${GROUP}` },
    spec: {
      group: GROUP,
      names: {
        kind: c.kind,
        listKind: `${c.kind}List`,
        plural: c.plural,
        singular: c.singular,
        shortNames: c.shortNames,
        categories: ['shallot'],
      },
      scope: 'Namespaced',
      versions: [
        {
          name: VERSION,
          served: true,
          storage: true,
          subresources: { status: {} },
          additionalPrinterColumns: c.columns,
          schema: {
            openAPIV3Schema: {
              type: 'object',
              description: c.description,
              properties: {
                apiVersion: { type: 'string' },
                kind: { type: 'string' },
                metadata: { type: 'object' },
                spec: c.spec,
                status: c.status,
              },
              ...(c.spec.required?.length ? { required: ['spec'] } : {}),
              'x-kubernetes-validations': [
                {
                  rule: `size(self.metadata.name) <= ${c.maxNameLength}`,
                  message: `metadata.name must be at most ${c.maxNameLength} characters`,
                },
              ],
            },
          },
        },
      ],
    },
  };
}
