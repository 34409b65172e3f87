/**
 * An array job's allocation on a provider (actor `allocation/<key>`, kind `batch`): the instances its requester
 * hands it (`deal.allocate`'s `assign`, then `batch.assign`) run `slots` at a time; the ones that ended are reported
 * together (`batch.progress`, at most ARRAY_DEFAULTS.reportMs after the first of them ended), and the allocation ends
 * once the requester says no more will come (`batch.release`) and those it has ran, or when it is cancelled. The
 * requester counts each instance once; this side only runs what it is given, never the same index twice at once.
 * Pure: effects leave as emitted intents; time arrives as `now`.
 */
import { enqueueActions, setup } from 'xstate';
import type { AllocationInput, AllocationRecordView, ExecutionOutcome } from './allocation.messages.ts';
import type { At, TimerFiredEvent } from './deal.events.ts';
import { ARRAY_DEFAULTS } from './deal.constants.ts';
import type { AllocationState, InstanceResult } from './deal.wire.ts';
import type { JobSpec } from './job.ts';

/** Bumped whenever the context shape changes, so an old snapshot is refused instead of misread. */
export const BATCH_MACHINE_VERSION = 1;

export interface BatchContext {
  readonly input: AllocationInput;
  /** Assigned, not started yet, in the order given. */
  readonly queue: readonly number[];
  /** Started, not ended. */
  readonly running: readonly number[];
  /** Ended since the last report. */
  readonly unreported: readonly InstanceResult[];
  /** The report timer is pending. */
  readonly reportPending: boolean;
  /** The requester sent `batch.release`: nothing more will come. */
  readonly released: boolean;
  /** When the requester last gave work (or the allocation started): the idle timer counts from it. */
  readonly lastWorkAt: number;
  readonly counts: { readonly completed: number; readonly failed: number };
  readonly record: AllocationRecordView;
}

export interface BatchAssignEvent extends At {
  readonly type: 'batch.assign';
  readonly from: string;
  readonly indexes: readonly number[];
}
export interface BatchReleaseEvent extends At {
  readonly type: 'batch.release';
  readonly from: string;
}
export interface InstanceEndedEvent extends At {
  readonly type: 'instance.ended';
  readonly index: number;
  readonly outcome: ExecutionOutcome;
}
/** Several instances that ended in one turn of the runtime (one logged event instead of one each). */
export interface InstancesEndedEvent extends At {
  readonly type: 'instances.ended';
  readonly ended: readonly { readonly index: number; readonly outcome: ExecutionOutcome }[];
}
export type BatchEvent =
  | InstancesEndedEvent
  | ({ readonly type: 'allocation.start' } & At)
  | ({ readonly type: 'allocation.cancel' } & At)
  | ({ readonly type: 'allocation.recovered' } & At)
  | BatchAssignEvent
  | BatchReleaseEvent
  | InstanceEndedEvent
  | TimerFiredEvent;

export type BatchIntent =
  /** Run instance `index` of the job: its env gets DMS_INDEX and DMS_COUNT; its output is kept as `<allocationId>:<index>`. */
  | { readonly type: 'instance.run'; readonly allocationId: string; readonly requester: string; readonly index: number; readonly job: JobSpec; readonly slots: number }
  | { readonly type: 'instance.cancel'; readonly allocationId: string; readonly index: number }
  | { readonly type: 'batch.progress.send'; readonly to: string; readonly dealId: string; readonly nonce: number; readonly allocationId: string; readonly results: readonly InstanceResult[]; readonly running: number }
  | { readonly type: 'status.push'; readonly to: string; readonly status: { readonly dealId: string; readonly nonce: number; readonly allocationId: string; readonly state: AllocationState; readonly exitCode: number | null; readonly message: string } }
  | { readonly type: 'timer.schedule'; readonly key: string; readonly at: number }
  | { readonly type: 'timer.cancel'; readonly key: string }
  | { readonly type: 'ledger.release'; readonly allocationId: string }
  | { readonly type: 'allocation.ended'; readonly record: AllocationRecordView }
  | { readonly type: 'log.write'; readonly level: 'debug' | 'info' | 'warn'; readonly message: string; readonly data?: Record<string, unknown> };

