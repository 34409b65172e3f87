/**
 * The Node statechart: onboarding (benchmarking -> validating -> registered, or failed), the capability ledger,
 * preferences, monitoring, and answering bid requests (the decision is bidding.ts). Pure: effects leave as emitted
 * intents (node.messages.ts).
 */
import { assertEvent, enqueueActions, setup, stateIn } from 'xstate';
import { type Answered, MAX_ANSWERED, decideBid, emptyAnswered, pruneAnswered } from './bidding.ts';
import { type Ledger, NOTHING, allocate, emptyLedger, expire, lock, nextExpiry, release, unlock } from './ledger.ts';
import { type Constrained, type DiskAdmission, OPEN_ADMISSION, admitDisk, applySample, diskRefusal } from './monitoring.ts';
import type { DeclineCode } from './deal.wire.ts';
import type { NodeEvent, NodeIntent, ReplyBody, Sample } from './node.messages.ts';
import { type Benchmark, type HostFacts, type Offer, type OnboardingProblem, type Registration, resolveOffer, validateOffer } from './onboarding.ts';
import { DEFAULT_PREFERENCES, type Preferences } from './preferences.ts';

/** Bumped whenever the context shape changes, so an old snapshot is refused instead of misread. */
export const NODE_MACHINE_VERSION = 3;

export interface NodeContext {
  readonly offer: Offer;
  readonly host: HostFacts | null;
  readonly benchmark: Benchmark | null;
  readonly registration: Registration | null;
  readonly ledger: Ledger;
  readonly preferences: Preferences;
  readonly problems: readonly OnboardingProblem[];
  readonly sample: Sample | null;
  /** Which offered resources monitoring found short on the machine. */
  readonly constrained: Constrained;
  /** Whether the disk leaves room for new work (`--min-free-disk`). */
  readonly admission: DiskAdmission;
  /**
   * `--require-grants`, from the latest `node.configure`: bid only for requesters that show a capability grant (the
   * preferences' `provider.requireGrants` switches it on too). Absent in a snapshot of an earlier build: false until
   * the configure every start sends, so the snapshot's version stays.
   */
  readonly requireGrants?: boolean;
  /** The request waiting for onboarding to finish. */
  readonly pendingReply: string | null;
  /** Bid requests already answered, so a repeat is not answered again (answered.ts: changed in place). */
  readonly answered: Answered;
  /** Bid requests declined since the Node began, by decline code (what `info` shows as refused). */
  readonly declined: Readonly<Partial<Record<DeclineCode, number>>>;
}

export interface NodeInput {
  readonly preferences?: Preferences;
  /** A registration from an earlier run, restored without benchmarking again. */
  readonly registration?: Registration | null;
  /** Most bid requests remembered as answered (default MAX_ANSWERED). */
  readonly maxAnswered?: number;
}

interface Enqueue {
  emit(intent: NodeIntent): void;
}

function reply(replyTo: string | undefined | null, r: ReplyBody): NodeIntent | null {
  if (!replyTo) return null;
  return r.ok ? { type: 'reply.send', replyTo, ok: true, value: r.value } : { type: 'reply.send', replyTo, ok: false, code: r.code, message: r.message };
}

function emitAll(enqueue: Enqueue, intents: readonly (NodeIntent | null)[]): void {
  for (const i of intents) if (i) enqueue.emit(i);
}

function timerIntent(before: Ledger, after: Ledger): NodeIntent | null {
  const a = nextExpiry(before);
  const b = nextExpiry(after);
  return a === b ? null : { type: 'timer.schedule', at: b };
}

function register(ctx: NodeContext, benchmark: Benchmark, offer: Offer, host: HostFacts): { registration: Registration } | { problems: OnboardingProblem[] } {
  const capability = resolveOffer(offer, benchmark);
  const problems = validateOffer(capability, benchmark, host);
  if (problems.length > 0) return { problems };
  void ctx;
  return { registration: { capability, benchmark, offer } };
}

