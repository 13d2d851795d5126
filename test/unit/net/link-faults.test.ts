// The link-fault table (services/net/link-faults.ts) as it arrives from the
// launcher: parseLinkFaultTable accepts a well-formed table and refuses
// hostile ones (wrong types, bad names, out-of-range delays, oversized
// lists); LauncherLines (runtime/cli.ts) splits the launcher pipe into JSON
// lines, skipping malformed and oversized ones without stopping.
import { describe, expect, it } from 'vitest';
import {
  applyLinkFaults,
  currentLinkFaults,
  EMPTY_LINK_FAULTS,
  extraDelayMs,
  isCut,
  isHeld,
  parseLinkFaultTable,
} from '../../../services/net/link-faults.js';
import { LauncherLines, MAX_LAUNCHER_LINE } from '../../../services/runtime/cli.js';

describe('parseLinkFaultTable', () => {
  const good = {
    cuts: [['relay1', 'relay2']],
    slows: [{ a: 'relay1', b: 'client', delayMs: 250 }],
    paused: ['relay3'],
  };

  it('accepts a table and applies it', () => {
    const t = parseLinkFaultTable(JSON.parse(JSON.stringify(good)));
    expect(t).toEqual(good);
    applyLinkFaults(t ?? EMPTY_LINK_FAULTS);
    try {
      expect(isCut('relay2', 'relay1')).toBe(true);
      expect(isCut('relay2', null)).toBe(false);
      expect(extraDelayMs('client', 'relay1')).toBe(250);
      expect(isHeld('relay0', 'relay3')).toBe(true);
      expect(isHeld('relay0', 'relay1')).toBe(false);
      expect(currentLinkFaults().paused).toEqual(['relay3']);
    } finally {
      applyLinkFaults(EMPTY_LINK_FAULTS);
    }
    expect(isCut('relay1', 'relay2')).toBe(false);
  });

  const bad: [string, unknown][] = [
    ['null', null],
    ['a string', 'cut'],
    ['no cuts', { slows: [], paused: [] }],
    ['a cut of one node', { ...good, cuts: [['relay1']] }],
    ['a cut of three', { ...good, cuts: [['a', 'b', 'c']] }],
    ['an upper-case name', { ...good, cuts: [['Relay1', 'relay2']] }],
    ['a name with a newline', { ...good, paused: ['relay1\nrelay2'] }],
    ['a negative delay', { ...good, slows: [{ a: 'x', b: 'y', delayMs: -1 }] }],
    ['a NaN delay', { ...good, slows: [{ a: 'x', b: 'y', delayMs: Number.NaN }] }],
    ['an infinite delay', { ...good, slows: [{ a: 'x', b: 'y', delayMs: Number.POSITIVE_INFINITY }] }],
    ['a delay over 10 s', { ...good, slows: [{ a: 'x', b: 'y', delayMs: 10_001 }] }],
    ['a slow without b', { ...good, slows: [{ a: 'x', delayMs: 5 }] }],
    ['a null slow', { ...good, slows: [null] }],
    ['paused as a string', { ...good, paused: 'relay1' }],
    ['an oversized list', { ...good, paused: Array.from({ length: 5000 }, (_, i) => `r${i}`) }],
  ];
  for (const [what, v] of bad)
    it(`refuses ${what}`, () => {
      expect(parseLinkFaultTable(v)).toBeNull();
    });
});

describe('LauncherLines', () => {
  it('splits lines across chunks and skips malformed and oversized ones', () => {
    const got: unknown[] = [];
    const lines = new LauncherLines((m) => got.push(m));
    lines.push('{"a":');
    lines.push('1}\n{bad json}\n');
    lines.push('"x"\n');
    expect(got).toEqual([{ a: 1 }, 'x']);
    // A line past the limit is dropped whole, the next line still counts.
    lines.push('"'.padEnd(MAX_LAUNCHER_LINE + 10, 'y'));
    lines.push('yyy"\n{"b":2}\n');
    expect(got).toEqual([{ a: 1 }, 'x', { b: 2 }]);
  });
});
