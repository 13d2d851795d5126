/**
 * Process entry for the load generator on its own (the `shallot` CLI has
 * the same command as `shallot load`); a Kubernetes LoadTest Job runs this.
 *
 *   node dist/services/loadgen/main.js load <target> [options]
 *   node dist/services/loadgen/main.js load --help
 */
import { Command } from 'commander';
import { runIfMain } from '../runtime/cli.js';
import { registerLoadCommand } from './command.js';

export async function main(argv: string[]): Promise<void> {
  const program = new Command()
    .name('shallot-loadgen')
    .description('Shallot load generator: HTTP through a Shallot client SOCKS port');
  registerLoadCommand(program);
  await program.parseAsync(argv);
}

runIfMain(import.meta.url, main);
