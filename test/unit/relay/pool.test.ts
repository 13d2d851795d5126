// services/relay/pool.ts: the relay pool spec (SHALLOT_POOL) accepted as the
// operator writes it, and every malformed, truncated or oversized spec refused
// with one typed PoolSpecError naming what is wrong.
import { describe, expect, it } from 'vitest';
import { MAX_POOL_RELAYS, PoolSpecError, parsePoolSpec } from '../../../services/relay/pool.js';

const one = (i: number, extra: Record<string, unknown> = {}) => ({
  nickname: `netr${i}`,
  port: 9001 + i,
  keyFile: `/data/r${i}.json`,
  ...extra,
});

function refused(text: string, msg: RegExp): void {
  let err: unknown;
  try {
    parsePoolSpec(text);
  } catch (e) {
    err = e;
  }
  expect(err).toBeInstanceOf(PoolSpecError);
  expect((err as PoolSpecError).code).toBe('ERR_RELAY_POOL_SPEC');
  expect((err as Error).message).toMatch(msg);
}

describe('relay pool spec', () => {
  it('reads each relay with its own nickname, port, key file, key watch and exit role', () => {
    const spec = [one(0, { keyWatch: '/secret/r0/keys.json', exit: true }), one(1)];
    expect(parsePoolSpec(JSON.stringify(spec))).toEqual([
      {
        nickname: 'netr0',
        port: 9001,
        keyFile: '/data/r0.json',
        keyWatch: '/secret/r0/keys.json',
        exit: true,
      },
      { nickname: 'netr1', port: 9002, keyFile: '/data/r1.json', exit: false },
    ]);
  });

  it(`takes up to ${MAX_POOL_RELAYS} relays and no more, and at least one`, () => {
    const full = Array.from({ length: MAX_POOL_RELAYS }, (_, i) => one(i));
    expect(parsePoolSpec(JSON.stringify(full))).toHaveLength(MAX_POOL_RELAYS);
    refused(JSON.stringify([...full, one(MAX_POOL_RELAYS)]), /1 to 64 relays, has 65/);
    refused('[]', /has 0/);
  });

  it('refuses malformed and truncated JSON, and anything but an array of objects', () => {
    const good = JSON.stringify([one(0), one(1)]);
    for (let cut = 1; cut < good.length; cut += 7) refused(good.slice(0, cut), /not JSON/);
    refused('{"nickname":"a"}', /not a JSON array/);
    refused('[1]', /\[0\] not an object/);
    refused('[null]', /\[0\] not an object/);
    refused('[[]]', /\[0\] not an object/);
  });

  it('refuses an oversized spec before parsing it', () => {
    refused(`[${' '.repeat(70_000)}]`, /longer than 65536/);
  });

  it('refuses bad fields, naming the relay and the field', () => {
    refused(JSON.stringify([one(0, { nickname: 'has-dash' })]), /\[0\]\.nickname/);
    refused(JSON.stringify([one(0, { nickname: 'a'.repeat(20) })]), /\[0\]\.nickname/);
    refused(JSON.stringify([one(0), one(1, { port: 0 })]), /\[1\]\.port/);
    refused(JSON.stringify([one(0, { port: 65536 })]), /\[0\]\.port/);
    refused(JSON.stringify([one(0, { port: 9001.5 })]), /\[0\]\.port/);
    refused(JSON.stringify([one(0, { port: '9001' })]), /\[0\]\.port/);
    refused(JSON.stringify([one(0, { keyFile: '' })]), /\[0\]\.keyFile/);
    refused(JSON.stringify([one(0, { keyWatch: 3 })]), /\[0\]\.keyWatch/);
    refused(JSON.stringify([one(0, { exit: 'yes' })]), /\[0\]\.exit/);
    refused(JSON.stringify([one(0, { extra: 1 })]), /\[0\] unknown field extra/);
  });

  it('refuses two relays sharing a nickname, a port or a key file', () => {
    refused(JSON.stringify([one(0), one(1, { nickname: 'netr0' })]), /share nickname netr0/);
    refused(JSON.stringify([one(0), one(1, { port: 9001 })]), /share port 9001/);
    refused(JSON.stringify([one(0), one(1, { keyFile: '/data/r0.json' })]), /share keyFile/);
  });
});
