/**
 * `shallot up --client-auth` and `shallot client-auth`: client-authorization
 * keys (rend-spec-v3 §2.5.1.2) in Tor's directory layout.
 *
 * For `up`, each onion service `onion<i>` gets `<data>/onion<i>/authorized_clients/`
 * with one `.auth` file, and the network's client gets the matching
 * `.auth_private` in `<data>/client/onion-auth/`. Keys made once are kept, so
 * a second `up` with the same data dir reuses them, as it reuses identities.
 */
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { equalBytes } from '../core/bytes.js';
import { generateClientAuthKey, parseAuthorizedClient, parseClientAuthPrivate } from '../core/client-auth.js';
import { ed25519PublicFromSeed, randomBytes, x25519PublicFromSecret } from '../core/crypto.js';
import { loadOrCreateIdentity } from '../onion-service/identity.js';
import { writeClientAuthFiles } from '../runtime/client-auth-files.js';

export interface ClientAuthLayout {
  /** The client's onion-auth directory (`.auth_private` files). */
  clientDir: string;
  /** Each onion service's authorized-clients directory, by index. */
  serviceDirs: string[];
}

/** The identity key file `up` gives onion service `i`. */
export const onionIdentityFile = (dataDir: string, i: number) =>
  path.join(dataDir, `onion${i}`, 'identity.key');

/** Where `up --client-auth` keeps the network client's `.auth_private` keys. */
export const clientAuthDir = (dataDir: string) => path.join(dataDir, 'client', 'onion-auth');

/** Creates (or finds) one client key per onion service; creates the services' identity keys if missing. */
export async function prepareClientAuth(dataDir: string, services: number): Promise<ClientAuthLayout> {
  const clientDir = clientAuthDir(dataDir);
  const serviceDirs: string[] = [];
  for (let i = 0; i < services; i++) {
    const serviceDir = path.join(dataDir, `onion${i}`, 'authorized_clients');
    serviceDirs.push(serviceDir);
    const name = `client-onion${i}`;
    const authFile = path.join(serviceDir, `${name}.auth`);
    const privateFile = path.join(clientDir, `${name}.auth_private`);
    const { seed } = await loadOrCreateIdentity(onionIdentityFile(dataDir, i));
    const identity = ed25519PublicFromSeed(seed);
    const fix = `delete ${authFile} and ${privateFile} to make a new pair`;
    if (existsSync(authFile) && existsSync(privateFile)) {
      // Reused keys must still belong together and to this service (its identity may be new).
      const pub = parseAuthorizedClient(await readFile(authFile, 'utf8'));
      const priv = parseClientAuthPrivate(await readFile(privateFile, 'utf8'));
      if (!equalBytes(priv.identity, identity))
        throw new Error(`${privateFile} is for another onion address than onion${i}'s; ${fix}`);
      if (!equalBytes(x25519PublicFromSecret(priv.secret), pub))
        throw new Error(`${authFile} and ${privateFile} are not one key pair; ${fix}`);
      continue;
    }
    if (existsSync(authFile) || existsSync(privateFile))
      throw new Error(`only one of ${authFile} and ${privateFile} exists; ${fix}`);
    await writeClientAuthFiles({ serviceDir, clientDir, name }, identity, generateClientAuthKey(randomBytes));
  }
  return { clientDir, serviceDirs };
}
