/**
 * Deals at start: every deal actor that had not ended when the node stopped is brought back from its log and
 * told so, and what the node died before carrying out is done now. Deal messages from peers that arrive
 * meanwhile wait (in arrival order, up to MAX_QUEUED_INBOUND) until the deals are back.
 */
import { mkdir } from 'node:fs/promises';
import type { EnsembleInput, EnsembleRecord } from '../../machines/ensemble.messages.ts';
import type { AllocationInput, AllocationRecordView } from '../../machines/allocation.messages.ts';
import { ALLOCATION_TERMINAL, JOB_TERMINAL, PROVIDER_TERMINAL } from '../../machines/deal.constants.ts';
import { allocationActorId, parseDealKey, providerActorId } from '../../machines/deal.ids.ts';
import type { ProviderInput, ProviderRecord } from '../../machines/provider.messages.ts';
import type { JobRecord, RequesterInput } from '../../machines/requester.messages.ts';
import { killGroup, startTimeOf } from '../executors/process-group.ts';
import type { DealRef } from './deal-registry.ts';
import type { DealService } from './deal-service.ts';

/** Deal messages held while the node recovers its deals at start; more are dropped (their senders retry). */
export const MAX_QUEUED_INBOUND = 10_000;

const DEAL_KINDS: ReadonlySet<string> = new Set(['requester', 'provider', 'allocation', 'ensemble', 'array', 'batch']);

/** How often, and how far apart, a recovered job's provider is asked for its allocation until the ask goes out. */
const QUERY_ATTEMPTS = 20;
const QUERY_RETRY_MS = 250;

export class DealRecovery {
  readonly #inbound: (() => void)[] = [];
  #recovered = false;
  #closed = false;

  constructor(private readonly svc: DealService) {}

