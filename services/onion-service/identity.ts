/**
 * The onion service's identity key on disk (rend-spec-v3 §1.9: the master
 * identity key, KS_hs_id, whose public half is the onion address; file
 * formats: core/onion-identity-file.ts).
 *
 * Mode 0600 in a 0700 directory, refused if others can read it
 * (runtime/private-file.ts, as for relay keys). Creation is race-free so
 * that several instances of one service started together agree on a single
 * key: the new file is hard-linked into place, which fails if another
 * instance got there first; the loser then reads the winner's key.
 *
 * C tor's key moves over unchanged: the key file may instead be a C tor
 * `hs_ed25519_secret_key` (core/ctor/hs-key-files.ts), which holds the
 * expanded key only (no seed), and `writeHsDir` exports any identity as the
 * files of a C tor HiddenServiceDir (secret key, public key, hostname).
 */
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { ed25519ExpandedFromSecretKey } from '../core/crypto/ed25519-math.js';
import { randomBytes } from '../core/crypto.js';
import {
  encodeHsPublicKeyFile,
  encodeHsSecretKeyFile,
  HS_HOSTNAME_FILE,
  HS_PUBLIC_KEY_FILE,
  HS_SECRET_KEY_FILE,
} from '../core/ctor/hs-key-files.js';
import { encodeOnionAddress } from '../core/onion-address.js';
import {
  decodeIdentityFile,
  decodeIdentityKey,
  encodeIdentityFile,
  IdentityKeyError,
  identityKeyFromSeed,
  type OnionIdentityKey,
} from '../core/onion-identity-file.js';
import { readPrivateFile, writePrivateFile } from '../runtime/private-file.js';

const refuse = (file: string, message: string) => new IdentityKeyError(file, message);

export async function readIdentityFile(file: string): Promise<Uint8Array> {
  return decodeIdentityFile((await readPrivateFile(file, { error: refuse })).toString('utf8'), file);
}

/** Reads the identity seed, creating a fresh one (mode 0600) if the file does not exist. */
export async function loadOrCreateIdentity(file: string): Promise<{ seed: Uint8Array; created: boolean }> {
  try {
    return { seed: await readIdentityFile(file), created: false };
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
  }
  const seed = randomBytes(32);
  if (await writePrivateFile(file, encodeIdentityFile(seed), { exclusive: true }))
    return { seed, created: true };
  // Another instance created it between our read and our link: use theirs.
  return { seed: await readIdentityFile(file), created: false };
}

/** Reads either key file format (mode 0600 required, as for Shallot's own). */
export async function readIdentityKey(file: string): Promise<OnionIdentityKey> {
  return decodeIdentityKey(new Uint8Array(await readPrivateFile(file, { error: refuse })), file);
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
  // An existing directory keeps its mode through mkdir; C tor refuses a HiddenServiceDir others can read.
  await fs.chmod(dir, 0o700);
  const files: [string, Uint8Array | string][] = [
    [HS_SECRET_KEY_FILE, encodeHsSecretKeyFile(key.secretKey)],
    [HS_PUBLIC_KEY_FILE, encodeHsPublicKeyFile(pub)],
    [HS_HOSTNAME_FILE, `${address}\n`],
  ];
  for (const [name, data] of files) await writePrivateFile(path.join(dir, name), data);
  return address;
}
