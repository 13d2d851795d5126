// Client-authorization key directories on disk (Tor's layout), the keys
// `shallot up --client-auth` keeps, and the `shallot client-auth` command
// that writes a pair of them.
import { chmod, mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { generateClientAuthKey, parseClientAuthPrivate } from '../../../services/core/client-auth.js';
import { ed25519Generate, randomBytes } from '../../../services/core/crypto.js';
import { encodeOnionAddress } from '../../../services/core/onion-address.js';
import {
  readAuthorizedClients,
  readClientAuthKeys,
  writeClientAuthFiles,
} from '../../../services/runtime/client-auth-files.js';
import { KeyFileError } from '../../../services/runtime/private-file.js';
import { prepareClientAuth } from '../../../services/testnet/client-auth.js';
import { program } from '../../../services/testnet/main.js';

let dir = '';
const service = ed25519Generate(randomBytes).public;

beforeEach(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'shallot-clientauth-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

const dirs = () => ({
  serviceDir: path.join(dir, 'authorized_clients'),
  clientDir: path.join(dir, 'onion-auth'),
});

describe('client-auth key directories', () => {
  it('a written pair reads back: the service sees the public keys, the client its private keys', async () => {
    const alice = generateClientAuthKey(randomBytes);
    const bob = generateClientAuthKey(randomBytes);
    const files = await writeClientAuthFiles({ ...dirs(), name: 'alice' }, service, alice);
    const other = ed25519Generate(randomBytes).public;
    await writeClientAuthFiles({ ...dirs(), name: 'bob' }, other, bob);
    expect(path.basename(files.authFile)).toBe('alice.auth');
    expect((await stat(files.privateFile)).mode & 0o777).toBe(0o600);
    expect(await readAuthorizedClients(dirs().serviceDir)).toEqual([alice.public, bob.public]);
    expect(await readClientAuthKeys(dirs().clientDir)).toEqual([
      { identity: service, secret: alice.secret },
      { identity: other, secret: bob.secret },
    ]);
  });

  it('ignores files without the suffix, as Tor does', async () => {
    await writeClientAuthFiles({ ...dirs(), name: 'alice' }, service, generateClientAuthKey(randomBytes));
    await writeFile(path.join(dirs().serviceDir, 'README'), 'not a key');
    await writeFile(path.join(dirs().serviceDir, 'old.auth.bak'), 'not a key');
    expect(await readAuthorizedClients(dirs().serviceDir)).toHaveLength(1);
  });

  it('names the file of a malformed or oversized key, and refuses a readable private key', async () => {
    const { serviceDir, clientDir } = dirs();
    await mkdir(serviceDir, { recursive: true });
    await writeFile(path.join(serviceDir, 'eve.auth'), 'descriptor:x25519:NOTBASE32!');
    await expect(readAuthorizedClients(serviceDir)).rejects.toThrow(/eve\.auth: .*base32/);
    await writeFile(path.join(serviceDir, 'eve.auth'), 'x'.repeat(10_000));
    await expect(readAuthorizedClients(serviceDir)).rejects.toThrow(/eve\.auth: larger than/);
    const files = await writeClientAuthFiles(
      { ...dirs(), name: 'alice' },
      service,
      generateClientAuthKey(randomBytes),
    );
    await chmod(files.privateFile, 0o644);
    await expect(readClientAuthKeys(clientDir)).rejects.toThrow(/too open/);
    await expect(readClientAuthKeys(path.join(dir, 'missing'))).rejects.toThrow(KeyFileError);
  });

  it('never overwrites a key, and wants a plain client name', async () => {
    const key = generateClientAuthKey(randomBytes);
    await writeClientAuthFiles({ ...dirs(), name: 'alice' }, service, key);
    await expect(writeClientAuthFiles({ ...dirs(), name: 'alice' }, service, key)).rejects.toThrow(
      /already exists/,
    );
    await expect(writeClientAuthFiles({ ...dirs(), name: '../alice' }, service, key)).rejects.toThrow(
      KeyFileError,
    );
  });

  it('refuses two private keys for one onion service (which one wins would depend on file names)', async () => {
    await writeClientAuthFiles({ ...dirs(), name: 'a' }, service, generateClientAuthKey(randomBytes));
    await writeClientAuthFiles({ ...dirs(), name: 'b' }, service, generateClientAuthKey(randomBytes));
    await expect(readClientAuthKeys(dirs().clientDir)).rejects.toThrow(
      /b\.auth_private: another key .* a\.auth_private/,
    );
  });

  it('`shallot up --client-auth` keys: made once, reused, and refused when they no longer match the service', async () => {
    const first = await prepareClientAuth(dir, 2);
    expect(first.serviceDirs).toEqual([0, 1].map((i) => path.join(dir, `onion${i}`, 'authorized_clients')));
    const keys = await readClientAuthKeys(first.clientDir);
    expect(keys).toHaveLength(2);
    await prepareClientAuth(dir, 2);
    expect(await readClientAuthKeys(first.clientDir)).toEqual(keys);
    // A new identity for onion1: its old client key names the old address.
    await rm(path.join(dir, 'onion1', 'identity.key'));
    await expect(prepareClientAuth(dir, 2)).rejects.toThrow(/another onion address.*delete/);
    // Half a pair.
    await rm(path.join(dir, 'onion1'), { recursive: true });
    await expect(prepareClientAuth(dir, 2)).rejects.toThrow(/only one of/);
  });

  it('`shallot client-auth <address>` writes the pair for that service', async () => {
    const { serviceDir, clientDir } = dirs();
    const address = encodeOnionAddress(service);
    await program().parseAsync(
      ['client-auth', address, '--name', 'carol', '--service-dir', serviceDir, '--client-dir', clientDir],
      { from: 'user' },
    );
    const secret = parseClientAuthPrivate(await readFile(path.join(clientDir, 'carol.auth_private'), 'utf8'));
    expect(secret.identity).toEqual(service);
    expect(await readAuthorizedClients(serviceDir)).toHaveLength(1);
    await expect(
      program().parseAsync(['client-auth', 'nope.onion', '--service-dir', serviceDir], { from: 'user' }),
    ).rejects.toThrow(/nope\.onion/);
  });
});