const REPORT = 'report';
const IDLE = 'idle';
/** Most results in one report (the wire's MAX_BATCH_INDEXES is larger). */
const MAX_REPORT = 1024;

interface Draft {
  ctx: BatchContext;
  readonly out: BatchIntent[];
  readonly now: number;
}

function slotsOf(c: BatchContext): number {
  return Math.max(1, c.input.slots ?? 1);
}

/** Starts queued instances while a slot is free. */
function fill(d: Draft): void {
  const { ctx } = d;
  const free = slotsOf(ctx) - ctx.running.length;
  if (free <= 0 || ctx.queue.length === 0) return;
  const start = ctx.queue.slice(0, free);
  d.ctx = { ...ctx, queue: ctx.queue.slice(start.length), running: [...ctx.running, ...start] };
  const { allocationId, requester, job } = ctx.input;
  for (const index of start) d.out.push({ type: 'instance.run', allocationId, requester, index, job, slots: slotsOf(ctx) });
}

/** Sends what ended since the last report, and says how many run (also read as a heartbeat). */
function flush(d: Draft): void {
  const { ctx } = d;
  const { dealId, nonce, allocationId, requester } = ctx.input;
  for (let i = 0; i === 0 || i < ctx.unreported.length; i += MAX_REPORT) {
    d.out.push({ type: 'batch.progress.send', to: requester, dealId, nonce, allocationId, results: ctx.unreported.slice(i, i + MAX_REPORT), running: ctx.running.length + ctx.queue.length });
  }
  if (ctx.reportPending) d.out.push({ type: 'timer.cancel', key: REPORT });
  d.ctx = { ...d.ctx, unreported: [], reportPending: false };
}

function note(d: Draft, result: InstanceResult): void {
  const counts = { ...d.ctx.counts };
  if (result.state === 'completed') counts.completed += 1;
  else if (result.state === 'failed') counts.failed += 1;
  d.ctx = { ...d.ctx, unreported: [...d.ctx.unreported, result], counts };
  if (!d.ctx.reportPending) {
    d.out.push({ type: 'timer.schedule', key: REPORT, at: d.now + ARRAY_DEFAULTS.reportMs });
    d.ctx = { ...d.ctx, reportPending: true };
  }
}

function idleTimer(d: Draft): void {
  d.out.push({ type: 'timer.schedule', key: IDLE, at: d.ctx.lastWorkAt + ARRAY_DEFAULTS.idleMs });
}

function statusOf(c: BatchContext, state: AllocationState, message: string): BatchIntent {
  const { dealId, nonce, allocationId, requester } = c.input;
  return { type: 'status.push', to: requester, status: { dealId, nonce, allocationId, state, exitCode: null, message } };
}

function summary(c: BatchContext): string {
  return `${c.counts.completed} instances completed, ${c.counts.failed} failed here`;
}

/** Ends the allocation: the last report, its resources back, its record out. */
function finish(d: Draft, state: 'completed' | 'terminated', why: string): void {
  flush(d);
  const message = `${why}; ${summary(d.ctx)}`;
  const record: AllocationRecordView = { ...d.ctx.record, state, message, endedAt: d.now };
  d.ctx = { ...d.ctx, record };
  d.out.push({ type: 'timer.cancel', key: IDLE }, statusOf(d.ctx, state, message), { type: 'ledger.release', allocationId: d.ctx.input.allocationId }, { type: 'allocation.ended', record });
}

const drained = (c: BatchContext) => c.queue.length === 0 && c.running.length === 0;
const fromRequester = (c: BatchContext, e: BatchEvent) => 'from' in e && e.from === c.input.requester;

