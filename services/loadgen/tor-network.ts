/**
 * `shallot load --tor-authorities FILE`: load on a C tor network. No
 * Shallot client is running there for the load generator to use, so the
 * run starts its own: a Shallot client that reads the network's directory
 * from the authorities the file names (torrc DirAuthority lines, dir-spec
 * §3.1), serves SOCKS on a free 127.0.0.1 port and its /metrics on another;
 * the run then goes through it like any other, and its client figures
 * (circuit builds, relays used per position, rendezvous points chosen) are
 * what the client saw of the C tor relays, whose own metrics it cannot
 * scrape.
 *
 * Design notes: the client is started by a factory the caller hands in
 * (`TorClientFactory`): the loadgen service may not import the client
 * service (layering, test/unit/architecture.test.ts); `shallot load`
 * (services/testnet) wires services/client in. Options that point the run
 * at another client (--socks, --data-dir) are refused with this one.
 */
import { LoadConfigError, type LoadInput, resolveLoadOptions } from './options.js';

/** A client started for one run. */
export interface EmbeddedClient {
  /** Its SOCKS listener, host:port. */
  socks: string;
  /** Its /metrics URL. */
  metrics: string;
  /** How the report names the network, e.g. "C tor network (3 authorities)". */
  network: string;
  stop(): Promise<void>;
}

/** Starts a bootstrapped client from a DirAuthority file; a bad file is a LoadConfigError. */
export type TorClientFactory = (
  file: string,
  log: { write(chunk: string): unknown },
) => Promise<EmbeddedClient>;

/**
 * Runs `run` with `input` pointed at a client started by `factory` for the
 * file `input.torAuthorities`, and stops the client afterwards.
 */
export async function withTorClient<T>(
  input: LoadInput & { torAuthorities: string },
  factory: TorClientFactory | undefined,
  log: { write(chunk: string): unknown },
  run: (input: LoadInput, client: EmbeddedClient) => Promise<T>,
): Promise<T> {
  if (!factory)
    throw new LoadConfigError(
      '--tor-authorities needs the shallot CLI (`shallot load`), which starts a client on the C tor network; this entry (the loadgen image) has none: start a Shallot client there (client/main.js --tor-authorities FILE) and give its --socks',
    );
  if (input.socks !== undefined || input.dataDir)
    throw new LoadConfigError(
      '--tor-authorities starts its own client on the C tor network: give neither --socks nor --data-dir',
    );
  // Every other option is checked before a client is started (a placeholder SOCKS address stands in for it).
  resolveLoadOptions({ ...input, socks: '127.0.0.1:1' });
  const client = await factory(input.torAuthorities, log);
  try {
    const { torAuthorities: _file, ...rest } = input;
    return await run(
      { ...rest, socks: client.socks, clientMetrics: input.clientMetrics ?? client.metrics },
      client,
    );
  } finally {
    await client.stop();
  }
}
