// Waits for an OnionService's first successful publication: a descriptor
// uploaded to at least one HSDir (rend-spec-v3 §2.2.5) listing enough
// introduction points, so a client can reach it from then on.
import type { OnionService } from '../../services/onion-service/service.js';

/** Resolves once `s` uploaded a descriptor with at least `minIntroPoints` intro points; rejects after `timeoutMs`. */
export function published(s: OnionService, timeoutMs: number, minIntroPoints = 1): Promise<void> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('onion service did not publish in time')), timeoutMs);
    const check = (e?: { uploaded: number; introPoints: number }) => {
      if (e && e.uploaded > 0 && e.introPoints >= minIntroPoints) {
        clearTimeout(timer);
        s.off('published', check);
        resolve();
      }
    };
    s.on('published', check);
  });
}
