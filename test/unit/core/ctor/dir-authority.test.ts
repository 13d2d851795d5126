// DirAuthority lines (services/core/ctor/dir-authority.ts) as a torrc
// writes them: the C tor testnet's own lines (test/vectors/ctor/
// authorities.torrc), the forms C tor accepts (no nickname, grouped
// fingerprint, unknown flags, other options around), and typed refusals
// for malformed, truncated and oversized input.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { toHex } from '../../../../services/core/bytes.js';
import { MAX_DIR_AUTHORITY_FILE, parseDirAuthorities } from '../../../../services/core/ctor/dir-authority.js';
import { InvalidError } from '../../../../services/core/errors.js';
import { expectOnlyTypedErrors } from '../../../helpers/typed-errors.js';

const vector = readFileSync(new URL('../../../vectors/ctor/authorities.torrc', import.meta.url), 'utf8');
const FP = '7F7C33BE8383E2F5167ABB94AB7D7DC9D59421B7';
const V3 = '2D22AE2196316477ACB9DF5156208DEC9409680B';

describe('DirAuthority lines', () => {
  it('reads the C tor testnet lines', () => {
    const a = parseDirAuthorities(vector);
    expect(a.map((x) => x.nickname)).toEqual(['auth0', 'auth1', 'auth2']);
    expect(a[2]).toMatchObject({ address: '127.0.0.1', dirPort: 47202, orPort: 47102, ipv6: null });
    expect(toHex(a[2]!.v3ident).toUpperCase()).toBe(V3);
    expect(toHex(a[2]!.fingerprint).toUpperCase()).toBe(FP);
  });

  it('accepts what C tor accepts: no nickname, any case, grouped fingerprint, unknown flags, a whole torrc', () => {
    const grouped = FP.match(/.{4}/g)!.join(' ');
    const text = [
      '# a torrc',
      'TestingTorNetwork 1',
      `dirauthority orport=9001 no-v2 hs weight=3 future-flag v3ident=${V3} ipv6=[::1]:9001 10.0.0.1:7000 ${grouped}`,
      '',
      `DirAuthority nick v3ident=${V3} 10.0.0.2:80 ${FP}   # trailing comment`,
    ].join('\n');
    const a = parseDirAuthorities(text);
    expect(a).toHaveLength(2);
    expect(a[0]).toMatchObject({
      nickname: null,
      address: '10.0.0.1',
      dirPort: 7000,
      orPort: 9001,
      ipv6: '[::1]:9001',
    });
    expect(toHex(a[0]!.fingerprint).toUpperCase()).toBe(FP);
    expect(a[1]).toMatchObject({ nickname: 'nick', orPort: null, dirPort: 80 });
  });

  const bad: [string, string][] = [
    ['no DirAuthority lines', 'SocksPort 0\n'],
    ['no v3ident', `DirAuthority a orport=1 127.0.0.1:80 ${FP}`],
    ['short fingerprint', `DirAuthority a v3ident=${V3} 127.0.0.1:80 ${FP.slice(2)}`],
    ['no fingerprint', `DirAuthority a v3ident=${V3} 127.0.0.1:80`],
    ['no address', `DirAuthority a v3ident=${V3}`],
    ['port 0', `DirAuthority a v3ident=${V3} 127.0.0.1:0 ${FP}`],
    ['port too big', `DirAuthority a v3ident=${V3} 127.0.0.1:65536 ${FP}`],
    ['octet over 255', `DirAuthority a v3ident=${V3} 127.0.0.256:80 ${FP}`],
    ['hostname', `DirAuthority a v3ident=${V3} example.test:80 ${FP}`],
    ['bad v3ident', `DirAuthority a v3ident=${V3.slice(1)}Z 127.0.0.1:80 ${FP}`],
    ['bad orport', `DirAuthority a orport=x v3ident=${V3} 127.0.0.1:80 ${FP}`],
  ];
  for (const [name, text] of bad) {
    it(`refuses: ${name}`, () => {
      expect(() => parseDirAuthorities(text)).toThrow(InvalidError);
    });
  }

  it('refuses an oversized file before reading it', () => {
    expect(() => parseDirAuthorities(`${vector}\n${'#'.repeat(MAX_DIR_AUTHORITY_FILE)}`)).toThrow(/too long/);
  });

  it('every truncation and byte flip of a valid file parses or fails typed', () => {
    for (let n = 0; n <= vector.length; n += 3)
      expectOnlyTypedErrors(() => parseDirAuthorities(vector.slice(0, n)));
    for (let i = 0; i < vector.length; i += 2) {
      const flipped =
        vector.slice(0, i) + String.fromCharCode(vector.charCodeAt(i) ^ 0x55) + vector.slice(i + 1);
      expectOnlyTypedErrors(() => parseDirAuthorities(flipped));
    }
  });
});
