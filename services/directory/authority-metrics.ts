/**
 * What the directory authority reports about its consensus and the
 * documents it refused: the signatures and relays (per flag) of the
 * consensus it serves, its age, and descriptor and peer-document refusals
 * by reason (dir-spec §3.2 uploads, §3.4 votes, §3.10 signatures).
 */
import type { Metrics } from '../metrics/metrics.js';
import type { Logger } from '../runtime/log.js';
import { DescriptorRefusedError } from './descriptor-options.js';
import { SIGNATURE_PATH, type UploadKind, VOTE_PATH } from './http.js';
import { peerRefusalReason, type ServedConsensus } from './round.js';

/** Sets the served consensus's series: signatures, relays per flag, age. */
export function recordConsensus(
  m: Metrics['directory'],
  authority: string,
  l: ServedConsensus | null,
  nowMs: number,
): void {
  if (!l) return;
  m.consensusSignatures.set({ authority }, l.signatures);
  m.consensusRelays.set({ authority, flag: 'all' }, l.consensus.relays.length);
  for (const f of l.consensus.knownFlags) {
    m.consensusRelays.set(
      { authority, flag: f },
      l.consensus.relays.filter((x) => x.flags.includes(f)).length,
    );
  }
  recordConsensusAge(m, authority, l, nowMs);
}

/** Seconds since the served consensus's valid-after. */
export function recordConsensusAge(
  m: Metrics['directory'],
  authority: string,
  l: ServedConsensus | null,
  nowMs: number,
): void {
  if (l) m.consensusAge.set({ authority }, Math.max(0, (nowMs - l.consensus.validAfterMs) / 1000));
}

/** Counts (and logs, when the document itself was bad) an upload the authority refused. */
export function countRefusal(
  m: Metrics['directory'],
  log: Logger,
  authority: string,
  r: { kind: UploadKind; e: unknown; stage: 'body' | 'document' },
): void {
  const { kind, e, stage } = r;
  if (kind === 'descriptor') {
    m.descriptors.inc({ authority, outcome: 'rejected' });
    const reason = e instanceof DescriptorRefusedError ? e.reason : 'invalid';
    m.descriptorsRefused.inc({ authority, reason });
    if (stage === 'document') log.debug('descriptor rejected', { error: (e as Error).message });
    return;
  }
  m.peerDocumentsRefused.inc({ authority, kind, reason: peerRefusalReason(e) });
  if (stage === 'document')
    log.warn('peer document refused', {
      path: kind === 'vote' ? VOTE_PATH : SIGNATURE_PATH,
      error: (e as Error).message,
    });
}
