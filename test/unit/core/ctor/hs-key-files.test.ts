// C tor's onion-service key files (core/ctor/hs-key-files.ts) and the
// identity key loader that accepts them (onion-service/identity.ts).
// Vector: test/vectors/ctor/hs-key.json, a HiddenServiceDir written by C tor
// 0.4.9.11; RFC 8032 §7.1 TEST 1 for the seed expansion.
import { readFileSync } from 'node:fs';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { fromHex, toHex, utf8 } from '../../../../services/core/bytes.js';
import {
  ed25519Expand,
  ed25519ExpandedFromSecretKey,
  ed25519SecretKeyFromSeed,
  ed25519SignExpanded,
} from '../../../../services/core/crypto/ed25519-math.js';
import { ed25519PublicFromSeed, ed25519Verify, randomBytes } from '../../../../services/core/crypto.js';
import {
  decodeHsPublicKeyFile,
  decodeHsSecretKeyFile,
  encodeHsPublicKeyFile,
  encodeHsSecretKeyFile,
  isCtorKeyFile,
} from '../../../../services/core/ctor/hs-key-files.js';
import { InvalidError } from '../../../../services/core/errors.js';
import { encodeOnionAddress } from '../../../../services/core/onion-address.js';
import {
  decodeIdentityKey,
  encodeIdentityFile,
  IdentityKeyError,
  identityAddress,
} from '../../../../services/core/onion-identity-file.js';
import {
  loadOrCreateIdentityKey,
  readIdentityKey,
  writeHsDir,
} from '../../../../services/onion-service/identity.js';
import { expectOnlyTypedErrors } from '../../../helpers/typed-errors.js';

interface HsKeyVector {
  comment: string;
  secretKeyFile: string;
  publicKeyFile: string;
  hostname: string;
}
const vectors: HsKeyVector[] = JSON.parse(
  readFileSync(new URL('../../../vectors/ctor/hs-key.json', import.meta.url), 'utf8'),
);
const tmp = await mkdtemp(path.join(tmpdir(), 'shallot-hs-key-'));
afterAll(() => rm(tmp, { recursive: true, force: true }));

describe('C tor hs_ed25519 key files', () => {
  for (const [i, v] of vectors.entries()) {
    it(`(${i}) ${v.comment}: same address, key signs`, () => {
      const file = fromHex(v.secretKeyFile);
      expect(isCtorKeyFile(file)).toBe(true);
      const sk = decodeHsSecretKeyFile(file);
      expect(sk.length).toBe(64);
      const key = ed25519ExpandedFromSecretKey(sk);
      expect(toHex(key.public)).toBe(toHex(decodeHsPublicKeyFile(fromHex(v.publicKeyFile))));
      expect(`${encodeOnionAddress(key.public)}\n`).toBe(v.hostname);
      const msg = utf8('descriptor signing key certificate');
      expect(ed25519Verify(key.public, msg, ed25519SignExpanded(key, msg))).toBe(true);
      // Byte for byte what C tor wrote, both files.
      expect(toHex(encodeHsSecretKeyFile(sk))).toBe(v.secretKeyFile);
      expect(toHex(encodeHsPublicKeyFile(key.public))).toBe(v.publicKeyFile);
    });
  }

  it('expands a seed as C tor does (RFC 8032 §7.1 TEST 1), agreeing with ed25519Expand', () => {
    const seed = fromHex('9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60');
    const sk = ed25519SecretKeyFromSeed(seed);
    const key = ed25519ExpandedFromSecretKey(sk);
    expect(toHex(key.public)).toBe('d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a');
    expect(key).toEqual(ed25519Expand(seed));
    // C tor's clamping, not a reduction: bit 254 set, low 3 bits clear.
    expect(sk[0]! & 7).toBe(0);
    expect(sk[31]! & 0xc0).toBe(0x40);
    for (let i = 0; i < 20; i++) {
      const s = randomBytes(32);
      expect(ed25519ExpandedFromSecretKey(ed25519SecretKeyFromSeed(s)).public).toEqual(
        ed25519PublicFromSeed(s),
      );
    }
  });

  it('refuses malformed, truncated, oversized and mistyped files with InvalidError', () => {
    const good = fromHex(vectors[0]!.secretKeyFile);
    const header = good.subarray(0, 32);
    const cases: [string, Uint8Array][] = [
      ['empty', new Uint8Array(0)],
      ['header only', header],
      ['truncated header', good.subarray(0, 20)],
      ['truncated key', good.subarray(0, 95)],
      ['oversized', new Uint8Array([...good, 0])],
      ['public key file as secret', fromHex(vectors[0]!.publicKeyFile)],
      [
        'wrong tag',
        new Uint8Array([...utf8('== ed25519v1-secret: type1 =='), 0, 0, 0, ...good.subarray(32)]),
      ],
      [
        'junk after NUL',
        (() => {
          const b = good.slice();
          b[31] = 0x41;
          return b;
        })(),
      ],
      [
        'no closing ==',
        (() => {
          const b = good.slice();
          b.set(utf8('x'), 28);
          return b;
        })(),
      ],
    ];
    for (const [label, bytes] of cases) {
      expect(() => decodeHsSecretKeyFile(bytes), label).toThrow(InvalidError);
    }
    expect(() => decodeHsPublicKeyFile(good)).toThrow(/not an ed25519v1-public file/);
    expect(() => ed25519ExpandedFromSecretKey(new Uint8Array(64))).toThrow(InvalidError);
    expect(() => ed25519ExpandedFromSecretKey(new Uint8Array(63))).toThrow(InvalidError);
  });

  it('fuzzed files give typed errors only', () => {
    const good = fromHex(vectors[0]!.secretKeyFile);
    for (let i = 0; i < 2000; i++) {
      const b = good.slice(0, 1 + (i % 100));
      for (let j = 0; j < 1 + (i % 4); j++) b[(i * 31 + j * 7) % b.length]! ^= 1 << (j % 8);
      expectOnlyTypedErrors(() => decodeHsSecretKeyFile(b));
      expectOnlyTypedErrors(() => decodeHsPublicKeyFile(b));
      expectOnlyTypedErrors(() => decodeHsSecretKeyFile(randomBytes(i % 130)));
    }
  });
});

