// Canonical JSON (the signed byte form of Shallot's JSON directory documents)
// and the bounded parser plus shape readers used on untrusted documents.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { utf8 } from '../../../services/core/bytes.js';
import {
  canonicalJson,
  canonicalJsonBytes,
  expectKeys,
  MAX_JSON_DEPTH,
  parseJsonBounded,
  readB64,
  readHex,
  readInt,
  readObject,
  readString,
} from '../../../services/core/canonical-json.js';
import { InvalidError } from '../../../services/core/errors.js';
import { expectOnlyTypedErrors } from '../../helpers/typed-errors.js';

const cases: { comment: string; value: unknown; text: string }[] = [
  {
    comment: 'keys sorted, no whitespace',
    value: { b: 1, a: [true, null, 'x'] },
    text: '{"a":[true,null,"x"],"b":1}',
  },
  {
    comment: 'nested objects sorted',
    value: { z: { y: 1, x: 2 }, a: {} },
    text: '{"a":{},"z":{"x":2,"y":1}}',
  },
  { comment: 'code-unit key order', value: { a: 1, B: 2, _: 3, é: 4 }, text: '{"B":2,"_":3,"a":1,"é":4}' },
  { comment: '-0 is 0, shortest numbers', value: [-0, 1e21, 0.1, 1.5e-7], text: '[0,1e+21,0.1,1.5e-7]' },
  { comment: 'string escapes', value: ['"\\\n\u0001'], text: '["\\"\\\\\\n\\u0001"]' },
  {
    comment: 'null prototype object',
    value: Object.assign(Object.create(null), { k: 'v' }),
    text: '{"k":"v"}',
  },
];

describe('canonicalJson', () => {
  for (const [i, c] of cases.entries()) {
    it(`(${i}) ${c.comment}`, () => {
      expect(canonicalJson(c.value)).toBe(c.text);
      expect(canonicalJsonBytes(c.value)).toEqual(utf8(c.text));
    });
  }

  const bad: [string, unknown][] = [
    ['undefined', undefined],
    ['undefined field', { a: undefined }],
    ['NaN', Number.NaN],
    ['Infinity', [Number.POSITIVE_INFINITY]],
    ['bigint', 1n],
    ['function', () => 1],
    ['symbol', Symbol('x')],
    ['Uint8Array', new Uint8Array(2)],
    ['Date', new Date(0)],
    ['Map', new Map()],
    ['sparse array', Object.assign([1], { 2: 3 })],
  ];
  for (const [name, v] of bad) {
    it(`rejects ${name}`, () => {
      expect(() => canonicalJson(v)).toThrow(InvalidError);
    });
  }

  it('rejects cycles and over-deep nesting with InvalidError', () => {
    const cyc: Record<string, unknown> = {};
    cyc.self = cyc;
    expect(() => canonicalJson(cyc)).toThrow(InvalidError);
    let deep: unknown = 1;
    for (let i = 0; i <= MAX_JSON_DEPTH; i++) deep = [deep];
    expect(() => canonicalJson(deep)).toThrow(InvalidError);
  });

  it('is independent of key insertion order and round-trips through JSON.parse', () => {
    fc.assert(
      fc.property(fc.jsonValue({ maxDepth: 5 }), (v) => {
        const text = canonicalJson(v);
        const back = JSON.parse(text);
        expect(canonicalJson(back)).toBe(text);
        // Rebuild every object with reversed key order: same text.
        const reverse = (x: unknown): unknown =>
          Array.isArray(x)
            ? x.map(reverse)
            : x !== null && typeof x === 'object'
              ? Object.fromEntries(
                  Object.entries(x)
                    .reverse()
                    .map(([k, y]) => [k, reverse(y)]),
                )
              : x;
        expect(canonicalJson(reverse(v))).toBe(text);
        expect(text).not.toMatch(/^\s|\s$/);
      }),
      { numRuns: 200 },
    );
  });
});

