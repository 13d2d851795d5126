/**
 * Picks up onion keys rotated from outside a running relay: polls a key file
 * (core/node-keys.ts format) and hands each new, valid content to the relay,
 * which swaps keys in place (services/relay/node.ts reloadKeys). This is how
 * a relay takes the operator's rotation (the key Secret, mounted without
 * subPath so kubelet updates it in place) or a rewritten --key-file without
 * restarting: C tor rotates its onion key inside the running process too
 * (router.c rotate_onion_key), keeps the previous key answering CREATE2
 * (tor-spec §5.1.4: "onion-key-grace-period-days"), and uploads a new
 * descriptor at once (dir-spec §4.3: a changed key is a reason to publish).
 *
 * Design notes:
 * - Polling, not fs.watch: kubelet replaces a Secret volume's files by
 *   swapping a `..data` symlink, which inotify on the file name misses; a
 *   read of a file under 64 KiB every few seconds costs nothing.
 * - Group read is allowed (kubelet's Secret volumes are 0440 with the pod's
 *   fsGroup, which is the relay's own group); world access is refused, as
 *   runtime/private-file.ts refuses it for the relay's own key file.
 * - A file that is missing, too open, oversized or malformed, or keys the
 *   relay refuses (another identity), are reported once until the problem
 *   changes, and the relay keeps its keys: a half-synced Secret must not take a working relay down.
 *
 * Not in this module: the grace period (the writer keeps replaced keys in
 * the file until it expires: operator/keys.ts, core/node-keys.ts).
 */
import { promises as fs } from 'node:fs';
import { ShallotError } from '../core/errors.js';
import { decodeNodeKeys, MAX_KEY_FILE_BYTES, type NodeKeys } from '../core/node-keys.js';

/** kubelet's own Secret sync takes up to about a minute; 10 s more is small beside it. */
export const DEFAULT_KEY_WATCH_MS = 10_000;

export class KeyWatchError extends ShallotError {
  constructor(file: string, message: string) {
    super('ERR_KEY_WATCH', `${file}: ${message}`, { file });
  }
}

/** Keys the relay cannot take in place (another identity). */
export class KeyReloadError extends ShallotError {
  constructor(message: string) {
    super('ERR_KEY_RELOAD', message);
  }
}

export interface KeyWatchHandlers {
  /** New valid keys; the relay decides whether anything changed. */
  keys: (keys: NodeKeys) => Promise<void> | void;
  /** A file or keys the relay cannot use (reported once until the problem changes). */
  error: (e: KeyWatchError) => void;
}

/** Reads and checks one watched key file. */
export async function readWatchedKeys(file: string): Promise<{ bytes: Uint8Array; keys: NodeKeys }> {
  let st: Awaited<ReturnType<typeof fs.stat>>;
  try {
    st = await fs.stat(file);
  } catch (e) {
    throw new KeyWatchError(file, `cannot stat (${(e as NodeJS.ErrnoException).code ?? 'error'})`);
  }
  if (!st.isFile()) throw new KeyWatchError(file, 'not a regular file');
  if ((st.mode & 0o007) !== 0) {
    throw new KeyWatchError(file, `permissions ${(st.mode & 0o777).toString(8)} let others read it`);
  }
  if (st.size > MAX_KEY_FILE_BYTES) throw new KeyWatchError(file, 'too large');
  const bytes = new Uint8Array(await fs.readFile(file));
  try {
    return { bytes, keys: decodeNodeKeys(bytes) };
  } catch (e) {
    throw new KeyWatchError(file, (e as Error).message);
  }
}

export class KeyFileWatcher {
  private timer: NodeJS.Timeout | null = null;
  private last: Buffer | null = null;
  private lastError = '';
  private running: Promise<void> | null = null;

  constructor(
    readonly file: string,
    private readonly handlers: KeyWatchHandlers,
    private readonly intervalMs = DEFAULT_KEY_WATCH_MS,
  ) {}

  /**
   * Starts polling, with a first check now: the Secret may have changed
   * between the pod's key copy and this start (the relay ignores keys equal
   * to its own).
   */
  start(): void {
    this.timer = setInterval(() => void this.check(), this.intervalMs);
    this.timer.unref();
    void this.check();
  }

  /** One poll; overlapping polls share one run. Exposed for tests. */
  check(): Promise<void> {
    this.running ??= this.poll().finally(() => {
      this.running = null;
    });
    return this.running;
  }

  private async poll(): Promise<void> {
    let got: { bytes: Uint8Array; keys: NodeKeys };
    try {
      got = await readWatchedKeys(this.file);
    } catch (e) {
      const err = e instanceof KeyWatchError ? e : new KeyWatchError(this.file, (e as Error).message);
      if (err.message !== this.lastError) this.handlers.error(err);
      this.lastError = err.message;
      return;
    }
    this.lastError = '';
    if (this.last && Buffer.compare(this.last, got.bytes) === 0) return;
    this.last = Buffer.from(got.bytes);
    try {
      await this.handlers.keys(got.keys);
    } catch (e) {
      // The relay refused these keys (another identity): reported once, like a bad file.
      this.handlers.error(new KeyWatchError(this.file, (e as Error).message));
    }
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    await this.running;
  }
}
