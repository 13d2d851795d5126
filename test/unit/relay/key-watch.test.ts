// services/relay/key-watch.ts and RelayNode.reloadKeys: a running relay
// takes onion keys rotated in a watched file (tor-spec §5.1.4), refuses a
// file it cannot trust or use without dropping its keys, and keeps
// answering CREATE2 for the previous key.
import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  encodeNodeKeys,
  generateNodeKeys,
  MAX_KEY_FILE_BYTES,
  type NodeKeys,
  rotateOnionKey,
} from '../../../services/core/node-keys.js';
import { ChannelPool } from '../../../services/net/channel-pool.js';
import { OriginCircuit } from '../../../services/net/origin-circuit.js';
import { KeyFileWatcher, KeyReloadError, KeyWatchError } from '../../../services/relay/key-watch.js';
import { RelayNode } from '../../../services/relay/node.js';
import { readKeyFile, writeKeyFile } from '../../../services/runtime/key-store.js';
import { silentLogger } from '../../../services/runtime/log.js';
import { LOCAL_EXIT_POLICY } from '../../helpers/relays.js';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'shallot-keywatch-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** A watcher over `file` that records what it hands out; polls only when the test says. */
function watch(file: string) {
  const got: NodeKeys[] = [];
  const errors: KeyWatchError[] = [];
  const w = new KeyFileWatcher(
    file,
    { keys: (k) => void got.push(k), error: (e) => void errors.push(e) },
    3600_000,
  );
  return { w, got, errors };
}

async function put(file: string, bytes: Uint8Array | string, mode = 0o600): Promise<void> {
  await writeFile(file, bytes, { mode });
  await chmod(file, mode);
}

describe('KeyFileWatcher', () => {
  it('hands out each new content once, and nothing while it is unchanged', async () => {
    const file = path.join(dir, 'a.json');
    const k1 = generateNodeKeys();
    await put(file, encodeNodeKeys(k1));
    const { w, got, errors } = watch(file);
    await w.check();
    await w.check();
    expect(got).toHaveLength(1);
    expect(got[0]!.onionKeys[0]!.public).toEqual(k1.onionKeys[0]!.public);
    const k2 = rotateOnionKey(k1, 60_000);
    await put(file, encodeNodeKeys(k2));
    await w.check();
    expect(got).toHaveLength(2);
    expect(got[1]!.onionKeys.map((k) => k.public)).toEqual(k2.onionKeys.map((k) => k.public));
    expect(errors).toEqual([]);
    await w.stop();
  });

  it("takes a kubelet Secret file (0440, the pod's group) and refuses one others can read", async () => {
    const file = path.join(dir, 'b.json');
    await put(file, encodeNodeKeys(generateNodeKeys()), 0o440);
    const ok = watch(file);
    await ok.w.check();
    expect(ok.got).toHaveLength(1);
    await put(path.join(dir, 'c.json'), encodeNodeKeys(generateNodeKeys()), 0o644);
    const open = watch(path.join(dir, 'c.json'));
    await open.w.check();
    expect(open.got).toEqual([]);
    expect(open.errors[0]).toBeInstanceOf(KeyWatchError);
    expect(open.errors[0]!.code).toBe('ERR_KEY_WATCH');
    expect(open.errors[0]!.message).toMatch(/permissions 644/);
  });

  it('reports a missing, malformed, truncated or oversized file (once until the problem changes), hands out nothing, then takes a good one', async () => {
    const file = path.join(dir, 'd.json');
    const { w, got, errors } = watch(file);
    await w.check();
    await w.check();
    expect(errors).toHaveLength(1);
    expect(errors[0]!.message).toMatch(/ENOENT/);
    const good = encodeNodeKeys(generateNodeKeys());
    const bad: [Uint8Array | string, RegExp][] = [
      ['not json', /not JSON/],
      ['x'.repeat(MAX_KEY_FILE_BYTES + 1), /too large/],
      [good.subarray(0, good.length >> 1), /not JSON/],
      ['{"version":1,"identitySeed":"AAAA","identityCreatedAt":0,"onionKeys":[]}', /32 bytes/],
      ['{"version":2}', /unsupported version/],
      ['', /not JSON/],
    ];
    for (const [content, why] of bad) {
      await put(file, content);
      await w.check();
      await w.check();
      expect(errors.at(-1)!.message).toMatch(why);
    }
    expect(got).toEqual([]);
    expect(errors).toHaveLength(1 + bad.length);
    for (const e of errors) expect(e).toBeInstanceOf(KeyWatchError);
    await put(file, good);
    await w.check();
    expect(got).toHaveLength(1);
  });

  it('reports keys the consumer refuses as a typed error, once', async () => {
    const file = path.join(dir, 'e.json');
    await put(file, encodeNodeKeys(generateNodeKeys()));
    const errors: KeyWatchError[] = [];
    const w = new KeyFileWatcher(
      file,
      {
        keys: () => {
          throw new KeyReloadError('another identity');
        },
        error: (e) => void errors.push(e),
      },
      3600_000,
    );
    await w.check();
    await w.check();
    expect(errors).toHaveLength(1);
    expect(errors[0]).toBeInstanceOf(KeyWatchError);
    expect(errors[0]!.message).toMatch(/another identity/);
  });
});

