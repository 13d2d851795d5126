// `--tor-authorities FILE` (services/client/tor-authorities.ts): a file of
// torrc DirAuthority lines (the C tor testnet's, test/vectors/ctor/
// authorities.torrc) read for the client, onion service and `shallot
// load`; every bad file — missing, a directory, oversized, empty, binary,
// a malformed line — is one TorAuthoritiesError naming the file (and the
// line), and the commander option turns it into a usage error.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Command, CommanderError } from 'commander';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  networkChoice,
  readTorAuthorities,
  TorAuthoritiesError,
  torAuthoritiesOption,
} from '../../../services/client/tor-authorities.js';
import { MAX_DIR_AUTHORITY_FILE } from '../../../services/core/ctor/dir-authority.js';

const VECTOR = new URL('../../vectors/ctor/authorities.torrc', import.meta.url).pathname;
let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'shallot-tor-auth-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function file(name: string, content: string | Uint8Array): Promise<string> {
  const p = path.join(dir, name);
  await writeFile(p, content);
  return p;
}

function refusal(f: string): TorAuthoritiesError {
  try {
    readTorAuthorities(f);
  } catch (e) {
    expect(e).toBeInstanceOf(TorAuthoritiesError);
    return e as TorAuthoritiesError;
  }
  throw new Error(`${f} was accepted`);
}

describe('--tor-authorities FILE', () => {
  it("reads the C tor testnet's DirAuthority lines", () => {
    const a = readTorAuthorities(VECTOR);
    expect(a.map((x) => `${x.nickname} ${x.address}:${x.dirPort}`)).toEqual([
      'auth0 127.0.0.1:47200',
      'auth1 127.0.0.1:47201',
      'auth2 127.0.0.1:47202',
    ]);
  });

  it('refuses a missing file, naming it and the reason', () => {
    const e = refusal(path.join(dir, 'nope.torrc'));
    expect(e.code).toBe('ERR_TOR_AUTHORITIES');
    expect(e.message).toMatch(/nope\.torrc: cannot read \(ENOENT\)/);
  });

  it('refuses a directory', () => {
    expect(refusal(dir).message).toMatch(/not a regular file/);
  });

  it('refuses an oversized file without parsing it', async () => {
    const f = await file('big.torrc', '#'.repeat(MAX_DIR_AUTHORITY_FILE + 1));
    expect(refusal(f).message).toMatch(/over \d+ bytes/);
  });

  it('refuses an empty file and a torrc without DirAuthority lines', async () => {
    expect(refusal(await file('empty.torrc', '')).message).toMatch(/no DirAuthority lines/);
    expect(refusal(await file('other.torrc', 'SocksPort 9050\nORPort 9001\n')).message).toMatch(
      /no DirAuthority lines/,
    );
  });

  it('refuses binary garbage', async () => {
    const bytes = new Uint8Array(4096);
    for (let i = 0; i < bytes.length; i++) bytes[i] = (i * 131 + 7) & 0xff;
    expect(refusal(await file('garbage.bin', bytes)).code).toBe('ERR_TOR_AUTHORITIES');
  });

  it('names the line of a malformed DirAuthority', async () => {
    const good = 'DirAuthority a v3ident=2D22AE2196316477ACB9DF5156208DEC9409680B 127.0.0.1:80 ';
    const fp = '7F7C33BE8383E2F5167ABB94AB7D7DC9D59421B7';
    const f = await file('bad.torrc', `# comment\n${good}${fp}\n${good}${fp.slice(4)}\n`);
    const e = refusal(f);
    expect(e.message).toMatch(/bad\.torrc:3: DirAuthority: fingerprint is not 40 hex digits/);
    expect(e.context.line).toBe(3);
  });

  it('is a usage error on the command line, before anything starts', async () => {
    const f = await file('trunc.torrc', 'DirAuthority a orport=1 v3ident=2D22');
    const run = (args: string[]) => {
      const p = new Command()
        .exitOverride()
        .configureOutput({ writeErr: () => {}, writeOut: () => {} })
        .addOption(torAuthoritiesOption());
      p.parse(['node', 'x', ...args]);
      return p.opts<{ torAuthorities?: unknown[] }>();
    };
    expect(run(['--tor-authorities', VECTOR]).torAuthorities).toHaveLength(3);
    const err = (() => {
      try {
        run(['--tor-authorities', f]);
      } catch (e) {
        return e;
      }
    })();
    expect(err).toBeInstanceOf(CommanderError);
    expect((err as CommanderError).code).toBe('commander.invalidArgument');
    expect((err as CommanderError).message).toMatch(/trunc\.torrc:1: DirAuthority: v3ident is not 40 hex/);
  });
});

describe('networkChoice', () => {
  const program = () =>
    new Command().exitOverride().configureOutput({ writeErr: () => {}, writeOut: () => {} });
  const shallot = [{ identity: 'aa'.repeat(32), url: 'http://127.0.0.1:7000' }];
  const ctor = readTorAuthorities(VECTOR);

  it('is the Shallot network for --authorities, the C tor network for --tor-authorities', () => {
    expect(networkChoice(program(), { authorities: shallot })).toEqual({ authorities: shallot });
    expect(networkChoice(program(), { torAuthorities: ctor })).toEqual({ torAuthorities: ctor });
  });

  it('is a usage error with both or neither', () => {
    expect(() => networkChoice(program(), { authorities: shallot, torAuthorities: ctor })).toThrow(
      /exclude each other/,
    );
    expect(() => networkChoice(program(), {})).toThrow(/--tor-authorities FILE is required/);
    expect(() => networkChoice(program(), {})).toThrow(CommanderError);
  });
});
