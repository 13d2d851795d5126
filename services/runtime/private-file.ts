/**
 * Private files on disk: the one way every process reads and writes a file
 * holding a secret (node keys, the onion service's identity seed, client
 * authorization keys, guard state, instance records).
 *
 * Overview: a read is refused unless only the owner may read the file (mode
 * 0600 or stricter, as C tor's check_private_dir/tor_open_cloexec with
 * 0600 insist for its keys directory), and optionally when it is larger
 * than a bound; a write goes to a temporary file (mode 0600, in a directory
 * created 0700) and is renamed into place, so a crash never leaves half a
 * key, or, with `exclusive`, hard-linked into place, which fails when the
 * file exists, so that processes created together agree on one file.
 *
 * Not in this module: the formats (core/node-keys.ts, core/onion-identity-file.ts,
 * core/client-auth.ts); the relay's key watcher (relay/key-watch.ts), which
 * allows group read for kubelet's Secret volumes.
 */
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { toHex } from '../core/bytes.js';
import { randomBytes } from '../core/crypto.js';
import { ShallotError } from '../core/errors.js';

export class KeyFileError extends ShallotError {
  constructor(file: string, message: string) {
    super('ERR_KEY_FILE', `${file}: ${message}`, { file });
  }
}

export interface ReadPrivateOptions {
  /** Refuse a file larger than this (a key file is small; a huge one is not one). */
  maxBytes?: number;
  /** The error to throw for a refused file; default KeyFileError. */
  error?: (file: string, message: string) => Error;
}

/**
 * Reads a file only its owner may read. A missing file rejects with the
 * fs error (code ENOENT), so callers can create it.
 */
export async function readPrivateFile(file: string, opts: ReadPrivateOptions = {}): Promise<Buffer> {
  const refuse = opts.error ?? ((f: string, m: string) => new KeyFileError(f, m));
  const st = await fs.stat(file);
  if ((st.mode & 0o077) !== 0) {
    throw refuse(file, `permissions ${(st.mode & 0o777).toString(8)} are too open; want 600`);
  }
  if (opts.maxBytes !== undefined && st.size > opts.maxBytes) {
    throw refuse(file, `larger than ${opts.maxBytes} bytes`);
  }
  return fs.readFile(file);
}

/**
 * Writes `data` to `file` with mode 0600 through a temporary file. Returns
 * false, writing nothing, when `exclusive` is set and the file exists.
 */
export async function writePrivateFile(
  file: string,
  data: string | Uint8Array,
  opts: { exclusive?: boolean } = {},
): Promise<boolean> {
  await fs.mkdir(path.dirname(file), { recursive: true, mode: 0o700 });
  // Unique per process and call: two writers in one process must not share a temporary file.
  const tmp = `${file}.tmp-${process.pid}-${toHex(randomBytes(4))}`;
  await fs.writeFile(tmp, data, { mode: 0o600 });
  try {
    if (!opts.exclusive) {
      await fs.rename(tmp, file);
      return true;
    }
    try {
      await fs.link(tmp, file);
      return true;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'EEXIST') return false;
      throw e;
    }
  } finally {
    await fs.rm(tmp, { force: true });
  }
}
