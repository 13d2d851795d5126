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
 */
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { fromHex, toHex } from '../core/bytes.js';
import { randomBytes } from '../core/crypto.js';
import { ShallotError } from '../core/errors.js';

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
