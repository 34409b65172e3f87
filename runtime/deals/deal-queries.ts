/**
 * What the API and the CLI read of the deals on this node: a job's record, the jobs, the allocations, a page of
 * output. A live actor answers with its current record; an ended one's record is read from the store, where it
 * was saved when the actor ended.
 */
import type { AllocationRecordView } from '../../machines/allocation.messages.ts';
import { allocationActorId, requesterActorId } from '../../machines/deal.ids.ts';
import { parseJobId } from '../../machines/job.ts';
import { type EnsembleRecord, parsePartDealId, partDealId } from '../../machines/ensemble.messages.ts';
import type { JobRecord } from '../../machines/requester.messages.ts';
import { ensembleActorId } from './ensembles.ts';
import type { NetworkService } from '../net/network-service.ts';
import type { DexieEventLog } from '../store/dexie-event-log.ts';
import { UnknownDealError } from './deal-errors.ts';
import type { DealRegistry } from './deal-registry.ts';
import type { OutputLog, OutputPage } from './output-log.ts';
import type { ArrayRecord } from '../../machines/array.rules.ts';
import { instanceOutputId } from './batch-runs.ts';

export interface DealQueriesDeps {
  readonly registry: DealRegistry;
  readonly store: DexieEventLog;
  readonly output: OutputLog;
  readonly net: () => NetworkService | undefined;
}

/** A page of a job's output, with where it came from (`local`, `none`, or the provider's peer id). */
export type LogsPage = OutputPage & { source: string; ended: boolean };

/** One instance of an array job as `status --index` shows it. */
export interface InstanceView {
  readonly job: string;
  readonly index: number;
  readonly count: number;
  readonly state: 'queued' | 'running' | 'completed' | 'failed';
  /** Times it failed (its retries count them). */
  readonly attempts: number;
  /** Where it completed, or last failed; null while it has not ended anywhere. */
  readonly provider: string | null;
  readonly allocationId: string | null;
  readonly exitCode: number | null;
  readonly message: string;
}

const INSTANCE_STATES = { q: 'queued', r: 'running', c: 'completed', f: 'failed' } as const;

/** The instance `index` of an array job's record. */
export function instanceOf(rec: JobRecord | EnsembleRecord, index: number): InstanceView {
  if (!('count' in rec)) throw new UnknownDealError(`job ${rec.id} is not an array job: it has no instances to name with --index`);
  const a = rec as ArrayRecord;
  if (!Number.isInteger(index) || index < 0 || index >= a.count) throw new UnknownDealError(`job ${a.id} has instances 0 to ${a.count - 1}; there is no instance ${index}`);
  const state = INSTANCE_STATES[a.instanceStates[index] as keyof typeof INSTANCE_STATES];
  const failure = a.failures[index];
  const n = state === 'completed' ? a.ranOn[index]! : failure ? failure.deal : -1;
  const deal = n >= 0 ? a.deals[n] : undefined;
  const message = state === 'completed' ? 'completed' : failure ? failure.message : state === 'running' ? 'handed to a provider; not ended yet' : 'waiting for a slot';
  return {
    job: a.id, index, count: a.count, state, attempts: failure?.attempts ?? 0,
    provider: deal?.provider ?? null, allocationId: deal?.allocationId ?? null,
    exitCode: state === 'completed' ? 0 : (failure?.exitCode ?? null), message,
  };
}

/** A record as lists and `status` show it: an array job's per-index tables are left out (`--index` reads them). */
export function publicRecord<R extends JobRecord | EnsembleRecord>(r: R): R {
  if (!('instanceStates' in r)) return r;
  const { instanceStates: _s, ranOn: _r, failures, ...rest } = r as unknown as ArrayRecord;
  const failed = Object.entries(failures).slice(0, 20).map(([index, f]) => ({ index: Number(index), ...f }));
  return { ...rest, failures: failed } as unknown as R;
}

export class DealQueries {
  constructor(private readonly deps: DealQueriesDeps) {}

