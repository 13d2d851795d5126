/**
 * How an origin circuit or a stream on it fails: CircuitError carries the
 * DESTROY reason (tor-spec §5.4) and what kind of failure it was; a stream
 * the far end refused carries the END reason (tor-spec §6.3).
 */
import { ShallotError } from '../core/errors.js';

export class CircuitError extends ShallotError {
  constructor(
    readonly reason: number,
    message: string,
    readonly kind: 'destroyed' | 'timeout' | 'protocol' | 'channel' | 'limit' = 'destroyed',
  ) {
    super('ERR_CIRCUIT', message, { reason, kind });
  }
}

export class StreamRefusedError extends ShallotError {
  constructor(readonly reason: number) {
    super('ERR_STREAM_REFUSED', `stream refused (END reason ${reason})`, { reason });
  }
}
