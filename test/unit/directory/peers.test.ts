// The peer exchange's request timeouts sized to the document
// (services/directory/peers.ts sizedTimeoutMs; issue 17).
import { describe, expect, it } from 'vitest';
import { MS_PER_MIB, sizedTimeoutMs } from '../../../services/directory/peers.js';

describe('sizedTimeoutMs', () => {
  const MiB = 1 << 20;

  it('is the base for small documents and grows by MS_PER_MIB per MiB', () => {
    expect(sizedTimeoutMs(2000, 3000, 4000)).toBe(2003);
    expect(sizedTimeoutMs(500, 2 * MiB, 10_000)).toBe(500 + 2 * MS_PER_MIB);
  });

  it('stays within the window it must fit, but never below the base', () => {
    // A 5,000-relay vote (2.2 MiB) with a 4 s vote delay: base 2 s + 2.2 s, capped at 4 s.
    expect(sizedTimeoutMs(2000, 2.2 * MiB, 4000)).toBe(4000);
    expect(sizedTimeoutMs(2000, 100 * MiB, 1000)).toBe(2000);
  });
});
