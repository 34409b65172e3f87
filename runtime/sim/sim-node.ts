/**
 * One simulated node: the real machines of a node (its Node, and the requester, provider and allocation actors of
 * its deals; array jobs' array and batch actors and ensembles' ensemble actors, whose effects are sim-arrays.ts's
 * and sim-ensembles.ts's) with the runtime's effects played against the simulator instead of sockets, workers and
 * processes.
 * What the real runtime's deal service does with an intent (runtime/deals/deal-effects.ts) and with a message at an
 * inbox (deal-inboxes.ts), this does in simulated time; what the real node logs before an actor sees it, this
 * keeps in a simulated log (the Node's with a snapshot every SNAPSHOT_EVERY events), and a restart rebuilds every
 * actor that had not ended from that log with effects off, then tells it so, as deal-recovery.ts does.
 *
 * A node works one event at a time: each costs `eventCostMs` of its simulated CPU, so a node sent more than it
 * can decide falls behind and reads its bid requests late, as a real one does.
 */
import { type AnyActorRef, type AnyStateMachine, createActor } from 'xstate';
import { ACTOR_KINDS } from '../../actors/kinds.ts';
import type { AllocationInput, AllocationRecordView } from '../../machines/allocation.messages.ts';
import { ALLOCATION_TERMINAL, DEAL_DEFAULTS, JOB_TERMINAL, PROVIDER_TERMINAL } from '../../machines/deal.constants.ts';
import { allocationActorId, dealKey, parseDealKey, providerActorId, requesterActorId } from '../../machines/deal.ids.ts';
import { requirementsOf, type JobSpec } from '../../machines/job.ts';
import type { NodeContext } from '../../machines/node.machine.ts';
import type { ProviderInput, ProviderRecord } from '../../machines/provider.messages.ts';
import type { JobRecord, RequesterInput } from '../../machines/requester.messages.ts';
import type { EnsembleInput, EnsembleRecord } from '../../machines/ensemble.messages.ts';
import type { DeclineCode } from '../../machines/deal.wire.ts';
import { BidGate } from '../deals/bid-gate.ts';
import { InstanceRuns, arrayEffect, recoverArray, routeBatchMessage } from './sim-arrays.ts';
import { ensembleEffect, recoverEnsemble, routePartStart } from './sim-ensembles.ts';

/** A bid request with less time than this left when it is read is dropped (deal-inboxes.ts MIN_ANSWER_MS). */
const MIN_ANSWER_MS = 50;
/** Events waiting at a node past which bid requests from outside are dropped (deal-inboxes.ts MAX_NODE_BACKLOG). */
const MAX_NODE_BACKLOG = 2000;
/** The Node's log keeps a snapshot and the events since, as the real journal's checkpoints do. */
const SNAPSHOT_EVERY = 1000;
/** How long a send to a peer that cannot be reached takes to fail (a dial's timeout). */
const DIAL_FAIL_MS = 1000;
/** Ended allocations a provider can still answer `allocation.query` about. */
const KEEP_ENDED = 200;

export const NODE_ACTOR = 'node';

/** What the simulator does for a node: the clock, the network, the other nodes, the checks and the counts. */
export interface SimHost {
  readonly now: () => number;
  readonly at: (time: number, job: () => void) => void;
  readonly eventCostMs: number;
  /** Sends a message to a peer; `onFail` runs (after a dial timeout) when the peer cannot be reached now. */
  send(from: SimNode, to: string, bytes: number, deliver: (node: SimNode) => void, onFail?: () => void): void;
  /** Broadcasts a bid request; returns the peers it reaches directly and whether it goes beyond them. */
  broadcast(from: SimNode, deliver: (node: SimNode, relayed: boolean) => void): { candidates: string[]; open: boolean; connected: number };
  /** How a task runs: how long, and whether it fails or hangs. */
  plan(dealId: string): { durationMs: number; fails: boolean; hangs: boolean };
  /** Called after every event an actor took (the invariants run here). */
  observe(node: SimNode, actorId: string, kind: string, context: unknown, event: { type: string }): void;
  /** Intents of an actor before they are carried out: a planted bug can drop some (returns the intents to run). */
  filter(node: SimNode, actorId: string, event: { type: string }, intents: Intent[]): Intent[];
  /** An actor ended and its record was saved. */
  retired(node: SimNode, actorId: string, kind: string, record: unknown): void;
  spawned(node: SimNode, actorId: string, kind: string, input: unknown): void;
  /** A task's execution ended (exit 0 is a completion). */
  executed(node: SimNode, dealId: string, outcome: 'completed' | 'failed' | 'cancelled' | 'timeout'): void;
  /** A task's process started (+1) or is gone (-1): what "nothing left running" counts. */
  running(node: SimNode, dealId: string, delta: 1 | -1): void;
  rtt(a: SimNode, b: string): number;
  /** Whether node `a` is linked to peer `b` (a mesh neighbour: a broadcast of b's reaches a directly). */
  linked(a: SimNode, b: string): boolean;
  /** How an array job's instance runs this time (each run of an index asks again): how long, whether it fails or hangs. */
  instancePlan(dealId: string, index: number): { durationMs: number; fails: boolean; hangs: boolean };
  /** A run of an array job's instance ended on `node` (exit 0 is a completion). */
  instanceEnded(node: SimNode, dealId: string, index: number, outcome: 'completed' | 'failed' | 'cancelled' | 'timeout'): void;
  /** Whether a health check of the part `dealId` (whose execution runs) passes now. */
  healthy(dealId: string): boolean;
}

