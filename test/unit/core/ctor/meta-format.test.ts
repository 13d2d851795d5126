// The dir-spec §1.2 tokenizer shared by onion-service descriptors and C
// tor's directory documents: items, objects, offsets for signed ranges,
// argument helpers, and what it refuses.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { intArg, timeArgs, tokenize } from '../../../../services/core/ctor/meta-format.js';
import { InvalidError } from '../../../../services/core/errors.js';
import { expectOnlyTypedErrors } from '../../../helpers/typed-errors.js';

const DOC = 'alpha 1\tb  c\nkey\n-----BEGIN RSA PUBLIC KEY-----\nAAEC\n-----END RSA PUBLIC KEY-----\nlast\n';

describe('tokenize', () => {
  it('splits items on SP and TAB, keeps objects, and records offsets and lines', () => {
    const items = tokenize(DOC, 'doc');
    expect(items.map((i) => [i.keyword, i.args, i.line])).toEqual([
      ['alpha', ['1', 'b', 'c'], 1],
      ['key', [], 2],
      ['last', [], 6],
    ]);
    expect(items[1]!.object).toEqual({ tag: 'RSA PUBLIC KEY', data: new Uint8Array([0, 1, 2]) });
    // Offsets cut the text exactly, as signed ranges need.
    expect(items.map((i) => DOC.slice(i.start, i.end)).join('')).toBe(DOC);
    expect(DOC.slice(items[1]!.start, items[1]!.end)).toBe(
      'key\n-----BEGIN RSA PUBLIC KEY-----\nAAEC\n-----END RSA PUBLIC KEY-----\n',
    );
  });

  it('refuses what C tor refuses', () => {
    const bad: [string, string][] = [
      ['no final newline', 'a b'],
      ['non-ASCII', 'a é\n'],
      ['CR line end', 'a\r\n'],
      ['bad keyword', '-a\n'],
      ['empty line', 'a\n\nb\n'],
      ['mismatched tags', 'k\n-----BEGIN A-----\nAAEC\n-----END B-----\n'],
      ['unterminated object', 'k\n-----BEGIN A-----\nAAEC\n'],
      ['object without keyword', '-----BEGIN A-----\nAAEC\n-----END A-----\n'],
      ['non-canonical base64', 'k\n-----BEGIN A-----\nAAF=\n-----END A-----\n'],
    ];
    for (const [name, text] of bad) expect(() => tokenize(text, 'doc'), name).toThrow(InvalidError);
  });

  it('integer and time arguments are strict', () => {
    const [item] = tokenize(
      'x 7 007 -1 2026-02-29 00:00:00 2028-02-29 23:59:60 1969-12-31 23:59:59 2026-13-01 00:00:00\n',
      'doc',
    );
    expect(intArg(item!, 0, 0, 10, 'doc')).toBe(7);
    expect(() => intArg(item!, 0, 8, 10, 'doc')).toThrow(InvalidError);
    expect(() => intArg(item!, 1, 0, 10, 'doc')).toThrow(InvalidError);
    expect(() => intArg(item!, 2, -5, 10, 'doc')).toThrow(InvalidError);
    expect(() => timeArgs(item!, 3, 'doc')).toThrow(/bad time/);
    // A leap second, as C tor's parse_iso_time allows, lands on the next second.
    expect(new Date(timeArgs(item!, 5, 'doc')).toISOString()).toBe('2028-03-01T00:00:00.000Z');
    expect(() => timeArgs(item!, 7, 'doc')).toThrow(/bad time/);
    expect(() => timeArgs(item!, 9, 'doc')).toThrow(/bad time/);
  });

  it('random text gives items or InvalidError', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 300 }), (s) => expectOnlyTypedErrors(() => tokenize(s, 'doc'))),
      { numRuns: 300 },
    );
  });
});
