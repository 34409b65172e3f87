/**
 * An array job on the requester (actor `job/<id>`, kind `array`; INTERFACE.md "Many tasks"): `count` instances of
 * one task, negotiated in bulk. A round asks once for every queued instance; providers bid for as many as they take
 * at once; the best bids are committed and allocated together with their first instances; each allocation is kept
 * fed as its instances end; a round is asked again only when instances wait and no deal is under way, backing off,
 * until the queue timeout. The steps are array.rules.ts. Pure: time comes in on every event, effects leave as
 * emitted intents.
 */
import { and, assertEvent, enqueueActions, not, setup } from 'xstate';
import * as A from './array.rules.ts';
import type { ArrayContext, ArrayDraft, ArrayIntent } from './array.rules.ts';
import type { BatchProgressMsg } from './deal.wire.ts';
import type { FromPeer } from './deal.events.ts';
import type { RequesterEvent, RequesterInput } from './requester.messages.ts';

export type { ArrayContext, ArrayRecord } from './array.rules.ts';

/** Bumped whenever the context shape changes, so an old snapshot is refused instead of misread. */
export const ARRAY_MACHINE_VERSION = 1;

export type BatchProgressEvent = BatchProgressMsg & FromPeer;
export type ArrayEvent = RequesterEvent | BatchProgressEvent;

interface Enqueue {
  assign(context: ArrayContext): void;
  emit(intent: ArrayIntent): void;
}

function commit(enqueue: Enqueue, d: ArrayDraft): void {
  A.tick(d);
  enqueue.assign(d.ctx);
  for (const i of d.out) enqueue.emit(i);
}

const withDeal = (context: ArrayContext, event: ArrayEvent) => ('from' in event && 'dealId' in event && 'nonce' in event ? A.dealOf(context, event) : undefined);

