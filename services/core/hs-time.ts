/**
 * Onion-service time periods (rend-spec-v3 §2.2.1; C tor hs_common.c
 * get_time_period_length / hs_get_time_period_num) and the SRV protocol
 * run they are aligned with (srv-spec §2).
 *
 *   tp = (minutes_since_epoch - offset) / len       (integer division)
 *   period n starts at (n*len + offset) minutes
 *
 * Live network: len = 1440 min, offset = 720 min (12 voting intervals of
 * one hour), so periods start at 12:00 UTC while SRV runs start at 00:00.
 *
 * Testnet (C tor with TestingTorNetwork): len = one SRV protocol run =
 * 24 voting intervals, offset = 12 voting intervals, both converted to
 * minutes by integer division. Shallot keeps everything in whole minutes,
 * because `len` goes into INT_8 fields (blinding factor, hs_index,
 * hsdir_index, disaster SRV) in minutes exactly as in Tor, and requires the
 * voting interval to be a whole multiple of 5 s: then 24*v/60 and 12*v/60
 * are exact, so time periods and SRV runs stay aligned as on the live
 * network (e.g. v = 20 s -> len 8 min, offset 4 min).
 */
import { InvalidError } from './errors.js';

export interface TimePeriodParams {
  /** Time period length in minutes (the `len` fed to blinding and the ring indexes). */
  lengthMinutes: number;
  /** Rotation offset in minutes (12 voting intervals). */
  offsetMinutes: number;
  /** One SRV protocol run (24 voting intervals), in seconds. */
  srvRunSeconds: number;
}

const MIN_MS = 60_000;
export const LIVE_TIME_PERIOD_MINUTES = 1440;
export const LIVE_VOTING_INTERVAL_SEC = 3600;

/**
 * Period parameters. Live: 1440/720 minutes (the voting interval is ignored,
 * as hsdir_interval is fixed). Testnet: 24x/12x the voting interval.
 */
export function timePeriodParams(opts: { votingIntervalSec?: number; testnet: boolean }): TimePeriodParams {
  if (!opts.testnet) {
    return { lengthMinutes: LIVE_TIME_PERIOD_MINUTES, offsetMinutes: 720, srvRunSeconds: 86_400 };
  }
  const v = opts.votingIntervalSec ?? LIVE_VOTING_INTERVAL_SEC;
  if (!Number.isInteger(v) || v < 5 || v % 5 !== 0) {
    throw new InvalidError('voting interval', `must be a positive multiple of 5 seconds, got ${v}`);
  }
  return { lengthMinutes: (24 * v) / 60, offsetMinutes: (12 * v) / 60, srvRunSeconds: 24 * v };
}

/** The time period number at `nowMs` (in Tor, `now` is the consensus valid-after). */
export function timePeriodNum(nowMs: number, p: TimePeriodParams): number {
  const minutes = Math.floor(nowMs / MIN_MS);
  return Math.floor((minutes - p.offsetMinutes) / p.lengthMinutes);
}

/** Start of period `n`, in ms since the epoch. */
export function timePeriodStart(n: number, p: TimePeriodParams): number {
  return (n * p.lengthMinutes + p.offsetMinutes) * MIN_MS;
}

/** Start of the period after the one containing `nowMs`. */
export function nextTimePeriodStart(nowMs: number, p: TimePeriodParams): number {
  return timePeriodStart(timePeriodNum(nowMs, p) + 1, p);
}

/** Start of the SRV protocol run containing `nowMs` (runs are aligned to the epoch). */
export function srvRunStart(nowMs: number, p: TimePeriodParams): number {
  const runMs = p.srvRunSeconds * 1000;
  return Math.floor(nowMs / runMs) * runMs;
}

/**
 * C tor hs_in_period_between_tp_and_srv: false between the start of an SRV
 * run and the next time period (00:00-12:00 live), true between a new time
 * period and the next SRV run (12:00-00:00). It decides which SRV and time
 * period the HSDir indexes use.
 */
export function inPeriodBetweenTpAndSrv(nowMs: number, p: TimePeriodParams): boolean {
  const srvStart = srvRunStart(nowMs, p);
  const tpStart = nextTimePeriodStart(srvStart, p);
  return !(nowMs >= srvStart && nowMs < tpStart);
}
