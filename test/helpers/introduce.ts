// A valid INTRODUCE1 as a client that read an onion service's descriptor
// would build it (rend-spec-v3 §3.2): for one of its intro points, under the
// blinded key of the time period the client's consensus says, naming a
// rendezvous point and a cookie. The replay and junk-introduction tests
// send it, resend it, or flood around it.
import type { NetDir, NetRelay } from '../../services/client/netdir.js';
import { legacyIdFromEd25519, randomBytes } from '../../services/core/crypto.js';
import { buildIntroduce1 } from '../../services/core/hs-cells.js';
import type { IntroPointInfo } from '../../services/core/hs-descriptor.js';
import { blindIdentity, hsSubcredential } from '../../services/core/hs-keys.js';
import { timePeriodParams } from '../../services/core/hs-time.js';
import { relayLinkSpecifiers } from '../../services/core/link-specifiers.js';
import { decodeOnionAddress } from '../../services/core/onion-address.js';
import { clientFetchPeriod } from '../../services/onion-service/periods.js';

export function validIntroduce1(
  dir: NetDir,
  onion: string,
  ip: IntroPointInfo,
  rp: NetRelay,
  cookie: Uint8Array = randomBytes(20),
): Uint8Array {
  const pub = decodeOnionAddress(onion);
  const p = timePeriodParams({ votingIntervalSec: dir.consensus.votingIntervalSec, testnet: true });
  const { tp } = clientFetchPeriod(dir.consensus, p);
  const blinded = blindIdentity(pub, BigInt(tp), BigInt(p.lengthMinutes));
  return buildIntroduce1(
    {
      authKey: ip.authKey,
      B: ip.encKey,
      subcredential: hsSubcredential(pub, blinded),
      plaintext: {
        cookie,
        extensions: [],
        onionKey: rp.ntorKey,
        linkSpecifiers: relayLinkSpecifiers({
          address: rp.address,
          port: rp.port,
          legacyId: legacyIdFromEd25519(rp.identity),
          ed25519Id: rp.identity,
        }),
      },
    },
    randomBytes,
  ).cell;
}
