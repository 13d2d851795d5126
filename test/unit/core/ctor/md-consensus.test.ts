// The microdesc consensus (dir-spec §3.4.1, §3.9.2) of a C tor 0.4.9
// testnet (test/vectors/ctor/): parsed fields, section order, unknown
// keywords, signatures against the key certificates and a majority of
// the configured authorities (a bad signature or too few are refused),
// and hostile input.
import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { fromHex, toBase64, toHex } from '../../../../services/core/bytes.js';
import { mdConsensusLive, verifyMdConsensus } from '../../../../services/core/ctor/consensus-signatures.js';
import { parseKeyCertificates } from '../../../../services/core/ctor/key-cert.js';
import { parseMdConsensus } from '../../../../services/core/ctor/md-consensus.js';
import { CryptoError, InvalidError } from '../../../../services/core/errors.js';
import { mutateLine } from '../../../helpers/line-mutations.js';
import { expectOnlyTypedErrors } from '../../../helpers/typed-errors.js';

const vector = (f: string) => readFileSync(new URL(`../../../vectors/ctor/${f}`, import.meta.url), 'utf8');
const TEXT = vector('consensus-microdesc.txt');
const CERTS = parseKeyCertificates(vector('key-certificates.txt'));
/** The v3idents of the testnet's DirAuthority lines. */
const AUTHORITIES = CERTS.map((c) => c.fingerprint);

/** Flips one base64 character inside the nth signature object (still canonical base64, other bytes). */
function corruptSignature(text: string, n: number): string {
  let at = -1;
  for (let i = 0; i <= n; i++) at = text.indexOf('-----BEGIN SIGNATURE-----\n', at + 1);
  const pos = at + '-----BEGIN SIGNATURE-----\n'.length + 10;
  const c = text[pos] === 'A' ? 'B' : 'A';
  return text.slice(0, pos) + c + text.slice(pos + 1);
}

