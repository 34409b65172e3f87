/**
 * An array job's negotiation (machines/array.machine.ts): its context, record and intents, the draft its steps
 * (array.rules.ts) write into, and the instance states, kept as one character per index.
 */
import { type PendingTimers, timerBook } from './deal.timers.ts';
import { RecordDraft } from './draft.ts';
import { DEFAULT_INSTANCE_RETRIES } from './job.ts';
import type { RoundBid } from './requester.context.ts';
import type { JobRecord, JobState, RequesterInput, RequesterIntent } from './requester.messages.ts';

/** One provider's part of the array job: a bid taken, from its commit until it is released or lost. */
export interface ArrayDeal {
  readonly provider: string;
  readonly nonce: number;
  readonly slots: number;
  readonly phase: 'committing' | 'allocating' | 'running';
  readonly allocationId: string | null;
  /** Indexes handed to it and not reported back. */
  readonly inflight: readonly number[];
  /** When the provider last said anything (or the step began): for the step timeouts and loss. */
  readonly since: number;
  /** Its place in `record.deals`. */
  readonly n: number;
}

export interface InstanceCounts {
  readonly total: number;
  readonly queued: number;
  readonly running: number;
  readonly completed: number;
  readonly failed: number;
}

/** One deal of the job, as `status` shows it. */
export interface ArrayDealView {
  readonly provider: string;
  readonly nonce: number;
  readonly slots: number;
  readonly allocationId: string | null;
  readonly state: ArrayDeal['phase'] | 'released' | 'lost' | 'refused' | 'cancelled';
  readonly completed: number;
  readonly message: string;
}

/** Why an index failed, the last time it did. */
export interface InstanceFailure {
  readonly attempts: number;
  readonly exitCode: number | null;
  readonly message: string;
  /** The `record.deals` entry it failed on. */
  readonly deal: number;
}

export interface ArrayRecord extends JobRecord {
  readonly count: number;
  readonly instances: InstanceCounts;
  readonly deals: readonly ArrayDealView[];
  /** One character per index: q queued, r running (handed to a provider), c completed, f failed for good. */
  readonly instanceStates: string;
  /** Per index, the `deals` entry that completed it; -1 while it has not. */
  readonly ranOn: readonly number[];
  /** Indexes that failed at least once, by index. */
  readonly failures: Readonly<Record<string, InstanceFailure>>;
  /** Reports of an index already counted completed (a provider lost, then heard from): counted once, ignored. */
  readonly duplicates: number;
}

export interface ArrayContext {
  readonly input: RequesterInput;
  readonly nonce: number;
  readonly candidates: readonly string[] | null;
  readonly open: boolean;
  readonly bids: readonly RoundBid[];
  /** Providers that declined in the current round. */
  readonly declined: readonly string[];
  /** Indexes never handed out are `cursor`..count-1; those handed back wait here first. */
  readonly cursor: number;
  readonly requeued: readonly number[];
  /** Failures so far per index (`retries` more are allowed). */
  readonly attempts: Readonly<Record<string, number>>;
  /** A provider an index failed on: given to another one where there is one. */
  readonly avoid: Readonly<Record<string, string>>;
  /**
   * Per index, the `record.deals` entry it was last handed to (-1: never): a provider's report of an index counts
   * only from the deal that was given it, so no provider can claim instances it was never sent.
   */
  readonly handedTo?: readonly number[];
  readonly deals: Readonly<Record<string, ArrayDeal>>;
  /** No round before then (backoff after a round that placed nothing). */
  readonly retryAt: number;
  /** Rounds in a row that placed nothing. */
  readonly idleRounds: number;
  /** When the latest round was asked (a round for more room is asked at most every MORE_ROOM_MS). */
  readonly lastRoundAt?: number;
  readonly timers: PendingTimers;
  readonly pendingReply: string | null;
  readonly record: ArrayRecord;
}

export type ArrayIntent =
  | RequesterIntent
  | { readonly type: 'bid.request.send'; readonly dealId: string; readonly nonce: number; readonly job: RequesterInput['job']; readonly expiresAt: number; readonly count: number }
  | { readonly type: 'deal.allocate.send'; readonly to: string; readonly dealId: string; readonly nonce: number; readonly assign: readonly number[] }
  | { readonly type: 'batch.assign.send'; readonly to: string; readonly dealId: string; readonly nonce: number; readonly indexes: readonly number[] }
  | { readonly type: 'batch.release.send'; readonly to: string; readonly dealId: string; readonly nonce: number };

export const arrayTimers = timerBook({ slackMs: 1_000 });
/** How often deals are checked for a step that took too long or a provider gone silent. */
export const TICK_MS = 1_000;

export const dealKeyOf = (provider: string, nonce: number) => `${nonce}@${provider}`;

export class ArrayDraft extends RecordDraft<JobState, ArrayRecord, ArrayContext, ArrayIntent> {
  constructor(ctx: ArrayContext, now: number) {
    super(ctx, now, arrayTimers);
  }

  /** A step people should see: a history entry when the state or message changed, else the record alone. */
  progress(state: JobState, message: string): this {
    const last = this.ctx.record.history.at(-1);
    if (last && last.state === state && last.message === message) return this.record({ state, message });
    return this.entry(state, message);
  }
}

export function begin(c: ArrayContext, e: { readonly type: string; readonly now: number }): ArrayDraft {
  return new ArrayDraft(c, e.now).timers({ timers: arrayTimers.afterFire(c.timers, e), intents: [] });
}

export function initialContext(input: RequesterInput): ArrayContext {
  const { job, dealId, createdAt, deadline } = input;
  const total = job.count ?? 1;
  return {
    input,
    nonce: 0,
    candidates: null,
    open: false,
    bids: [],
    declined: [],
    cursor: 0,
    requeued: [],
    attempts: {},
    avoid: {},
    deals: {},
    retryAt: 0,
    idleRounds: 0,
    timers: {},
    pendingReply: null,
    record: {
      id: dealId,
      name: job.name,
      executor: job.executor,
      state: 'requesting',
      provider: null,
      allocationId: null,
      allocations: [],
      bids: [],
      declines: [],
      rounds: 0,
      exitCode: null,
      message: 'not started',
      createdAt,
      updatedAt: createdAt,
      startedAt: null,
      endedAt: null,
      deadline,
      history: [],
      count: total,
      instances: { total, queued: total, running: 0, completed: 0, failed: 0 },
      deals: [],
      instanceStates: 'q'.repeat(total),
      ranOn: new Array<number>(total).fill(-1),
      failures: {},
      duplicates: 0,
    },
  };
}

export const total = (c: ArrayContext) => c.record.count;
export const queuedCount = (c: ArrayContext) => c.requeued.length + (total(c) - c.cursor);
export const liveDeals = (c: ArrayContext) => Object.values(c.deals);
export const retriesOf = (c: ArrayContext) => c.input.job.retries ?? DEFAULT_INSTANCE_RETRIES;
/** When the queue may wait for room until: the job's queueTimeout, else its placement deadline. */
export const queueDeadline = (c: ArrayContext) => c.input.queueDeadline ?? c.input.deadline;

export const allCompleted = (c: ArrayContext) => c.record.instances.completed === total(c);
export const anyFailed = (c: ArrayContext) => c.record.instances.failed > 0;
