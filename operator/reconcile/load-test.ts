/**
 * LoadTest reconcile: resolve the target (an OnionService's address, or a
 * host:port), create the Job once, follow its status into phase, and copy
 * the clients' summaries (their termination messages) into status. Under
 * a network model the clients' location is checked against it first.
 */
import { API_VERSION } from '../api/crds.js';
import {
  type LoadSummary,
  type LoadTest,
  type LoadTestStatus,
  loadTestSpecSchema,
} from '../api/load-test.js';
import type { OnionService } from '../api/onion-service.js';
import { applyDefaults } from '../api/schema.js';
import { type ConditionInput, findCondition, rfc3339, setConditions } from '../conditions.js';
import { LABEL_LOAD_TEST, NETWORK_MODEL_KEY, networkConfigMapName } from '../desired/common.js';
import { aggregateSummaries, desiredLoadJob, loadJobName, parseLoadSummary } from '../desired/load-test.js';
import type { KubeObject } from '../kube/client.js';
import type { ReconcileContext, ReconcileResult } from './context.js';
import { modelLocationProblem } from './model-location.js';
import { deepEqual } from './util.js';

const KIND = 'LoadTest';

export function withLoadTestDefaults(raw: LoadTest): LoadTest {
  return { ...raw, spec: applyDefaults(loadTestSpecSchema, raw.spec ?? {}) as LoadTest['spec'] };
}

export function validateLoadTest(lt: LoadTest): string[] {
  const p: string[] = [];
  if (lt.metadata.name.length > 50) p.push('metadata.name must be at most 50 characters');
  const t = lt.spec.target ?? {};
  if ((t.onionService === undefined) === (t.address === undefined)) {
    p.push('spec.target: set exactly one of onionService and address');
  }
  return p;
}

type Phase = NonNullable<LoadTestStatus['phase']>;

/** Job status → phase. */
export function jobPhase(job: KubeObject | null): Phase {
  if (!job) return 'Pending';
  const conds: { type: string; status: string }[] = job.status?.conditions ?? [];
  if (conds.some((c) => c.type === 'Complete' && c.status === 'True')) return 'Succeeded';
  if (conds.some((c) => c.type === 'Failed' && c.status === 'True')) return 'Failed';
  if (Number(job.status?.active ?? 0) > 0 || Number(job.status?.succeeded ?? 0) > 0) return 'Running';
  return 'Pending';
}