  /** Brings back every deal actor that had not ended, then runs the messages that waited; resolves with their count. */
  async recover(): Promise<number> {
    const { svc } = this;
    const { store } = svc.deps;
    await mkdir(svc.output.dir, { recursive: true, mode: 0o700 }); // before any job writes output
    const now = svc.now();
    let n = 0;
    // an ended actor's record is saved under its id: one query per kind, not one read per actor ever made
    const ended = new Set((await Promise.all(['job/', 'provider/', 'allocation/', 'ensemble/'].map((k) => store.metaKeysWithPrefix(k)))).flat());
    for (const rec of await store.actors()) {
      if (!DEAL_KINDS.has(rec.kind)) continue;
      // ended before this runtime let go of ended actors' rows (or a crash came between record and forget)
      if (ended.has(rec.id)) {
        await store.forget(rec.id);
        continue;
      }
      n += 1;
      // the inputs were logged by this runtime when it spawned the actors
      if (rec.kind === 'requester' || rec.kind === 'array') {
        const input = rec.input as RequesterInput;
        svc.requests.open(input.dealId, input.job);
        void svc.registry.spawn(rec.id, rec.kind, input, { type: 'deal.recovered', now });
      } else if (rec.kind === 'provider') {
        const input = rec.input as ProviderInput;
        svc.provisions.open(input);
        void svc.registry.spawn(rec.id, 'provider', input, { type: 'deal.recovered', now });
      } else if (rec.kind === 'ensemble') {
        void svc.registry.spawn(rec.id, 'ensemble', rec.input as EnsembleInput, { type: 'deal.recovered', now });
      } else if (rec.kind === 'batch') {
        // its instances' runners died with the node's process (they end when their parent does)
        void svc.registry.spawn(rec.id, 'batch', rec.input as AllocationInput, { type: 'allocation.recovered', now });
      } else {
        const input = rec.input as AllocationInput;
        await this.#killOrphan(input.allocationId);
        void svc.registry.spawn(rec.id, 'allocation', input, { type: 'allocation.recovered', now });
      }
    }
    await svc.registry.started();
    await this.#settle();
    this.#recovered = true;
    for (const run of this.#inbound.splice(0)) run();
    return n;
  }

  /** Runs `handle` now, or, before the unfinished deals are recovered, once they are (in arrival order). */
  whenRecovered(handle: () => void): void {
    if (this.#recovered) return handle();
    if (this.#closed) return;
    if (this.#inbound.length >= MAX_QUEUED_INBOUND) {
      this.svc.deps.log.warn({ queued: this.#inbound.length }, 'deal messages arrive faster than the node can recover its deals; dropping one');
      return;
    }
    this.#inbound.push(handle);
  }

  /** A stopping node: the messages still waiting die with it, as unread ones do. */
  close(): void {
    this.#closed = true;
    this.#inbound.length = 0;
  }

  /**
   * Actors whose last logged event ended them, but whose ending was not carried out (the node died between the
   * two: replayed events do not run their effects again), are ended now; a job never started is started.
   */
  async #settle(): Promise<void> {
    const { svc } = this;
    const now = svc.now();
    // the allocations that came back from the log (live, or ended and settled below)
    const allocations = new Set([...svc.registry.ids('allocation'), ...svc.registry.ids('batch')]);
    for (const [id, p] of this.svc.registry.entries()) {
      const ref = await p;
      // what each kind presents as its context is its record
      const rec = ref && (await ref.view().catch(() => undefined))?.context;
      if (!ref || !rec) continue;
      if (ref.kind === 'requester') await this.#settleJob(id, ref, rec as JobRecord, now);
      else if (ref.kind === 'array') {
        const job = rec as JobRecord;
        svc.requests.recovered(job.id, [...(job.bids ?? []).map((b) => b.provider), ...(job.declines ?? []).map((d) => d.provider), ...((job as { deals?: { provider: string }[] }).deals ?? []).map((d) => d.provider)]);
        if (job.rounds === 0) ref.send({ type: 'deal.start', now });
        else if (JOB_TERMINAL.includes(job.state)) {
          svc.requests.close(job.id);
          await svc.retire(id, job);
        }
      }
      else if (ref.kind === 'provider') {
        const deal = rec as ProviderRecord;
        if (PROVIDER_TERMINAL.includes(deal.state)) {
          // its unlock may have died with the old process, between its last event and that event's effects (the
          // simulator found the lock held until it expired); harmless when it was unlocked (or allocated) already
          svc.deps.ledger.unlock(deal.key);
          await this.svc.retire(id, deal);
        } else if (deal.state === 'allocated' && !allocations.has(allocationActorId(deal.key))) await this.#settleAllocated(deal, now);
      } else if (ref.kind === 'allocation' || ref.kind === 'batch') await this.#settleAllocation(id, rec as AllocationRecordView, now);
      else if (ref.kind === 'ensemble') {
        const ens = rec as EnsembleRecord;
        if (ens.endedAt !== null) await this.svc.retire(id, ens);
        else if (ens.history.length === 0) ref.send({ type: 'deal.start', now });
      }
    }
  }

  /**
   * A provider deal that took its allocation, with no allocation to wait for: the allocation ended and was retired,
   * or was never spawned, and what would have told the deal and the ledger died with the old process (the node died
   * between the allocation's end and the deal's hearing of it, or between the deal's event and its spawn; found by
   * the simulator: the resources stayed allocated for good). Its resources go back; the deal hears how it ended.
   */
  async #settleAllocated(deal: ProviderRecord, now: number): Promise<void> {
    const { svc } = this;
    const ended = await svc.queries.allocation(deal.key).catch(() => undefined);
    const state = ended && ALLOCATION_TERMINAL.includes(ended.state) ? ended.state : 'failed';
    svc.deps.ledger.release(deal.key); // harmless when it was released already
    svc.deliver(providerActorId(deal.key), { type: 'allocation.ended', allocationId: deal.key, state, now });
  }

  async #settleJob(id: string, ref: DealRef, rec: JobRecord, now: number): Promise<void> {
    const { svc } = this;
    // the peers it had asked: their answers may still come
    const peers = [rec.provider, ...(rec.bids ?? []).map((b) => b.provider), ...(rec.declines ?? []).map((d) => d.provider)];
    svc.requests.recovered(rec.id, peers.filter((x): x is string => typeof x === 'string'));
    const ended = JOB_TERMINAL.includes(rec.state);
    if (rec.provider && rec.allocationId && !ended) {
      // its allocation may have ended while this node was down, and a final status is sent only once
      const key = parseDealKey(rec.allocationId);
      if (key) this.#query(rec.provider, { dealId: rec.id, nonce: key.nonce, allocationId: rec.allocationId }, 0);
    }
    if (rec.rounds === 0) ref.send({ type: 'deal.start', now });
    else if (ended) {
      svc.requests.close(rec.id);
      await svc.retire(id, rec);
    }
  }

  async #settleAllocation(id: string, rec: AllocationRecordView, now: number): Promise<void> {
    if (!ALLOCATION_TERMINAL.includes(rec.state)) return;
    const { svc } = this;
    svc.deps.ledger.release(rec.allocationId); // harmless when it was released already
    svc.deliver(providerActorId(rec.allocationId), { type: 'allocation.ended', allocationId: rec.allocationId, state: rec.state, now });
    await svc.retire(id, rec);
  }

  /**
   * Asks the provider of a recovered job how its allocation is. Right after a start the provider may not be
   * reachable yet (its address comes with discovery): asked again every QUERY_RETRY_MS, up to QUERY_ATTEMPTS times,
   * until the query could be sent; otherwise the job would take its provider's silence for a loss and run again.
   */
  #query(provider: string, payload: { dealId: string; nonce: number; allocationId: string }, attempt: number): void {
    void this.svc.sendTo(provider, 'provider', 'allocation.query', payload).then((sent) => {
      if (sent || this.#closed || attempt + 1 >= QUERY_ATTEMPTS) return;
      this.svc.clock.after(QUERY_RETRY_MS, () => this.#query(provider, payload, attempt + 1));
    });
  }

  /** A job's process group that outlived the node that started it (a SIGKILLed node): ends it. */
  async #killOrphan(allocationId: string): Promise<void> {
    const { output, deps } = this.svc;
    const noted = await output.notedPid(allocationId);
    if (!noted) return;
    if (noted.start !== null && startTimeOf(noted.pid) === noted.start && killGroup(noted.pid)) {
      deps.log.warn({ allocation: allocationId, pid: noted.pid }, `ended the job process group ${noted.pid} of allocation ${allocationId}, left running by the node's previous process`);
    }
    await output.forgetPid(allocationId);
  }
}
