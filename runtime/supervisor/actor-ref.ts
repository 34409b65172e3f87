/**
 * A handle on one supervised actor: its durable mailbox logs every event before the actor sees it and posts the
 * durable batches to the actor's worker through comlink; the ref routes replies to waiting `ask()`s and the other
 * intents to the runtime, snapshots, and rebuilds the actor from its snapshot plus the logged events since when its
 * supervisor decides to restart it. Whether and when to restart is the supervisor's decision (supervisor.ts): the
 * ref reports that it went down and waits. Its types, errors and defaults are in supervision.ts.
 */
import type { Remote } from 'comlink';
import { type ActorHostApi, type ActorView, type DeliverResult, type IndexedFact, type VersionedSnapshot, parseIntents } from '../../actors/actor.protocol.ts';
import type { LoggedEvent } from '../../actors/event-log.ts';
import type { ReplyBody } from '../../machines/node.messages.ts';
import { DurableMailbox, type Entry } from './durable-mailbox.ts';
import { PendingAsks } from './pending-asks.ts';
import { type Placement, STOP_CALL_MS, type WorkerHost, WorkerPool, bounded } from './worker-pool.ts';
import { ActorFailedError, type ActorStatus, type OmitFrom, type Recovery, type SupervisorDeps, type SupervisorInit, ended } from './supervision.ts';

/** Who decides what happens when an actor goes down: its supervisor. */
export interface ActorOwner {
  /** The actor went down (its worker died, or an event failed in it) and waits for `restart` or `fail`. */
  childFailed(ref: ActorRef, cause: string): void;
  /** The actor's restarts within its supervisor's intensity window. */
  restartsOf(id: string): number;
}

/** A handle on one supervised actor that accepts events of type `E`. */
export class ActorRef<E extends { readonly type: string } = { readonly type: string }> {
  #host: WorkerHost | undefined;
  #remote!: Remote<ActorHostApi>;
  /** Removes this actor's listeners from its worker. */
  #unlisten: () => void = () => {};
  readonly #pool: WorkerPool;
  readonly #mailbox: DurableMailbox;
  /** Bumped whenever the worker side is torn down: answers from an older epoch are ignored. */
  #epoch = 0;
  /** Last seq posted to the worker. */
  #posted = 0;
  /** Last seq the worker processed. */
  #acked = 0;
  #snapshotSeq = 0;
  /** Bytes logged since the snapshot under way or the last one. */
  #bytesSinceSnapshot = 0;
  #idle: (() => void)[] = [];
  #snapshotting = false;
  /** The event that failed in the actor, dropped from the log at the restart. */
  #poisonSeq: number | undefined;
  /** A restart is under way. */
  #restarting = false;
  readonly #asks: PendingAsks;
  #status: ActorStatus = 'starting';
  #recovery: Recovery | undefined;