describe('C tor microdesc consensus: parsing', () => {
  const c = parseMdConsensus(TEXT);

  it('reads the header', () => {
    expect(c.consensusMethod).toBeGreaterThanOrEqual(35);
    expect(c.freshUntilMs - c.validAfterMs).toBe(20_000);
    expect(c.validUntilMs - c.validAfterMs).toBe(60_000);
    expect([c.voteDelaySec, c.distDelaySec]).toEqual([4, 4]);
    expect(c.clientVersions).toEqual([]);
    expect(c.knownFlags).toContain('HSDir');
    expect(c.params).toMatchObject({ circwindow: 1000, cbtdisabled: 1, hs_service_max_rdv_failures: 3 });
    expect(c.protocols['required-client-protocols']).toMatch(/^Cons=2 /);
    // Two shared-random rounds in: the previous value from no reveals, the current from all three.
    expect(c.sharedRandPrevious?.reveals).toBe(0);
    expect(c.sharedRandCurrent?.reveals).toBe(3);
    expect(toBase64(c.sharedRandCurrent!.value)).toBe('RIgowqP1P8QLNwEdEXyZ/fR17dImx9gziulJruXF7ss=');
  });

  it('reads the three dir-source sections', () => {
    expect(c.authorities.map((a) => a.nickname).sort()).toEqual(['auth0', 'auth1', 'auth2']);
    const a0 = c.authorities.find((a) => a.nickname === 'auth0')!;
    expect(toHex(a0.identity).toUpperCase()).toBe('346B3B09E52263E3990AE3D7CB899FF9E5CB0193');
    expect([a0.ip, a0.dirPort, a0.orPort, a0.contact]).toEqual([
      '127.0.0.1',
      47200,
      47100,
      'auth0@test.test',
    ]);
    expect(a0.voteDigest).toHaveLength(20);
  });

  it('reads the router status entries', () => {
    expect(c.relays.map((r) => r.nickname).sort()).toEqual(['auth0', 'auth1', 'auth2', 'relay0', 'relay1']);
    const r0 = c.relays.find((r) => r.nickname === 'relay0')!;
    expect(toHex(r0.rsaId).toUpperCase()).toBe('14055DB36CA9B0EEFEDC5A6AE708A47C58D58798');
    expect(new Date(r0.publishedMs).toISOString()).toBe('2038-01-01T00:00:00.000Z');
    // C tor 0.4.9 lists no DirPort for relays (they serve directory requests over BEGIN_DIR).
    expect([r0.ip, r0.orPort, r0.dirPort]).toEqual(['127.0.0.1', 47110, 0]);
    expect(r0.flags).toEqual(
      expect.arrayContaining(['Exit', 'Fast', 'Guard', 'HSDir', 'Running', 'Stable', 'Valid']),
    );
    expect(r0.version).toBe('Tor 0.4.9.11');
    expect(r0.protocols).toMatch(/Relay=2-6$/);
    expect(r0.unmeasured).toBe(true);
    expect(typeof r0.bandwidth).toBe('number');
    const m = /^r relay0 [^\n]*\nm (\S+)$/m.exec(TEXT)![1];
    expect(toBase64(r0.microdescDigest, false)).toBe(m);
  });

  it('reads the footer and three sha256 signatures', () => {
    expect(Object.keys(c.bandwidthWeights)).toHaveLength(19);
    expect(c.bandwidthWeights.Wgg).toBeGreaterThan(0);
    expect(c.signatures.map((s) => s.algorithm)).toEqual(['sha256', 'sha256', 'sha256']);
    expect(c.signatures.every((s) => s.signature.length === 256)).toBe(true);
  });

  it('ignores unknown keywords in every section', () => {
    const extra = TEXT.replace('vote-status consensus\n', 'vote-status consensus\nnew-header-thing 1\n')
      .replace(/^(contact .*\n)/m, '$1x-authority-note 7\n')
      .replace(/^(s .*\n)/m, '$1x-relay-thing a b\n')
      .replace('directory-footer\n', 'directory-footer\nx-footer\n');
    const parsed = parseMdConsensus(extra);
    expect(parsed.relays).toHaveLength(5);
    // The signed text changed, so C tor's signatures no longer verify.
    expect(() => verifyMdConsensus(parsed, CERTS, AUTHORITIES, parsed.validAfterMs)).toThrow(CryptoError);
  });

  it('refuses documents whose sections or items are out of order or miscounted', () => {
    // Each case below changes one thing in TEXT, which parses (tests above).
    const firstR = TEXT.indexOf('\nr ') + 1;
    const cases: [string, string][] = [
      ['ns flavour', TEXT.replace('network-status-version 3 microdesc', 'network-status-version 3')],
      ['a vote', TEXT.replace('vote-status consensus', 'vote-status vote')],
      ['not first', `vote-status consensus\n${TEXT}`],
      ['header after dir-source', TEXT.replace('directory-footer\n', 'known-flags Exit\ndirectory-footer\n')],
      ['entry item before r', TEXT.slice(0, firstR) + TEXT.slice(firstR).replace(/^r .*\n/, '')],
      ['dir-source after r', TEXT.replace('directory-footer\n', 'contact x\ndirectory-footer\n')],
      ['item after signatures', `${TEXT}known-flags Exit\n`],
      ['no footer', TEXT.replace('directory-footer\n', '')],
      ['no signature', TEXT.slice(0, TEXT.indexOf('directory-signature'))],
      ['two m in an entry', TEXT.replace(/^(m .*\n)/m, '$1$1')],
      ['no s in an entry', TEXT.replace(/^s .*\n/m, '')],
      ['two params', TEXT.replace(/^(params .*\n)/m, '$1$1')],
      ['params repeats a key', TEXT.replace(/^params /m, 'params circwindow=1 ')],
      ['param out of int32', TEXT.replace(/^params /m, 'params aaa=2147483648 ')],
      ['times out of order', TEXT.replace(/^fresh-until .*$/m, 'fresh-until 2000-01-01 00:00:00')],
      ['bad nickname', TEXT.replace('r relay0 ', 'r relay-0 ')],
      ['bad IPv4', TEXT.replace(/^(r relay0 \S+ \S+ \S+) 127\.0\.0\.1/m, '$1 127.0.0.256')],
      ['short rsa id', TEXT.replace(/^r relay0 \S+/m, 'r relay0 AAAA')],
      ['negative bandwidth', TEXT.replace(/^w Bandwidth=\d+/m, 'w Bandwidth=-1')],
      [
        'signature not an object',
        TEXT.replace('-----BEGIN SIGNATURE-----', '-----BEGIN MESSAGE-----').replace(
          '-----END SIGNATURE-----',
          '-----END MESSAGE-----',
        ),
      ],
      ['oversized', `network-status-version 3 microdesc\n${'x\n'.repeat(5_000_000)}`],
    ];
    for (const [name, text] of cases) {
      let err: unknown;
      try {
        parseMdConsensus(text);
      } catch (e) {
        err = e;
      }
      expect(err, name).toBeInstanceOf(InvalidError);
    }
  });
});

