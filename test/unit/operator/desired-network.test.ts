/** Pure pieces of the network's desired state: nicknames, exit spread, the authority list format, what a relay pod template depends on. */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { API_VERSION } from '../../../operator/api/crds.js';
import type { OnionNetwork } from '../../../operator/api/onion-network.js';
import { imagesFromEnv } from '../../../operator/config.js';
import {
  desiredAuthorityStatefulSet,
  desiredRelayStatefulSet,
  type NetworkInputs,
} from '../../../operator/desired/network.js';
import {
  exitCount,
  formatAuthorityList,
  isExitIndex,
  relayNickname,
} from '../../../operator/desired/network-layout.js';
import { withDefaults } from '../../../operator/reconcile/network.js';
import { parseAuthorityList } from '../../../services/net/dir-client.js';

// RFC 1123 labels (Kubernetes names), except IDNA A-labels ("xn--..."): the
// WHATWG URL parser, and so Node's fetch, decodes those and refuses invalid
// ones ("xn--0"), so no network or namespace so named could be dialled at all.
const dnsLabel = fc
  .stringMatching(/^[a-z0-9]([-a-z0-9]{0,38}[a-z0-9])?$/)
  .filter((label) => !label.startsWith('xn--'));

describe('network desired state', () => {
  it('relay nicknames are valid (1-19 letters and digits) and distinct per index', () => {
    fc.assert(
      fc.property(
        dnsLabel,
        fc.integer({ min: 0, max: 9999 }),
        fc.integer({ min: 0, max: 9999 }),
        (net, i, j) => {
          const a = relayNickname(net, i);
          expect(a).toMatch(/^[A-Za-z0-9]{1,19}$/);
          if (i !== j) expect(relayNickname(net, j)).not.toBe(a);
        },
      ),
    );
    expect(relayNickname('my-net', 3)).toBe('mynetr3');
  });

  it('exits: about fraction × n, and a relay keeps its role when the network grows', () => {
    fc.assert(
      fc.property(fc.double({ min: 0, max: 1, noNaN: true }), fc.integer({ min: 0, max: 300 }), (f, n) => {
        expect(Math.abs(exitCount(n, f) - n * f)).toBeLessThanOrEqual(1);
        // Growing by one relay adds at most one exit and never turns an existing relay into one.
        expect([0, 1]).toContain(exitCount(n + 1, f) - exitCount(n, f));
      }),
    );
    expect(exitCount(10, 0)).toBe(0);
    expect(exitCount(10, 1)).toBe(10);
    expect([0, 1, 2, 3, 4, 5].map((i) => isExitIndex(i, 0.34))).toEqual([
      false,
      true,
      false,
      false,
      true,
      false,
    ]);
  });

  it('the authority list is what dir-client parses, in ordinal order', () => {
    fc.assert(
      fc.property(
        dnsLabel,
        dnsLabel,
        fc.uniqueArray(fc.stringMatching(/^[0-9a-f]{64}$/), { minLength: 1, maxLength: 9 }),
        (net, ns, ids) => {
          const parsed = parseAuthorityList(formatAuthorityList(net, ns, ids));
          expect(parsed.map((a) => a.identity)).toEqual(ids);
          expect(parsed.map((a) => a.url)).toEqual(
            ids.map((_, i) => `http://${net}-auth-${i}.${net}-auth.${ns}.svc:7000`),
          );
        },
      ),
    );
  });

  describe('relay pod template', () => {
    const net = withDefaults({
      apiVersion: API_VERSION,
      kind: 'OnionNetwork',
      metadata: { name: 'alpha', namespace: 'tn', uid: 'u1' },
      spec: {},
    } as OnionNetwork);
    const inputs = (over: Partial<NetworkInputs> = {}): NetworkInputs => ({
      net,
      images: imagesFromEnv({ SHALLOT_IMAGE_TAG: 'test' }),
      authorityIds: ['aa'.repeat(32)],
      relays: 1,
      relayIdentities: ['11'.repeat(32)],
      ...over,
    });
    interface Template {
      metadata: { annotations: Record<string, string> };
      spec: {
        containers: {
          env: unknown[];
          volumeMounts: { name: string }[];
          livenessProbe: Record<string, number>;
          readinessProbe: Record<string, number>;
        }[];
        volumes: { name: string; secret?: { secretName: string } }[];
      };
    }
    const template = (inp: NetworkInputs) =>
      (desiredRelayStatefulSet(inp, 0).spec as { template: Template }).template;

    it('has nothing an onion-key rotation changes: the relay reads rotated keys from its mounted Secret', () => {
      // NetworkInputs carries no onion key at all (reconcile-network.test.ts
      // rotates and compares); the identity and the authority list, which a
      // running relay cannot change, do restart it.
      expect(template(inputs({ relayIdentities: ['22'.repeat(32)] }))).not.toEqual(template(inputs()));
      expect(template(inputs({ authorityIds: ['bb'.repeat(32)] }))).not.toEqual(template(inputs()));
      const t = template(inputs());
      expect(t.metadata.annotations['shallot.dev/identity']).toBe('11'.repeat(32));
      expect(t.metadata.annotations).not.toHaveProperty('shallot.dev/keys-hash');
      const relay = t.spec.containers[0]!;
      expect(relay.env).toContainEqual({ name: 'SHALLOT_KEY_WATCH', value: '/etc/shallot/secret/keys.json' });
      // Mounted without subPath: kubelet never updates a subPath mount.
      const mount = relay.volumeMounts.find((m) => m.name === 'secret');
      expect(mount).toEqual({ name: 'secret', mountPath: '/etc/shallot/secret', readOnly: true });
      expect(t.spec.volumes.find((v) => v.name === 'secret')?.secret?.secretName).toBe('alpha-relay-0-keys');
    });

    it('probes give a busy relay 5 s to answer /healthz and restart it only after a minute without an answer', () => {
      // kubelet's default 1 s timeout restarted a relay still working through a load test (issue 14).
      const { livenessProbe: live, readinessProbe: ready } = template(inputs()).spec.containers[0]!;
      expect(live.timeoutSeconds).toBe(5);
      expect(live.periodSeconds! * live.failureThreshold!).toBeGreaterThanOrEqual(60);
      expect(ready.timeoutSeconds).toBe(3);
    });

    it('authorities take the link-fault token as relays do: same env, read-only mount and Secret volume', () => {
      const relay = template(inputs());
      const auth = (desiredAuthorityStatefulSet(inputs()).spec as { template: Template }).template;
      const tokenEnv = (t: Template) =>
        t.spec.containers[0]!.env.filter((e) => (e as { name: string }).name === 'SHALLOT_FAULT_TOKEN_FILE');
      const tokenMount = (t: Template) =>
        t.spec.containers[0]!.volumeMounts.filter((m) => m.name === 'fault-token');
      const tokenVolume = (t: Template) => t.spec.volumes.filter((v) => v.name === 'fault-token');
      expect(tokenEnv(auth)).toEqual([
        { name: 'SHALLOT_FAULT_TOKEN_FILE', value: '/etc/shallot/fault/token' },
      ]);
      expect(tokenEnv(auth)).toEqual(tokenEnv(relay));
      expect(tokenMount(auth)).toEqual([
        { name: 'fault-token', mountPath: '/etc/shallot/fault', readOnly: true },
      ]);
      expect(tokenMount(auth)).toEqual(tokenMount(relay));
      // The Secret only, optional (a pod starts before it exists), not world-readable.
      expect(tokenVolume(auth)).toEqual([
        {
          name: 'fault-token',
          secret: { secretName: 'alpha-fault-token', optional: true, defaultMode: 0o440 },
        },
      ]);
      expect(tokenVolume(auth)).toEqual(tokenVolume(relay));
      // Its links, and the link-fault table, name it by its pod name.
      expect(auth.spec.containers[0]!.env).toContainEqual({ name: 'SHALLOT_NAME', value: '$(POD_NAME)' });
    });
  });
});