  constructor(
    readonly id: string,
    readonly kind: string,
    readonly input: unknown,
    readonly init: SupervisorInit,
    readonly deps: SupervisorDeps,
    readonly placement: Placement = 'dedicated',
    pool?: WorkerPool,
    readonly owner?: ActorOwner,
  ) {
    this.#pool = pool ?? new WorkerPool(deps.workerUrl);
    this.#asks = new PendingAsks(id);
    this.#mailbox = new DurableMailbox(id, { log: deps.eventLog, batchSize: init.batchSize, now: () => this.#now() }, {
      post: (batch, bytes) => this.#post(batch, bytes),
      logFailed: (err) => this.#logFailed(err),
      flushed: () => this.#notifyIdle(),
    });
  }

  get status(): ActorStatus {
    return this.#status;
  }

  /** Restarts within its supervisor's current intensity window. */
  get restarts(): number {
    return this.owner?.restartsOf(this.id) ?? 0;
  }

  /** Events sent and not yet processed (queued, on their way to the log, or posted and unanswered). */
  get backlog(): number {
    return this.#mailbox.seq - this.#acked;
  }

  /** How the actor came up at spawn. */
  get recovery(): Recovery | undefined {
    return this.#recovery;
  }

  /**
   * Starts the actor: from the log when it knows the actor (its snapshot plus the events since, replayed with
   * effects off), otherwise fresh, registering it. `snapshot` overrides the logged one (tests, tools).
   */
  async start(override?: VersionedSnapshot): Promise<ActorView> {
    const t0 = performance.now();
    const log = this.deps.eventLog;
    // read concurrently: a deal's actors start on its critical path
    const [known, logged] = await Promise.all([log.actor(this.id), override ? undefined : log.latestSnapshot(this.id)]);
    const snapshot = override ?? logged;
    const [, events, last] = await Promise.all([
      known ? undefined : log.register({ id: this.id, kind: this.kind, input: this.input, createdAt: this.#now() }),
      log.eventsAfter(this.id, snapshot?.seq ?? 0),
      log.lastSeq(this.id),
    ]);
    const input = known ? known.input : this.input;
    const lastSeq = Math.max(last, snapshot?.seq ?? 0);
    this.#mailbox.resume(lastSeq);
    this.#posted = this.#acked = lastSeq;
    this.#snapshotSeq = snapshot?.seq ?? 0;
    const view = await this.#boot(input, snapshot, events.map((e) => e.payload));
    this.#reportFacts(view.facts, events);
    this.#open();
    this.#recovery = { recovered: known !== undefined, snapshotSeq: snapshot?.seq ?? 0, replayed: events.length, lastSeq, ms: Math.round(performance.now() - t0) };
    return view;
  }

  /** Queues an event; it is logged, then delivered, in a batch on the next turn of the event loop. */
  send(event: E, origin = 'local'): void {
    if (ended(this.#status)) throw new ActorFailedError(`actor ${this.id} is ${this.#status}`);
    this.#mailbox.push(event as Entry['payload'], origin);
  }

  /** Sends a command and waits for the actor's reply to it. */
  ask(event: OmitFrom<E, 'replyTo'>, timeoutMs = this.init.askTimeoutMs, origin = 'local'): Promise<ReplyBody> {
    return this.#asks.open(event.type, timeoutMs, (replyTo) => this.send({ ...event, replyTo } as unknown as E, origin));
  }

  /** The actor's current state, after every event sent so far. */
  async view(): Promise<ActorView> {
    await this.drain();
    this.#assertAlive();
    return this.#remote.view(this.id);
  }

  /** Resolves when every queued event has been logged and processed. */
  drain(): Promise<void> {
    if (ended(this.#status)) return Promise.reject(new ActorFailedError(`actor ${this.id} is ${this.#status}`));
    this.#mailbox.flush();
    if (!this.#mailbox.busy && this.#status === 'running') return Promise.resolve();
    return new Promise((resolve) => this.#idle.push(resolve));
  }

  /** A persisted snapshot of the actor now. */
  async persisted(): Promise<VersionedSnapshot> {
    await this.drain();
    this.#assertAlive();
    return this.#remote.persisted(this.id, this.#acked);
  }

  /** Ends the worker abruptly, as a crash would (for tests and drills). */
  crash(): void {
    void this.#remote.crash(1);
  }

  /** Measures the event rate inside the worker (benchmarks). */
  measure(events: readonly unknown[], count: number): Promise<{ events: number; ms: number }> {
    return this.#remote.measure(this.kind, this.input, events, count);
  }

  /**
   * Stops the actor once what it was sent is done. A final snapshot is saved unless `snapshot: false` (an actor that
   * ended and leaves the live store: no start will ever read it, and its log already holds its whole story).
   */
  async stop(opts: { readonly snapshot?: boolean } = {}): Promise<void> {
    if (this.#status === 'stopped') return;
    if (this.#status === 'running') {
      await this.drain().catch(() => {});
      if (opts.snapshot !== false) await this.#finalSnapshot();
    }
    this.#status = 'stopped';
    this.#epoch += 1; // a restart under way comes to nothing
    this.#mailbox.close();
    this.#rejectAll(new ActorFailedError(`actor ${this.id} stopped`));
    await this.#mailbox.settled();
    await bounded(() => this.#remote.stop(this.id), STOP_CALL_MS);
    await this.#dropHost();
  }

  /**
   * Rebuilds the actor from its log (the supervisor's decision): processed events are replayed with effects off,
   * the rest redelivered. A running actor (a sibling's restart under one_for_all or rest_for_one) first finishes
   * the batches it has (for at most a second), so no effect is emitted twice. No-op while a restart is under way.
   */
  async restart(cause: string): Promise<void> {
    if (ended(this.#status) || this.#restarting) return;
    this.#restarting = true;
    try {
      if (this.#status === 'running') {
        await bounded(() => this.drain(), STOP_CALL_MS);
        if (ended(this.#status)) return;
        this.#takeDown();
      }
      await this.#rebuild(cause);
    } catch (err) {
      if (ended(this.#status)) return;
      this.#restarting = false;
      this.#takeDown();
      this.#report(`restart failed: ${(err as Error).message}`);
    } finally {
      this.#restarting = false;
    }
  }

  /** Ends the actor for good (its supervisor gave up, or it is temporary): asks reject with `err`. */
  fail(err: Error): void {
    if (ended(this.#status)) return;
    this.#takeDown();
    this.#status = 'failed';
    this.#rejectAll(err);
  }

  /** Takes the worker side down (the supervisor restarts it or fails it next); asks stay pending. */
  takeDown(): void {
    if (ended(this.#status)) return;
    this.#takeDown();
  }

  #takeDown(): void {
    this.#epoch += 1;
    this.#mailbox.close();
    this.#status = 'restarting';
    void this.#dropHost();
  }

  /** Leaves the worker: a dedicated one ends; on the shared one only this actor goes. */
  async #dropHost(): Promise<void> {
    const h = this.#host;
    if (!h) return;
    this.#host = undefined;
    this.#unlisten();
    // not awaited on the shared worker: a call to a worker that died never settles
    if (h.shared) void bounded(() => h.remote.stop(this.id), STOP_CALL_MS);
    else await this.#pool.release(h);
  }

  /** A snapshot at a clean stop, so the next start replays nothing. */
  async #finalSnapshot(): Promise<void> {
    if (this.#status !== 'running' || this.#acked === this.#snapshotSeq) return;
    try {
      const remote = this.#remote;
      const snap = await bounded(() => remote.persisted(this.id, this.#acked), STOP_CALL_MS);
      if (!snap) throw new Error(`the worker did not answer within ${STOP_CALL_MS} ms`);
      await this.deps.eventLog.saveSnapshot(this.id, snap, this.deps.snapshotMeta?.(this.id));
      this.#snapshotSeq = snap.seq;
    } catch (e) {
      this.deps.log.warn({ actor: this.id, err: (e as Error).message }, 'no snapshot at stop; the next start replays the log');
    }
  }

  #now(): number {
    return (this.deps.now ?? Date.now)();
  }

  async #boot(input: unknown, snapshot: VersionedSnapshot | undefined, replay: readonly unknown[]): Promise<ActorView & { facts?: readonly IndexedFact[] }> {
    const epoch = ++this.#epoch;
    const h = this.#pool.acquire(this.placement);
    const { worker } = h;
    this.#host = h;
    this.#remote = h.remote;
    // comlink never settles a call to a worker that died, so a worker that exits before it answers init fails the boot.
    let booted = false;
    let rejectBoot: (e: Error) => void = () => {};
    const exited = new Promise<never>((_, reject) => (rejectBoot = reject));
    exited.catch(() => {});
    const onError = (err: Error) => this.deps.log.error({ actor: this.id, err }, 'actor worker error');
    const onExit = (code: number) => {
      if (!booted) rejectBoot(new Error(`actor ${this.id}: worker exited with code ${code} before it started`));
      else if (epoch === this.#epoch && this.#status === 'running') this.#down(`worker exited with code ${code}`);
    };
    worker.on('error', onError);
    worker.on('exit', onExit);
    this.#unlisten = () => {
      worker.off('error', onError);
      worker.off('exit', onExit);
    };
    const opts = { input, replay, ...(snapshot ? { snapshot } : {}), ...(this.deps.onInspect ? { inspect: true } : {}) };
    const view = await Promise.race([this.#remote.init(this.id, this.kind, opts), exited]);
    booted = true;
    if (epoch !== this.#epoch) {
      // stopped (or failed again) while it booted: leave nothing behind in the worker
      if (ended(this.#status) && this.#host === h) await this.#dropHost();
      throw new ActorFailedError(`actor ${this.id} was stopped while it started`);
    }
    if (view.inspections) this.deps.onInspect?.(view.inspections);
    this.#status = 'running';
    return view;
  }

  #open(): void {
    this.#mailbox.open();
    this.#notifyIdle();
  }

  /** Hands a durable batch to the worker (pipelined: does not wait for the answer). */
  #post(batch: readonly Entry[], bytes: number): void {
    const epoch = this.#epoch;
    this.#bytesSinceSnapshot += bytes;
    this.#posted = batch.at(-1)!.seq;
    this.#remote.deliver(this.id, batch.map((e) => e.payload)).then(
      (r) => this.#delivered(epoch, batch, r),
      (err: Error) => epoch === this.#epoch && this.#status === 'running' && this.#down(`deliver failed: ${err.message}`),
    );
  }

  /** The log refused a batch: the actor cannot go on (restarting would not help), so this escalates at once. */
  #logFailed(err: Error): void {
    if (ended(this.#status)) return;
    const e = Object.assign(new Error(`actor ${this.id} cannot log events: ${err.message}`), { name: 'EventLogError' });
    this.fail(e);
    this.deps.onEscalate(e);
  }

  #delivered(epoch: number, batch: readonly Entry[], r: DeliverResult): void {
    if (epoch !== this.#epoch) return;
    this.#mailbox.delivered();
    const done = r.failure ? r.failure.index : batch.length;
    if (done > 0) this.#acked = batch[done - 1]!.seq;
    if (r.inspections) this.deps.onInspect?.(r.inspections);
    this.#reportFacts(r.facts, batch);
    this.#handleIntents(parseIntents(r));
    if (r.failure) {
      const poison = batch[r.failure.index]!;
      this.deps.log.error({ actor: this.id, event: poison.type, seq: poison.seq, error: r.failure }, `actor ${this.id} failed on ${poison.type}: ${r.failure.message}; the event is dropped and the actor restarted`);
      if (poison.payload.replyTo) this.#asks.settle(poison.payload.replyTo, null, new ActorFailedError(`${poison.type} failed: ${r.failure.message}`));
      this.#poisonSeq = poison.seq;
      this.#down(r.failure.message);
      return;
    }
    this.#maybeSnapshot();
    this.#notifyIdle();
  }

  #reportFacts(facts: readonly IndexedFact[] | undefined, events: readonly LoggedEvent[]): void {
    if (!facts || !this.deps.onFacts) return;
    this.deps.onFacts(facts.map((f) => ({ actor: this.id, seq: events[f.index]!.seq, ts: events[f.index]!.ts, fact: f.fact })));
  }

  #handleIntents(intents: readonly unknown[]): void {
    const rest: unknown[] = [];
    for (const i of intents) {
      const intent = i as { type: string; replyTo?: string } & ReplyBody;
      if (intent.type === 'reply.send' && intent.replyTo) {
        if (!this.#asks.has(intent.replyTo)) continue;
        const { type: _t, replyTo, ...body } = intent;
        this.#asks.settle(replyTo, body as ReplyBody, null);
      } else rest.push(i);
    }
    if (rest.length > 0) this.deps.onIntents(this.id, rest);
  }

  #maybeSnapshot(): void {
    if (this.#snapshotting) return;
    const bytesDue = this.init.snapshotBytes !== undefined && this.#bytesSinceSnapshot >= this.init.snapshotBytes;
    if (!bytesDue && this.#acked - this.#snapshotSeq < this.init.snapshotEvery) return;
    this.#snapshotting = true;
    this.#bytesSinceSnapshot = 0;
    const epoch = this.#epoch;
    // The worker answers after every batch posted so far, so the snapshot covers exactly up to #posted.
    const seq = this.#posted;
    this.#remote
      .persisted(this.id, seq)
      .then(async (snap) => {
        if (epoch !== this.#epoch) return;
        await this.deps.eventLog.saveSnapshot(this.id, snap, this.deps.snapshotMeta?.(this.id));
        this.#snapshotSeq = Math.max(this.#snapshotSeq, snap.seq);
      })
      .catch((err: Error) => this.deps.log.warn({ actor: this.id, err: err.message }, 'snapshot failed; the actor keeps running on its log'))
      .finally(() => {
        this.#snapshotting = false;
        // a burst may have ended while this snapshot was saved: cover its tail too
        if (epoch === this.#epoch && this.#status === 'running') this.#maybeSnapshot();
      });
  }

  /** The running actor went down: tear down its worker side and let the supervisor decide. */
  #down(cause: string): void {
    if (this.#status !== 'running') return;
    this.#takeDown();
    this.#report(cause);
  }

  /** Without an owner (a bare ref in a tool), a failure restarts it. */
  #report(cause: string): void {
    if (this.owner) this.owner.childFailed(this as unknown as ActorRef, cause);
    else void this.restart(cause);
  }

  /** Boots a new worker side from the snapshot and the log. */
  async #rebuild(cause: string): Promise<void> {
    const log = this.deps.eventLog;
    const poisonSeq = this.#poisonSeq;
    this.#poisonSeq = undefined;
    if (poisonSeq !== undefined) await log.markDropped(this.id, poisonSeq, cause);
    await this.#mailbox.settled(); // every append that was under way has settled
    const snapshot = await log.latestSnapshot(this.id);
    const events = await log.eventsAfter(this.id, snapshot?.seq ?? 0);
    const replay = events.filter((e) => e.seq <= this.#acked);
    const redeliver = events.filter((e) => e.seq > this.#acked) as Entry[];
    this.deps.log.warn({ actor: this.id, cause, snapshotSeq: snapshot?.seq ?? 0, replay: replay.length, redeliver: redeliver.length, restarts: this.restarts }, `restarting actor ${this.id} from its snapshot`);
    const known = await log.actor(this.id);
    this.#snapshotSeq = snapshot?.seq ?? 0;
    await this.#boot(known?.input ?? this.input, snapshot, replay.map((e) => e.payload));
    this.#restarting = false; // it runs: a failure from here on is a new one
    this.#mailbox.redeliver(redeliver);
    this.#open();
  }

  #assertAlive(): void {
    if (ended(this.#status)) throw new ActorFailedError(`actor ${this.id} is ${this.#status}`);
  }

  #rejectAll(err: Error): void {
    this.#asks.rejectAll(err);
    this.#notifyIdle(true);
  }

  #notifyIdle(force = false): void {
    if (!force && (this.#mailbox.busy || this.#status !== 'running')) return;
    const waiters = this.#idle;
    this.#idle = [];
    for (const w of waiters) w();
  }
}
