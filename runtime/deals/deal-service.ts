/**
 * Deals on this node, both sides: the composition of the deals room, and what the node service, the API and the
 * effects and inboxes of the deal actors use. Its parts each own their state:
 *
 * - `registry` (deal-registry.ts): the live deal actors, spawned on the supervisor's shared worker;
 * - `timers` (deal-timers.ts): the timers the deal machines ask for, on the node's clock;
 * - `requests` (job-requests.ts) and `provisions` (provider-deals.ts): what the runtime keeps of each open deal
 *   beyond its machine, on the requester's side and on the provider's;
 * - `executions` (executions.ts) and `heartbeat` (status-heartbeat.ts): the jobs running here and their statuses;
 * - `queries` (deal-queries.ts): what the API's jobs / status / logs read;
 * - the recovery of unfinished deals at start (deal-recovery.ts), which deal messages wait for.
 *
 * The intents' effects are in deal-effects.ts, the inboxes deal messages arrive at in deal-inboxes.ts.
 */
import { randomBytes } from 'node:crypto';
import type { Executor } from '../../actors/executor.ts';
import type { AllocationRecordView } from '../../machines/allocation.messages.ts';
import { requesterActorId } from '../../machines/deal.ids.ts';
import { type JobSpec, createJobId, describeJobProblems, parseJobId, validateJob } from '../../machines/job.ts';
import type { Preferences } from '../../machines/preferences.ts';
import type { JobRecord, RequesterInput } from '../../machines/requester.messages.ts';
import { type Clock, realClock } from '../clock.ts';
import type { Logger } from '../logger.ts';
import type { NetworkService } from '../net/network-service.ts';
import type { DexieEventLog } from '../store/dexie-event-log.ts';
import type { Supervisor } from '../supervisor/supervisor.ts';
import type { DealServiceInit } from './deal-config.ts';
import { BidGate } from './bid-gate.ts';
import { DealGrants, type DealTrust } from './deal-grants.ts';
import { partsOf } from './part-registry.ts';
import { deployEnsemble, ensembleActorId } from './ensembles.ts';
import type { EnsembleRecord } from '../../machines/ensemble.messages.ts';
import type { EnsembleSpec } from '../../machines/ensemble.ts';
import { DeployError, UnknownDealError } from './deal-errors.ts';
import { DealQueries, type InstanceView, type LogsPage } from './deal-queries.ts';
import { DealRecovery } from './deal-recovery.ts';
import { type DealEvent, type DealKind, type DealKinds, type DealRef, DealRegistry } from './deal-registry.ts';
import { MAX_DEAL_MODULE_BYTES } from './deal-schemas.ts';
import { DealTimers } from './deal-timers.ts';
import { Executions } from './executions.ts';
import { BatchRuns, type InstancePool } from './batch-runs.ts';
import { InstanceOutput } from './instance-output.ts';
import { JobRequests } from './job-requests.ts';
import { ModuleStore } from './module-store.ts';
import { OutputLog } from './output-log.ts';
import { ProviderDeals } from './provider-deals.ts';
import { ReplyAddrs } from './reply-addrs.ts';
import { StatusHeartbeat } from './status-heartbeat.ts';

export { DeployError, UnknownDealError } from './deal-errors.ts';
export type { DealEvent } from './deal-registry.ts';
/** Largest module a deploy may carry: it travels inside one network frame with the deal (the wire schema's limit). */
export { MAX_DEAL_MODULE_BYTES } from './deal-schemas.ts';

export interface DealDeps {
  readonly supervisor: Supervisor;
  readonly store: DexieEventLog;
  readonly dataDir: string;
  readonly log: Logger;
  readonly self: string;
  readonly net: () => NetworkService | undefined;
  readonly preferences: () => Promise<Preferences>;
  /** Asks the Node actor to turn a lock into an allocation, or to release one; resolves with the Node's answer. */
  readonly ledger: {
    allocate(allocationId: string, lockId: string): Promise<{ ok: boolean; code?: string; message?: string }>;
    unlock(lockId: string): void;
    release(allocationId: string): void;
  };
  /** The executor for a kind, when this node offers it now. */
  readonly executor: (kind: string) => Promise<Executor | undefined>;
  /** Time and timers of the deals (default: the real clock). */
  readonly clock?: Clock;
  /** The time alone, with real timers; read only when no `clock` is given (prefer `clock`). */
  readonly now?: () => number;
  /** The bid gate, when the caller feeds it the Node's facts (default: one of its own, fed only declines). */
  readonly gate?: BidGate;
  /** The warm WASM runners array instances run in, made on first use (default: none: a process per instance). */
  readonly pool?: { get(): InstancePool | undefined; close(): Promise<void> };
  /** Capability tokens: what this node's bid requests carry, and the check of a requester's (default: none). */
  readonly trust?: DealTrust;
}

