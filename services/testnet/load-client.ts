/**
 * The client `shallot load --tor-authorities FILE` starts on a C tor network
 * (loadgen/tor-network.ts says why the run needs its own): a ShallotClient
 * on the file's DirAuthority lines (client/tor-authorities.ts), SOCKS on a
 * free 127.0.0.1 port, its /metrics on another, returned once it has a
 * verified consensus (dir-spec §5: the C tor authorities' microdesc
 * consensus, signed by a majority of them).
 *
 * Design notes: the client logs warnings only, to stderr, so the load
 * generator's progress and table stay readable (SHALLOT_LOG_LEVEL, as for
 * the other processes, sets another level: debug shows each failed attempt); bootstrap waits up to 120 s
 * (a C tor testnet publishes its first consensus within a few voting
 * intervals). The client keeps its guards in memory: a run is one session.
 */
import { ShallotClient } from '../client/client.js';
import { readTorAuthorities, TorAuthoritiesError } from '../client/tor-authorities.js';
import type { DirAuthority } from '../core/ctor/dir-authority.js';
import { LoadConfigError } from '../loadgen/options.js';
import type { EmbeddedClient, TorClientFactory } from '../loadgen/tor-network.js';
import { createRegistry } from '../metrics/metrics.js';
import { createLogger, isLogLevel } from '../runtime/log.js';
import { serveOps } from '../runtime/ops-server.js';

const BOOTSTRAP_TIMEOUT_MS = 120_000;

/** SHALLOT_LOG_LEVEL when it names a level, else warnings only. */
const logLevel = (env: string | undefined) => (env && isLogLevel(env) ? env : 'warn');

export const startTorLoadClient: TorClientFactory = async (file, log): Promise<EmbeddedClient> => {
  let authorities: DirAuthority[];
  try {
    authorities = readTorAuthorities(file);
  } catch (e) {
    throw e instanceof TorAuthoritiesError ? new LoadConfigError(e.message) : e;
  }
  const registry = createRegistry({ node: 'load-client', role: 'client' });
  const client = new ShallotClient(
    { logger: createLogger('load-client', logLevel(process.env.SHALLOT_LOG_LEVEL)), registry },
    { torAuthorities: authorities, socksHost: '127.0.0.1', socksPort: 0 },
  );
  await client.start();
  const ops = await serveOps({
    host: '127.0.0.1',
    port: 0,
    registry,
    health: () => ({ ok: true, ready: client.dir !== null, role: 'client' }),
  });
  const stop = async () => {
    await Promise.all([client.stop(), ops.close()]);
  };
  log.write(
    `starting a Shallot client on the C tor network of ${file} (${authorities.length} authorities)\n`,
  );
  try {
    await client.ready(BOOTSTRAP_TIMEOUT_MS);
  } catch (e) {
    await stop();
    throw new Error(`no verified consensus from the C tor authorities in ${file}: ${(e as Error).message}`);
  }
  const relays = client.dir?.relays.length ?? 0;
  log.write(
    `client bootstrapped: ${relays} relays; SOCKS 127.0.0.1:${client.socksPort}, metrics ${ops.url}\n`,
  );
  return {
    socks: `127.0.0.1:${client.socksPort}`,
    metrics: ops.url,
    network: `C tor network (${authorities.length} authorities, ${relays} relays)`,
    stop,
  };
};