export async function reconcileLoadTest(
  ctx: ReconcileContext,
  namespace: string,
  name: string,
): Promise<ReconcileResult> {
  const { kube } = ctx;
  const raw = await kube.get<LoadTest & KubeObject>({ apiVersion: API_VERSION, kind: KIND, namespace, name });
  if (!raw || raw.metadata.deletionTimestamp) return {};
  const lt = withLoadTestDefaults(raw);
  const generation = raw.metadata.generation ?? 0;
  const now = ctx.now();
  const status: LoadTestStatus = structuredClone(raw.status ?? {});
  const finish = async (conds: ConditionInput[], requeueAfterMs?: number): Promise<ReconcileResult> => {
    status.observedGeneration = generation;
    status.conditions = setConditions(status.conditions, conds, generation, new Date(now));
    if (!deepEqual(status, raw.status ?? {})) {
      await kube.patchStatus({ apiVersion: API_VERSION, kind: KIND, namespace, name }, status);
    }
    return requeueAfterMs === undefined ? {} : { requeueAfterMs };
  };
  const waiting = (reason: string, message: string) => {
    status.phase = 'Pending';
    return finish(
      [
        { type: 'Ready', status: false, reason, message },
        { type: 'Progressing', status: true, reason, message },
        { type: 'Degraded', status: false, reason: 'AsExpected', message: 'spec is valid' },
      ],
      10_000,
    );
  };

  const problems = validateLoadTest(lt);
  if (problems.length) {
    const was = findCondition(raw.status?.conditions, 'Degraded');
    if (was?.reason !== 'InvalidSpec')
      await ctx.recorder.event(raw, 'Warning', 'InvalidSpec', problems.join('; '));
    return finish([
      { type: 'Ready', status: false, reason: 'InvalidSpec', message: problems.join('; ') },
      { type: 'Progressing', status: false, reason: 'InvalidSpec', message: 'waiting for a valid spec' },
      { type: 'Degraded', status: true, reason: 'InvalidSpec', message: problems.join('; ') },
    ]);
  }

  const jobRef = { apiVersion: 'batch/v1', kind: 'Job', namespace, name: loadJobName(name) };
  let job = await kube.get(jobRef);
  if (!job) {
    if (status.phase === 'Succeeded' || status.phase === 'Failed') {
      // Finished and the Job was cleaned up: the summary in status is the record.
      return finish(terminalConditions(status.phase));
    }
    const cm = await kube.get({
      apiVersion: 'v1',
      kind: 'ConfigMap',
      namespace,
      name: networkConfigMapName(lt.spec.network),
    });
    if (!cm) return waiting('WaitingForNetwork', `OnionNetwork ${lt.spec.network} has no authority list yet`);
    const location = modelLocationProblem(
      lt.spec.network,
      lt.spec.location,
      'client',
      cm.data?.[NETWORK_MODEL_KEY],
    );
    if (location) {
      if (findCondition(raw.status?.conditions, 'Degraded')?.reason !== 'InvalidLocation')
        await ctx.recorder.event(raw, 'Warning', 'InvalidLocation', location);
      status.phase = 'Pending';
      // The network's model may change: look again later.
      return finish(
        [
          { type: 'Ready', status: false, reason: 'InvalidLocation', message: location },
          {
            type: 'Progressing',
            status: false,
            reason: 'InvalidLocation',
            message: 'waiting for a location in the model',
          },
          { type: 'Degraded', status: true, reason: 'InvalidLocation', message: location },
        ],
        30_000,
      );
    }
    const authSecret = lt.spec.clientAuthSecret;
    if (authSecret && !(await kube.get({ apiVersion: 'v1', kind: 'Secret', namespace, name: authSecret })))
      return waiting(
        'WaitingForClientAuthSecret',
        `Secret ${authSecret} (spec.clientAuthSecret) does not exist`,
      );
    let target = lt.spec.target.address;
    if (lt.spec.target.onionService) {
      const svc = await kube.get<OnionService & KubeObject>({
        apiVersion: API_VERSION,
        kind: 'OnionService',
        namespace,
        name: lt.spec.target.onionService,
      });
      const addr = svc?.status?.onionAddress;
      if (!svc || !addr)
        return waiting('WaitingForTarget', `OnionService ${lt.spec.target.onionService} has no address yet`);
      target = `${addr}:${svc.spec?.virtualPort ?? 80}`;
    }
    job = await kube.apply(desiredLoadJob({ lt, images: ctx.images, target: target! }));
    status.jobName = job.metadata.name;
    status.startTime = rfc3339(new Date(now));
    await ctx.recorder.event(raw, 'Normal', 'Started', `created Job ${job.metadata.name} against ${target}`);
  }
  status.jobName = job.metadata.name;
  const phase = jobPhase(job);
  status.phase = phase;

  // Summaries from finished client pods (see desired/load-test.ts for how they get there).
  const pods = (await kube.list('v1', 'Pod', namespace, `${LABEL_LOAD_TEST}=${name}`)).items;
  const summaries: LoadSummary[] = [];
  for (const p of pods) {
    const cs = (p.status?.containerStatuses ?? []).find((c: { name: string }) => c.name === 'load');
    const s = parseLoadSummary(cs?.state?.terminated?.message);
    if (s) summaries.push(s);
  }
  const agg = aggregateSummaries(summaries);
  if (agg) status.summary = agg;

  if (phase === 'Succeeded' || phase === 'Failed') {
    if (!status.completionTime) {
      status.completionTime = job.status?.completionTime ?? rfc3339(new Date(now));
      await ctx.recorder.event(
        raw,
        phase === 'Succeeded' ? 'Normal' : 'Warning',
        phase === 'Succeeded' ? 'Completed' : 'Failed',
        agg ? `${agg.ok}/${agg.requests} requests ok` : `Job ${phase.toLowerCase()}`,
      );
    }
    // Pods may report after the Job condition: look again shortly until every client did.
    const missing = agg === null || agg.clients < lt.spec.clients;
    return finish(terminalConditions(phase), missing && pods.length > summaries.length ? 5_000 : undefined);
  }
  return finish(
    [
      {
        type: 'Ready',
        status: false,
        reason: phase,
        message: `Job ${job.metadata.name} is ${phase.toLowerCase()}`,
      },
      { type: 'Progressing', status: true, reason: phase, message: 'load test in progress' },
      { type: 'Degraded', status: false, reason: 'AsExpected', message: 'spec is valid' },
    ],
    15_000,
  );
}

function terminalConditions(phase: 'Succeeded' | 'Failed'): ConditionInput[] {
  return phase === 'Succeeded'
    ? [
        { type: 'Ready', status: true, reason: 'Completed', message: 'the load test finished' },
        { type: 'Progressing', status: false, reason: 'Completed', message: 'finished' },
        { type: 'Degraded', status: false, reason: 'AsExpected', message: 'finished' },
      ]
    : [
        { type: 'Ready', status: false, reason: 'Failed', message: 'the load Job failed' },
        { type: 'Progressing', status: false, reason: 'Failed', message: 'finished' },
        { type: 'Degraded', status: true, reason: 'JobFailed', message: 'the load Job failed' },
      ];
}
