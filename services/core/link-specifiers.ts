/**
 * Link specifiers (tor-spec §5.1.2): how EXTEND2, INTRODUCE1's plaintext and
 * onion-service descriptors name the next relay.
 *
 * `NSPEC[1] {LSTYPE[1] LSLEN[1] LSPEC}*`. Unknown types are kept verbatim
 * so they can be passed on unchanged (tor-spec says to ignore them, and
 * rend-spec-v3 says to forward the list as given).
 *
 * Deviation: the legacy identity (type 02) is the first 20 bytes of
 * SHA-256 of the Ed25519 identity, since Shallot has no RSA keys.
 */
import { ByteReader, ByteWriter } from './bytes.js';
import { InvalidError } from './errors.js';

export type LinkSpecifier =
  | { type: 'ipv4'; addr: string; port: number }
  | { type: 'ipv6'; addr: string; port: number }
  | { type: 'legacy-id'; id: Uint8Array }
  | { type: 'ed25519'; id: Uint8Array }
  | { type: 'unknown'; lstype: number; data: Uint8Array };

export const LSTYPE = { ipv4: 0, ipv6: 1, 'legacy-id': 2, ed25519: 3 } as const;

function encodeIpv4(addr: string): Uint8Array {
  const parts = addr.split('.');
  if (parts.length !== 4) throw new InvalidError('ipv4 address', 'not dotted quad');
  return new Uint8Array(
    parts.map((p) => {
      const n = Number(p);
      if (!/^\d{1,3}$/.test(p) || n > 255) throw new InvalidError('ipv4 address', 'octet out of range');
      return n;
    }),
  );
}

function encodeIpv6(addr: string): Uint8Array {
  const [head = '', tail, extra] = addr.split('::');
  if (extra !== undefined) throw new InvalidError('ipv6 address', 'more than one ::');
  const groups = (s: string) => (s === '' ? [] : s.split(':'));
  const h = groups(head);
  const t = tail === undefined ? [] : groups(tail);
  const fill = tail === undefined ? 0 : 8 - h.length - t.length;
  const all = [...h, ...Array<string>(Math.max(fill, 0)).fill('0'), ...t];
  if (all.length !== 8 || fill < 0) throw new InvalidError('ipv6 address', 'wrong number of groups');
  const w = new ByteWriter(16);
  for (const g of all) {
    if (!/^[0-9a-fA-F]{1,4}$/.test(g)) throw new InvalidError('ipv6 address', 'bad group');
    w.u16(Number.parseInt(g, 16));
  }
  return w.finish();
}

function decodeIpv6(b: Uint8Array): string {
  const r = new ByteReader(b);
  const groups: string[] = [];
  for (let i = 0; i < 8; i++) groups.push(r.u16().toString(16));
  return groups.join(':');
}

export function encodeLinkSpecifier(w: ByteWriter, s: LinkSpecifier): void {
  switch (s.type) {
    case 'ipv4':
      w.u8(LSTYPE.ipv4).u8(6).bytes(encodeIpv4(s.addr)).u16(s.port);
      return;
    case 'ipv6':
      w.u8(LSTYPE.ipv6).u8(18).bytes(encodeIpv6(s.addr)).u16(s.port);
      return;
    case 'legacy-id':
      if (s.id.length !== 20) throw new InvalidError('legacy-id link specifier', 'must be 20 bytes');
      w.u8(LSTYPE['legacy-id']).u8(20).bytes(s.id);
      return;
    case 'ed25519':
      if (s.id.length !== 32) throw new InvalidError('ed25519 link specifier', 'must be 32 bytes');
      w.u8(LSTYPE.ed25519).u8(32).bytes(s.id);
      return;
    case 'unknown':
      if (s.data.length > 255) throw new InvalidError('link specifier', 'longer than 255 bytes');
      w.u8(s.lstype).u8(s.data.length).bytes(s.data);
      return;
    default: {
      const never: never = s;
      throw new InvalidError('link specifier', `unknown variant ${String(never)}`);
    }
  }
}

const FIXED_LEN: Record<number, number> = { 0: 6, 1: 18, 2: 20, 3: 32 };

