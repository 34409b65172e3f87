/**
 * The provider's side of one deal (actor `provider/<key>`): it sends the bid the Node locked resources for, answers
 * the requester's commit and allocate, turns the lock into an allocation through the Node, and follows that
 * allocation to its end. Pure: effects leave as emitted intents (provider.messages.ts); time arrives as `now`.
 */
import { and, enqueueActions, setup } from 'xstate';
import { type PendingTimers, type TimerStep, timerBook } from './deal.timers.ts';
import type { JobSpec } from './job.ts';
import type { ProviderDealState, ProviderEvent, ProviderInput, ProviderIntent, ProviderRecord } from './provider.messages.ts';

/** Bumped whenever the context shape changes, so an old snapshot is refused instead of misread. */
export const PROVIDER_MACHINE_VERSION = 2;

export interface ProviderContext {
  readonly input: ProviderInput;
  /** What `status` shows of this deal on the provider. */
  readonly record: ProviderRecord;
  /** Runtime timers still pending, by key (absolute times): a recovered actor asks for them again. */
  readonly timers: PendingTimers;
  /** The requester dropped the deal while the Node was allocating: cancel the allocation once it exists. */
  readonly revertPending: boolean;
  /** `allocation.cancel` went out (it goes out once). */
  readonly cancelSent: boolean;
  /** The whole job, once the allocate brought it (the bid was on its requirements, `input.job`); null until then. */
  readonly job: JobSpec | null;
  /** An array job: the instances the allocate named to run first. */
  readonly assign?: readonly number[];
}

type Enqueue = { emit(intent: ProviderIntent): void; assign(patch: Partial<ProviderContext>): void };
type Collect = { context: ProviderContext; event: ProviderEvent; enqueue: Enqueue };

const EXPIRY = 'expiry';

/**
 * The provider's timer bookkeeping. Its one timer, the bid's expiry, is scheduled once and never again, so no fire
 * of it can be stale: every fire of the pending expiry counts, however early (slack unbounded); a fire after it
 * was cancelled finds it no longer pending.
 */
const timers = timerBook({ slackMs: Infinity });

/** Takes a step of the timer bookkeeping: the pending timers it leaves, then its intents. */
function applyTimers(enqueue: Enqueue, step: TimerStep): void {
  enqueue.assign({ timers: step.timers });
  for (const i of step.intents) enqueue.emit(i);
}

/** The record after an event at `now`. The input carries no clock, so the first event dates the record. */
function touch(r: ProviderRecord, now: number, patch: Partial<ProviderRecord> = {}): ProviderRecord {
  return { ...r, createdAt: r.createdAt || now, updatedAt: now, ...patch };
}

function note({ context, event, enqueue }: Collect, message: string): void {
  enqueue.assign({ record: touch(context.record, event.now, { message }) });
}

function cancelTimer({ context, enqueue }: Collect, key: string): void {
  applyTimers(enqueue, timers.cancel(context.timers, key));
}

function refuse({ context, enqueue }: Collect, step: 'commit' | 'allocate', reason: string): void {
  const { requester: to, bid } = context.input;
  enqueue.emit({ type: 'deal.refused.send', to, dealId: bid.dealId, nonce: bid.nonce, step, reason });
}

function unlock({ context, enqueue }: Collect): void {
  enqueue.emit({ type: 'ledger.unlock', lockId: context.input.lockId });
}

/** Asks for the allocation to stop; once per deal, however often the requester asks. */
function emitCancel(a: Collect): void {
  if (a.context.cancelSent) return;
  a.enqueue.assign({ cancelSent: true });
  a.enqueue.emit({ type: 'allocation.cancel', allocationId: a.context.input.key });
}

/** A peer event that belongs to this deal: from its requester, with its dealId and nonce. */
function isGenuine(c: ProviderContext, e: ProviderEvent): boolean {
  if (!('from' in e)) return false;
  const { requester, bid } = c.input;
  return e.from === requester && e.dealId === bid.dealId && e.nonce === bid.nonce;
}

function allocatedIntent(c: ProviderContext): ProviderIntent {
  const { requester: to, bid, key } = c.input;
  return { type: 'deal.allocated.send', to, dealId: bid.dealId, nonce: bid.nonce, allocationId: key };
}