export class DealService {
  readonly clock: Clock;
  readonly modules: ModuleStore;
  readonly output: OutputLog;
  /** Where farther requesters listen, handed to libp2p when this node answers them. */
  readonly replyAddrs = new ReplyAddrs();
  readonly registry: DealRegistry;
  readonly timers: DealTimers;
  /** The jobs this node asked for. */
  readonly requests = new JobRequests();
  /** The deals this node bid on. */
  readonly provisions = new ProviderDeals();
  /** Declines bid requests the Node would only decline again, before they are logged. */
  readonly gate: BidGate;
  /** Capability grants: the tokens a bid request carries, their check, and whether a deal's grant still holds. */
  readonly grants: DealGrants;
  readonly executions: Executions;
  /** The instances of array jobs running here, and their output. */
  readonly batchRuns: BatchRuns;
  readonly instanceOutput: InstanceOutput;
  readonly heartbeat: StatusHeartbeat;
  readonly queries: DealQueries;
  readonly #recovery: DealRecovery;

  constructor(
    readonly init: DealServiceInit,
    readonly deps: DealDeps,
  ) {
    const clock = (this.clock = deps.clock ?? (deps.now ? { ...realClock, now: deps.now } : realClock));
    this.gate = deps.gate ?? new BidGate();
    this.grants = new DealGrants(deps.trust, () => clock.now());
    // a tunnel reaches a part only while the grant its deal was accepted under holds
    partsOf(this).lapsed = (allocationId) => this.grants.lapsed(this.provisions.get(allocationId)?.grant, 'tunnel');
    this.modules = new ModuleStore(deps.dataDir);
    this.output = new OutputLog(deps.dataDir, (id, e) => deps.log.error({ allocation: id, err: e.message }, `could not write the output of allocation ${id}`), { clock });
    this.registry = new DealRegistry(deps);
    this.timers = new DealTimers(clock, (id, key) => this.deliver(id, { type: 'timer.fired', key, now: clock.now() }, 'timer'));
    this.executions = new Executions({ executor: deps.executor, output: this.output, modules: this.modules, clock, outputsRoot: deps.dataDir, pool: () => deps.pool?.get(), holdCpu: (id, requester, cpu) => this.batchRuns.hold(id, requester, cpu) });
    this.instanceOutput = new InstanceOutput(this.output.dir, (id, e) => deps.log.error({ allocation: id, err: e.message }, `could not write the instances' output of allocation ${id}`));
    this.batchRuns = new BatchRuns({ executor: deps.executor, pool: () => deps.pool?.get(), output: this.instanceOutput, modules: this.modules, clock, outputsRoot: deps.dataDir });
    this.heartbeat = new StatusHeartbeat({ clock, intervalMs: init.heartbeatMs, send: (to, status) => void this.sendTo(to, 'requester', 'allocation.status', status) });
    this.queries = new DealQueries({ registry: this.registry, store: deps.store, output: this.output, net: deps.net });
    this.#recovery = new DealRecovery(this);
  }

  now(): number {
    return this.clock.now();
  }

  /** Starts the heartbeat of the allocations running here (after recovery). */
  start(): void {
    this.heartbeat.start();
  }

  // ---- actors --------------------------------------------------------------------------------------------------

  /** Spawns a deal actor on the shared worker and sends it its first event. */
  spawn<K extends DealKind>(id: string, kind: K, input: DealKinds[K]['input'], first: DealKinds[K]['event']): Promise<DealRef | undefined> {
    return this.registry.spawn(id, kind, input, first);
  }

  /** Queues an event for a live actor, in order; false when no such actor runs here. */
  deliver(id: string, event: DealEvent, origin = 'local'): boolean {
    return this.registry.deliver(id, event, origin);
  }

  /** Saves an ended actor's record (durably), then stops the actor; its log stays for replay. */
  async retire(id: string, record: unknown): Promise<void> {
    this.timers.cancelAll(id);
    await this.deps.store.putMeta(id, record);
    await this.registry.retire(id);
    // ended: its record above is what `status` reads; its rows leave the live store (the journal keeps its history)
    await this.deps.store.forget(id);
  }

  // ---- network -------------------------------------------------------------------------------------------------

  /** Sends a deal message; resolves false (and logs) when it could not be queued for the peer. */
  async sendTo(peer: string, inbox: string, type: string, payload: unknown): Promise<boolean> {
    const net = this.deps.net();
    if (!net) return false;
    try {
      await this.replyAddrs.use(peer, net.libp2p.peerStore).catch((e: Error) => this.deps.log.debug({ peer, err: e.message }, 'could not note where a requester listens'));
      await net.router.send({ peer, inbox }, type, payload, { from: inbox === 'provider' ? 'requester' : 'provider' });
      return true;
    } catch (e) {
      this.deps.log.debug({ peer, type, err: (e as Error).message }, `could not send ${type} to ${peer}`);
      return false;
    }
  }

