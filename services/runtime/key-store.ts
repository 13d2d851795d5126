/**
 * Node keys on disk: one file per node (format: core/node-keys.ts), mode
 * 0600 in a 0700 directory, refused if others can read it, written through
 * a temporary file so a crash never leaves a half-written key
 * (private-file.ts).
 */
import { decodeNodeKeys, encodeNodeKeys, generateNodeKeys, type NodeKeys } from '../core/node-keys.js';
import { KeyFileError, readPrivateFile, writePrivateFile } from './private-file.js';

export async function writeKeyFile(file: string, keys: NodeKeys): Promise<void> {
  await writePrivateFile(file, encodeNodeKeys(keys));
}

export async function readKeyFile(file: string): Promise<NodeKeys> {
  const bytes = await readPrivateFile(file);
  try {
    return decodeNodeKeys(new Uint8Array(bytes));
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
