/**
 * Client-authorization key directories, laid out as Tor lays them out:
 * a service's `authorized_clients/` holds one `<name>.auth` per client
 * (public keys), a client's ClientOnionAuthDir one `<name>.auth_private` per
 * service (private keys, so refused if group or others can read them).
 * Line formats: services/core/client-auth.ts. Other files are ignored, as
 * Tor ignores them.
 */
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { toHex } from '../core/bytes.js';
import {
  type ClientAuthKeyPair,
  type ClientAuthPrivate,
  formatAuthorizedClient,
  formatClientAuthPrivate,
  parseAuthorizedClient,
  parseClientAuthPrivate,
} from '../core/client-auth.js';
import { KeyFileError, readPrivateFile, writePrivateFile } from './private-file.js';

/** Key files are one short line; anything bigger is not one. */
const MAX_FILE_BYTES = 4096;

/** A public key file (`.auth`): anyone may read it, but it is one short line. */
async function readKeyLine(file: string): Promise<string> {
  const st = await fs.stat(file);
  if (st.size > MAX_FILE_BYTES) throw new KeyFileError(file, `larger than ${MAX_FILE_BYTES} bytes`);
  return fs.readFile(file, 'utf8');
}

async function filesEndingIn(dir: string, suffix: string): Promise<string[]> {
  let names: string[];
  try {
    names = await fs.readdir(dir);
  } catch (e) {
    throw new KeyFileError(dir, `cannot read the directory: ${(e as Error).message}`);
  }
  return names
    .filter((n) => n.endsWith(suffix))
    .sort()
    .map((n) => path.join(dir, n));
}

/** Every `*.auth` public key in a service's authorized-clients directory. */
export async function readAuthorizedClients(dir: string): Promise<Uint8Array[]> {
  const keys: Uint8Array[] = [];
  for (const file of await filesEndingIn(dir, '.auth')) {
    try {
      keys.push(parseAuthorizedClient(await readKeyLine(file)));
    } catch (e) {
      throw e instanceof KeyFileError ? e : new KeyFileError(file, (e as Error).message);
    }
  }
  return keys;
}

/**
 * Every `*.auth_private` key in a client's onion-auth directory (each file
 * mode 0600 or stricter; at most one per onion service, or which one is
 * used would depend on file names).
 */
export async function readClientAuthKeys(dir: string): Promise<ClientAuthPrivate[]> {
  const keys: ClientAuthPrivate[] = [];
  const seen = new Map<string, string>();
  for (const file of await filesEndingIn(dir, '.auth_private')) {
    const text = (await readPrivateFile(file, { maxBytes: MAX_FILE_BYTES })).toString('utf8');
    let key: ClientAuthPrivate;
    try {
      key = parseClientAuthPrivate(text);
    } catch (e) {
      throw e instanceof KeyFileError ? e : new KeyFileError(file, (e as Error).message);
    }
    const service = toHex(key.identity);
    const other = seen.get(service);
    if (other) throw new KeyFileError(file, `another key for the onion service that ${other} is for`);
    seen.set(service, path.basename(file));
    keys.push(key);
  }
  return keys;
}

/**
 * Writes one client's pair of files: `<serviceDir>/<name>.auth` (public, for
 * the service's authorized-clients directory) and `<clientDir>/<name>.auth_private`
 * (0600, for the client). Refuses to overwrite either.
 */
export async function writeClientAuthFiles(
  o: { serviceDir: string; clientDir: string; name: string },
  serviceIdentity: Uint8Array,
  key: ClientAuthKeyPair,
): Promise<{ authFile: string; privateFile: string }> {
  if (!/^[A-Za-z0-9_-]{1,64}$/.test(o.name)) {
    throw new KeyFileError(o.name, 'client name must be 1-64 letters, digits, "-" or "_"');
  }
  const authFile = path.join(o.serviceDir, `${o.name}.auth`);
  const privateFile = path.join(o.clientDir, `${o.name}.auth_private`);
  for (const f of [authFile, privateFile]) {
    const exists = await fs.stat(f).then(
      () => true,
      () => false,
    );
    if (exists) throw new KeyFileError(f, 'already exists; not overwriting a key');
  }
  await fs.mkdir(o.serviceDir, { recursive: true, mode: 0o700 });
  if (
    !(await writePrivateFile(privateFile, `${formatClientAuthPrivate(serviceIdentity, key.secret)}\n`, {
      exclusive: true,
    }))
  ) {
    throw new KeyFileError(privateFile, 'already exists; not overwriting a key');
  }
  await fs.writeFile(authFile, `${formatAuthorizedClient(key.public)}\n`, { mode: 0o644, flag: 'wx' });
  return { authFile, privateFile };
}
