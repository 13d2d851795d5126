/**
 * The consensus params a network's authorities vote (dir-spec §3.4.1
 * "params"): `name=int,name=int` on the command line of `shallot-directory
 * --params` and `shallot up --consensus-params`. Names are Tor's keyword
 * characters (and "_", which Tor's names use); values are 32-bit signed
 * integers, as the vote format requires.
 */
import { InvalidArgumentError } from 'commander';

const INT32_MAX = 2 ** 31 - 1;

export function parseParams(spec: string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const item of spec.split(/[,\s]+/)) {
    if (item === '') continue;
    const m = /^([A-Za-z0-9_-]{1,64})=(-?\d{1,10})$/.exec(item);
    const v = Number(m?.[2]);
    if (!m || v > INT32_MAX || v < -INT32_MAX - 1 || m[1] === '__proto__') {
      throw new InvalidArgumentError(`bad param "${item}": want name=integer (32-bit)`);
    }
    out[m[1]!] = v;
  }
  return out;
}

/** The inverse of parseParams, for handing params to an authority process. */
export function formatParams(params: Readonly<Record<string, number>>): string {
  return Object.entries(params)
    .map(([k, v]) => `${k}=${v}`)
    .join(',');
}