describe('RelayNode.reloadKeys', () => {
  let node: RelayNode;
  let keys: NodeKeys;
  const keyFile = () => path.join(dir, 'relay', 'keys.json');
  const registry = new Registry();
  const pool = new ChannelPool({ keys: null, tls: true });

  beforeAll(async () => {
    keys = generateNodeKeys();
    await writeKeyFile(keyFile(), keys);
    // No authorities: nothing to publish to, no consensus to check EXTEND2 against.
    node = new RelayNode(
      { logger: silentLogger, registry },
      {
        nickname: 'watched',
        host: '127.0.0.1',
        port: 0,
        tls: true,
        keys,
        exitPolicy: LOCAL_EXIT_POLICY,
        authorities: [],
        keyFile: keyFile(),
        keyWatch: { file: path.join(dir, 'secret.json'), intervalMs: 3600_000 },
      },
    );
    await node.start();
  });
  afterAll(async () => {
    pool.closeAll();
    await node.stop();
  });

  const target = (ntorKey: Uint8Array) => ({
    nickname: 'watched',
    identity: node.relay.identity,
    ntorKey,
    address: '127.0.0.1',
    port: node.relay.port,
  });
  const create = async (ntorKey: Uint8Array) => {
    const circ = await OriginCircuit.create(await pool.get(target(ntorKey)), target(ntorKey), {
      handshake: 'ntor',
    });
    circ.destroy();
  };

  it('takes a rotated key, keeps the previous one answering CREATE2, persists both and counts the rotation', async () => {
    const old = keys.onionKeys[0]!.public;
    const rotated = rotateOnionKey(keys, 3600_000);
    expect(await node.reloadKeys(rotated)).toBe(true);
    expect(node.relay.ntorKey).toEqual(rotated.onionKeys[0]!.public);
    expect(node.publisher.descriptor().ntorOnionKey).toEqual(rotated.onionKeys[0]!.public);
    await create(rotated.onionKeys[0]!.public);
    await create(old);
    // The watched file is not the key file: the key file follows, so a container restart keeps the rotation.
    expect((await readKeyFile(keyFile())).onionKeys.map((k) => k.public)).toEqual([
      rotated.onionKeys[0]!.public,
      old,
    ]);
    expect(await registry.metrics()).toMatch(
      /shallot_relay_key_rotations_total\{relay="watched",key="onion"\} 1/,
    );
    expect(await node.reloadKeys(rotated)).toBe(false);

    // The writer drops the old key after the grace period: CREATE2 with it fails from then on.
    const pruned = { ...rotated, onionKeys: rotated.onionKeys.slice(0, 1) };
    expect(await node.reloadKeys(pruned)).toBe(true);
    await expect(create(old)).rejects.toThrow();
    await create(rotated.onionKeys[0]!.public);
    expect(await registry.metrics()).toMatch(
      /shallot_relay_key_rotations_total\{relay="watched",key="onion"\} 1/,
    );
    keys = pruned;
  });

  it('refuses another identity and keeps its keys', async () => {
    const before = node.relay.ntorKey;
    await expect(node.reloadKeys(generateNodeKeys())).rejects.toBeInstanceOf(KeyReloadError);
    expect(node.relay.ntorKey).toEqual(before);
    expect(node.relay.identity).toEqual(keys.identity);
  });
});
