/**
 * The onion services `shallot up` runs in its own process: each with its
 * identity key under the data dir (so the address survives restarts), the
 * built-in backend, and N instances sharing the identity (Onionbalance
 * style), each with an embedded client of its own.
 */

import path from 'node:path';
import type { Registry } from 'prom-client';
import { ShallotClient } from '../client/client.js';
import type { HandshakeName } from '../core/create-handshake.js';
import type { AuthorityEndpoint } from '../net/dir-client.js';
import type { LinkShaping } from '../net/link-delay.js';
import { OnionService } from '../onion-service/service.js';
import { readAuthorizedClients } from '../runtime/client-auth-files.js';
import type { Logger } from '../runtime/log.js';
import { onionIdentityFile } from './client-auth.js';

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
  stop(): Promise<void>;
}

export async function startOnionServices(
  c: { logger: Logger; registry: Registry },
  o: OnionServicesOptions,
  onProgress: (line: string) => void,
): Promise<OnionServicesHandle> {
  const running: { svc: OnionService; client: ShallotClient }[] = [];
  const services: OnionServicesHandle['services'] = [];
  const stop = async () => {
    await Promise.allSettled(running.map((r) => r.svc.stop()));
    await Promise.allSettled(running.map((r) => r.client.stop()));
  };
  try {
    for (let s = 0; s < o.count; s++) {
      const name = `onion${s}`;
      const dir = path.join(o.dataDir, name);
      const clientsDir = o.authorizedClientsDirs?.[s];
      const authorizedClients = clientsDir ? await readAuthorizedClients(clientsDir) : undefined;
      let address = '';
      for (let i = 0; i < o.instances; i++) {
        const logger = c.logger.child(`${name}-${i}`);
        const client = new ShallotClient(
          { logger, registry: c.registry },
          {
            authorities: o.authorities,
            socksHost: '127.0.0.1',
            socksPort: null,
            refreshPromptly: true,
            circuits: {
              tls: o.tls,
              prebuild: 0,
              handshake: o.handshake,
              vanguardsLite: o.vanguardsLite,
              ...(o.shaping ? { shaping: o.shaping(s, i) } : {}),
            },
          },
        );
        await client.start();
        await client.ready();
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
        running.push({ svc, client });
        onProgress(`bootstrapping: onion service ${name} instance ${i + 1}/${o.instances} publishing`);
        await svc.start();
        // "Up" means clients can connect: the descriptor is on the HSDirs.
        await svc.whenPublished(o.introPoints, 90_000);
        address = svc.onionAddress;
      }
      services.push({ name, address, instances: o.instances });
    }
  } catch (e) {
    await stop();
    throw e;
  }
  return { services, stop };
}