export type Intent = { readonly type: string; readonly [k: string]: unknown };
export type Event = { readonly type: string; readonly [k: string]: unknown };
/** What a bid request carries on the wire (deal-schemas.ts), as the node inbox reads it. */
type BidPayload = { readonly dealId: string; readonly nonce: number; readonly job: JobSpec; readonly expiresAt: number; readonly count?: number };

interface ActorLog {
  readonly kind: string;
  readonly input: unknown;
  snapshot: unknown;
  events: Event[];
}

interface Live {
  readonly kind: string;
  readonly actor: AnyActorRef;
  readonly log: ActorLog;
}

type Work = { readonly actorId: string; readonly event: Event; readonly onReply?: (body: Intent) => void } | { readonly run: () => void };

export class SimNode {
  readonly actors = new Map<string, Live>();
  /** The durable part: what a restart rebuilds from. */
  readonly #log = new Map<string, ActorLog>();
  readonly #inbox: Work[] = [];
  #inboxHead = 0;
  #scheduled = false;
  #busyUntil = 0;
  #generation = 0;
  #alive = true;
  #sink: Intent[] | null = null;
  readonly #timers = new Map<string, number>();
  #timerSeq = 0;
  #nodeTimer = 0;
  readonly #replies = new Map<string, (body: Intent) => void>();
  #replySeq = 0;
  readonly #executions = new Map<string, number>();
  readonly #statuses = new Map<string, { to: string; status: Record<string, unknown> }>();
  readonly #endedStatus = new Map<string, Record<string, unknown>>();
  #heartbeat = false;
  /** The real runtime's bid gate: declines that hold for a while are answered without the Node actor. */
  #gate = new BidGate();
  /** The instances of array jobs running here (the runtime's BatchRuns). */
  readonly instances = new InstanceRuns(this);
  /** Counts: machine events taken, bid requests dropped unread. */
  events = 0;
  dropped = 0;

  constructor(
    readonly index: number,
    readonly id: string,
    private readonly host: SimHost,
  ) {}

  get alive(): boolean {
    return this.#alive;
  }

  get backlog(): number {
    return this.#inbox.length - this.#inboxHead;
  }

  /** The Node actor's context (its ledger): what the invariants read. */
  nodeContext(): NodeContext {
    return this.actors.get(NODE_ACTOR)!.actor.getSnapshot().context as NodeContext;
  }

  /** Starts the node for the first time: the Node actor, onboarded with `offer` (null: it offers nothing). */
  boot(offer: { cpu: number; memory: number; disk: number } | null, benchmark: unknown): void {
    this.#spawn(NODE_ACTOR, 'node', {});
    this.#enqueue({ actorId: NODE_ACTOR, event: { type: 'node.configure', minFreeDisk: 0 } });
    if (offer) this.#enqueue({ actorId: NODE_ACTOR, event: { type: 'node.onboard', offer: { ...offer, executors: ['wasm'] }, host: { dataDirWritable: true, dataDir: `/sim/${this.index}` }, benchmark } });
  }

  /** A deploy on this node: its requester actor starts negotiating. */
  deploy(input: RequesterInput, kind: 'requester' | 'array' = 'requester'): void {
    this.#spawn(requesterActorId(input.dealId), kind, input);
    this.#enqueue({ actorId: requesterActorId(input.dealId), event: { type: 'deal.start', now: this.host.now() } });
  }

  /** An ensemble's deploy on this node: its ensemble actor starts its parts' negotiations. */
  deployEnsemble(input: EnsembleInput): void {
    this.#spawn(`ensemble/${input.ensembleId}`, 'ensemble', input);
    this.#enqueue({ actorId: `ensemble/${input.ensembleId}`, event: { type: 'deal.start', now: this.host.now() } });
  }

