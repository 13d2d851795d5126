// The C tor documents arti's tor-netdoc tests use
// (test/vectors/ctor/arti/, from arti crates/tor-netdoc/testdata): a
// chutney consensus with its authorities' certificates, a public-network
// authority certificate, public-network microdescriptors (one file in C
// tor's cache format with @last-listed annotations), and arti's
// deliberately broken variants.
import { readdirSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { toHex } from '../../../../services/core/bytes.js';
import { verifyMdConsensus } from '../../../../services/core/ctor/consensus-signatures.js';
import { parseKeyCertificates } from '../../../../services/core/ctor/key-cert.js';
import { parseMdConsensus } from '../../../../services/core/ctor/md-consensus.js';
import { parseMicrodescs, summaryAllowsPort } from '../../../../services/core/ctor/microdesc.js';
import { CryptoError, InvalidError } from '../../../../services/core/errors.js';

const DIR = new URL('../../../vectors/ctor/arti/', import.meta.url);
const vector = (f: string) => readFileSync(new URL(f, DIR), 'utf8');

describe('arti testdata: consensus and certificates', () => {
  it('mdconsensus1 (chutney, consensus method 28) verifies against authcerts2', () => {
    const c = parseMdConsensus(vector('mdconsensus1.txt'));
    const certs = parseKeyCertificates(vector('authcerts2.txt'));
    expect(c.consensusMethod).toBe(28);
    expect(c.relays).toHaveLength(6);
    expect(c.relays[0]!.addresses).toEqual(['[::1]:5002']);
    expect(new Date(c.relays[0]!.publishedMs).toISOString()).toBe('2020-08-07T12:40:41.000Z');
    const count = verifyMdConsensus(
      c,
      certs,
      certs.map((k) => k.fingerprint),
      c.validAfterMs,
    );
    expect(count.good).toHaveLength(3);
  });

  it("authcerts3 (another network's authorities) cannot verify it", () => {
    const c = parseMdConsensus(vector('mdconsensus1.txt'));
    const certs = parseKeyCertificates(vector('authcerts3.txt'));
    const ids = c.authorities.map((a) => a.identity);
    expect(() => verifyMdConsensus(c, certs, ids, c.validAfterMs)).toThrow(CryptoError);
  });

  it('authcert1, a public-network authority certificate without dir-address', () => {
    const [cert] = parseKeyCertificates(vector('authcert1.txt'));
    expect(toHex(cert!.fingerprint).toUpperCase()).toBe('ED03BB616EB2F60BEC80151114BB25CEF515B226');
    expect(cert!.address).toBeUndefined();
  });

  it('every bad-certs file is refused with a typed error', () => {
    const files = readdirSync(new URL('bad-certs/', DIR));
    expect(files.length).toBeGreaterThanOrEqual(4);
    for (const f of files) {
      expect(() => parseKeyCertificates(vector(`bad-certs/${f}`)), f).toThrow(
        f === 'bad-fingerprint' ? CryptoError : InvalidError,
      );
    }
  });

  it('every bad-mdconsensus file but bad-flags is refused; bad-flags parses as C tor parses it', () => {
    for (const f of readdirSync(new URL('bad-mdconsensus/', DIR))) {
      const text = vector(`bad-mdconsensus/${f}`);
      if (f === 'bad-flags') {
        // C tor (ns_parse.c) checks flags against known-flags only in votes; in a
        // consensus an unknown flag is skipped. arti refuses it. The signature still fails.
        const c = parseMdConsensus(text);
        expect(c.relays.some((r) => r.flags.includes('Muffins'))).toBe(true);
        const certs = parseKeyCertificates(vector('authcerts2.txt'));
        expect(() =>
          verifyMdConsensus(
            c,
            certs,
            certs.map((k) => k.fingerprint),
            c.validAfterMs,
          ),
        ).toThrow(CryptoError);
      } else expect(() => parseMdConsensus(text), f).toThrow(InvalidError);
    }
  });
});

describe('arti testdata: microdescriptors', () => {
  it('microdesc1: a public relay with an 18-member family and p/p6 summaries', () => {
    const [md] = parseMicrodescs(vector('microdesc1.txt'));
    expect(md!.family).toHaveLength(18);
    expect(md!.policy?.action).toBe('accept');
    expect(summaryAllowsPort(md!.policy!, 443)).toBe(true);
    expect(summaryAllowsPort(md!.policy!, 25)).toBe(false);
    expect(md!.policy6).toEqual(md!.policy);
    expect(md!.ed25519Id).toHaveLength(32);
  });

  it('microdesc2: C tor cache format, annotations only where allowed', () => {
    const text = vector('microdesc2.txt');
    expect(() => parseMicrodescs(text)).toThrow(InvalidError);
    const mds = parseMicrodescs(text, { annotations: 'allow' });
    expect(mds).toHaveLength(4);
    // The annotation is outside the digested text: the digest is that of the bare microdescriptor.
    const bare = text.replace(/^@.*\n/gm, '');
    expect(mds.map((m) => toHex(m.digest))).toEqual(parseMicrodescs(bare).map((m) => toHex(m.digest)));
    expect(() => parseMicrodescs(`${text}@stray\n`, { annotations: 'allow' })).toThrow(InvalidError);
  });

  it('every bad-mds file is refused', () => {
    for (const f of readdirSync(new URL('bad-mds/', DIR)))
      expect(() => parseMicrodescs(vector(`bad-mds/${f}`)), f).toThrow(InvalidError);
  });
});
