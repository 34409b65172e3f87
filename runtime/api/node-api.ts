/**
 * What the local API asks of the running node, answered from the Node actor, the identity and the network.
 */
import { publicRecord } from '../deals/deal-queries.ts';
import type { NodeView } from '../../actors/node.actor.ts';
import type { PartView } from '../../machines/ensemble.messages.ts';
import { partNameFor } from '../../machines/ensemble.ts';
import { requesterActorId } from '../../machines/deal.ids.ts';
import { parseJobId } from '../../machines/job.ts';
import type { Indexes } from '../../machines/indexes.ts';
import type { JobRecord } from '../../machines/requester.messages.ts';
import type { NodeEvent, ReplyBody } from '../../machines/node.messages.ts';
import type { NodeApi } from './http-server.ts';
import { type Clock, realClock } from '../clock.ts';
import { probeWritable } from '../files.ts';
import { type Identity, type NodeId, describe } from '../node/identity.ts';
import type { NetworkService } from '../net/network-service.ts';
import { netInfo, pingView, topologyView } from './net-views.ts';
import type { ActorRef, OmitFrom } from '../supervisor/supervisor.ts';
import type { DealService } from '../deals/deal-service.ts';
import { ensembleActorId } from '../deals/ensembles.ts';
import { resultsApi } from './results-routes.ts';

type NodeRef = ActorRef<NodeEvent>;

