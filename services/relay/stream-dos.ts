/**
 * The stream-creation DoS defence of an exit (C tor 0.4.9 dos.c,
 * `dos_stream_new_begin_or_resolve_cell`; tor(1) DoSStreamCreation*): each
 * circuit has a token bucket, full at `DoSStreamCreationBurst` and refilled
 * at `DoSStreamCreationRate` per second; every BEGIN and BEGIN_DIR takes a
 * token (Shallot has no RESOLVE), and with the bucket empty the defence
 * type decides: 1 nothing, 2 refuse the stream (END RESOURCELIMIT), 3 close
 * the circuit.
 *
 * Defaults are C tor's where not in the consensus: rate 100, burst 300,
 * defence 2. Deliberate deviation: C tor's `DoSStreamCreationEnabled`
 * defaults to 0 (off until the consensus turns it on); Shallot's is 1,
 * since a testnet has no directory operators to turn it on and exists to
 * be attacked. `DoSStreamCreationEnabled=0` in the consensus params turns
 * it off.
 *
 * Design notes: a circuit's bucket is made on its first stream with the
 * parameters of that moment and kept for the circuit's life, as C tor's
 * `dos_stream_init_circ_tbf` sets it up once per circuit. Buckets live in
 * a WeakMap, so a closed circuit's goes with it.
 *
 * Not in this module: the per-circuit stream cap (net/edge.ts) and the
 * process-wide exit socket cap (exit-sockets.ts).
 */
import { boundedParam } from '../core/consensus-param.js';
import { TokenBucket } from '../core/token-bucket.js';

export interface StreamDosParams {
  enabled: boolean;
  /** Streams per second a circuit may open (refill rate). */
  rate: number;
  /** Streams a circuit may open at once (bucket size). */
  burst: number;
  /** 1: none, 2: refuse the stream, 3: close the circuit. */
  defenseType: 1 | 2 | 3;
}

export const STREAM_DOS_DEFAULTS: StreamDosParams = { enabled: true, rate: 100, burst: 300, defenseType: 2 };

/** The defence's parameters from consensus params (Tor's names, C tor's bounds). */
export function streamDosParams(params: Record<string, number>): StreamDosParams {
  const d = STREAM_DOS_DEFAULTS;
  const max = 2 ** 31 - 1;
  return {
    enabled: boundedParam(params, 'DoSStreamCreationEnabled', d.enabled ? 1 : 0, 0, 1) === 1,
    rate: boundedParam(params, 'DoSStreamCreationRate', d.rate, 1, max),
    burst: boundedParam(params, 'DoSStreamCreationBurst', d.burst, 1, max),
    defenseType: boundedParam(params, 'DoSStreamCreationDefenseType', d.defenseType, 1, 3) as 1 | 2 | 3,
  };
}

export type StreamDosVerdict = 'allow' | 'refuse' | 'close';

export class StreamDos {
  private readonly buckets = new WeakMap<object, TokenBucket>();

  constructor(private readonly now: () => number = Date.now) {}

  /** One new stream on `circuit`: allow it, refuse it, or close the circuit. */
  onBegin(circuit: object, p: StreamDosParams): StreamDosVerdict {
    if (!p.enabled) return 'allow';
    const now = this.now();
    let bucket = this.buckets.get(circuit);
    if (!bucket) {
      bucket = new TokenBucket(p.rate, p.burst, now);
      this.buckets.set(circuit, bucket);
    }
    if (bucket.take(now)) return 'allow';
    return p.defenseType === 1 ? 'allow' : p.defenseType === 2 ? 'refuse' : 'close';
  }
}
