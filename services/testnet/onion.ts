/**
 * The onion services `shallot up` runs in its own process: each with its
 * identity key under the data dir (so the address survives restarts), the
 * built-in backend, and N instances sharing the identity (Onionbalance
 * style), each with an embedded client of its own. Each instance is a
 * fault target (node-slot.ts) named `onion<s>-<i>`: a stop or kill ends its
 * service and its client, a start builds both again from the identity key
 * file and publishes anew (rend-spec-v3 §2.2.1: a service that starts
 * publishes a fresh descriptor with new intro points).
 */

import path from 'node:path';
import type { Registry } from 'prom-client';
import { ShallotClient } from '../client/client.js';
import type { HandshakeName } from '../core/create-handshake.js';
import type { AuthorityEndpoint } from '../net/dir-client.js';
import type { LinkShaping } from '../net/link-delay.js';
import { serviceClientOptions } from '../onion-service/own-client.js';
import { OnionService } from '../onion-service/service.js';
import { readAuthorizedClients } from '../runtime/client-auth-files.js';
import type { Logger } from '../runtime/log.js';
import { onionIdentityFile } from './client-auth.js';
import { NodeSlot } from './node-slot.js';

export interface OnionServicesOptions {
  count: number;
  instances: number;
  introPoints: number;
  dataDir: string;
  authorities: AuthorityEndpoint[];
  tls: boolean;
  handshake: HandshakeName;
  vanguardsLite: boolean;
  /** Per service, the directory of its authorized clients' `.auth` keys (none: open to anyone). */
  authorizedClientsDirs?: readonly string[];
  /** Each instance's link shaping (launch.ts onionShapingFor): its name for link faults, its place in the model. */
  shaping?: (service: number, instance: number) => LinkShaping;
}

export interface OnionServicesHandle {
  services: { name: string; address: string; instances: number }[];
  /** Every instance, as a fault target named `onion<s>-<i>` (the name its links carry). */
  instances: NodeSlot<OnionInstance>[];
  stop(): Promise<void>;
}

/** One instance: its service over its own embedded client, started and stopped together. */
class OnionInstance {
  constructor(
    readonly client: ShallotClient,
    readonly svc: OnionService,
  ) {}

  async start(): Promise<void> {
    await this.client.start();
    await this.client.ready();
    await this.svc.start();
  }

  async stop(): Promise<void> {
    // Its client goes down even when the service's own shutdown fails.
    await this.svc.stop().finally(() => this.client.stop());
  }
}

export async function startOnionServices(
  c: { logger: Logger; registry: Registry },
  o: OnionServicesOptions,
  onProgress: (line: string) => void,
): Promise<OnionServicesHandle> {
  const instances: NodeSlot<OnionInstance>[] = [];
  const services: OnionServicesHandle['services'] = [];
  const stop = async () => void (await Promise.allSettled(instances.map((r) => r.stop())));
  try {
    for (let s = 0; s < o.count; s++) {
      const name = `onion${s}`;
      const dir = path.join(o.dataDir, name);
      const clientsDir = o.authorizedClientsDirs?.[s];
      const authorizedClients = clientsDir ? await readAuthorizedClients(clientsDir) : undefined;
      let address = '';
      for (let i = 0; i < o.instances; i++) {
        const logger = c.logger.child(`${name}-${i}`);
        // Read once: the model does not change while the network runs.
        const shaping = o.shaping?.(s, i);
        // Built afresh on each start (a restart after a fault), as a process would be.
        const make = () => {
          const client = new ShallotClient(
            { logger, registry: c.registry },
            serviceClientOptions(
              { authorities: o.authorities },
              {
                tls: o.tls,
                handshake: o.handshake,
                vanguardsLite: o.vanguardsLite,
                shaping,
              },
            ),
          );
          const svc = new OnionService(
            { logger, registry: c.registry, client },
            {
              name,
              instance: String(i),
              identityKeyFile: onionIdentityFile(o.dataDir, s),
              ...(authorizedClients ? { authorizedClients } : {}),
              dataDir: dir,
              numIntroPoints: o.introPoints,
              backend: { type: 'builtin' },
            },
          );
          return new OnionInstance(client, svc);
        };
        const slot = new NodeSlot(`${name}-${i}`, make);
        instances.push(slot);
        onProgress(`bootstrapping: onion service ${name} instance ${i + 1}/${o.instances} publishing`);
        const { svc } = await slot.start();
        // "Up" means clients can connect: both periods' descriptors are on HSDirs a client asks.
        await svc.whenPublished(o.introPoints, 90_000);
        address = svc.onionAddress;
      }
      services.push({ name, address, instances: o.instances });
    }
  } catch (e) {
    await stop();
    throw e;
  }
  return { services, instances, stop };
}