type Step = (d: Draft, e: BatchEvent) => void;
type Enqueue = { assign(c: BatchContext): void; emit(i: BatchIntent): void };
function run(enqueue: Enqueue, context: BatchContext, event: BatchEvent, step: Step): void {
  const d: Draft = { ctx: context, out: [], now: event.now };
  step(d, event);
  enqueue.assign(d.ctx);
  for (const i of d.out) enqueue.emit(i);
}

function initial(input: AllocationInput): BatchContext {
  const { allocationId, dealId, requester, job } = input;
  return {
    input,
    queue: [],
    running: [],
    unreported: [],
    reportPending: false,
    released: false,
    lastWorkAt: 0,
    counts: { completed: 0, failed: 0 },
    record: { allocationId, dealId, requester, name: job.name, executor: job.executor, resources: job.resources, state: 'pending', exitCode: null, message: 'allocated', pid: null, createdAt: 0, startedAt: null, endedAt: null, ...(input.grant ? { grant: input.grant } : {}) },
  };
}

/** Adds assigned indexes not already queued or running here. */
function take(d: Draft, indexes: readonly number[]): void {
  const have = new Set([...d.ctx.queue, ...d.ctx.running]);
  const count = d.ctx.input.job.count ?? 1;
  const fresh = indexes.filter((i) => Number.isInteger(i) && i >= 0 && i < count && !have.has(i) && Boolean(have.add(i)));
  d.ctx = { ...d.ctx, queue: [...d.ctx.queue, ...fresh], lastWorkAt: d.now };
}

