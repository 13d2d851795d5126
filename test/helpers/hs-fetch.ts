// An onion service's descriptor fetched and decrypted as a client does
// (rend-spec-v3 §2.2.3 for the responsible HSDirs, §2.5 for the layers),
// computed here from the client's consensus rather than through the client's
// own onion code, so tests can check what the service published.
import type { ShallotClient } from '../../services/client/client.js';
import { toBase64 } from '../../services/core/bytes.js';
import { decryptHsDescriptor, type HsDescriptorContents } from '../../services/core/hs-descriptor.js';
import { blindIdentity, hsSubcredential } from '../../services/core/hs-keys.js';
import { timePeriodParams } from '../../services/core/hs-time.js';
import { fetchHsDirs } from '../../services/core/hsdir-ring.js';
import { decodeOnionAddress } from '../../services/core/onion-address.js';
import { dirRequest } from '../../services/net/dir-http.js';
import { clientFetchPeriod } from '../../services/onion-service/periods.js';

/** The service's current descriptor from the first responsible HSDir that has it; else the last failure. */
export async function fetchDescriptor(client: ShallotClient, onion: string): Promise<HsDescriptorContents> {
  const dir = client.dir;
  if (!dir) throw new Error('no consensus');
  const pub = decodeOnionAddress(onion);
  const p = timePeriodParams({ votingIntervalSec: dir.consensus.votingIntervalSec, testnet: true });
  const { tp, srv } = clientFetchPeriod(dir.consensus, p);
  const len = BigInt(p.lengthMinutes);
  const blinded = blindIdentity(pub, BigInt(tp), len);
  const hsdirs = fetchHsDirs(
    dir.relays.filter((r) => r.flags.includes('HSDir')).map((r) => ({ id: r.identity, r })),
    blinded,
    srv,
    BigInt(tp),
    len,
  ).map((x) => x.r);
  let last: unknown = new Error('no HSDir answered');
  for (const hsdir of hsdirs) {
    let circ: Awaited<ReturnType<typeof client.circuits.build>> | null = null;
    try {
      circ = await client.circuits.build({ purpose: 'hsdir', lastHop: hsdir });
      const res = await dirRequest(await circ.openDirStream(), {
        method: 'GET',
        path: `/tor/hs/3/${toBase64(blinded)}`,
        body: new Uint8Array(0),
      });
      if (res.status !== 200) {
        last = new Error(`HSDir ${hsdir.nickname}: ${res.status}`);
        continue;
      }
      return decryptHsDescriptor(res.body, {
        blindedPub: blinded,
        subcredential: hsSubcredential(pub, blinded),
        nowMs: Date.now(),
      });
    } catch (e) {
      last = e;
    } finally {
      circ?.destroy();
    }
  }
  throw last;
}
