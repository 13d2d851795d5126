/**
 * The onion service's identity key on disk (rend-spec-v3 §1.9: the master
 * identity key, KS_hs_id, whose public half is the onion address).
 *
 * One small JSON file holding the 32-byte Ed25519 seed, mode 0600 in a
 * 0700 directory, refused if others can read it (as key-store.ts does for
 * relay keys). Creation is race-free so that several instances of one
 * service started together agree on a single key: the new file is written
 * under a temporary name and hard-linked into place, which fails if another
 * instance got there first; the loser then reads the winner's key.
 *
 * C tor's key moves over unchanged: the key file may instead be a C tor
 * `hs_ed25519_secret_key` (core/ctor/hs-key-files.ts), which holds the
 * expanded key only (no seed), and `writeHsDir` exports any identity as the
 * files of a C tor HiddenServiceDir (secret key, public key, hostname).
 */
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { fromHex, toHex } from '../core/bytes.js';
import { ed25519ExpandedFromSecretKey, ed25519SecretKeyFromSeed, randomBytes } from '../core/crypto.js';
import {
  decodeHsSecretKeyFile,
  encodeHsPublicKeyFile,
  encodeHsSecretKeyFile,
  HS_HOSTNAME_FILE,
  HS_PUBLIC_KEY_FILE,
  HS_SECRET_KEY_FILE,
  isCtorKeyFile,
} from '../core/ctor/hs-key-files.js';
import { ShallotError } from '../core/errors.js';
import { encodeOnionAddress } from '../core/onion-address.js';

const KIND = 'shallot-onion-service-identity-v1';

export class IdentityKeyError extends ShallotError {
  constructor(file: string, message: string) {
    super('ERR_ONION_KEY_FILE', `${file}: ${message}`, { file });
  }
}

export function encodeIdentityFile(seed: Uint8Array): string {
  if (seed.length !== 32) throw new Error('identity seed must be 32 bytes');
  return `${JSON.stringify({ kind: KIND, ed25519Seed: toHex(seed) })}\n`;
}

export function decodeIdentityFile(text: string, file = 'identity key'): Uint8Array {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch {
    throw new IdentityKeyError(file, 'not JSON');
  }
  const d = doc as { kind?: unknown; ed25519Seed?: unknown };
  if (d.kind !== KIND) throw new IdentityKeyError(file, `not a ${KIND} file`);
  if (typeof d.ed25519Seed !== 'string' || !/^[0-9a-f]{64}$/.test(d.ed25519Seed)) {
    throw new IdentityKeyError(file, 'ed25519Seed must be 64 lowercase hex digits');
  }
  return fromHex(d.ed25519Seed);
}

export async function readIdentityFile(file: string): Promise<Uint8Array> {
  const st = await fs.stat(file);
  if ((st.mode & 0o077) !== 0) {
    throw new IdentityKeyError(file, `permissions ${(st.mode & 0o777).toString(8)} are too open; want 600`);
  }
  return decodeIdentityFile(await fs.readFile(file, 'utf8'), file);
}

/** Reads the identity seed, creating a fresh one (mode 0600) if the file does not exist. */
export async function loadOrCreateIdentity(file: string): Promise<{ seed: Uint8Array; created: boolean }> {
  try {
    return { seed: await readIdentityFile(file), created: false };
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
  }
  await fs.mkdir(path.dirname(file), { recursive: true, mode: 0o700 });
  const seed = randomBytes(32);
  const tmp = `${file}.tmp-${process.pid}-${toHex(randomBytes(4))}`;
  await fs.writeFile(tmp, encodeIdentityFile(seed), { mode: 0o600 });
  try {
    await fs.link(tmp, file);
    return { seed, created: true };
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    // Another instance created it between our read and our link: use theirs.
    return { seed: await readIdentityFile(file), created: false };
  } finally {
    await fs.rm(tmp, { force: true });
  }
}

/** An onion service's identity secret, from either key file format. */
export interface OnionIdentityKey {
  /** The 32-byte seed of a key Shallot made; null for a key from C tor (which keeps no seed). */
  seed: Uint8Array | null;
  /** C tor's 64-byte expanded secret key (clamped scalar | prefix), what descriptors are signed with. */
  secretKey: Uint8Array;
}

export function identityKeyFromSeed(seed: Uint8Array): OnionIdentityKey {
  return { seed, secretKey: ed25519SecretKeyFromSeed(seed) };
}

/** A key file's bytes: C tor's `hs_ed25519_secret_key` or Shallot's JSON seed file. */
export function decodeIdentityKey(bytes: Uint8Array, file = 'identity key'): OnionIdentityKey {
  if (!isCtorKeyFile(bytes)) {
    return identityKeyFromSeed(decodeIdentityFile(Buffer.from(bytes).toString('utf8'), file));
  }
  try {
    const secretKey = decodeHsSecretKeyFile(bytes);
    ed25519ExpandedFromSecretKey(secretKey); // refuses a scalar with no public key
    return { seed: null, secretKey };
  } catch (e) {
    throw new IdentityKeyError(file, (e as Error).message);
  }
}

/** The onion address ("<56 chars>.onion") of an identity key. */
export function identityAddress(key: OnionIdentityKey): string {
  return encodeOnionAddress(ed25519ExpandedFromSecretKey(key.secretKey).public);
}

async function checkPrivate(file: string): Promise<void> {
  const st = await fs.stat(file);
  if ((st.mode & 0o077) !== 0) {
    throw new IdentityKeyError(file, `permissions ${(st.mode & 0o777).toString(8)} are too open; want 600`);
  }
}

/** Reads either key file format (mode 0600 required, as for Shallot's own). */
export async function readIdentityKey(file: string): Promise<OnionIdentityKey> {
  await checkPrivate(file);
  return decodeIdentityKey(new Uint8Array(await fs.readFile(file)), file);
}

/** As loadOrCreateIdentity, but the file may also be C tor's `hs_ed25519_secret_key`. */
export async function loadOrCreateIdentityKey(
  file: string,
): Promise<{ key: OnionIdentityKey; created: boolean }> {
  try {
    return { key: await readIdentityKey(file), created: false };
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
  }
  const { seed, created } = await loadOrCreateIdentity(file);
  return { key: identityKeyFromSeed(seed), created };
}

/**
 * Writes the identity as C tor's HiddenServiceDir holds it (directory 0700,
 * files 0600, as C tor's hs_service.c creates them): `hs_ed25519_secret_key`,
 * `hs_ed25519_public_key` and `hostname` ("<56 chars>.onion\n"). A C tor
 * started with `HiddenServiceDir <dir>` then serves the same address.
 * Returns the address.
 */
export async function writeHsDir(dir: string, key: OnionIdentityKey): Promise<string> {
  const pub = ed25519ExpandedFromSecretKey(key.secretKey).public;
  const address = encodeOnionAddress(pub);
  await fs.mkdir(dir, { recursive: true, mode: 0o700 });
  await fs.chmod(dir, 0o700);
  const files: [string, Uint8Array | string][] = [
    [HS_SECRET_KEY_FILE, encodeHsSecretKeyFile(key.secretKey)],
    [HS_PUBLIC_KEY_FILE, encodeHsPublicKeyFile(pub)],
    [HS_HOSTNAME_FILE, `${address}\n`],
  ];
  for (const [name, data] of files) {
    const f = path.join(dir, name);
    await fs.writeFile(f, data, { mode: 0o600 });
    await fs.chmod(f, 0o600);
  }
  return address;
}