  // ---- the API -------------------------------------------------------------------------------------------------

  /** Starts a deal for `job`; resolves with its first record once the request is under way. */
  async deploy(job: JobSpec, module: Uint8Array | undefined): Promise<JobRecord> {
    const problems = validateJob(job);
    if (problems.length > 0) throw new DeployError(describeJobProblems(problems));
    if (job.executor === 'wasm') {
      if (!module) throw new DeployError('wasm.module: a WASM job needs its module\'s bytes');
      if (module.byteLength > MAX_DEAL_MODULE_BYTES) throw new DeployError(`wasm.module: the module is ${module.byteLength} bytes; a deal carries at most ${MAX_DEAL_MODULE_BYTES} bytes`);
      if (module.byteLength !== job.wasm.module.size) throw new DeployError(`wasm.module: the module is ${module.byteLength} bytes, the job says ${job.wasm.module.size}`);
      try {
        await this.modules.put(job.wasm.module.sha256, module);
      } catch (e) {
        throw new DeployError(`wasm.module: ${(e as Error).message}`);
      }
    }
    const now = this.now();
    const dealId = createJobId(randomBytes(16));
    const prefs = await this.deps.preferences();
    const input: RequesterInput = {
      dealId, job, self: this.deps.self, createdAt: now, deadline: now + this.init.placementMs + job.timeoutMs,
      ...(job.queueTimeoutMs !== undefined ? { queueDeadline: now + job.queueTimeoutMs } : {}),
      weights: prefs.requester.weights, timing: this.init.timing,
    };
    this.requests.open(dealId, job);
    // an array job is negotiated in bulk by an actor of its own kind, under the same id
    const ref = await this.spawn(requesterActorId(dealId), job.count !== undefined ? 'array' : 'requester', input, { type: 'deal.start', now });
    if (!ref) throw new Error('the job\'s negotiation actor could not be started; see the node\'s log');
    return (await ref.view()).context as JobRecord;
  }

  /** Starts an ensemble (several parts placed all or none); resolves with its first record. */
  deployEnsemble(spec: EnsembleSpec, modules: ReadonlyMap<string, Uint8Array>): Promise<EnsembleRecord> {
    return deployEnsemble(this, spec, modules);
  }

  /** A job's record, or an ensemble's. */
  job(id: string): Promise<JobRecord | EnsembleRecord> {
    return this.queries.job(id);
  }

  listJobs(): Promise<(JobRecord | EnsembleRecord)[]> {
    return this.queries.listJobs();
  }

  async cancel(id: string): Promise<JobRecord | EnsembleRecord> {
    const jobId = parseJobId(id);
    if (!jobId) throw new UnknownDealError(`"${id}" is not a job id`);
    const ref = (await this.registry.ref(ensembleActorId(jobId))) ?? (await this.registry.ref(requesterActorId(jobId)));
    if (ref) {
      // (an array job's actor has the job's id too)
      // the actor may end (and stop) while the cancel is on its way: then its saved record answers
      const r = await ref.ask({ type: 'job.cancel', now: this.now() }, 30_000, 'api').catch(() => undefined);
      if (r?.ok) return r.value as JobRecord | EnsembleRecord;
    }
    return this.queries.job(id);
  }

  /** Allocations on this node: the live ones and those that ended. */
  listAllocations(): Promise<AllocationRecordView[]> {
    return this.queries.listAllocations();
  }

  /** A page of output: of an allocation that ran here, or of a job this node asked for (fetched from its provider). */
  logs(id: string, offset: number, part?: string, index?: number): Promise<LogsPage> {
    return this.queries.logs(id, offset, part, index);
  }

  /** One instance of an array job. */
  instance(id: string, index: number): Promise<InstanceView> {
    return this.queries.instance(id, index);
  }

  // ---- start and stop ------------------------------------------------------------------------------------------

  /** Brings back every deal actor that had not ended when the node stopped, and tells it so. */
  recover(): Promise<number> {
    return this.#recovery.recover();
  }

  /** Runs `handle` now, or, before the unfinished deals are recovered, once they are (in arrival order). */
  whenRecovered(handle: () => void): void {
    this.#recovery.whenRecovered(handle);
  }

  /** First step of a stop: no new actors, timers or heartbeats (the supervisor then stops the actors). */
  quiesce(): void {
    this.registry.close();
    this.heartbeat.stop();
    this.timers.close();
    this.#recovery.close();
  }

  /** Last step of a stop: a job must not outlive its node (the allocation finds out when the node starts again). */
  stop(): void {
    this.quiesce();
    this.executions.cancelAll();
    this.batchRuns.cancelAll();
    void this.deps.pool?.close().catch((e: Error) => this.deps.log.warn({ err: e.message }, 'the WASM runner pool did not close cleanly'));
  }
}
