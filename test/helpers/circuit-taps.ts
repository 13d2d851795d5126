// Taps on a client's OriginCircuit for flow-control tests (tor-spec §7.4,
// "Flow control"): count the DATA cells it receives, so a test can see an
// exit stop at the circuit window.
import type { RelayMessage } from '../../services/core/relay-cell.js';
import type { OriginCircuit } from '../../services/net/origin-circuit.js';

/** Counts the DATA cells `circ` receives from now on; the returned function reads the count. */
export function countDataCells(circ: OriginCircuit): () => number {
  let cells = 0;
  const c = circ as unknown as { onRelayMessage(h: number, s: number, m: RelayMessage): void };
  const orig = c.onRelayMessage.bind(circ);
  c.onRelayMessage = (h, s, m) => {
    if (m.type === 'DATA') cells += 1;
    orig(h, s, m);
  };
  return () => cells;
}
