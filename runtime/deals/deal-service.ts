/**
 * Deals on this node, both sides: it spawns the deal actors (requester negotiations, provider negotiations,
 * allocations) on the supervisor's shared worker, feeds them what arrives from peers and from their timers and
 * executors, carries out their intents (deal-effects.ts), keeps the records of ended deals, and recovers the
 * unfinished ones when the node starts again. The API's deploy / jobs / status / logs / cancel land here.
 */
import { randomBytes } from 'node:crypto';
import { mkdir } from 'node:fs/promises';
import type { Executor } from '../../actors/executor.ts';
import type { AllocationRecordView } from '../../machines/allocation.messages.ts';
import { ALLOCATION_TERMINAL, JOB_TERMINAL, PROVIDER_TERMINAL } from '../../machines/deal.constants.ts';
import { allocationActorId, parseDealKey, providerActorId, requesterActorId } from '../../machines/deal.ids.ts';
import type { AllocationState, AllocationStatusMsg } from '../../machines/deal.wire.ts';
import { type JobSpec, createJobId, describeJobProblems, parseJobId, validateJob } from '../../machines/job.ts';
import type { Preferences } from '../../machines/preferences.ts';
import type { ProviderDealState, ProviderInput } from '../../machines/provider.messages.ts';
import type { JobState, JobRecord, RequesterInput } from '../../machines/requester.messages.ts';
import type { Logger } from '../logger.ts';
import type { NetworkService } from '../net/network-service.ts';
import type { DexieEventLog } from '../store/dexie-event-log.ts';
import type { ActorRef, Supervisor } from '../supervisor/supervisor.ts';
import type { DealServiceInit } from './deal-config.ts';
import { killGroup, startTimeOf } from '../executors/process-group.ts';
import { MAX_DEAL_MODULE_BYTES } from './deal-schemas.ts';
import { ModuleStore } from './module-store.ts';
import { OutputLog, type OutputPage } from './output-log.ts';
import { ReplyAddrs } from './reply-addrs.ts';

/** The most peers whose answers one job takes (its neighbours and the farther peers of open rounds). */
export const MAX_ANSWERERS = 1024;

/** Deal messages held while the node recovers its deals at start; more are dropped (their senders retry). */
const MAX_QUEUED_INBOUND = 10_000;

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
  readonly now?: () => number;
}

/** A deploy the node refuses before anything is sent (HTTP 400, CLI exit 2). */
export class DeployError extends Error {
  override name = 'DeployError';
}

/** No job or allocation with that id here. */
export class UnknownDealError extends Error {
  override name = 'UnknownDealError';
}

/** Any deal actor's event (each machine checks its own union). */
export type DealEvent = { readonly type: string; readonly [field: string]: unknown };
type AnyRef = ActorRef<DealEvent>;

export class DealService {
  readonly modules: ModuleStore;
  readonly output: OutputLog;
  /** Live actors by id (a promise while the actor is being spawned; undefined if the spawn failed). */
  readonly refs = new Map<string, Promise<AnyRef | undefined>>();
  /** Jobs this node asked for, and deals it bid on, by id: what the runtime needs beyond the machines' events. */
  readonly jobs = new Map<string, JobSpec>();
  /**
   * For each live job, the peers it asked for bids (any round): the only ones whose answers reach it; and whether
   * its latest round was broadcast beyond this node's neighbours (open: any peer the mesh reached may answer, and
   * is added to the asked ones, up to MAX_ANSWERERS per job).
   */
  readonly asked = new Map<string, { readonly peers: Set<string>; open: boolean }>();
  /** Where farther requesters listen, handed to libp2p when this node answers them. */
  readonly replyAddrs = new ReplyAddrs();
  readonly providerJobs = new Map<string, ProviderInput>();
  /** The latest status of each allocation running here, repeated as a heartbeat. */
  readonly statuses = new Map<string, { to: string; status: Omit<AllocationStatusMsg, 'type'> }>();
  /** Jobs running on this node, by allocation id. */
  readonly executions = new Map<string, { cancel(): void }>();
  readonly #timers = new Map<string, Map<string, NodeJS.Timeout>>();
  #heartbeat: NodeJS.Timeout | undefined;
  #stopped = false;

