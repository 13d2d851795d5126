/**
 * The `--authorities` option every process entry takes: parsed (from the
 * flag or SHALLOT_AUTHORITIES) into endpoints by commander, so a bad list is
 * a usage error before anything starts.
 */
import { InvalidArgumentError, Option } from 'commander';
import { type AuthorityEndpoint, parseAuthorityList } from '../net/dir-client.js';

export function authoritiesOption(description = 'directory authorities: "hexid@host:port,..."'): Option {
  return new Option('--authorities <list>', description)
    .env('SHALLOT_AUTHORITIES')
    .argParser((spec: string): AuthorityEndpoint[] => {
      try {
        return parseAuthorityList(spec);
      } catch (e) {
        throw new InvalidArgumentError((e as Error).message);
      }
    });
}
