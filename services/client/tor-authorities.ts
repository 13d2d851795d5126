/**
 * `--tor-authorities FILE`: the authorities of a C tor network, given as a
 * torrc gives them (Tor manual "DirAuthority"; dir-spec §3.1 names what
 * each field is), for the client, the onion service and `shallot load`.
 *
 * Overview: `readTorAuthorities` reads the file (a whole torrc works: only
 * its DirAuthority lines count, core/ctor/dir-authority.ts) and turns every
 * failure into one `TorAuthoritiesError` naming the file and line;
 * `torAuthoritiesOption` is the commander option, parsed while the command
 * line is read, so a bad file is a usage error before anything starts;
 * `networkChoice` picks the Shallot or the C tor network a client or
 * onion service process joins from the two options.
 *
 * Design notes: the file is read synchronously (commander's parsers are
 * synchronous) and its size checked before reading, since a torrc of
 * authorities is small and a wrong path may name a huge file or a device.
 */
import { readFileSync, statSync } from 'node:fs';
import { type Command, InvalidArgumentError, Option } from 'commander';
import {
  type DirAuthority,
  MAX_DIR_AUTHORITY_FILE,
  parseDirAuthorities,
} from '../core/ctor/dir-authority.js';
import { InvalidError, ShallotError } from '../core/errors.js';
import type { AuthorityEndpoint } from '../net/dir-client.js';

export class TorAuthoritiesError extends ShallotError {
  constructor(file: string, reason: string, line?: number) {
    super('ERR_TOR_AUTHORITIES', `${file}${line ? `:${line}` : ''}: ${reason}`, {
      ...(line ? { line } : {}),
    });
  }
}

/** The DirAuthority lines of `file`; throws TorAuthoritiesError. */
export function readTorAuthorities(file: string): DirAuthority[] {
  let text: string;
  try {
    const st = statSync(file);
    if (!st.isFile()) throw new TorAuthoritiesError(file, 'not a regular file');
    if (st.size > MAX_DIR_AUTHORITY_FILE)
      throw new TorAuthoritiesError(file, `over ${MAX_DIR_AUTHORITY_FILE} bytes: not a torrc of authorities`);
    text = readFileSync(file, 'utf8');
  } catch (e) {
    if (e instanceof TorAuthoritiesError) throw e;
    throw new TorAuthoritiesError(file, `cannot read (${(e as NodeJS.ErrnoException).code ?? String(e)})`);
  }
  try {
    return parseDirAuthorities(text);
  } catch (e) {
    if (!(e instanceof InvalidError)) throw e;
    const line = typeof e.context.line === 'number' ? e.context.line : undefined;
    throw new TorAuthoritiesError(file, e.message, line);
  }
}

export function torAuthoritiesOption(
  description = "a C tor network's authorities: a file of torrc DirAuthority lines (a whole torrc works)",
): Option {
  return new Option('--tor-authorities <file>', description)
    .env('SHALLOT_TOR_AUTHORITIES')
    .argParser((file: string): DirAuthority[] => {
      try {
        return readTorAuthorities(file);
      } catch (e) {
        throw new InvalidArgumentError((e as Error).message);
      }
    });
}

/** The network a client joins: a Shallot network's authorities, or a C tor network's. */
export type NetworkChoice = { authorities: AuthorityEndpoint[] } | { torAuthorities: DirAuthority[] };

/** The network `--authorities` or `--tor-authorities` names; a usage error when both or neither are given. */
export function networkChoice(
  program: Command,
  o: { authorities?: AuthorityEndpoint[]; torAuthorities?: DirAuthority[] },
): NetworkChoice {
  if (o.authorities && o.torAuthorities)
    program.error(
      '--authorities (a Shallot network) and --tor-authorities (a C tor network) exclude each other',
    );
  if (o.torAuthorities) return { torAuthorities: o.torAuthorities };
  return {
    authorities:
      o.authorities ??
      program.error('--authorities (or SHALLOT_AUTHORITIES) or --tor-authorities FILE is required'),
  };
}
