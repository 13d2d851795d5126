/**
 * Node keys on disk: one JSON file per node, created with mode 0600 in a
 * 0700 directory, and refused if it is readable by others. Writes go to a
 * temporary file first so a crash never leaves a half-written key.
 */
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { ShallotError } from '../core/errors.js';
import { decodeNodeKeys, encodeNodeKeys, generateNodeKeys, type NodeKeys } from '../core/node-keys.js';

export class KeyFileError extends ShallotError {
  constructor(file: string, message: string) {
    super('ERR_KEY_FILE', `${file}: ${message}`, { file });
  }
}

export async function writeKeyFile(file: string, keys: NodeKeys): Promise<void> {
  await fs.mkdir(path.dirname(file), { recursive: true, mode: 0o700 });
  const tmp = `${file}.tmp-${process.pid}`;
  await fs.writeFile(tmp, encodeNodeKeys(keys), { mode: 0o600 });
  await fs.rename(tmp, file);
}

export async function readKeyFile(file: string): Promise<NodeKeys> {
  const st = await fs.stat(file);
  if ((st.mode & 0o077) !== 0) {
    throw new KeyFileError(file, `permissions ${(st.mode & 0o777).toString(8)} are too open; want 600`);
  }
  try {
    return decodeNodeKeys(new Uint8Array(await fs.readFile(file)));
  } catch (e) {
    throw new KeyFileError(file, (e as Error).message);
  }
}

/** Reads the key file, or creates one with fresh keys if there is none. */
export async function loadOrCreateKeys(file: string): Promise<NodeKeys> {
  try {
    return await readKeyFile(file);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
  }
  const keys = generateNodeKeys();
  await writeKeyFile(file, keys);
  return keys;
}