export const providerMachine = setup({
  types: {} as { context: ProviderContext; events: ProviderEvent; emitted: ProviderIntent; input: ProviderInput },
  guards: {
    genuine: ({ context, event }) => isGenuine(context, event),
    foreign: ({ context, event }) => 'from' in event && !isGenuine(context, event),
    inTime: ({ context, event }) => event.now < context.input.bid.expiresAt,
    moduleReady: ({ event }) => event.type === 'deal.allocate' && event.moduleReady,
    ledgerOk: ({ event }) => event.type === 'ledger.allocated' && event.ok,
    ourAllocation: ({ context, event }) => event.type === 'allocation.ended' && event.allocationId === context.input.key,
    // a timer cancelled while its firing was already on the way is stale
    expiryDue: ({ context, event }) => timers.due(context.timers, event, EXPIRY),
  },
  actions: {
    start: enqueueActions((a) => {
      const { requester: to, bid } = a.context.input;
      const expiry = timers.schedule(a.context.timers, EXPIRY, bid.expiresAt);
      a.enqueue.assign({ timers: expiry.timers });
      if (!(a.event.type === 'provider.start' && a.event.bidSent)) a.enqueue.emit({ type: 'bid.submit.send', to, bid });
      for (const i of expiry.intents) a.enqueue.emit(i);
      note(a, `bid sent; held until ${new Date(bid.expiresAt).toISOString()}`);
    }),
    sendCommitted: enqueueActions((a) => {
      const { requester: to, bid } = a.context.input;
      a.enqueue.emit({ type: 'deal.committed.send', to, dealId: bid.dealId, nonce: bid.nonce });
      note(a, 'committed; waiting for the allocate');
    }),
    refuseLateCommit: enqueueActions((a) => {
      const reason = `the bid expired at ${new Date(a.context.input.bid.expiresAt).toISOString()}`;
      refuse(a, 'commit', reason);
      unlock(a);
      note(a, `commit refused: ${reason}`);
    }),
    refuseUncommitted: enqueueActions((a) => refuse(a, 'allocate', 'not committed')),
    refuseModule: enqueueActions((a) => {
      const reason = (a.event.type === 'deal.allocate' && a.event.moduleProblem) || 'the module is not ready';
      refuse(a, 'allocate', reason);
      unlock(a);
      note(a, `allocate refused: ${reason}`);
    }),
    requestAllocation: enqueueActions(({ context, event, enqueue }) => {
      // the whole job, with its args and env, comes with the allocate (checked against the bid's by the runtime)
      if (event.type === 'deal.allocate' && event.job) enqueue.assign({ job: event.job });
      if (event.type === 'deal.allocate' && event.assign) enqueue.assign({ assign: event.assign });
      enqueue.emit({ type: 'ledger.allocate.request', allocationId: context.input.key, lockId: context.input.lockId });
    }),
    spawnAllocation: enqueueActions((a) => {
      const { key, bid, requester } = a.context.input;
      const job = a.context.job ?? a.context.input.job;
      cancelTimer(a, EXPIRY);
      const named = job.part?.ports ?? [];
      const ports = a.context.input.ports ?? [];
      const portMap = named.length > 0 && ports.length === named.length ? { ports: Object.fromEntries(named.map((n, i) => [n, ports[i]!])) } : {};
      const batch = bid.slots !== undefined ? { slots: bid.slots, assign: a.context.assign ?? [] } : {};
      const grant = a.context.input.grant ? { grant: a.context.input.grant } : {};
      a.enqueue.emit({ type: 'allocation.spawn', input: { allocationId: key, dealId: bid.dealId, nonce: bid.nonce, requester, job, ...portMap, ...batch, ...grant } });
      const message = a.context.revertPending ? 'allocated after the requester reverted; cancelling it' : 'allocated; the job starts';
      a.enqueue.assign({ record: touch(a.context.record, a.event.now, { allocationId: key, message }) });
      // a requester that reverted meanwhile no longer waits for the answer: the allocation is stopped at once
      if (!a.context.revertPending) a.enqueue.emit(allocatedIntent(a.context));
      else emitCancel(a);
    }),
    resendAllocated: enqueueActions(({ context, enqueue }) => enqueue.emit(allocatedIntent(context))),
    refuseByLedger: enqueueActions((a) => {
      const reason = (a.event.type === 'ledger.allocated' && a.event.reason) || 'the node refused the allocation';
      // a requester that reverted meanwhile expects no answer
      if (!a.context.revertPending) refuse(a, 'allocate', reason);
      unlock(a);
      note(a, `allocation refused: ${reason}`);
    }),
    revert: enqueueActions((a) => {
      unlock(a);
      note(a, a.event.type === 'deal.revert' ? `reverted by the requester: ${a.event.reason}` : 'cancelled by the requester');
    }),
    rememberRevert: enqueueActions((a) => {
      a.enqueue.assign({ revertPending: true });
      note(a, 'reverted by the requester while allocating; the allocation is cancelled once it exists');
    }),
    expire: enqueueActions((a) => {
      unlock(a);
      note(a, `the bid expired at ${new Date(a.context.input.bid.expiresAt).toISOString()} before it was allocated`);
    }),
    cancelAllocation: enqueueActions((a) => emitCancel(a)),
    noteEnded: enqueueActions((a) => {
      if (a.event.type === 'allocation.ended') note(a, `the allocation ended ${a.event.state}`);
    }),
    forgetTimer: enqueueActions(({ context, event, enqueue }) => enqueue.assign({ timers: timers.afterFire(context.timers, event) })),
    rearm: enqueueActions(({ context, enqueue }) => {
      for (const i of timers.rearm(context.timers)) enqueue.emit(i);
    }),
    ignoreForeign: enqueueActions(({ context, event, enqueue }) => {
      if (!('from' in event)) return;
      const data = { from: event.from, dealId: event.dealId, nonce: event.nonce, key: context.input.key };
      enqueue.emit({ type: 'log.write', level: 'warn', message: `ignored ${event.type} that is not from this deal's requester or names another deal`, data });
    }),
    enter: enqueueActions(({ context, event, enqueue }, params: { state: ProviderDealState }) => {
      enqueue.assign({ record: touch(context.record, event.now, { state: params.state }) });
    }),
    finish: enqueueActions((a) => {
      applyTimers(a.enqueue, timers.cancelAll(a.context.timers));
      a.enqueue.emit({ type: 'provider.ended', record: a.context.record });
    }),
  },
}).createMachine({
  id: 'provider',
  context: ({ input }) => ({
    input,
    record: {
      key: input.key,
      dealId: input.bid.dealId,
      nonce: input.bid.nonce,
      requester: input.requester,
      name: input.job.name,
      state: 'bidding',
      allocationId: null,
      message: 'bid not sent yet',
      createdAt: 0,
      updatedAt: 0,
    },
    timers: {},
    revertPending: false,
    cancelSent: false,
    job: null,
  }),
  initial: 'opening',
  on: {
    // a genuine message that makes no sense in the current state is dropped without a word
    'deal.commit': { guard: 'foreign', actions: 'ignoreForeign' },
    'deal.allocate': { guard: 'foreign', actions: 'ignoreForeign' },
    'deal.revert': { guard: 'foreign', actions: 'ignoreForeign' },
    'deal.cancel': { guard: 'foreign', actions: 'ignoreForeign' },
    'timer.fired': { actions: 'forgetTimer' },
    'deal.recovered': { actions: 'rearm' },
  },
  states: {
    // the Node spawned the actor; the runtime sends provider.start next
    opening: {
      on: {
        'provider.start': { target: 'bidding', actions: 'start' },
        // the start was lost with the old process
        'deal.recovered': { target: 'bidding', actions: 'start' },
      },
    },
    bidding: {
      entry: { type: 'enter', params: { state: 'bidding' } },
      on: {
        'deal.commit': [
          { guard: and(['genuine', 'inTime']), target: 'committed', actions: 'sendCommitted' },
          // the expiry timer may not have fired yet: the time on the commit decides
          { guard: 'genuine', target: 'expired', actions: 'refuseLateCommit' },
        ],
        'deal.allocate': { guard: 'genuine', actions: 'refuseUncommitted' },
        'deal.revert': { guard: 'genuine', target: 'released', actions: 'revert' },
        'deal.cancel': { guard: 'genuine', target: 'released', actions: 'revert' },
        'timer.fired': { guard: 'expiryDue', target: 'expired', actions: ['forgetTimer', 'expire'] },
      },
    },
    committed: {
      entry: { type: 'enter', params: { state: 'committed' } },
      on: {
        // the requester asks again when our answer was lost
        'deal.commit': { guard: 'genuine', actions: 'sendCommitted' },
        'deal.allocate': [
          { guard: and(['genuine', 'moduleReady']), target: 'allocating', actions: 'requestAllocation' },
          { guard: 'genuine', target: 'released', actions: 'refuseModule' },
        ],
        'deal.revert': { guard: 'genuine', target: 'released', actions: 'revert' },
        'deal.cancel': { guard: 'genuine', target: 'released', actions: 'revert' },
        'timer.fired': { guard: 'expiryDue', target: 'expired', actions: ['forgetTimer', 'expire'] },
      },
    },
    allocating: {
      entry: { type: 'enter', params: { state: 'allocating' } },
      on: {
        'ledger.allocated': [
          { guard: 'ledgerOk', target: 'allocated', actions: 'spawnAllocation' },
          { target: 'released', actions: 'refuseByLedger' },
        ],
        'deal.revert': { guard: 'genuine', actions: 'rememberRevert' },
        'deal.cancel': { guard: 'genuine', actions: 'rememberRevert' },
        // the Node's answer may have been lost with the old process: ask again (allocating is idempotent per id)
        'deal.recovered': { actions: ['rearm', 'requestAllocation'] },
      },
    },
    allocated: {
      entry: { type: 'enter', params: { state: 'allocated' } },
      on: {
        'deal.allocate': { guard: 'genuine', actions: 'resendAllocated' },
        'deal.cancel': { guard: 'genuine', actions: 'cancelAllocation' },
        'deal.revert': { guard: 'genuine', actions: 'cancelAllocation' },
        'allocation.ended': { guard: 'ourAllocation', target: 'done', actions: 'noteEnded' },
      },
    },
    done: { type: 'final', entry: [{ type: 'enter', params: { state: 'done' } }, 'finish'] },
    released: { type: 'final', entry: [{ type: 'enter', params: { state: 'released' } }, 'finish'] },
    expired: { type: 'final', entry: [{ type: 'enter', params: { state: 'expired' } }, 'finish'] },
  },
});

export type ProviderMachine = typeof providerMachine;