export function decodeLinkSpecifier(r: ByteReader): LinkSpecifier {
  const lstype = r.u8();
  const len = r.u8();
  const body = r.take(len);
  const want = FIXED_LEN[lstype];
  if (want !== undefined && want !== len) {
    throw new InvalidError('link specifier', `type ${lstype} has length ${len}, want ${want}`, {
      lstype,
      len,
    });
  }
  const br = new ByteReader(body, 'link specifier');
  switch (lstype) {
    case 0: {
      const a = br.take(4);
      return { type: 'ipv4', addr: Array.from(a).join('.'), port: br.u16() };
    }
    case 1:
      return { type: 'ipv6', addr: decodeIpv6(br.take(16)), port: br.u16() };
    case 2:
      return { type: 'legacy-id', id: body.slice() };
    case 3:
      return { type: 'ed25519', id: body.slice() };
    default:
      return { type: 'unknown', lstype, data: body.slice() };
  }
}

/** Writes `NSPEC[1]` and each specifier, in the order given. */
export function encodeLinkSpecifiers(w: ByteWriter, specs: readonly LinkSpecifier[]): void {
  if (specs.length > 255) throw new InvalidError('link specifiers', 'more than 255');
  w.u8(specs.length);
  for (const s of specs) encodeLinkSpecifier(w, s);
}

/** Reads `NSPEC[1]` specifiers; rejects a list naming two legacy or two Ed25519 identities. */
export function decodeLinkSpecifiers(r: ByteReader): LinkSpecifier[] {
  const n = r.u8();
  const out: LinkSpecifier[] = [];
  for (let i = 0; i < n; i++) out.push(decodeLinkSpecifier(r));
  for (const t of ['legacy-id', 'ed25519'] as const) {
    if (out.filter((s) => s.type === t).length > 1) {
      throw new InvalidError('link specifiers', `more than one ${t}`);
    }
  }
  return out;
}

/** The specifiers for a relay, in the order tor-spec §5.1.2 asks: 00, 02, 03, 01. */
export function relayLinkSpecifiers(relay: {
  address: string;
  port: number;
  legacyId: Uint8Array;
  ed25519Id: Uint8Array;
}): LinkSpecifier[] {
  const addr: LinkSpecifier = relay.address.includes(':')
    ? { type: 'ipv6', addr: relay.address, port: relay.port }
    : { type: 'ipv4', addr: relay.address, port: relay.port };
  const out: LinkSpecifier[] = [];
  if (addr.type === 'ipv4') out.push(addr);
  out.push({ type: 'legacy-id', id: relay.legacyId }, { type: 'ed25519', id: relay.ed25519Id });
  if (addr.type === 'ipv6') out.push(addr);
  return out;
}

/** What a link-specifier list says about a relay: the first specifier of each kind. */
export interface LinkTarget {
  ed25519?: Uint8Array;
  legacyId?: Uint8Array;
  ipv4?: { addr: string; port: number };
  ipv6?: { addr: string; port: number };
}

/**
 * The relay a list names, for the places that act on one (EXTEND2 at a
 * relay, an intro point in a descriptor, a rendezvous point in
 * INTRODUCE2, an intro point in a peer instance's record). The first
 * address of each family wins and unknown types are skipped, as in C tor's
 * hs_get_extend_info_from_lspecs; two identities of one kind never get
 * here (decodeLinkSpecifiers refuses them).
 */
export function linkTarget(specs: readonly LinkSpecifier[]): LinkTarget {
  const t: LinkTarget = {};
  for (const s of specs) {
    switch (s.type) {
      case 'ed25519':
        t.ed25519 ??= s.id;
        break;
      case 'legacy-id':
        t.legacyId ??= s.id;
        break;
      case 'ipv4':
        t.ipv4 ??= { addr: s.addr, port: s.port };
        break;
      case 'ipv6':
        t.ipv6 ??= { addr: s.addr, port: s.port };
        break;
      case 'unknown':
        break;
      default: {
        const never: never = s;
        throw new InvalidError('link specifier', `unknown variant ${String(never)}`);
      }
    }
  }
  return t;
}