  /** A job's record, or an ensemble's (its parts' negotiations are jobs `<id>@<part>` of their own). */
  async job(id: string): Promise<JobRecord | EnsembleRecord> {
    const jobId = parseJobId(id);
    if (!jobId) throw new UnknownDealError(`"${id}" is not a job id`);
    const rec = (await this.#record<EnsembleRecord>(ensembleActorId(jobId))) ?? (await this.#record<JobRecord>(requesterActorId(jobId)));
    if (!rec) throw new UnknownDealError(`no job ${id} on this node; \`jobs\` lists them`);
    return rec;
  }

  /** Every job and ensemble this node asked for (not the parts' own negotiations): live and ended, oldest first. */
  async listJobs(): Promise<(JobRecord | EnsembleRecord)[]> {
    const ended = [...(await this.deps.store.metaWithPrefix<JobRecord>('job/')), ...(await this.deps.store.metaWithPrefix<EnsembleRecord>('ensemble/'))].map((r) => r.value);
    const ids = [...this.deps.registry.ids('requester'), ...this.deps.registry.ids('array'), ...this.deps.registry.ids('ensemble')];
    const live = await Promise.all(ids.map((id) => this.#record<JobRecord | EnsembleRecord>(id).catch(() => undefined)));
    const byId = new Map<string, JobRecord | EnsembleRecord>();
    for (const r of [...ended, ...live]) if (r && parsePartDealId(r.id) === null) byId.set(r.id, publicRecord(r));
    return [...byId.values()].sort((a, b) => a.createdAt - b.createdAt);
  }

  /** Allocations on this node: the live ones and those that ended. */
  async listAllocations(): Promise<AllocationRecordView[]> {
    const ended = (await this.deps.store.metaWithPrefix<AllocationRecordView>('allocation/')).map((r) => r.value);
    const live = await Promise.all([...this.deps.registry.ids('allocation'), ...this.deps.registry.ids('batch')].map((id) => this.#live<AllocationRecordView>(id)));
    const byId = new Map<string, AllocationRecordView>();
    for (const r of [...ended, ...live]) if (r) byId.set(r.allocationId, r);
    return [...byId.values()];
  }

  /** One allocation's record: live, or as it ended; undefined when it never ran here. */
  async allocation(allocationId: string): Promise<AllocationRecordView | undefined> {
    const id = allocationActorId(allocationId);
    return (await this.#live<AllocationRecordView>(id)) ?? (await this.deps.store.getMeta<AllocationRecordView>(id));
  }

  /** One instance of an array job: its state, where it ran, how it ended. */
  async instance(id: string, index: number): Promise<InstanceView> {
    return instanceOf(await this.job(id), index);
  }

  /** A page of output: of an allocation that ran here, or of a job this node asked for (fetched from its provider). */
  async logs(id: string, offset: number, part?: string, index?: number): Promise<LogsPage> {
    const { output } = this.deps;
    if (index !== undefined) {
      const inst = await this.instance(id, index);
      const ended = inst.state === 'completed' || inst.state === 'failed';
      if (!inst.provider || !inst.allocationId) return { chunks: [], next: offset, eof: true, source: 'none', ended };
      return this.#fetchLogs(inst.provider, instanceOutputId(inst.allocationId, index), offset, ended);
    }
    if (part === undefined && (await output.exists(id))) {
      const page = await output.read(id, offset);
      const live = this.deps.registry.has(allocationActorId(id));
      return { ...page, source: 'local', ended: !live };
    }
    const found = await this.job(id);
    let rec: JobRecord;
    if ('kind' in found && found.kind === 'ensemble') {
      // an ensemble's output is its parts': one part by name, or the only one
      const names = found.parts.map((p) => p.name);
      const name = part ?? (names.length === 1 ? names[0] : undefined);
      if (name === undefined) throw new UnknownDealError(`ensemble ${id} has ${names.length} parts; name one with --part (${names.join(', ')})`);
      if (!names.includes(name)) throw new UnknownDealError(`ensemble ${id} has no part ${name}; its parts: ${names.join(', ')}`);
      // its current negotiation (recovery may have started the part again under a new one)
      const dealId = found.parts.find((p) => p.name === name)?.dealId ?? partDealId(id, name);
      rec = (await this.job(dealId)) as JobRecord;
    } else if (part !== undefined) {
      throw new UnknownDealError(`job ${id} is not an ensemble: it has no parts to name with --part`);
    } else rec = found as JobRecord;
    const ended = rec.endedAt !== null;
    if ('count' in rec) throw new UnknownDealError(`job ${id} is an array job of ${(rec as ArrayRecord).count} instances; name one with --index`);
    if (!rec.provider || !rec.allocationId) return { chunks: [], next: offset, eof: true, source: 'none', ended };
    return this.#fetchLogs(rec.provider, rec.allocationId, offset, ended);
  }

  async #fetchLogs(provider: string, allocationId: string, offset: number, ended: boolean): Promise<LogsPage> {
    const net = this.deps.net();
    if (!net) throw new Error('the network is not running');
    const r = await net.router.request<OutputPage>({ peer: provider, inbox: 'provider' }, 'logs.request', { allocationId, offset }, { from: 'requester', timeoutMs: 10_000 });
    return { ...r.envelope.payload, source: provider, ended };
  }

  /** An actor's record: live, or, when it ended (also while we asked), as it was saved. */
  async #record<R>(actorId: string): Promise<R | undefined> {
    const ref = await this.deps.registry.ref(actorId);
    if (ref) {
      try {
        return (await ref.view()).context as R;
      } catch {
        // it ended while we asked: its record is stored
      }
    }
    return this.deps.store.getMeta<R>(actorId);
  }

  /** A live actor's record (what its kind presents as its context); undefined when it is not running. */
  async #live<R>(actorId: string): Promise<R | undefined> {
    const ref = await this.deps.registry.ref(actorId);
    return ref ? ((await ref.view().catch(() => undefined))?.context as R | undefined) : undefined;
  }
}