  /** `cancel JOB` on this node (an ensemble, or a job: an array job's actor has the job's id too). */
  cancel(dealId: string): void {
    const id = this.actors.has(`ensemble/${dealId}`) ? `ensemble/${dealId}` : requesterActorId(dealId);
    if (this.actors.has(id)) this.#enqueue({ actorId: id, event: { type: 'job.cancel', now: this.host.now() } });
  }

  // ---- crashes ------------------------------------------------------------------------------------------------

  /**
   * The process dies: every live actor, timer, running job, queued event and unsent effect is gone; only the log
   * stays. `dropEffects` also loses the effects of the event being taken when it died (logged, never carried out).
   */
  crash(): void {
    this.#alive = false;
    this.#generation += 1;
    this.actors.clear();
    this.#inbox.length = 0;
    this.#inboxHead = 0;
    this.#scheduled = false;
    this.#timers.clear();
    this.#replies.clear();
    this.#executions.clear();
    this.#statuses.clear();
    this.#heartbeat = false;
    this.#gate = new BidGate();
    this.instances.clear();
  }

  /** Loses the effects of whatever the node is doing now (a crash between an event's log write and its effects). */
  crashMidEffect(): void {
    this.#sink = null;
    this.crash();
  }

  /** A new process on the same data dir: every actor that had not ended comes back from its log. */
  restart(): void {
    this.#alive = true;
    this.#busyUntil = this.host.now();
    const now = this.host.now();
    const rebuilt: string[] = [];
    for (const [id, log] of this.#log) {
      const logic = ACTOR_KINDS.get(log.kind)!.logic as AnyStateMachine;
      const actor = createActor(logic, { id, input: log.input, ...(log.snapshot ? { snapshot: log.snapshot as never } : {}) });
      actor.on('*', (intent: Intent) => this.#sink?.push(intent));
      actor.subscribe({ error: () => {} });
      actor.start();
      // replayed with effects off: the sink is null
      for (const e of log.events) actor.send(e as never);
      this.actors.set(id, { kind: log.kind, actor, log });
      rebuilt.push(id);
    }
    this.#enqueue({ actorId: NODE_ACTOR, event: { type: 'node.configure', minFreeDisk: 0 } });
    this.#enqueue({ actorId: NODE_ACTOR, event: { type: 'node.recovered', now } });
    for (const id of rebuilt) {
      const live = this.actors.get(id)!;
      const context = live.actor.getSnapshot().context as { record?: unknown };
      if (live.kind === 'requester') {
        const rec = (context as { record: JobRecord }).record;
        if (JOB_TERMINAL.includes(rec.state)) this.#retire(id, rec);
        else if (rec.rounds === 0) this.#enqueue({ actorId: id, event: { type: 'deal.start', now } });
        else {
          if (rec.provider && rec.allocationId) {
            const nonce = parseDealKey(rec.allocationId)?.nonce ?? 0;
            this.#sendTo(rec.provider, 'provider', 'allocation.query', { dealId: rec.id, nonce, allocationId: rec.allocationId });
          }
          this.#enqueue({ actorId: id, event: { type: 'deal.recovered', now } });
        }
      } else if (live.kind === 'provider') {
        const rec = (context as { record: ProviderRecord }).record;
        if (PROVIDER_TERMINAL.includes(rec.state)) {
          // its unlock may have been lost with the old process (deal-recovery.ts; harmless when it was unlocked already)
          this.#enqueue({ actorId: NODE_ACTOR, event: { type: 'ledger.unlock', id: rec.key } });
          this.#retire(id, rec);
        }
        else {
          this.#enqueue({ actorId: id, event: { type: 'deal.recovered', now } });
          // it took its allocation and none came back to wait for: that one ended (or was never spawned) and the
          // word died with the old process; its resources go back and the deal hears it ended (deal-recovery.ts)
          if (rec.state === 'allocated' && !rebuilt.includes(allocationActorId(rec.key))) {
            const state = (this.#endedStatus.get(rec.key)?.state as string | undefined) ?? 'failed';
            this.#enqueue({ actorId: NODE_ACTOR, event: { type: 'ledger.release', allocationId: rec.key } });
            this.#enqueue({ actorId: id, event: { type: 'allocation.ended', allocationId: rec.key, state, now } });
          }
        }
      } else if (live.kind === 'allocation' || live.kind === 'batch') {
        const rec = allocationRecord(live);
        if (ALLOCATION_TERMINAL.includes(rec.state)) {
          this.#enqueue({ actorId: NODE_ACTOR, event: { type: 'ledger.release', allocationId: rec.allocationId } });
          this.#enqueue({ actorId: providerActorId(rec.allocationId), event: { type: 'allocation.ended', allocationId: rec.allocationId, state: rec.state, now } });
          this.#retire(id, rec);
        } else this.#enqueue({ actorId: id, event: { type: 'allocation.recovered', now } });
      } else if (live.kind === 'array') recoverArray(this, id, context.record as JobRecord, now);
      else if (live.kind === 'ensemble') recoverEnsemble(this, id, context.record as EnsembleRecord, now);
    }
  }

  // ---- the work loop ------------------------------------------------------------------------------------------

  #enqueue(w: Work): void {
    if (!this.#alive) return;
    this.#inbox.push(w);
    if (!this.#scheduled) {
      this.#scheduled = true;
      const gen = this.#generation;
      this.host.at(Math.max(this.host.now(), this.#busyUntil), () => this.#work(gen));
    }
  }

  /** Runs `run` once everything queued before it at this node is done (the invariants' checks wait so). */
  after(run: () => void): void {
    this.#enqueue({ run });
  }

  #work(gen: number): void {
    if (gen !== this.#generation || !this.#alive) return;
    const w = this.#inbox[this.#inboxHead]!;
    this.#inbox[this.#inboxHead] = undefined as never;
    this.#inboxHead += 1;
    if (this.#inboxHead > 1024 && this.#inboxHead * 2 > this.#inbox.length) {
      this.#inbox.splice(0, this.#inboxHead);
      this.#inboxHead = 0;
    }
    if ('run' in w) w.run();
    else {
      this.#take(w.actorId, w.event, w.onReply);
      this.#busyUntil = this.host.now() + this.host.eventCostMs;
    }
    if (!this.#alive || gen !== this.#generation) return;
    if (this.#inboxHead < this.#inbox.length) this.host.at(Math.max(this.host.now(), this.#busyUntil), () => this.#work(gen));
    else this.#scheduled = false;
  }

  /** One event to one actor: logged first, then taken, then its effects carried out. */
  #take(actorId: string, event: Event, onReply?: (body: Intent) => void): void {
    const live = this.actors.get(actorId);
    if (!live) return; // ended meanwhile (a late timer, a message after the end): as the real registry drops it
    let replyTo: string | undefined;
    if (onReply) {
      replyTo = `r${this.#replySeq++}`;
      this.#replies.set(replyTo, onReply);
      event = { ...event, replyTo };
    }
    const log = live.log;
    log.events.push(event);
    this.events += 1;
    const sink: Intent[] = [];
    this.#sink = sink;
    const before = actorId === NODE_ACTOR ? (live.actor.getSnapshot().context as NodeContext) : null;
    live.actor.send(event as never);
    if (this.#sink !== sink) return; // died mid-effect
    this.#sink = null;
    if (before) {
      // the gate hears of locks taken and released from the Node's facts, as the real one does
      const after = live.actor.getSnapshot().context as NodeContext;
      if (after.ledger !== before.ledger) {
        const facts = ACTOR_KINDS.get('node')!.facts!(before, after);
        if (facts.length > 0) this.#gate.facts(facts.map((fact, seq) => ({ actor: NODE_ACTOR, seq, ts: 0, fact })));
      }
    }
    if (actorId === NODE_ACTOR && log.events.length >= SNAPSHOT_EVERY) {
      log.snapshot = JSON.parse(JSON.stringify(live.actor.getPersistedSnapshot()));
      log.events = [];
    }
    const snap = live.actor.getSnapshot();
    this.host.observe(this, actorId, live.kind, snap.context, event);
    const intents = this.host.filter(this, actorId, event, sink);
    for (const intent of intents) {
      if (!this.#alive) return;
      this.#effect(actorId, live.kind, intent);
    }
    if (replyTo) this.#replies.delete(replyTo);
  }

  #spawn(actorId: string, kind: string, input: unknown): boolean {
    if (this.actors.has(actorId)) return false;
    const logic = ACTOR_KINDS.get(kind)!.logic as AnyStateMachine;
    const actor = createActor(logic, { id: actorId, input });
    actor.on('*', (intent: Intent) => this.#sink?.push(intent));
    actor.subscribe({ error: () => {} });
    actor.start();
    const log: ActorLog = { kind, input, snapshot: null, events: [] };
    this.#log.set(actorId, log);
    this.actors.set(actorId, { kind, actor, log });
    this.host.spawned(this, actorId, kind, input);
    return true;
  }

  /** The actor ended: its record is saved, its log and actor let go (the real registry's retire). */
  #retire(actorId: string, record: unknown): void {
    const live = this.actors.get(actorId);
    if (!live) return;
    this.actors.delete(actorId);
    this.#log.delete(actorId);
    for (const key of [...this.#timers.keys()]) if (key.startsWith(`${actorId}|`)) this.#timers.delete(key);
    this.host.retired(this, actorId, live.kind, record);
  }

  #deliver(actorId: string, event: Event): void {
    this.#enqueue({ actorId, event });
  }

  // ---- effects ------------------------------------------------------------------------------------------------

  #effect(actorId: string, kind: string, i: Intent): void {
    const now = this.host.now();
    switch (i.type) {
      case 'registration.save':
      case 'preferences.save':
        this.#gate.noteRegistered();
        return;
      case 'log.write':
      case 'allocation.stop':
      case 'onboarding.failed':
      case 'benchmark.run':
        return;
      case 'reply.send': {
        const reply = this.#replies.get(i.replyTo as string);
        if (reply) reply(i);
        return;
      }
      case 'timer.schedule': {
        if (actorId === NODE_ACTOR) {
          const token = ++this.#nodeTimer;
          if (i.at === null) return;
          const gen = this.#generation;
          this.host.at(i.at as number, () => {
            if (gen === this.#generation && token === this.#nodeTimer) this.#deliver(NODE_ACTOR, { type: 'ledger.expire', now: this.host.now() });
          });
          return;
        }
        const key = `${actorId}|${i.key as string}`;
        const token = ++this.#timerSeq;
        this.#timers.set(key, token);
        const gen = this.#generation;
        this.host.at(i.at as number, () => {
          if (gen !== this.#generation || this.#timers.get(key) !== token) return;
          this.#timers.delete(key);
          this.#deliver(actorId, { type: 'timer.fired', key: i.key as string, now: this.host.now() });
        });
        return;
      }
      case 'timer.cancel':
        this.#timers.delete(`${actorId}|${i.key as string}`);
        return;
      // ---- node ----
      case 'bid.open': {
        this.#gate.noteBid();
        const input = i.input as ProviderInput;
        const id = providerActorId(input.key);
        this.#spawn(id, 'provider', input);
        this.#deliver(id, { type: 'provider.start', now, bidSent: true });
        return this.#sendTo(input.requester, 'requester', 'bid.submit', { bid: input.bid });
      }
      case 'bid.decline.send':
        this.#gate.noteDecline(i.to as string, i.code as DeclineCode, i.reason as string, now);
        if (i.quiet) return;
        return this.#sendTo(i.to as string, 'requester', 'bid.decline', { dealId: i.dealId, nonce: i.nonce, code: i.code, reason: i.reason });
      // ---- requester ----
      case 'bid.request.send':
        return this.#requestBids(actorId, i);
      case 'deal.commit.send':
        return this.#sendOrFail(actorId, i.to as string, 'deal.commit', { dealId: i.dealId, nonce: i.nonce }, 'commit', i.nonce as number);
      case 'deal.allocate.send': {
        const job = (this.actors.get(actorId)?.log.input as RequesterInput | undefined)?.job;
        // a part's ensemble members, an array job's first instances (deal-effects.ts sendAllocate)
        const members = i.members ? { members: i.members } : {};
        const assign = i.assign ? { assign: i.assign } : {};
        return this.#sendOrFail(actorId, i.to as string, 'deal.allocate', { dealId: i.dealId, nonce: i.nonce, ...(job ? { job } : {}), ...members, ...assign }, 'allocate', i.nonce as number, moduleBytes(job));
      }
      case 'deal.revert.send':
        return this.#sendTo(i.to as string, 'provider', 'deal.revert', { dealId: i.dealId, nonce: i.nonce, reason: i.reason });
      case 'deal.cancel.send':
        return this.#sendOrFail(actorId, i.to as string, 'deal.cancel', { dealId: i.dealId, nonce: i.nonce }, 'cancel', i.nonce as number);
      case 'job.ended':
        return this.#retire(actorId, i.record);
      // ---- provider ----
      case 'bid.submit.send':
        return this.#sendTo(i.to as string, 'requester', 'bid.submit', { bid: i.bid });
      case 'deal.committed.send':
        return this.#sendTo(i.to as string, 'requester', 'deal.committed', { dealId: i.dealId, nonce: i.nonce });
      case 'deal.allocated.send':
        return this.#sendTo(i.to as string, 'requester', 'deal.allocated', { dealId: i.dealId, nonce: i.nonce, allocationId: i.allocationId });
      case 'deal.refused.send':
        return this.#sendTo(i.to as string, 'requester', 'deal.refused', { dealId: i.dealId, nonce: i.nonce, step: i.step, reason: i.reason });
      case 'ledger.allocate.request': {
        const allocationId = i.allocationId as string;
        this.#enqueue({
          actorId: NODE_ACTOR,
          event: { type: 'ledger.allocate', allocationId, lockId: i.lockId, now },
          onReply: (r) => {
            const ok = r.ok === true || r.code === 'duplicate';
            this.#deliver(actorId, { type: 'ledger.allocated', ok, ...(ok ? {} : { reason: (r.message as string) ?? 'the ledger refused' }), now: this.host.now() });
          },
        });
        return;
      }
      case 'ledger.unlock':
        return this.#deliver(NODE_ACTOR, { type: 'ledger.unlock', id: i.lockId });
      case 'allocation.spawn': {
        const input = i.input as AllocationInput;
        const id = allocationActorId(input.allocationId);
        // an array job's allocation runs its instances
        this.#spawn(id, input.slots !== undefined ? 'batch' : 'allocation', input);
        return this.#deliver(id, { type: 'allocation.start', now });
      }
      case 'allocation.cancel':
        return this.#deliver(allocationActorId(i.allocationId as string), { type: 'allocation.cancel', now });
      case 'provider.ended':
        return this.#retire(actorId, i.record);
      // ---- allocation ----
      case 'execution.start':
        return this.#execute(actorId, i.allocationId as string, (this.actors.get(actorId)?.log.input as AllocationInput).dealId);
      case 'execution.cancel':
        return this.#stopExecution(actorId, i.allocationId as string);
      case 'status.push': {
        const status = i.status as Record<string, unknown> & { state: string };
        const terminal = ALLOCATION_TERMINAL.includes(status.state as never);
        if (terminal) this.#statuses.delete(status.allocationId as string);
        else this.#statuses.set(status.allocationId as string, { to: i.to as string, status });
        if (!terminal) this.#startHeartbeat();
        return this.#sendTo(i.to as string, 'requester', 'allocation.status', status);
      }
      case 'ledger.release':
        return this.#deliver(NODE_ACTOR, { type: 'ledger.release', allocationId: i.allocationId });
      case 'allocation.ended': {
        const record = i.record as AllocationRecordView;
        this.#statuses.delete(record.allocationId);
        this.#endedStatus.set(record.allocationId, statusOf(record));
        if (this.#endedStatus.size > KEEP_ENDED) this.#endedStatus.delete(this.#endedStatus.keys().next().value!);
        this.#deliver(providerActorId(record.allocationId), { type: 'allocation.ended', allocationId: record.allocationId, state: record.state, now });
        return this.#retire(actorId, record);
      }
      default:
        if (arrayEffect(this, actorId, i) || ensembleEffect(this, actorId, i)) return;
        throw new Error(`the simulator has no effect for intent ${i.type} of ${kind} ${actorId}`);
    }
  }

  #requestBids(actorId: string, i: Intent): void {
    const job = i.job as JobSpec;
    // an array job's round asks for `count` instances
    const count = i.count !== undefined ? { count: i.count as number } : {};
    const payload = { dealId: i.dealId as string, nonce: i.nonce as number, job: requirementsOf(job), expiresAt: i.expiresAt as number, ...count };
    const excluded = new Set(job.constraints.excludePeers);
    let candidates: string[] = [];
    let open = false;
    let reach: { connected: number; subscribed: number } | undefined;
    if (job.constraints.peers.length > 0) {
      for (const p of job.constraints.peers) {
        if (p === this.id || excluded.has(p)) continue;
        candidates.push(p);
        this.#sendTo(p, 'node', 'bid.request', payload);
      }
    } else {
      const from = this.id;
      const r = this.host.broadcast(this, (node, relayed) => node.receiveBid(from, payload, relayed));
      candidates = r.candidates.filter((p) => !excluded.has(p));
      open = r.open;
      reach = { connected: r.connected, subscribed: r.connected };
    }
    this.#deliver(actorId, { type: 'bid.request.sent', nonce: payload.nonce, candidates, open, ...(reach ? { reach } : {}), now: this.host.now() });
  }

  #sendTo(to: string, inbox: string, type: string, payload: Record<string, unknown>, bytes = 400): void {
    const from = this.id;
    this.host.send(this, to, bytes, (node) => node.receive(from, inbox, type, payload));
  }

  #sendOrFail(actorId: string, to: string, type: string, payload: Record<string, unknown>, step: string, nonce: number, bytes = 400): void {
    const from = this.id;
    const gen = this.#generation;
    this.host.send(this, to, bytes, (node) => node.receive(from, 'provider', type, payload), () => {
      if (gen === this.#generation) this.#deliver(actorId, { type: 'send.failed', to, nonce, step, reason: `could not reach ${to}`, now: this.host.now() });
    });
  }

  // ---- inboxes ------------------------------------------------------------------------------------------------

  /** A message from peer `from` arrives at inbox `inbox` (the router checked it; here it is routed as the real inboxes do). */
  /** A bid request at the node inbox (a broadcast's delivery calls this straight: one shape of payload). */
  receiveBid(from: string, payload: BidPayload, relayed: boolean): void {
    if (!this.#alive) return;
    if (this.backlog >= MAX_NODE_BACKLOG) {
      this.dropped += 1;
      return;
    }
    // as the real inbox does on arrival: too late to answer, dropped; closed at the gate, declined without the Node
    // (or, relayed, ignored); else into the Node's mailbox, stamped with the time it arrived
    const now = this.host.now();
    if (from !== this.id && payload.expiresAt - now < MIN_ANSWER_MS) {
      this.dropped += 1;
      return;
    }
    const gated = from === this.id ? null : this.#gate.check(from, now);
    if (gated) return relayed ? undefined : this.#sendTo(from, 'requester', 'bid.decline', { dealId: payload.dealId, nonce: payload.nonce, ...gated });
    const { dealId, nonce, job, expiresAt, count } = payload;
    const event = { dealId, nonce, job, expiresAt, ...(count !== undefined ? { count } : {}), ...(relayed ? { relayed } : {}), type: 'bid.request', from, now, self: this.id };
    return this.#enqueue({ actorId: NODE_ACTOR, event });
  }

  /** `relayed`: a broadcast that reached this node through the mesh from a requester it is not linked to (it is none of the round's candidates). */
  receive(from: string, inbox: string, type: string, payload: Record<string, unknown>, relayed = false): void {
    if (!this.#alive) return;
    if (inbox === 'node') return this.receiveBid(from, payload as BidPayload, relayed);
    if (inbox === 'requester') {
      const dealId = type === 'bid.submit' ? (payload.bid as { dealId: string }).dealId : (payload.dealId as string);
      const id = requesterActorId(dealId);
      return this.after(() => {
        if (!this.actors.has(id)) {
          if (type === 'bid.submit') {
            const bid = payload.bid as { dealId: string; nonce: number };
            this.#sendTo(from, 'provider', 'deal.revert', { dealId: bid.dealId, nonce: bid.nonce, reason: 'no such job on the requester (it ended), or it did not ask this peer' });
          }
          return;
        }
        const now = this.host.now();
        const extra = type === 'bid.submit' ? { rttMs: this.host.rtt(this, from) } : {};
        this.#take(id, { ...payload, ...extra, type, from, now });
        this.#busyUntil = this.host.now() + this.host.eventCostMs;
      });
    }
    // provider inbox: an array job's batch messages and a part's start go to its allocation
    if (routeBatchMessage(this, from, type, payload) || routePartStart(this, from, type, payload)) return;
    const { dealId, nonce } = payload as { dealId: string; nonce: number };
    const key = dealKey(dealId, nonce, from);
    if (type === 'allocation.query') {
      return this.after(() => {
        if (payload.allocationId !== key) return;
        const live = this.actors.get(allocationActorId(key));
        const status = live ? statusOf(allocationRecord(live)) : this.#endedStatus.get(key);
        if (status) this.#sendTo(from, 'requester', 'allocation.status', status);
      });
    }
    const id = providerActorId(key);
    this.after(() => {
      if (!this.actors.has(id)) {
        if (type === 'deal.commit' || type === 'deal.allocate') {
          this.#sendTo(from, 'requester', 'deal.refused', { dealId, nonce, step: type === 'deal.commit' ? 'commit' : 'allocate', reason: 'this node holds nothing for that deal (its bid expired or was released)' });
        }
        return;
      }
      const now = this.host.now();
      const extra = type === 'deal.allocate' ? { moduleReady: true } : {};
      this.#take(id, { ...payload, ...extra, type, from, now });
      this.#busyUntil = this.host.now() + this.host.eventCostMs;
    });
  }

  // ---- executions and heartbeats ------------------------------------------------------------------------------

  #execute(actorId: string, allocationId: string, dealId: string): void {
    const plan = this.host.plan(dealId);
    const token = (this.#executions.get(allocationId) ?? 0) + 1;
    this.#executions.set(allocationId, token);
    const gen = this.#generation;
    const live = () => gen === this.#generation && this.#executions.get(allocationId) === token;
    this.host.running(this, dealId, 1);
    // a warm runner: the instance starts within a few milliseconds
    this.host.at(this.host.now() + 3, () => {
      if (live()) this.#deliver(actorId, { type: 'execution.started', pid: 1000 + token, now: this.host.now() });
    });
    if (plan.hangs) return;
    this.host.at(this.host.now() + 3 + plan.durationMs, () => {
      if (!live()) return;
      this.#executions.delete(allocationId);
      this.host.running(this, dealId, -1);
      const outcome = plan.fails ? 'failed' : 'completed';
      this.host.executed(this, dealId, outcome);
      this.#deliver(actorId, { type: 'execution.ended', outcome: { exitCode: plan.fails ? 1 : 0, reason: outcome, message: plan.fails ? 'exit code 1' : '', durationMs: plan.durationMs, outputBytes: 0, outputTruncated: false }, now: this.host.now() });
    });
  }

  #stopExecution(actorId: string, allocationId: string): void {
    if (!this.#executions.has(allocationId)) return;
    this.#executions.delete(allocationId);
    const dealId = (this.actors.get(actorId)?.log.input as AllocationInput | undefined)?.dealId ?? '';
    const gen = this.#generation;
    // the job's process group is killed: it is over a moment later
    this.host.at(this.host.now() + 5, () => {
      if (gen !== this.#generation) return;
      this.host.running(this, dealId, -1);
      this.host.executed(this, dealId, 'cancelled');
      this.#deliver(actorId, { type: 'execution.ended', outcome: { exitCode: null, reason: 'cancelled', message: 'stopped', durationMs: 0, outputBytes: 0, outputTruncated: false }, now: this.host.now() });
    });
  }

  #startHeartbeat(): void {
    if (this.#heartbeat) return;
    this.#heartbeat = true;
    const gen = this.#generation;
    const beat = () => {
      if (gen !== this.#generation) return;
      if (this.#statuses.size === 0) {
        this.#heartbeat = false;
        return;
      }
      for (const { to, status } of this.#statuses.values()) this.#sendTo(to, 'requester', 'allocation.status', status);
      this.host.at(this.host.now() + DEAL_DEFAULTS.heartbeatMs, beat);
    };
    this.host.at(this.host.now() + DEAL_DEFAULTS.heartbeatMs, beat);
  }

  /** Whether actor `id` is live here. */
  has(id: string): boolean {
    return this.actors.has(id);
  }

  // ---- for the effects of array jobs and ensembles (sim-arrays.ts, sim-ensembles.ts): internal ------------------

  /** @internal The simulator this node runs in. */
  get sim(): SimHost {
    return this.host;
  }

  /** @internal Bumped by every crash: what was scheduled before one is void. */
  get generation(): number {
    return this.#generation;
  }

  /** @internal Queues an event for a live actor (the runtime's `svc.deliver`). */
  deliver(actorId: string, event: Event): void {
    this.#deliver(actorId, event);
  }

  /** @internal Spawns an actor unless it runs already (the registry's spawn); true when spawned now. */
  spawn(actorId: string, kind: string, input: unknown): boolean {
    return this.#spawn(actorId, kind, input);
  }

  /** @internal Sends a message to a peer's inbox. */
  sendTo(to: string, inbox: string, type: string, payload: Record<string, unknown>, bytes = 400): void {
    this.#sendTo(to, inbox, type, payload, bytes);
  }

  /** @internal The actor ended: its record saved, its log let go. */
  retire(actorId: string, record: unknown): void {
    this.#retire(actorId, record);
  }

  /** @internal A message for actor `actorId`, taken when the node gets to it; dropped if the actor is gone then (or `make` says null). */
  takeLater(actorId: string, make: () => Event | null): void {
    this.after(() => {
      if (!this.actors.has(actorId)) return;
      const event = make();
      if (!event) return;
      this.#take(actorId, event);
      this.#busyUntil = this.host.now() + this.host.eventCostMs;
    });
  }

  /** @internal Whether an execution (a task's, a part's) of the allocation runs here now. */
  executing(allocationId: string): boolean {
    return this.#executions.has(allocationId);
  }
}

function moduleBytes(job: JobSpec | undefined): number {
  return 400 + (job?.executor === 'wasm' ? job.wasm.module.size : 0);
}

function allocationRecord(live: Live): AllocationRecordView {
  const kind = ACTOR_KINDS.get(live.kind)!;
  const snap = live.actor.getSnapshot();
  return (kind.present ? kind.present(snap.context, snap.value) : snap.context) as AllocationRecordView;
}

function statusOf(rec: AllocationRecordView): Record<string, unknown> {
  return { dealId: rec.dealId, nonce: parseDealKey(rec.allocationId)?.nonce ?? 0, allocationId: rec.allocationId, state: rec.state, exitCode: rec.exitCode, message: rec.message };
}