  constructor(
    readonly init: DealServiceInit,
    readonly deps: DealDeps,
  ) {
    this.modules = new ModuleStore(deps.dataDir);
    this.output = new OutputLog(deps.dataDir, (id, e) => deps.log.error({ allocation: id, err: e.message }, `could not write the output of allocation ${id}`));
  }

  now(): number {
    return (this.deps.now ?? Date.now)();
  }

  start(): void {
    this.#heartbeat = setInterval(() => this.beat(), this.init.heartbeatMs);
    this.#heartbeat.unref();
  }

  /** Sends the latest status of every unfinished allocation again, so its requester knows it is alive. */
  beat(): void {
    for (const s of this.statuses.values()) this.sendTo(s.to, 'requester', 'allocation.status', s.status);
  }

  // ---- actors --------------------------------------------------------------------------------------------------

  /** Spawns a deal actor on the shared worker and sends it its first event. */
  spawn(id: string, kind: string, input: unknown, first: DealEvent): Promise<AnyRef | undefined> {
    const existing = this.refs.get(id);
    if (existing) return existing;
    if (this.#stopped) return Promise.resolve(undefined);
    const p = this.deps.supervisor.spawn<DealEvent>({ id, kind, input, placement: 'shared' }).then(
      (ref) => {
        ref.send(first);
        return ref;
      },
      (e: Error) => {
        this.refs.delete(id);
        this.deps.log.error({ actor: id, err: e.message }, `could not start ${kind} actor ${id}`);
        return undefined;
      },
    );
    this.refs.set(id, p);
    return p;
  }

  /** Queues an event for a live actor, in order; false when no such actor runs here. */
  deliver(id: string, event: DealEvent, origin = 'local'): boolean {
    const p = this.refs.get(id);
    if (!p) return false;
    void p.then((ref) => {
      try {
        ref?.send(event, origin);
      } catch (e) {
        this.deps.log.debug({ actor: id, type: event.type, err: (e as Error).message }, 'event for a stopped actor dropped');
      }
    });
    return true;
  }

  /** Saves an ended actor's record (durably), then stops the actor; its log stays for replay. */
  async retire(id: string, record: unknown): Promise<void> {
    this.cancelTimers(id);
    await this.deps.store.putMeta(id, record);
    this.refs.delete(id);
    await this.deps.supervisor.retire(id).catch((e: Error) => this.deps.log.warn({ actor: id, err: e.message }, 'actor did not stop cleanly'));
  }

  // ---- timers --------------------------------------------------------------------------------------------------

  schedule(id: string, key: string, at: number): void {
    this.cancelTimer(id, key);
    if (this.#stopped) return;
    const timers = this.#timers.get(id) ?? new Map<string, NodeJS.Timeout>();
    this.#timers.set(id, timers);
    const t = setTimeout(() => {
      timers.delete(key);
      this.deliver(id, { type: 'timer.fired', key, now: this.now() }, 'timer');
    }, Math.max(0, at - this.now()));
    timers.set(key, t);
  }

  cancelTimer(id: string, key: string): void {
    const timers = this.#timers.get(id);
    const t = timers?.get(key);
    if (t) clearTimeout(t);
    timers?.delete(key);
  }

  cancelTimers(id: string): void {
    for (const t of this.#timers.get(id)?.values() ?? []) clearTimeout(t);
    this.#timers.delete(id);
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
      weights: prefs.requester.weights, timing: this.init.timing,
    };
    this.jobs.set(dealId, job);
    const ref = await this.spawn(requesterActorId(dealId), 'requester', input, { type: 'deal.start', now });
    if (!ref) throw new Error('the job\'s negotiation actor could not be started; see the node\'s log');
    return (await ref.view()).context as JobRecord;
  }

  async job(id: string): Promise<JobRecord> {
    const jobId = parseJobId(id);
    if (!jobId) throw new UnknownDealError(`"${id}" is not a job id`);
    const ref = await this.refs.get(requesterActorId(jobId));
    if (ref) {
      try {
        return (await ref.view()).context as JobRecord;
      } catch {
        // it ended while we asked: its record is stored
      }
    }
    const rec = await this.deps.store.getMeta<JobRecord>(requesterActorId(jobId));
    if (!rec) throw new UnknownDealError(`no job ${id} on this node; \`jobs\` lists them`);
    return rec;
  }

  async listJobs(): Promise<JobRecord[]> {
    const ended = (await this.deps.store.metaWithPrefix<JobRecord>('job/')).map((r) => r.value);
    const live = await Promise.all(
      [...this.refs.entries()].filter(([id]) => id.startsWith('job/')).map(async ([id]) => this.job(id.slice(4)).catch(() => undefined)),
    );
    const byId = new Map<string, JobRecord>();
    for (const r of [...ended, ...live]) if (r) byId.set(r.id, r);
    return [...byId.values()].sort((a, b) => a.createdAt - b.createdAt);
  }

  async cancel(id: string): Promise<JobRecord> {
    const jobId = parseJobId(id);
    if (!jobId) throw new UnknownDealError(`"${id}" is not a job id`);
    const ref = await this.refs.get(requesterActorId(jobId));
    if (ref) {
      // the actor may end (and stop) while the cancel is on its way: then its saved record answers
      const r = await ref.ask({ type: 'job.cancel', now: this.now() }, 30_000, 'api').catch(() => undefined);
      if (r?.ok) return r.value as JobRecord;
    }
    return this.job(id);
  }

  /** Allocations on this node: the live ones and those that ended. */
  async listAllocations(): Promise<AllocationRecordView[]> {
    const ended = (await this.deps.store.metaWithPrefix<AllocationRecordView>('allocation/')).map((r) => r.value);
    const live = await Promise.all(
      [...this.refs.entries()]
        .filter(([id]) => id.startsWith('allocation/'))
        .map(async ([, p]) => {
          const ref = await p;
          return ref ? ((await ref.view().catch(() => undefined))?.context as AllocationRecordView | undefined) : undefined;
        }),
    );
    const byId = new Map<string, AllocationRecordView>();
    for (const r of [...ended, ...live]) if (r) byId.set(r.allocationId, r);
    return [...byId.values()];
  }

  /**
   * A page of output: of an allocation that ran here, or of a job this node asked for (fetched from its provider).
   */
  async logs(id: string, offset: number): Promise<OutputPage & { source: string; ended: boolean }> {
    if (await this.output.exists(id)) {
      const page = await this.output.read(id, offset);
      const live = this.refs.has(allocationActorId(id));
      return { ...page, source: 'local', ended: !live };
    }
    const rec = await this.job(id);
    const ended = rec.endedAt !== null;
    if (!rec.provider || !rec.allocationId) return { chunks: [], next: offset, eof: true, source: 'none', ended };
    const net = this.deps.net();
    if (!net) throw new Error('the network is not running');
    const r = await net.router.request<OutputPage>({ peer: rec.provider, inbox: 'provider' }, 'logs.request', { allocationId: rec.allocationId, offset }, { from: 'requester', timeoutMs: 10_000 });
    return { ...r.envelope.payload, source: rec.provider, ended };
  }

  // ---- recovery ------------------------------------------------------------------------------------------------

  /** Brings back every deal actor that had not ended when the node stopped, and tells it so. */
  async recover(): Promise<number> {
    await mkdir(this.output.dir, { recursive: true }); // before any job writes output
    const now = this.now();
    let n = 0;
    // an ended actor's record is saved under its id: one query per kind, not one read per actor ever made
    const ended = new Set((await Promise.all(['job/', 'provider/', 'allocation/'].map((k) => this.deps.store.metaKeysWithPrefix(k)))).flat());
    for (const rec of await this.deps.store.actors()) {
      if (rec.kind !== 'requester' && rec.kind !== 'provider' && rec.kind !== 'allocation') continue;
      if (ended.has(rec.id)) continue;
      n += 1;
      if (rec.kind === 'requester') {
        const input = rec.input as RequesterInput;
        this.jobs.set(input.dealId, input.job);
        void this.spawn(rec.id, rec.kind, input, { type: 'deal.recovered', now });
      } else if (rec.kind === 'provider') {
        const input = rec.input as ProviderInput;
        this.providerJobs.set(input.key, input);
        void this.spawn(rec.id, rec.kind, input, { type: 'deal.recovered', now });
      } else {
        await this.#killOrphan((rec.input as { allocationId: string }).allocationId);
        void this.spawn(rec.id, rec.kind, rec.input, { type: 'allocation.recovered', now });
      }
    }
    await Promise.all(this.refs.values());
    await this.#settleRecovered();
    this.#recovered = true;
    for (const run of this.#inbound.splice(0)) run();
    return n;
  }

  /**
   * Actors whose last logged event ended them, but whose ending was not carried out (the node died between the
   * two: replayed events do not run their effects again), are ended now; a job never started is started.
   */
  async #settleRecovered(): Promise<void> {
    const now = this.now();
    for (const [id, p] of [...this.refs]) {
      const ref = await p;
      const rec = ref && ((await ref.view().catch(() => undefined))?.context as Partial<JobRecord & { allocationId: string }> | undefined);
      if (!ref || !rec) continue;
      if (ref.kind === 'requester') {
        // the peers it had asked: their answers may still come
        const peers = [rec.provider, ...(rec.bids ?? []).map((b) => b.provider), ...(rec.declines ?? []).map((d) => d.provider)];
        this.asked.set(rec.id!, { peers: new Set(peers.filter((x): x is string => typeof x === 'string')), open: false });
      }
      if (ref.kind === 'requester' && rec.provider && rec.allocationId && !JOB_TERMINAL.includes(rec.state as JobState)) {
        // its allocation may have ended while this node was down, and a final status is sent only once
        const key = parseDealKey(rec.allocationId);
        if (key) void this.sendTo(rec.provider, 'provider', 'allocation.query', { dealId: rec.id, nonce: key.nonce, allocationId: rec.allocationId });
      }
      if (ref.kind === 'requester' && rec.rounds === 0) ref.send({ type: 'deal.start', now });
      else if (ref.kind === 'requester' && JOB_TERMINAL.includes(rec.state as JobState)) {
        this.asked.delete(rec.id!);
        await this.retire(id, rec);
      }
      else if (ref.kind === 'provider' && PROVIDER_TERMINAL.includes(rec.state as ProviderDealState)) await this.retire(id, rec);
      else if (ref.kind === 'allocation' && ALLOCATION_TERMINAL.includes(rec.state as AllocationState)) {
        this.deps.ledger.release(rec.allocationId!); // harmless when it was released already
        this.deliver(providerActorId(rec.allocationId!), { type: 'allocation.ended', allocationId: rec.allocationId!, state: rec.state!, now });
        await this.retire(id, rec);
      }
    }
  }

  /** A job's process group that outlived the node that started it (a SIGKILLed node): ends it. */
  async #killOrphan(allocationId: string): Promise<void> {
    const noted = await this.output.notedPid(allocationId);
    if (!noted) return;
    if (noted.start !== null && startTimeOf(noted.pid) === noted.start && killGroup(noted.pid)) {
      this.deps.log.warn({ allocation: allocationId, pid: noted.pid }, `ended the job process group ${noted.pid} of allocation ${allocationId}, left running by the node's previous process`);
    }
    await this.output.forgetPid(allocationId);
  }

  /** First step of a stop: no new actors, timers or heartbeats (the supervisor then stops the actors). */
  quiesce(): void {
    this.#stopped = true;
    clearInterval(this.#heartbeat);
    for (const id of [...this.#timers.keys()]) this.cancelTimers(id);
    for (const run of this.#inbound.splice(0)) void run; // queued messages die with the node, as unread ones do
  }

  /** Last step of a stop: a job must not outlive its node (the allocation finds out when the node starts again). */
  stop(): void {
    this.quiesce();
    for (const e of this.executions.values()) e.cancel();
    for (const id of this.starting) this.cancelled.add(id);
  }

  // ---- inbound messages wait for recovery ------------------------------------------------------------------------

  readonly #inbound: (() => void)[] = [];
  #recovered = false;

  /** Runs `handle` now, or, before the unfinished deals are recovered, once they are (in arrival order). */
  whenRecovered(handle: () => void): void {
    if (this.#recovered) return handle();
    if (this.#stopped) return;
    if (this.#inbound.length >= MAX_QUEUED_INBOUND) {
      this.deps.log.warn({ queued: this.#inbound.length }, 'deal messages arrive faster than the node can recover its deals; dropping one');
      return;
    }
    this.#inbound.push(handle);
  }

  /** Allocations whose execution was asked to stop before it had started, and those starting now. */
  readonly cancelled = new Set<string>();
  readonly starting = new Set<string>();
}