describe('parseJsonBounded', () => {
  it('parses bytes and strings', () => {
    expect(parseJsonBounded(utf8('{"a":[1,"é"]}'), 100, 'doc')).toEqual({ a: [1, 'é'] });
    expect(parseJsonBounded(' [1] ', 100, 'doc')).toEqual([1]);
  });

  it('round-trips canonicalJson output', () => {
    fc.assert(
      fc.property(fc.jsonValue({ maxDepth: 5 }), (v) => {
        const b = canonicalJsonBytes(v);
        expect(canonicalJson(parseJsonBounded(b, b.length, 'doc'))).toBe(canonicalJson(v));
      }),
    );
  });

  it('enforces the byte limit (UTF-8 bytes, not characters) before parsing', () => {
    expect(() => parseJsonBounded(utf8('"abcd"'), 5, 'doc')).toThrow(InvalidError);
    expect(parseJsonBounded(utf8('"abc"'), 5, 'doc')).toBe('abc');
    // "é" is 2 UTF-8 bytes: 4 characters, 5 bytes.
    expect(parseJsonBounded('"éa"', 5, 'doc')).toBe('éa');
    expect(() => parseJsonBounded('"éé"', 5, 'doc')).toThrow(/too large/);
    expect(() => parseJsonBounded('x'.repeat(100), 5, 'doc')).toThrow(InvalidError);
  });

  it('rejects bad JSON, bad UTF-8 and deep nesting with InvalidError', () => {
    for (const s of ['', '{', '{"a":1,}', "{'a':1}", 'NaN', '[1]x', '01']) {
      expect(() => parseJsonBounded(s, 100, 'doc')).toThrow(InvalidError);
    }
    expect(() => parseJsonBounded(new Uint8Array([0x22, 0xff, 0x22]), 100, 'doc')).toThrow(InvalidError);
    const deep = `${'['.repeat(MAX_JSON_DEPTH + 2)}${']'.repeat(MAX_JSON_DEPTH + 2)}`;
    expect(() => parseJsonBounded(deep, 1000, 'doc')).toThrow(/nested too deeply/);
    const veryDeep = `${'['.repeat(200_000)}${']'.repeat(200_000)}`;
    expect(() => parseJsonBounded(veryDeep, 1_000_000, 'doc')).toThrow(InvalidError);
  });

  it('hostile input: only typed errors', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), fc.string({ maxLength: 200 }), (b, s) => {
        expectOnlyTypedErrors(() => parseJsonBounded(b, 150, 'doc'));
        expectOnlyTypedErrors(() => parseJsonBounded(s, 150, 'doc'));
      }),
      { numRuns: 500 },
    );
  });
});

describe('shape readers', () => {
  it('check types, ranges and lengths', () => {
    expect(() => readObject([], 'o')).toThrow(InvalidError);
    expect(() => readObject(null, 'o')).toThrow(InvalidError);
    expect(readInt(5, 'n', 0, 5)).toBe(5);
    for (const v of [6, -1, 1.5, '5', Number.NaN, 2 ** 60])
      expect(() => readInt(v, 'n', 0, 5)).toThrow(InvalidError);
    expect(() => readString('abc', 's', 2)).toThrow(InvalidError);
    expect(readB64('AAE', 'b', 2)).toEqual(new Uint8Array([0, 1]));
    expect(() => readB64('AAE=', 'b', 3)).toThrow(/wrong length/);
    expect(() => readB64('A-E=', 'b')).toThrow(InvalidError);
    expect(readHex('0aFF', 'h', 2)).toEqual(new Uint8Array([10, 255]));
    expect(() => readHex('0a ff', 'h')).toThrow(InvalidError);
  });

  it('expectKeys rejects missing and unknown fields', () => {
    expect(() => expectKeys({ a: 1 }, 'o', ['a'], ['b'])).not.toThrow();
    expect(() => expectKeys({ a: 1, b: 2 }, 'o', ['a'], ['b'])).not.toThrow();
    expect(() => expectKeys({}, 'o', ['a'])).toThrow(/missing field a/);
    expect(() => expectKeys({ a: 1, c: 2 }, 'o', ['a'], ['b'])).toThrow(/unknown field/);
    // "__proto__" from JSON.parse is an own data property and counts as unknown.
    expect(() => expectKeys(JSON.parse('{"a":1,"__proto__":{}}'), 'o', ['a'])).toThrow(/unknown field/);
  });
});
