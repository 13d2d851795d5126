/**
 * Sharing introduction points between instances of one onion service, so
 * they split the load the way Onionbalance does (each instance answers the
 * INTRODUCE2 cells of its own intro points; the published descriptor lists
 * every instance's intro points).
 *
 * Scheme (a simplification of Onionbalance, which runs a separate
 * front-end with the master key): every instance holds the master identity
 * key and publishes the descriptor itself. Each instance shares a record of
 * its established intro points with a heartbeat time, renewed every few
 * seconds; a publisher merges its own intro points with those of every
 * other instance whose record is fresh (heartbeat within `staleMs`). Since
 * all instances merge the same records, they publish the same set, and the
 * HSDir keeps whichever upload has the highest revision-counter.
 *
 * Revision counters (rend-spec-v3 §2.4: an HSDir keeps an upload only if
 * its revision-counter is above the stored one, as C tor's hs_cache does):
 * every instance counts milliseconds since the epoch (publisher.ts), so the
 * latest upload wins. Instances list the same merged set, so it does not
 * matter whose wins: an upload that lost a race with a peer's is refused
 * and retried 5 s later with a newer counter, and a change of one
 * instance's intro points reaches the others within a heartbeat, each of
 * which then uploads it too. Nothing to agree on beyond the clock.
 *
 * Two ways to share records (`InstanceExchange`): a shared directory,
 * `<dataDir>/instances/<instance>.json` (here: processes on one machine,
 * `shallot up`), or HTTP between hosts with sealed records
 * (instance-peers.ts, instance-record.ts: pods of a Kubernetes Deployment).
 *
 * Limits: at most 20 intro points fit in a descriptor (HS_DESC_MAX_INTRO_POINTS);
 * the own instance's come first, then others' in instance-name order.
 * Files larger than 64 KiB or malformed are ignored.
 */
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { ByteReader, ByteWriter, fromBase64, toBase64 } from '../core/bytes.js';
import type { IntroPointInfo } from '../core/hs-descriptor.js';
import { decodeLinkSpecifiers, encodeLinkSpecifiers } from '../core/link-specifiers.js';
import { writePrivateFile } from '../runtime/private-file.js';

const KIND = 'shallot-onion-instance-v1';
const MAX_FILE = 64 * 1024;
const INSTANCE_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

export function isValidInstanceName(name: string): boolean {
  return INSTANCE_NAME.test(name);
}

export interface InstanceRecord {
  instance: string;
  updatedMs: number;
  introPoints: IntroPointInfo[];
}

interface IntroPointJson {
  linkSpecifiers: string;
  onionKey: string;
  authKey: string;
  encKey: string;
}

export function encodeInstanceRecord(r: InstanceRecord): string {
  const introPoints: IntroPointJson[] = r.introPoints.map((ip) => {
    const w = new ByteWriter(64);
    encodeLinkSpecifiers(w, ip.linkSpecifiers);
    return {
      linkSpecifiers: toBase64(w.finish()),
      onionKey: toBase64(ip.onionKey),
      authKey: toBase64(ip.authKey),
      encKey: toBase64(ip.encKey),
    };
  });
  return `${JSON.stringify({ kind: KIND, instance: r.instance, updatedMs: r.updatedMs, introPoints })}\n`;
}

/** Parses a record; throws on anything malformed (the caller skips such files). */
export function decodeInstanceRecord(text: string): InstanceRecord {
  const d = JSON.parse(text) as {
    kind?: unknown;
    instance?: unknown;
    updatedMs?: unknown;
    introPoints?: unknown;
  };
  if (d.kind !== KIND) throw new Error('not an instance record');
  if (typeof d.instance !== 'string' || !isValidInstanceName(d.instance))
    throw new Error('bad instance name');
  if (typeof d.updatedMs !== 'number' || !Number.isFinite(d.updatedMs)) throw new Error('bad updatedMs');
  if (!Array.isArray(d.introPoints) || d.introPoints.length > 20) throw new Error('bad introPoints');
  const key = (s: unknown): Uint8Array => {
    if (typeof s !== 'string') throw new Error('key is not a string');
    const b = fromBase64(s);
    if (b.length !== 32) throw new Error('key is not 32 bytes');
    return b;
  };
  const introPoints = (d.introPoints as Partial<IntroPointJson>[]).map((ip) => {
    if (typeof ip.linkSpecifiers !== 'string') throw new Error('bad link specifiers');
    const r = new ByteReader(fromBase64(ip.linkSpecifiers), 'link specifiers');
    const linkSpecifiers = decodeLinkSpecifiers(r);
    r.assertExhausted();
    return { linkSpecifiers, onionKey: key(ip.onionKey), authKey: key(ip.authKey), encKey: key(ip.encKey) };
  });
  return { instance: d.instance, updatedMs: d.updatedMs, introPoints };
}

/** How an instance shares its record and learns its peers' records. */
export interface InstanceExchange {
  /** This instance's current record (called at every heartbeat and on each change). */
  publish(r: InstanceRecord): Promise<void>;
  /** Fresh records of the other instances, sorted by instance name. */
  peers(self: string, nowMs: number, staleMs: number): Promise<InstanceRecord[]>;
  /** The instance stops: its record goes away, and any server closes. */
  close(self: string): Promise<void>;
}

/** Instances on one machine meet in `<dataDir>/instances/`. */
export function directoryExchange(dataDir: string): InstanceExchange {
  return {
    publish: (r) => writeInstanceRecord(dataDir, r),
    peers: (self, nowMs, staleMs) => readPeerRecords(dataDir, self, nowMs, staleMs),
    close: (self) => removeInstanceRecord(dataDir, self),
  };
}

export function instancesDir(dataDir: string): string {
  return path.join(dataDir, 'instances');
}

/** Atomically (temp file + rename) writes this instance's record, mode 0600. */
export async function writeInstanceRecord(dataDir: string, r: InstanceRecord): Promise<void> {
  await writePrivateFile(path.join(instancesDir(dataDir), `${r.instance}.json`), encodeInstanceRecord(r));
}

export async function removeInstanceRecord(dataDir: string, instance: string): Promise<void> {
  await fs.rm(path.join(instancesDir(dataDir), `${instance}.json`), { force: true });
}

/** Fresh records of the other instances, sorted by instance name. */
export async function readPeerRecords(
  dataDir: string,
  self: string,
  nowMs: number,
  staleMs: number,
): Promise<InstanceRecord[]> {
  const dir = instancesDir(dataDir);
  let names: string[];
  try {
    names = await fs.readdir(dir);
  } catch {
    return [];
  }
  const out: InstanceRecord[] = [];
  for (const name of names.sort()) {
    if (!name.endsWith('.json') || name === `${self}.json`) continue;
    try {
      const file = path.join(dir, name);
      const st = await fs.stat(file);
      if (!st.isFile() || st.size > MAX_FILE) continue;
      const rec = decodeInstanceRecord(await fs.readFile(file, 'utf8'));
      if (`${rec.instance}.json` !== name || rec.instance === self) continue;
      if (nowMs - rec.updatedMs > staleMs) continue;
      out.push(rec);
    } catch {
      // Torn, foreign or malformed files are skipped; the next poll sees the rewrite.
    }
  }
  return out;
}
