// Time periods (rend-spec-v3 §2.2.1): the spec's 2016-04-13 vector, testnet
// scaling from the voting interval, and period/SRV-run alignment.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { InvalidError } from '../../../services/core/errors.js';
import {
  inPeriodBetweenTpAndSrv,
  nextTimePeriodStart,
  srvRunStart,
  timePeriodNum,
  timePeriodParams,
  timePeriodStart,
} from '../../../services/core/hs-time.js';

const live = timePeriodParams({ testnet: false });
const t = (iso: string) => Date.parse(iso);

describe('live network', () => {
  it('parameters are 1440 / 720 minutes', () => {
    expect(live).toEqual({ lengthMinutes: 1440, offsetMinutes: 720, srvRunSeconds: 86400 });
  });

  it.each([
    ['2016-04-13T11:15:01Z', 16903],
    ['2016-04-13T11:59:59Z', 16903],
    ['2016-04-13T12:00:00Z', 16904],
    ['2016-04-14T11:59:59Z', 16904],
  ])('%s -> %i', (iso, want) => {
    expect(timePeriodNum(t(iso), live)).toBe(want);
  });

  it('period 16904 starts at 2016-04-13 12:00 UTC', () => {
    expect(timePeriodStart(16904, live)).toBe(t('2016-04-13T12:00:00Z'));
    expect(nextTimePeriodStart(t('2016-04-13T11:15:01Z'), live)).toBe(t('2016-04-13T12:00:00Z'));
    expect(nextTimePeriodStart(t('2016-04-13T12:00:00Z'), live)).toBe(t('2016-04-14T12:00:00Z'));
  });

  it('between TP and SRV: false 00:00-12:00, true 12:00-00:00', () => {
    expect(srvRunStart(t('2016-04-13T11:15:01Z'), live)).toBe(t('2016-04-13T00:00:00Z'));
    expect(inPeriodBetweenTpAndSrv(t('2016-04-13T00:00:00Z'), live)).toBe(false);
    expect(inPeriodBetweenTpAndSrv(t('2016-04-13T11:59:59Z'), live)).toBe(false);
    expect(inPeriodBetweenTpAndSrv(t('2016-04-13T12:00:00Z'), live)).toBe(true);
    expect(inPeriodBetweenTpAndSrv(t('2016-04-13T23:59:59Z'), live)).toBe(true);
  });
});

describe('testnet', () => {
  it('scales with the voting interval (C tor TestingTorNetwork)', () => {
    expect(timePeriodParams({ testnet: true, votingIntervalSec: 20 })).toEqual({
      lengthMinutes: 8,
      offsetMinutes: 4,
      srvRunSeconds: 480,
    });
    expect(timePeriodParams({ testnet: true, votingIntervalSec: 300 })).toEqual({
      lengthMinutes: 120,
      offsetMinutes: 60,
      srvRunSeconds: 7200,
    });
    expect(timePeriodParams({ testnet: true, votingIntervalSec: 5 }).lengthMinutes).toBe(2);
  });

  it('rejects intervals that would give fractional minutes', () => {
    for (const v of [0, 3, 7, 12.5, -5, Number.NaN]) {
      expect(() => timePeriodParams({ testnet: true, votingIntervalSec: v })).toThrow(InvalidError);
    }
  });

  it('20 s interval: periods rotate every 8 minutes, 4 minutes after SRV runs', () => {
    const p = timePeriodParams({ testnet: true, votingIntervalSec: 20 });
    const run = t('2024-01-01T00:00:00Z');
    expect(srvRunStart(run + 60_000, p)).toBe(run);
    const n = timePeriodNum(run + 4 * 60_000, p);
    expect(timePeriodStart(n, p)).toBe(run + 4 * 60_000);
    expect(timePeriodNum(run + 4 * 60_000 - 1, p)).toBe(n - 1);
    expect(inPeriodBetweenTpAndSrv(run + 3 * 60_000, p)).toBe(false);
    expect(inPeriodBetweenTpAndSrv(run + 5 * 60_000, p)).toBe(true);
  });
});

describe('properties', () => {
  it('every instant lies in [start(n), start(n+1)) of its period', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 86_400_000, max: 4_000_000_000_000 }),
        fc.constantFrom(5, 10, 20, 60, 300, 3600),
        fc.boolean(),
        (now, v, testnet) => {
          const p = timePeriodParams({ testnet, votingIntervalSec: v });
          const n = timePeriodNum(now, p);
          expect(timePeriodStart(n, p)).toBeLessThanOrEqual(now);
          expect(now).toBeLessThan(timePeriodStart(n + 1, p));
          expect(nextTimePeriodStart(now, p)).toBe(timePeriodStart(n + 1, p));
        },
      ),
    );
  });
});
