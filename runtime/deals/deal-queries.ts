/**
 * What the API and the CLI read of the deals on this node: a job's record, the jobs, the allocations, a page of
 * output. A live actor answers with its current record; an ended one's record is read from the store, where it
 * was saved when the actor ended.
 */
import type { AllocationRecordView } from '../../machines/allocation.messages.ts';
import { allocationActorId, requesterActorId } from '../../machines/deal.ids.ts';
import { parseJobId } from '../../machines/job.ts';
import type { JobRecord } from '../../machines/requester.messages.ts';
import type { NetworkService } from '../net/network-service.ts';
import type { DexieEventLog } from '../store/dexie-event-log.ts';
import { UnknownDealError } from './deal-errors.ts';
import type { DealRegistry } from './deal-registry.ts';
import type { OutputLog, OutputPage } from './output-log.ts';

export interface DealQueriesDeps {
  readonly registry: DealRegistry;
  readonly store: DexieEventLog;
  readonly output: OutputLog;
  readonly net: () => NetworkService | undefined;
}

/** A page of a job's output, with where it came from (`local`, `none`, or the provider's peer id). */
export type LogsPage = OutputPage & { source: string; ended: boolean };

export class DealQueries {
  constructor(private readonly deps: DealQueriesDeps) {}

  async job(id: string): Promise<JobRecord> {
    const jobId = parseJobId(id);
    if (!jobId) throw new UnknownDealError(`"${id}" is not a job id`);
    const rec = await this.#record<JobRecord>(requesterActorId(jobId));
    if (!rec) throw new UnknownDealError(`no job ${id} on this node; \`jobs\` lists them`);
    return rec;
  }

  /** Every job this node asked for: the live ones and those that ended, oldest first. */
  async listJobs(): Promise<JobRecord[]> {
    const ended = (await this.deps.store.metaWithPrefix<JobRecord>('job/')).map((r) => r.value);
    const live = await Promise.all(this.deps.registry.ids('requester').map((id) => this.#record<JobRecord>(id).catch(() => undefined)));
    const byId = new Map<string, JobRecord>();
    for (const r of [...ended, ...live]) if (r) byId.set(r.id, r);
    return [...byId.values()].sort((a, b) => a.createdAt - b.createdAt);
  }

  /** Allocations on this node: the live ones and those that ended. */
  async listAllocations(): Promise<AllocationRecordView[]> {
    const ended = (await this.deps.store.metaWithPrefix<AllocationRecordView>('allocation/')).map((r) => r.value);
    const live = await Promise.all(this.deps.registry.ids('allocation').map((id) => this.#live<AllocationRecordView>(id)));
    const byId = new Map<string, AllocationRecordView>();
    for (const r of [...ended, ...live]) if (r) byId.set(r.allocationId, r);
    return [...byId.values()];
  }

  /** One allocation's record: live, or as it ended; undefined when it never ran here. */
  async allocation(allocationId: string): Promise<AllocationRecordView | undefined> {
    const id = allocationActorId(allocationId);
    return (await this.#live<AllocationRecordView>(id)) ?? (await this.deps.store.getMeta<AllocationRecordView>(id));
  }

  /** A page of output: of an allocation that ran here, or of a job this node asked for (fetched from its provider). */
  async logs(id: string, offset: number): Promise<LogsPage> {
    const { output } = this.deps;
    if (await output.exists(id)) {
      const page = await output.read(id, offset);
      const live = this.deps.registry.has(allocationActorId(id));
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