describe('C tor microdesc consensus: signatures', () => {
  const c = parseMdConsensus(TEXT);
  const now = c.validAfterMs;

  it('is signed by all three authorities', () => {
    const count = verifyMdConsensus(c, CERTS, AUTHORITIES, now);
    expect(count.good).toHaveLength(3);
    expect(count.required).toBe(2);
    expect(mdConsensusLive(c, now)).toBe(true);
    expect(mdConsensusLive(c, c.validUntilMs + 1)).toBe(false);
  });

  it('refuses a changed document: every signature is bad', () => {
    const changed = parseMdConsensus(
      TEXT.replace(/^(s Exit Fast Guard HSDir Running Stable V2Dir Valid)$/m, '$1 BadExit'),
    );
    expect(() => verifyMdConsensus(changed, CERTS, AUTHORITIES, now)).toThrow(/0 valid of 2 needed/);
  });

  it('takes one bad signature of three (a majority remains, as C tor does), refuses two', () => {
    const one = verifyMdConsensus(parseMdConsensus(corruptSignature(TEXT, 0)), CERTS, AUTHORITIES, now);
    expect([one.good.length, one.bad.length]).toEqual([2, 1]);
    const two = parseMdConsensus(corruptSignature(corruptSignature(TEXT, 0), 2));
    expect(() => verifyMdConsensus(two, CERTS, AUTHORITIES, now)).toThrow(CryptoError);
  });

  it('refuses too few authority signatures: more authorities configured than signed', () => {
    const extra = [fromHex('00'.repeat(20)), fromHex('11'.repeat(20))];
    // 5 configured need 3: the three signatures suffice.
    expect(verifyMdConsensus(c, CERTS, [...AUTHORITIES, ...extra], now).required).toBe(3);
    const seven = [...AUTHORITIES, ...extra, fromHex('22'.repeat(20)), fromHex('33'.repeat(20))];
    expect(() => verifyMdConsensus(c, CERTS, seven, now)).toThrow(/3 valid of 4 needed/);
  });

  it('counts an authority once however often it is configured or signs', () => {
    const twice = [AUTHORITIES[0]!, AUTHORITIES[0]!, AUTHORITIES[1]!];
    expect(verifyMdConsensus(c, CERTS, twice, now).required).toBe(2);
  });

  it("needs each signer's certificate, live at the time of the check", () => {
    const count = verifyMdConsensus(c, CERTS, AUTHORITIES, now);
    expect(count.missingCert).toEqual([]);
    expect(() => verifyMdConsensus(c, CERTS.slice(0, 1), AUTHORITIES, now)).toThrow(CryptoError);
    const expired = Math.max(...CERTS.map((k) => k.expiresMs)) + 1;
    expect(() => verifyMdConsensus(c, CERTS, AUTHORITIES, expired)).toThrow(/0 valid/);
  });

  it('a signature checked with the identity key instead of the signing key fails', () => {
    const swapped = CERTS.map((k) => ({ ...k, signingKey: k.identityKey }));
    expect(() => verifyMdConsensus(c, swapped, AUTHORITIES, now)).toThrow(CryptoError);
  });
});

describe('hostile microdesc consensus', () => {
  it('random text', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 400 }), (s) => expectOnlyTypedErrors(() => parseMdConsensus(s))),
      { numRuns: 300 },
    );
  });

  it('line-level mutations parse or fail typed, and never verify', () => {
    fc.assert(
      fc.property(fc.nat(), fc.integer({ min: 0, max: 3 }), (i, how) => {
        const text = mutateLine(TEXT, i, how);
        expectOnlyTypedErrors(() => {
          const c = parseMdConsensus(text);
          // A mutation inside the signature objects that still parses leaves a majority intact; elsewhere nothing verifies.
          if (
            text.slice(0, TEXT.indexOf('directory-signature')) !==
            TEXT.slice(0, TEXT.indexOf('directory-signature'))
          )
            expect(() => verifyMdConsensus(c, CERTS, AUTHORITIES, c.validAfterMs)).toThrow(CryptoError);
        });
      }),
      { numRuns: 200 },
    );
  });

  it('every truncation', () => {
    for (let n = 0; n < TEXT.length; n += 11) expectOnlyTypedErrors(() => parseMdConsensus(TEXT.slice(0, n)));
  });
});