export const nodeMachine = setup({
  types: {} as { context: NodeContext; events: NodeEvent; emitted: NodeIntent; input: NodeInput },
  guards: {
    wantsBenchmark: ({ event }) => event.type === 'node.onboard' && event.rebenchmark === true,
    hasBenchmark: ({ context, event }) => event.type === 'node.onboard' && !event.rebenchmark && (event.benchmark ?? context.benchmark) !== null,
    isValid: ({ context }) => context.problems.length === 0 && context.registration !== null,
    wasRegistered: ({ context }) => context.registration !== null,
    isRegistered: stateIn('registered'),
  },
  actions: {
    acceptOnboard: enqueueActions(({ context, event, enqueue }) => {
      assertEvent(event, 'node.onboard');
      const benchmark = event.rebenchmark ? null : (event.benchmark ?? context.benchmark);
      enqueue.assign({ offer: event.offer, host: event.host, benchmark, pendingReply: event.replyTo ?? null, problems: [] });
    }),
    requestBenchmark: enqueueActions(({ enqueue }) => {
      enqueue.emit({ type: 'benchmark.run' });
      enqueue.emit({ type: 'log.write', level: 'info', message: 'benchmarking this machine' });
    }),
    takeBenchmark: enqueueActions(({ event, enqueue }) => {
      assertEvent(event, 'benchmark.done');
      enqueue.assign({ benchmark: event.benchmark });
    }),
    // Only records the problem: entering `failed` emits onboarding.failed and answers the pending request.
    failBenchmark: enqueueActions(({ event, enqueue }) => {
      assertEvent(event, 'benchmark.fail');
      const problems: OnboardingProblem[] = [{ field: 'dataDir', message: `benchmark failed: ${event.reason}` }];
      enqueue.assign({ problems });
    }),
    validate: enqueueActions(({ context, enqueue }) => {
      const r = register(context, context.benchmark!, context.offer, context.host!);
      if ('problems' in r) enqueue.assign({ problems: r.problems });
      else enqueue.assign({ problems: [], registration: r.registration });
    }),
    enterRegistered: enqueueActions(({ context, enqueue }) => {
      const reg = context.registration!;
      enqueue.assign({ ledger: { ...context.ledger, registered: reg.capability }, pendingReply: null });
      emitAll(enqueue, [
        { type: 'registration.save', registration: reg },
        { type: 'log.write', level: 'info', message: 'registered capability', data: { capability: reg.capability } },
        reply(context.pendingReply, { ok: true, value: reg.capability }),
      ]);
    }),
    enterFailed: enqueueActions(({ context, enqueue }) => {
      enqueue.assign({ pendingReply: null });
      emitAll(enqueue, [
        { type: 'onboarding.failed', problems: context.problems },
        reply(context.pendingReply, { ok: false, code: 'onboarding', message: context.problems.map((p) => p.message).join('; ') }),
      ]);
    }),
    reonboard: enqueueActions(({ context, event, enqueue }) => {
      assertEvent(event, 'node.onboard');
      const benchmark = event.benchmark ?? context.benchmark!;
      const r = register(context, benchmark, event.offer, event.host);
      if ('problems' in r) {
        emitAll(enqueue, [reply(event.replyTo, { ok: false, code: 'onboarding', message: r.problems.map((p) => p.message).join('; ') })]);
        return;
      }
      enqueue.assign({ registration: r.registration, benchmark, offer: event.offer, host: event.host, ledger: { ...context.ledger, registered: r.registration.capability } });
      emitAll(enqueue, [
        { type: 'registration.save', registration: r.registration },
        { type: 'log.write', level: 'info', message: 'registered capability changed', data: { capability: r.registration.capability } },
        reply(event.replyTo, { ok: true, value: r.registration.capability }),
      ]);
    }),
    offboard: enqueueActions(({ context, event, enqueue }) => {
      assertEvent(event, 'node.offboard');
      const ledger = { ...context.ledger, registered: NOTHING, locks: {} };
      enqueue.assign({ registration: null, ledger });
      emitAll(enqueue, [
        { type: 'registration.save', registration: null },
        timerIntent(context.ledger, ledger),
        { type: 'log.write', level: 'info', message: 'offboarded: offering nothing; running allocations finish' },
        reply(event.replyTo, { ok: true }),
      ]);
    }),
    lock: enqueueActions(({ context, event, enqueue }) => {
      assertEvent(event, 'ledger.lock');
      const r = lock(context.ledger, event);
      if (!r.ok) {
        emitAll(enqueue, [reply(event.replyTo, r)]);
        return;
      }
      enqueue.assign({ ledger: r.ledger });
      emitAll(enqueue, [timerIntent(context.ledger, r.ledger), reply(event.replyTo, { ok: true, value: r.ledger.locks[event.id] })]);
    }),
    unlock: enqueueActions(({ context, event, enqueue }) => {
      assertEvent(event, 'ledger.unlock');
      const ledger = unlock(context.ledger, event.id);
      enqueue.assign({ ledger });
      emitAll(enqueue, [timerIntent(context.ledger, ledger), reply(event.replyTo, { ok: true })]);
    }),
    expire: enqueueActions(({ context, event, enqueue }) => {
      assertEvent(event, 'ledger.expire');
      const r = expire(context.ledger, event.now);
      if (r.expired.length === 0) return;
      enqueue.assign({ ledger: r.ledger });
      emitAll(enqueue, [timerIntent(context.ledger, r.ledger), { type: 'log.write', level: 'info', message: `lock expired: ${r.expired.join(', ')}`, data: { expired: r.expired } }]);
    }),
    allocate: enqueueActions(({ context, event, enqueue }) => {
      assertEvent(event, 'ledger.allocate');
      const r = allocate(context.ledger, event);
      if (!r.ok) {
        emitAll(enqueue, [reply(event.replyTo, r)]);
        return;
      }
      enqueue.assign({ ledger: r.ledger });
      emitAll(enqueue, [timerIntent(context.ledger, r.ledger), reply(event.replyTo, { ok: true, value: r.ledger.allocations[event.allocationId] })]);
    }),
    release: enqueueActions(({ context, event, enqueue }) => {
      assertEvent(event, 'ledger.release');
      enqueue.assign({ ledger: release(context.ledger, event.allocationId) });
      emitAll(enqueue, [reply(event.replyTo, { ok: true })]);
    }),
    recover: enqueueActions(({ context, event, enqueue }) => {
      assertEvent(event, 'node.recovered');
      const r = expire(context.ledger, event.now);
      if (r.expired.length > 0) enqueue.assign({ ledger: r.ledger });
      const answered = pruneAnswered(context.answered, event.now);
      if (answered !== context.answered) enqueue.assign({ answered });
      const next = nextExpiry(r.ledger);
      emitAll(enqueue, [
        r.expired.length > 0 ? { type: 'log.write', level: 'info', message: `locks expired while the node was down: ${r.expired.join(', ')}`, data: { expired: r.expired } } : null,
        next === null ? null : { type: 'timer.schedule', at: next },
      ]);
    }),
    answerBid: enqueueActions(({ context, event, enqueue }, params: { registered: boolean }) => {
      assertEvent(event, 'bid.request');
      const { registration, ledger, preferences, answered } = context;
      const diskFull = diskRefusal(context.admission, context.sample);
      const d = decideBid({ registered: params.registered, registration, ledger, preferences, answered, diskFull, requireGrants: context.requireGrants === true }, event);
      if (d.answered !== answered) enqueue.assign({ answered: d.answered });
      if (d.ledger) enqueue.assign({ ledger: d.ledger });
      const declined = d.intents.find((i) => i.type === 'bid.decline.send');
      if (declined) enqueue.assign({ declined: { ...context.declined, [declined.code]: (context.declined[declined.code] ?? 0) + 1 } });
      emitAll(enqueue, [d.ledger ? timerIntent(ledger, d.ledger) : null, ...d.intents]);
    }),
    refuseClosed: enqueueActions(({ event, enqueue }) => {
      const to = 'replyTo' in event ? event.replyTo : undefined;
      emitAll(enqueue, [reply(to, { ok: false, code: 'offboarded', message: 'this node offers nothing now (offboarded or not onboarded); run `onboard` first' })]);
    }),
    refuseBusy: enqueueActions(({ event, enqueue }) => {
      const to = 'replyTo' in event ? event.replyTo : undefined;
      emitAll(enqueue, [reply(to, { ok: false, code: 'onboarding', message: 'the node is onboarding; try again when it is registered' })]);
    }),
    refuseStopped: enqueueActions(({ event, enqueue }) => {
      const to = 'replyTo' in event ? event.replyTo : undefined;
      emitAll(enqueue, [reply(to, { ok: false, code: 'stopped', message: 'the node is stopping' })]);
    }),
    sample: enqueueActions(({ context, event, enqueue }) => {
      assertEvent(event, 'monitor.sample');
      const r = applySample(context.ledger, context.constrained, event.sample);
      const d = admitDisk(context.admission, context.admission.minFreeDisk, event.sample);
      enqueue.assign({ sample: event.sample, ledger: { ...context.ledger, ceiling: r.ceiling }, constrained: r.constrained, admission: d.admission });
      emitAll(enqueue, [...r.notes, ...d.notes]);
    }),
    configure: enqueueActions(({ context, event, enqueue }) => {
      assertEvent(event, 'node.configure');
      const d = admitDisk(context.admission, event.minFreeDisk, context.sample);
      if (d.admission !== context.admission) enqueue.assign({ admission: d.admission });
      const requireGrants = event.requireGrants === true;
      if (requireGrants !== (context.requireGrants === true)) enqueue.assign({ requireGrants });
      emitAll(enqueue, [
        ...d.notes,
        requireGrants !== (context.requireGrants === true)
          ? { type: 'log.write', level: 'info', message: requireGrants ? 'grants required: bid requests without a capability grant for deploy are declined unauthorized' : 'grants no longer required by --require-grants' }
          : null,
      ]);
    }),
    setPreferences: enqueueActions(({ event, enqueue }) => {
      assertEvent(event, 'preferences.set');
      enqueue.assign({ preferences: event.preferences });
      emitAll(enqueue, [{ type: 'preferences.save', preferences: event.preferences }, reply(event.replyTo, { ok: true, value: event.preferences })]);
    }),
    stop: enqueueActions(({ context, enqueue }) => {
      const ledger = { ...context.ledger, locks: {}, allocations: {} };
      enqueue.assign({ ledger, pendingReply: null });
      emitAll(enqueue, [
        ...Object.keys(context.ledger.allocations).map((allocationId): NodeIntent => ({ type: 'allocation.stop', allocationId })),
        timerIntent(context.ledger, ledger),
        reply(context.pendingReply, { ok: false, code: 'stopped', message: 'the node stopped before onboarding finished' }),
      ]);
    }),
  },
}).createMachine({
  id: 'node',
  context: ({ input }) => ({
    offer: input.registration?.offer ?? {},
    host: null,
    benchmark: input.registration?.benchmark ?? null,
    registration: input.registration ?? null,
    // a restored registration is offered again only after `node.onboard` validates it on this machine
    ledger: emptyLedger(NOTHING),
    preferences: input.preferences ?? DEFAULT_PREFERENCES,
    problems: [],
    sample: null,
    constrained: { memory: false, disk: false },
    admission: OPEN_ADMISSION,
    requireGrants: false,
    pendingReply: null,
    answered: emptyAnswered(input.maxAnswered ?? MAX_ANSWERED),
    declined: {},
  }),
  initial: 'offboarded',
  on: {
    'monitor.sample': { actions: 'sample' },
    'node.configure': { actions: 'configure' },
    'preferences.set': { actions: 'setPreferences' },
    'ledger.expire': { actions: 'expire' },
    'ledger.release': { actions: 'release' },
    'ledger.unlock': { actions: 'unlock' },
    'node.stop': { target: '.stopped', actions: 'stop' },
    'node.recovered': { actions: 'recover' },
    // Handled in every state: a Node that is not registered declines (scenario 2) rather than staying silent.
    'bid.request': [
      { guard: 'isRegistered', actions: { type: 'answerBid', params: { registered: true } } },
      { actions: { type: 'answerBid', params: { registered: false } } },
    ],
  },
  states: {
    offboarded: {
      on: {
        'node.onboard': [
          { guard: 'hasBenchmark', target: 'validating', actions: 'acceptOnboard' },
          { target: 'benchmarking', actions: 'acceptOnboard' },
        ],
        'ledger.lock': { actions: 'refuseClosed' },
        'ledger.allocate': { actions: 'refuseClosed' },
        'node.offboard': { actions: 'offboard' },
      },
    },
    benchmarking: {
      entry: 'requestBenchmark',
      on: {
        // the benchmark that was running died with the old process
        'node.recovered': { actions: ['recover', 'requestBenchmark'] },
        'benchmark.done': { target: 'validating', actions: 'takeBenchmark' },
        'benchmark.fail': { target: 'failed', actions: 'failBenchmark' },
        'node.onboard': { actions: 'refuseBusy' },
        'node.offboard': { actions: 'refuseBusy' },
        'ledger.lock': { actions: 'refuseBusy' },
        'ledger.allocate': { actions: 'refuseBusy' },
      },
    },
    validating: {
      entry: 'validate',
      always: [{ guard: 'isValid', target: 'registered' }, { target: 'failed' }],
    },
    registered: {
      entry: 'enterRegistered',
      on: {
        // a node recovered from its log is already registered: `run --rebenchmark` must still measure again
        'node.onboard': [{ guard: 'wantsBenchmark', target: 'benchmarking', actions: 'acceptOnboard' }, { actions: 'reonboard' }],
        'node.offboard': { target: 'offboarded', actions: 'offboard' },
        'ledger.lock': { actions: 'lock' },
        'ledger.allocate': { actions: 'allocate' },
      },
    },
    failed: {
      entry: 'enterFailed',
      on: {
        'node.onboard': [
          { guard: 'hasBenchmark', target: 'validating', actions: 'acceptOnboard' },
          { target: 'benchmarking', actions: 'acceptOnboard' },
        ],
        'node.offboard': { target: 'offboarded', actions: 'offboard' },
        'ledger.lock': { actions: 'refuseClosed' },
        'ledger.allocate': { actions: 'refuseClosed' },
      },
    },
    stopped: {
      on: {
        'node.onboard': { actions: 'refuseStopped' },
        'node.offboard': { actions: 'refuseStopped' },
        'ledger.lock': { actions: 'refuseStopped' },
        'ledger.allocate': { actions: 'refuseStopped' },
      },
    },
  },
});

export type NodeMachine = typeof nodeMachine;
export type NodeStateValue = 'offboarded' | 'benchmarking' | 'validating' | 'registered' | 'failed' | 'stopped';
