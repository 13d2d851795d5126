// `shallot load` options: targets, sizes, defaults and what counts as a
// configuration error (exit 2).
import { describe, expect, it } from 'vitest';
import {
  LoadConfigError,
  parseHostPort,
  parseSize,
  parseTarget,
  resolveLoadOptions,
} from '../../../services/loadgen/options.js';

const ONION = `${'a'.repeat(52)}2345.onion`;

describe('parseTarget', () => {
  it('reads exit targets and onion targets (port 80 by default)', () => {
    expect(parseTarget('127.0.0.1:8080')).toEqual({ host: '127.0.0.1', port: 8080, onion: false });
    expect(parseTarget('Web.Local:81')).toEqual({ host: 'web.local', port: 81, onion: false });
    expect(parseTarget(ONION)).toEqual({ host: ONION, port: 80, onion: true });
    expect(parseTarget(`http://${ONION.toUpperCase()}:8080/`)).toEqual({
      host: ONION,
      port: 8080,
      onion: true,
    });
  });

  for (const bad of ['127.0.0.1', 'host:0', 'host:70000', 'abc.onion', 'x y:80', '', ':80', `${ONION}:x`]) {
    it(`rejects ${JSON.stringify(bad)}`, () => {
      expect(() => parseTarget(bad)).toThrow(LoadConfigError);
    });
  }
});

describe('parseSize', () => {
  const cases: [string | number, number][] = [
    [51200, 51200],
    ['0', 0],
    ['50k', 51200],
    ['50KiB', 51200],
    ['1M', 1048576],
    ['1.5mb', 1572864],
    ['1GiB', 1 << 30],
  ];
  for (const [v, want] of cases) it(`${v} is ${want} bytes`, () => expect(parseSize(v)).toBe(want));

  for (const bad of ['-1', '2G', 'lots', '5 parsecs', '']) {
    it(`rejects ${JSON.stringify(bad)}`, () => expect(() => parseSize(bad)).toThrow(LoadConfigError));
  }
});

describe('resolveLoadOptions', () => {
  it('fills defaults: count 100 when neither count nor duration, 50 KiB, concurrency 4, verify on', () => {
    const o = resolveLoadOptions({ target: '127.0.0.1:80' });
    expect(o).toMatchObject({
      count: 100,
      durationSec: null,
      rate: null,
      sizes: [51200],
      concurrency: 4,
      newCircuit: false,
      verify: true,
      mode: 'http',
      timeoutSec: 60,
      relayMetrics: [],
      clientMetrics: null,
      minSuccess: 0.99,
      keepGoing: false,
      backoffMaxSec: 5,
    });
    expect(resolveLoadOptions({ target: '127.0.0.1:80', backoffMax: '0', keepGoing: true })).toMatchObject({
      backoffMaxSec: 0,
      keepGoing: true,
    });
  });

  it('leaves count unbounded when a duration bounds the run', () => {
    expect(resolveLoadOptions({ target: '127.0.0.1:80', duration: '30' })).toMatchObject({
      count: null,
      durationSec: 30,
    });
  });

  it('takes durations and timeouts with units, as people write them (20s, 5m, 1h, 500ms)', () => {
    const d = (duration: string) => resolveLoadOptions({ target: '127.0.0.1:80', duration }).durationSec;
    expect([d('20'), d('20s'), d('1.5m'), d('2h'), d('500ms'), d(' 5 min ')]).toEqual([
      20, 20, 90, 7200, 0.5, 300,
    ]);
    expect(resolveLoadOptions({ target: '127.0.0.1:80', timeout: '2m' }).timeoutSec).toBe(120);
    for (const bad of ['20x', 's', '-5s', '1e3', '9999h'])
      expect(() => resolveLoadOptions({ target: '127.0.0.1:80', duration: bad }), bad).toThrow(
        LoadConfigError,
      );
  });

  it('reads CLI strings: size lists, comma-separated and repeated metrics URLs', () => {
    const o = resolveLoadOptions({
      target: ONION,
      concurrency: '8',
      rate: '2.5',
      count: '20',
      size: '1k,2k',
      relayMetrics: ['127.0.0.1:1,127.0.0.1:2', 'http://h:3/m'],
      clientMetrics: '127.0.0.1:4',
      minSuccess: '0.95',
    });
    expect(o.sizes).toEqual([1024, 2048]);
    expect(o.rate).toBe(2.5);
    expect(o.relayMetrics).toEqual([
      'http://127.0.0.1:1/metrics',
      'http://127.0.0.1:2/metrics',
      'http://h:3/m',
    ]);
    expect(o.clientMetrics).toBe('http://127.0.0.1:4/metrics');
    expect(o.minSuccess).toBe(0.95);
  });

  const bad: [string, Record<string, unknown>][] = [
    ['no target', {}],
    ['zero concurrency', { concurrency: '0' }],
    ['fractional count', { count: '1.5' }],
    ['negative rate', { rate: '-1' }],
    ['zero duration', { duration: '0' }],
    ['min-success above 1', { minSuccess: '1.2' }],
    ['negative backoff max', { backoffMax: '-1' }],
    ['tcp mode', { mode: 'tcp' }],
    ['bad socks', { socks: 'localhost' }],
    ['bad progress', { progress: 'fancy' }],
    ['empty sizes', { size: ',' }],
    ['bad metrics URL', { clientMetrics: 'http://[x' }],
  ];
  for (const [what, extra] of bad) {
    it(`rejects ${what}`, () => {
      const input = what === 'no target' ? extra : { target: '127.0.0.1:80', ...extra };
      expect(() => resolveLoadOptions(input)).toThrow(LoadConfigError);
    });
  }

  it('parses the SOCKS address', () => {
    expect(parseHostPort('127.0.0.1:9050', 'socks')).toEqual({ host: '127.0.0.1', port: 9050 });
    expect(parseHostPort('[::1]:9050', 'socks')).toEqual({ host: '::1', port: 9050 });
  });
});