describe('identity key files: C tor import and export', () => {
  it("loads C tor's hs_ed25519_secret_key as the key file, refusing a broken one with IdentityKeyError", async () => {
    const v = vectors[0]!;
    const file = path.join(tmp, 'hs_ed25519_secret_key');
    await writeFile(file, fromHex(v.secretKeyFile), { mode: 0o600 });
    const { key, created } = await loadOrCreateIdentityKey(file);
    expect(created).toBe(false);
    expect(key.seed).toBeNull();
    expect(`${identityAddress(key)}\n`).toBe(v.hostname);
    const broken = path.join(tmp, 'broken_key');
    await writeFile(broken, fromHex(v.secretKeyFile).subarray(0, 80), { mode: 0o600 });
    await expect(readIdentityKey(broken)).rejects.toThrow(IdentityKeyError);
    const open = path.join(tmp, 'open_key');
    await writeFile(open, fromHex(v.secretKeyFile), { mode: 0o644 });
    await expect(readIdentityKey(open)).rejects.toThrow(/too open/);
  });

  it('still reads Shallot JSON key files, and creates one when missing', async () => {
    const seed = randomBytes(32);
    const k = decodeIdentityKey(utf8(encodeIdentityFile(seed)));
    expect(k.seed).toEqual(seed);
    expect(identityAddress(k)).toBe(encodeOnionAddress(ed25519PublicFromSeed(seed)));
    const made = await loadOrCreateIdentityKey(path.join(tmp, 'new', 'identity.key'));
    expect(made.created).toBe(true);
    expect(made.key.seed?.length).toBe(32);
    expect(() => decodeIdentityKey(utf8('{}'))).toThrow(IdentityKeyError);
  });

  it('exports a HiddenServiceDir (0700, files 0600) that reads back to the same key and address', async () => {
    const made = await loadOrCreateIdentityKey(path.join(tmp, 'exp', 'identity.key'));
    const dir = path.join(tmp, 'exp', 'hs');
    const address = await writeHsDir(dir, made.key);
    expect(address).toBe(identityAddress(made.key));
    expect(await readFile(path.join(dir, 'hostname'), 'utf8')).toBe(`${address}\n`);
    expect((await stat(dir)).mode & 0o777).toBe(0o700);
    for (const f of ['hs_ed25519_secret_key', 'hs_ed25519_public_key', 'hostname'])
      expect((await stat(path.join(dir, f))).mode & 0o777).toBe(0o600);
    const back = await readIdentityKey(path.join(dir, 'hs_ed25519_secret_key'));
    expect(back.secretKey).toEqual(made.key.secretKey);
    expect(
      decodeHsPublicKeyFile(new Uint8Array(await readFile(path.join(dir, 'hs_ed25519_public_key')))),
    ).toEqual(ed25519ExpandedFromSecretKey(made.key.secretKey).public);
  });
});