export const arrayMachine = setup({
  types: {} as { context: ArrayContext; events: ArrayEvent; emitted: ArrayIntent; input: RequesterInput },
  guards: {
    currentRound: ({ context, event }) => event.type === 'bid.request.sent' && event.nonce === context.nonce,
    usableBid: ({ context, event }) => event.type === 'bid.submit' && A.usableBid(context, event),
    staleBid: ({ context, event }) => event.type === 'bid.submit' && event.bid.provider === event.from && event.bid.dealId === context.input.dealId && !A.usableBid(context, event),
    currentDecline: ({ context, event }) => event.type === 'bid.decline' && event.nonce === context.nonce,
    windowComplete: ({ context }) => A.windowComplete(context),
    windowDue: ({ event }) => event.type === 'timer.fired' && event.key === 'window',
    ofDeal: ({ context, event }) => withDeal(context, event) !== undefined,
    ofDroppedDeal: ({ context, event }) => event.type === 'batch.progress' && A.droppedDeal(context, event) >= 0,
    retryFired: ({ event }) => event.type === 'timer.fired' && event.key === 'retry',
    allCompleted: ({ context }) => A.allCompleted(context),
    anyFailed: ({ context }) => A.anyFailed(context),
    hopeless: ({ context }) => A.hopeless(context),
    roundDue: ({ context, event }) => A.roundDue(context, event.now),
    queueExpired: ({ context, event }) => A.queueExpired(context, event.now),
    sendFailed: ({ context, event }) => event.type === 'send.failed' && (event.step === 'commit' || event.step === 'allocate') && context.deals[A.dealKeyOf(event.to, event.nonce)] !== undefined,
  },
  actions: {
    openRound: enqueueActions(({ context, event, enqueue }) => commit(enqueue, A.openRound(A.begin(context, event)))),
    takeCandidates: enqueueActions(({ context, event, enqueue }) => {
      assertEvent(event, 'bid.request.sent');
      commit(enqueue, A.begin(context, event).set({ candidates: event.candidates, open: event.open === true }));
    }),
    takeBid: enqueueActions(({ context, event, enqueue }) => {
      assertEvent(event, 'bid.submit');
      commit(enqueue, A.takeBid(A.begin(context, event), event));
    }),
    // a bid of an older round, or one not wanted: its provider frees the lock at once
    refuseBid: enqueueActions(({ context, event, enqueue }) => {
      assertEvent(event, 'bid.submit');
      enqueue.emit({ type: 'deal.revert.send', to: event.from, dealId: context.input.dealId, nonce: event.bid.nonce, reason: 'the round this bid answers is over' });
    }),
    takeDecline: enqueueActions(({ context, event, enqueue }) => {
      assertEvent(event, 'bid.decline');
      commit(enqueue, A.takeDecline(A.begin(context, event), event));
    }),
    closeWindow: enqueueActions(({ context, event, enqueue }) => commit(enqueue, A.closeWindow(A.begin(context, event)))),
    committed: enqueueActions(({ context, event, enqueue }) => commit(enqueue, A.committed(A.begin(context, event), withDeal(context, event)!))),
    allocated: enqueueActions(({ context, event, enqueue }) => {
      assertEvent(event, 'deal.allocated');
      commit(enqueue, A.allocated(A.begin(context, event), withDeal(context, event)!, event.allocationId));
    }),
    refused: enqueueActions(({ context, event, enqueue }) => {
      const d = A.begin(context, event);
      if (event.type === 'deal.refused') A.refused(d, withDeal(context, event)!, `refused the ${event.step}: ${event.reason}`);
      else if (event.type === 'send.failed') {
        const deal = context.deals[A.dealKeyOf(event.to, event.nonce)];
        if (deal) A.refused(d, deal, `could not be reached (${event.reason})`);
      }
      commit(enqueue, d);
    }),
    progress: enqueueActions(({ context, event, enqueue }) => {
      assertEvent(event, 'batch.progress');
      commit(enqueue, A.takeResults(A.begin(context, event), withDeal(context, event)!, event.results, event.allocationId));
    }),
    lateProgress: enqueueActions(({ context, event, enqueue }) => {
      assertEvent(event, 'batch.progress');
      commit(enqueue, A.takeLateResults(A.begin(context, event), A.droppedDeal(context, event), event.results));
    }),
    // the backoff is over (the timer may fire a little early, which still counts): a round may be asked
    retryNow: enqueueActions(({ context, event, enqueue }) => commit(enqueue, A.begin(context, event).set({ retryAt: 0 }))),
    status: enqueueActions(({ context, event, enqueue }) => {
      assertEvent(event, 'allocation.status');
      commit(enqueue, A.dealStatus(A.begin(context, event), withDeal(context, event)!, event.state, event.allocationId, event.message));
    }),
    checkDeals: enqueueActions(({ context, event, enqueue }) => commit(enqueue, A.checkDeals(A.begin(context, event)))),
    forgetTimer: enqueueActions(({ context, event, enqueue }) => commit(enqueue, A.begin(context, event))),
    recover: enqueueActions(({ context, event, enqueue }) => commit(enqueue, A.recover(A.begin(context, event)))),
    completed: enqueueActions(({ context, event, enqueue }) => {
      const d = A.begin(context, event);
      commit(enqueue, A.end(d, 'completed', `all ${context.record.count} instances completed`));
    }),
    failed: enqueueActions(({ context, event, enqueue }) => commit(enqueue, A.end(A.begin(context, event), 'failed', A.failedMessage(context)))),
    queueTimedOut: enqueueActions(({ context, event, enqueue }) => commit(enqueue, A.end(A.begin(context, event), 'failed', A.queueTimeoutMessage(context)))),
    nobodyCan: enqueueActions(({ context, event, enqueue }) => commit(enqueue, A.end(A.begin(context, event), 'failed', A.hopelessMessage(context)))),
    cancel: enqueueActions(({ context, event, enqueue }) => {
      assertEvent(event, 'job.cancel');
      const d = A.begin(context, event).set({ pendingReply: event.replyTo ?? null });
      commit(enqueue, A.end(d, 'cancelled', 'cancelled by its requester'));
    }),
    replyNow: enqueueActions(({ context, event, enqueue }) => {
      assertEvent(event, 'job.cancel');
      if (event.replyTo) enqueue.emit({ type: 'reply.send', replyTo: event.replyTo, ok: true, value: context.record });
    }),
    ignore: enqueueActions(({ event, enqueue }) => {
      const from = 'from' in event ? ` from ${event.from}` : '';
      enqueue.emit({ type: 'log.write', level: 'debug', message: `ignored ${event.type}${from}: not expected now` });
    }),
  },
}).createMachine({
  id: 'array',
  context: ({ input }) => A.initialContext(input),
  initial: 'idle',
  states: {
    idle: {
      on: {
        'deal.start': 'collecting',
        'job.cancel': { target: 'ended.cancelled', actions: 'cancel' },
      },
    },
    collecting: {
      entry: 'openRound',
      // a round for more room while deals run: they may finish the job (or fail it) before the window closes
      always: [
        { guard: 'allCompleted', target: 'ended.completed', actions: 'completed' },
        { guard: 'anyFailed', target: 'ended.failed', actions: 'failed' },
        { guard: 'windowComplete', target: 'working', actions: 'closeWindow' },
      ],
      on: {
        'job.cancel': { target: 'ended.cancelled', actions: 'cancel' },
        'bid.request.sent': [{ guard: 'currentRound', actions: 'takeCandidates' }, { actions: 'ignore' }],
        'bid.submit': [{ guard: 'usableBid', actions: 'takeBid' }, { guard: 'staleBid', actions: 'refuseBid' }, { actions: 'ignore' }],
        'bid.decline': [{ guard: 'currentDecline', actions: 'takeDecline' }, { actions: 'ignore' }],
        'timer.fired': [{ guard: 'windowDue', target: 'working', actions: 'closeWindow' }, { actions: 'checkDeals' }],
        'deal.committed': [{ guard: 'ofDeal', actions: 'committed' }, { actions: 'ignore' }],
        'deal.allocated': [{ guard: 'ofDeal', actions: 'allocated' }, { actions: 'ignore' }],
        'deal.refused': [{ guard: 'ofDeal', actions: 'refused' }, { actions: 'ignore' }],
        'send.failed': [{ guard: 'sendFailed', actions: 'refused' }, { actions: 'ignore' }],
        'batch.progress': [{ guard: 'ofDeal', actions: 'progress' }, { guard: 'ofDroppedDeal', actions: 'lateProgress' }, { actions: 'ignore' }],
        'allocation.status': [{ guard: 'ofDeal', actions: 'status' }, { actions: 'ignore' }],
        // the round's actor went down with the node: ask again
        'deal.recovered': { target: 'collecting', reenter: true, actions: 'recover' },
      },
    },
    working: {
      always: [
        { guard: 'allCompleted', target: 'ended.completed', actions: 'completed' },
        { guard: 'anyFailed', target: 'ended.failed', actions: 'failed' },
        { guard: 'hopeless', target: 'ended.failed', actions: 'nobodyCan' },
        { guard: 'queueExpired', target: 'ended.failed', actions: 'queueTimedOut' },
        { guard: and(['roundDue', not('allCompleted')]), target: 'collecting' },
      ],
      on: {
        'job.cancel': { target: 'ended.cancelled', actions: 'cancel' },
        'deal.committed': [{ guard: 'ofDeal', actions: 'committed' }, { actions: 'ignore' }],
        'deal.allocated': [{ guard: 'ofDeal', actions: 'allocated' }, { actions: 'ignore' }],
        'deal.refused': [{ guard: 'ofDeal', actions: 'refused' }, { actions: 'ignore' }],
        'send.failed': [{ guard: 'sendFailed', actions: 'refused' }, { actions: 'ignore' }],
        'batch.progress': [{ guard: 'ofDeal', actions: 'progress' }, { guard: 'ofDroppedDeal', actions: 'lateProgress' }, { actions: 'ignore' }],
        'allocation.status': [{ guard: 'ofDeal', actions: 'status' }, { actions: 'ignore' }],
        'bid.submit': [{ guard: 'staleBid', actions: 'refuseBid' }, { actions: 'ignore' }],
        'bid.decline': { actions: 'ignore' },
        'bid.request.sent': { actions: 'ignore' },
        'timer.fired': [{ guard: 'retryFired', actions: 'retryNow' }, { actions: 'checkDeals' }],
        'deal.recovered': { actions: 'recover' },
      },
    },
    ended: {
      initial: 'completed',
      on: {
        'job.cancel': { actions: 'replyNow' },
        'bid.submit': [{ guard: 'staleBid', actions: 'refuseBid' }, { actions: 'ignore' }],
      },
      states: {
        completed: { type: 'final' },
        failed: { type: 'final' },
        cancelled: { type: 'final' },
      },
    },
  },
});

export type ArrayMachine = typeof arrayMachine;