export function createNodeApi(deps: {
  node: NodeRef;
  deals: DealService;
  indexes: () => Indexes;
  identity: Identity;
  dataDir: string;
  net: () => NetworkService | undefined;
  apiUrl: () => string | null;
  descriptor: () => { key: string; nodeId: NodeId } | undefined;
  setDescriptor: (d: { key: string; nodeId: NodeId }) => void;
  /** Stamps `now` on the ledger events the API sends (default: the real clock). */
  clock?: Clock;
}): NodeApi {
  const { node } = deps;
  const clock = deps.clock ?? realClock;
  const view = async () => (await node.view()).context as NodeView;
  const ask = (e: OmitFrom<NodeEvent, 'replyTo'>): Promise<ReplyBody> => node.ask(e, undefined, 'api');
  return {
    async info() {
      const v = await view();
      const key = JSON.stringify(v.registration?.capability ?? null);
      let d = deps.descriptor();
      if (!d || d.key !== key) {
        d = { key, nodeId: (await describe(deps.identity, v.registration?.capability ?? null)).nodeId };
        deps.setDescriptor(d);
      }
      return {
        identity: d.nodeId,
        state: v.state,
        capability: v.capability,
        locks: Object.values(v.locks),
        allocations: Object.values(v.allocations),
        benchmark: v.registration?.benchmark ?? null,
        // diskFull: under minFreeDisk (bytes) free on the data dir's disk, new work is declined with `disk-full`
        monitoring: { sample: v.sample, constrained: v.constrained, diskFull: v.admission.diskFull, minFreeDisk: v.admission.minFreeDisk },
        problems: v.problems,
        // bid requests this node declined, by code (`lock-limit`, `disk-full`, `insufficient`, ...)
        // (the Node's own declines and those the bid gate answered for it, unlogged)
        bidDeclines: addCounts(v.declined, deps.deals.gate.declined),
        // of those, the ones the gate answered before the request was logged (bid-gate.ts)
        bidDeclinesUnlogged: { ...deps.deals.gate.declined },
        // bid requests that arrived too late to be answered in time, dropped before the Node logged them
        bidRequestsTooLate: deps.deals.gate.tooLate,
        ...netInfo(deps.net()),
        api: deps.apiUrl(),
        dataDir: deps.dataDir,
        restarts: node.restarts,
      };
    },
    peers: async () => deps.net()?.peers() ?? [],
    topology: () => topologyView(deps.net()),
    ping: (peer, count) => pingView(deps.net(), peer, count),
    preferences: async () => (await view()).preferences,
    setPreferences: (preferences) => ask({ type: 'preferences.set', preferences }),
    onboard: async (offer) => {
      const current = (await view()).registration?.offer ?? {};
      return ask({ type: 'node.onboard', offer: { ...current, ...offer }, host: { dataDir: deps.dataDir, dataDirWritable: await probeWritable(deps.dataDir) } });
    },
    offboard: () => ask({ type: 'node.offboard' }),
    indexes: async () => deps.indexes(),
    allocations: async () => {
      // the ledger's record of each allocation, with what became of its job when one ran in it
      const runs = new Map((await deps.deals.listAllocations()).map((a) => [a.allocationId, a]));
      const indexed = deps.indexes().allocations;
      const rows: object[] = Object.values(indexed).map((a) => {
        const run = runs.get(a.id);
        return run ? { ...a, state: run.state, name: run.name, requester: run.requester, exitCode: run.exitCode, message: run.message, startedAt: run.startedAt, runEndedAt: run.endedAt } : a;
      });
      // older ended ones the indexes let go (they keep the newest): from their records, kept for --retain
      const older = [...runs.values()].filter((r) => !indexed[r.allocationId] && r.endedAt !== null);
      const fromRecords = older.map((r) => ({ id: r.allocationId, lockId: r.allocationId, resources: r.resources, holder: r.requester, createdAt: r.createdAt, endedAt: r.endedAt, state: r.state, name: r.name, requester: r.requester, exitCode: r.exitCode, message: r.message, startedAt: r.startedAt, runEndedAt: r.endedAt }));
      return [...fromRecords.sort((a, b) => a.createdAt - b.createdAt), ...rows];
    },
    deploy: (job, module) => deps.deals.deploy(job, module),
    deployEnsemble: (spec, modules) => deps.deals.deployEnsemble(spec, modules),
    jobs: () => deps.deals.listJobs(),
    // a job of its own is an ensemble of one part, named after the job (INTERFACE.md): `status --json` says so too
    job: async (id) => {
      const r = publicRecord(await deps.deals.job(id));
      return 'kind' in r && r.kind === 'ensemble' ? r : { ...r, parts: [onePart(r as JobRecord)] };
    },
    // a job id names a job's negotiation or an ensemble: watch both (only one of them ever has an actor)
    watchJob: (id, onChange) => {
      const jobId = parseJobId(id);
      if (!jobId) return () => {};
      const { registry } = deps.deals;
      const stops = [registry.watch(requesterActorId(jobId), onChange), registry.watch(ensembleActorId(jobId), onChange)];
      return () => stops.forEach((stop) => stop());
    },
    cancel: (id) => deps.deals.cancel(id),
    logs: (id, offset, part, index) => deps.deals.logs(id, offset, part, index),
    instance: (id, index) => deps.deals.instance(id, index),
    ...resultsApi({ deals: deps.deals, net: deps.net, dataDir: deps.dataDir }),
    lock: (r) => {
      const now = clock.now();
      return ask({ type: 'ledger.lock', id: r.id, resources: r.resources, ...(r.ports ? { ports: r.ports } : {}), expiresAt: now + r.ttl, now, holder: 'api' });
    },
    unlock: (id) => ask({ type: 'ledger.unlock', id }),
    allocate: (allocationId, lockId) => ask({ type: 'ledger.allocate', allocationId, lockId, now: clock.now() }),
    release: (allocationId) => ask({ type: 'ledger.release', allocationId }),
  };
}

/** Two counts by key, added. */
function addCounts<K extends string>(a: Partial<Record<K, number>>, b: Partial<Record<K, number>>): Partial<Record<K, number>> {
  const out: Partial<Record<K, number>> = { ...a };
  for (const k of Object.keys(b) as K[]) out[k] = (out[k] ?? 0) + (b[k] ?? 0);
  return out;
}

/** A job of its own as the one part of an ensemble. */
function onePart(r: JobRecord): Omit<PartView, 'dealId' | 'healthy'> {
  const state: PartView['state'] = {
    requesting: 'pending', queued: 'pending', committing: 'pending', placed: 'pending', provisioning: 'starting', running: 'running',
    cancelling: 'running', completed: 'completed', failed: 'failed', cancelled: 'terminated',
  }[r.state] as PartView['state'];
  return { name: partNameFor(r.name), type: 'task', state, provider: r.provider, allocationId: r.allocationId, restarts: Math.max(0, r.allocations.length - 1), exitCode: r.exitCode, message: r.message };
}