export const batchMachine = setup({
  types: {} as { context: BatchContext; events: BatchEvent; emitted: BatchIntent; input: AllocationInput },
  guards: {
    fromRequester: ({ context, event }) => fromRequester(context, event),
    doneNow: ({ context }) => context.released && drained(context),
    reportDue: ({ event }) => event.type === 'timer.fired' && event.key === REPORT,
    idleDue: ({ context, event }) => event.type === 'timer.fired' && event.key === IDLE && drained(context) && event.now >= context.lastWorkAt + ARRAY_DEFAULTS.idleMs,
    idleTimer: ({ event }) => event.type === 'timer.fired' && event.key === IDLE,
  },
  actions: {
    start: enqueueActions(({ context, event, enqueue }) =>
      run(enqueue, context, event, (d) => {
        d.ctx = { ...d.ctx, record: { ...d.ctx.record, state: 'running', createdAt: d.ctx.record.createdAt || d.now, startedAt: d.now, message: `running up to ${slotsOf(d.ctx)} instances at once` } };
        take(d, d.ctx.input.assign ?? []);
        d.out.push(statusOf(d.ctx, 'running', d.ctx.record.message));
        fill(d);
        idleTimer(d);
      }),
    ),
    assignMore: enqueueActions(({ context, event, enqueue }) =>
      run(enqueue, context, event, (d, e) => {
        if (e.type !== 'batch.assign') return;
        take(d, e.indexes);
        fill(d);
        idleTimer(d);
      }),
    ),
    ended: enqueueActions(({ context, event, enqueue }) =>
      run(enqueue, context, event, (d, e) => {
        const ended = e.type === 'instance.ended' ? [{ index: e.index, outcome: e.outcome }] : e.type === 'instances.ended' ? e.ended : [];
        const running = new Set(d.ctx.running);
        const mine = ended.filter((x) => running.delete(x.index));
        if (mine.length === 0) return;
        d.ctx = { ...d.ctx, running: d.ctx.running.filter((i) => running.has(i)) };
        for (const { index, outcome } of mine) {
          const state = outcome.reason === 'completed' ? 'completed' : outcome.reason === 'cancelled' ? 'lost' : 'failed';
          note(d, { index, state, exitCode: outcome.exitCode, message: outcome.message });
        }
        fill(d);
        if (drained(d.ctx)) d.ctx = { ...d.ctx, lastWorkAt: d.now };
        if (drained(d.ctx) && !d.ctx.released) idleTimer(d);
      }),
    ),
    report: enqueueActions(({ context, event, enqueue }) =>
      run(enqueue, { ...context, reportPending: false }, event, (d) => {
        if (d.ctx.unreported.length > 0) flush(d);
      }),
    ),
    release: enqueueActions(({ context, event, enqueue }) => run(enqueue, context, event, (d) => void (d.ctx = { ...d.ctx, released: true }))),
    finishReleased: enqueueActions(({ context, event, enqueue }) => run(enqueue, context, event, (d) => finish(d, 'completed', 'released by its requester'))),
    finishIdle: enqueueActions(({ context, event, enqueue }) => run(enqueue, context, event, (d) => finish(d, 'completed', `its requester gave it no work for ${ARRAY_DEFAULTS.idleMs / 1000} s`))),
    rearmIdle: enqueueActions(({ context, event, enqueue }) => run(enqueue, context, event, (d) => void (drained(d.ctx) ? idleTimer(d) : undefined))),
    cancel: enqueueActions(({ context, event, enqueue }) =>
      run(enqueue, context, event, (d) => {
        const { allocationId } = d.ctx.input;
        for (const index of d.ctx.running) d.out.push({ type: 'instance.cancel', allocationId, index });
        d.ctx = { ...d.ctx, queue: [], running: [] };
        finish(d, 'terminated', 'cancelled by its requester');
      }),
    ),
    // this node stopped while instances ran: they were stopped with it; the requester runs them again
    recover: enqueueActions(({ context, event, enqueue }) =>
      run(enqueue, { ...context, reportPending: false }, event, (d) => {
        // the report timer died with the old process: one is asked for again when there is anything to report
        for (const index of d.ctx.running) note(d, { index, state: 'lost', exitCode: null, message: 'its provider stopped while it ran' });
        if (d.ctx.unreported.length > 0 && !d.ctx.reportPending) {
          d.out.push({ type: 'timer.schedule', key: REPORT, at: d.now + ARRAY_DEFAULTS.reportMs });
          d.ctx = { ...d.ctx, reportPending: true };
        }
        d.ctx = { ...d.ctx, running: [] };
        d.out.push(statusOf(d.ctx, 'running', d.ctx.record.message));
        fill(d);
        idleTimer(d);
      }),
    ),
    ignore: enqueueActions(({ event, enqueue }) => {
      enqueue.emit({ type: 'log.write', level: 'debug', message: `ignored ${event.type}: not from this allocation's requester, or not expected now` });
    }),
  },
}).createMachine({
  id: 'batch',
  context: ({ input }) => initial(input),
  initial: 'pending',
  states: {
    pending: {
      on: {
        'allocation.start': { target: 'running', actions: 'start' },
        'allocation.recovered': { target: 'running', actions: 'start' },
        'allocation.cancel': { target: 'terminated', actions: 'cancel' },
      },
    },
    running: {
      always: { guard: 'doneNow', target: 'completed', actions: 'finishReleased' },
      on: {
        'batch.assign': [{ guard: 'fromRequester', actions: 'assignMore' }, { actions: 'ignore' }],
        'batch.release': [{ guard: 'fromRequester', actions: 'release' }, { actions: 'ignore' }],
        'instance.ended': { actions: 'ended' },
        'instances.ended': { actions: 'ended' },
        'allocation.cancel': { target: 'terminated', actions: 'cancel' },
        'allocation.recovered': { actions: 'recover' },
        'timer.fired': [
          { guard: 'reportDue', actions: 'report' },
          { guard: 'idleDue', target: 'completed', actions: 'finishIdle' },
          { guard: 'idleTimer', actions: 'rearmIdle' },
        ],
      },
    },
    completed: { type: 'final' },
    terminated: { type: 'final' },
  },
});

export type BatchMachine = typeof batchMachine;
