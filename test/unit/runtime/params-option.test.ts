// The consensus params option (shallot-directory --params, shallot up
// --consensus-params): Tor's names with "-" and "_", 32-bit values, and a
// usage error for anything else; formatParams reads back the same.
import { InvalidArgumentError } from 'commander';
import { describe, expect, it } from 'vitest';
import { formatParams, parseParams } from '../../../services/runtime/params-option.js';

describe('consensus params option', () => {
  it('parses Tor-named params and formats them back', () => {
    const p = parseParams(
      'DoSCircuitCreationBurst=30, allow-network-reentry=1,sendme_accept_min_version=1 neg=-5',
    );
    expect(p).toEqual({
      DoSCircuitCreationBurst: 30,
      'allow-network-reentry': 1,
      sendme_accept_min_version: 1,
      neg: -5,
    });
    expect(parseParams(formatParams(p))).toEqual(p);
    expect(parseParams('')).toEqual({});
  });

  it('refuses what a vote could not carry', () => {
    for (const bad of [
      'x',
      'x=',
      'x=1.5',
      'bad key=1',
      'x=2147483648',
      'x=-2147483649',
      '__proto__=1',
      `${'a'.repeat(65)}=1`,
    ]) {
      expect(() => parseParams(bad), bad).toThrow(InvalidArgumentError);
    }
    expect(parseParams('x=2147483647,y=-2147483648')).toEqual({ x: 2147483647, y: -2147483648 });
  });
});
