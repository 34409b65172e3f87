/**
 * The supervisor: spawns actors in worker threads through comlink, routes events to them in batches, hands
 * the intents they emit to the runtime, and restarts a failed actor from its latest snapshot plus the events
 * since (replayed with effects off), with an Erlang-style restart intensity limit.
 */
import { Worker } from 'node:worker_threads';
import { type Remote, releaseProxy, wrap } from 'comlink';
import nodeEndpoint from 'comlink/dist/esm/node-adapter.mjs';
import type { ActorHostApi, ActorView, DeliverResult, VersionedSnapshot } from '../actors/actor.protocol.ts';
import type { ReplyBody } from '../machines/node.messages.ts';

export interface SupervisorInit {
  /** Restarts allowed within `withinMs` before the supervisor gives up and escalates. */
  readonly maxRestarts: number;
  readonly withinMs: number;
  /** Largest number of events per cross-thread call. */
  readonly batchSize: number;
  /** Take a snapshot after this many events, so a restart replays at most this many. */
  readonly snapshotEvery: number;
  readonly askTimeoutMs: number;
}

export const SUPERVISOR_DEFAULTS: SupervisorInit = Object.freeze({
  maxRestarts: 5,
  withinMs: 60_000,
  batchSize: 1000,
  snapshotEvery: 5000,
  askTimeoutMs: 10_000,
});

export interface SupervisorLog {
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
}

export interface SupervisorDeps {
  readonly log: SupervisorLog;
  /** Non-reply intents an actor emitted while live (never during replay). */
  readonly onIntents: (actorId: string, intents: readonly unknown[]) => void;
  /** An actor failed more often than the restart intensity allows. */
  readonly onEscalate: (error: Error) => void;
  readonly now?: () => number;
  readonly workerUrl?: URL;
}

export class RestartIntensityError extends Error {
  override name = 'RestartIntensityError';
  constructor(id: string, restarts: number, withinMs: number, cause: string) {
    super(`actor ${id} failed ${restarts + 1} times within ${Math.round(withinMs / 1000)} s (last: ${cause}); giving up. Check the log above for the cause, then start the node again`);
  }
}

export class AskTimeoutError extends Error {
  override name = 'AskTimeoutError';
  constructor(id: string, type: string, ms: number) {
    super(`actor ${id} did not answer ${type} within ${ms} ms`);
  }
}

export class ActorFailedError extends Error {
  override name = 'ActorFailedError';
}

interface Entry {
  readonly seq: number;
  readonly event: { readonly type: string; readonly replyTo?: string };
}

interface Pending {
  resolve(r: ReplyBody): void;
  reject(e: Error): void;
  timer: NodeJS.Timeout;
}

const DEFAULT_WORKER_URL = new URL('./actor.worker.js', import.meta.url);

/** Removes a key from each member of a union. */
export type OmitFrom<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never;

/** A handle on one supervised actor that accepts events of type `E`. */
export class ActorRef<E extends { readonly type: string } = { readonly type: string }> {
  #worker!: Worker;
  #remote!: Remote<ActorHostApi>;
  #epoch = 0;
  #seq = 0;
  #acked = 0;
  #queue: Entry[] = [];
  /** Events sent since the snapshot, in order; those with seq <= #acked were processed. */
  #journal: Entry[] = [];
  #inFlight = 0;
  #idle: (() => void)[] = [];
  #snapshot: VersionedSnapshot | undefined;
  #snapshotting = false;
  #flushScheduled = false;
  #restarts: number[] = [];
  #pending = new Map<string, Pending>();
  #askSeq = 0;
  #status: 'starting' | 'running' | 'restarting' | 'stopped' | 'failed' = 'starting';

  constructor(
    readonly id: string,
    readonly kind: string,
    readonly input: unknown,
    readonly init: SupervisorInit,
    readonly deps: SupervisorDeps,
  ) {}

  get status(): string {
    return this.#status;
  }

  /** Restarts so far within the current intensity window. */
  get restarts(): number {
    return this.#restarts.length;
  }

  async start(snapshot?: VersionedSnapshot): Promise<ActorView> {
    this.#snapshot = snapshot;
    if (snapshot) this.#seq = this.#acked = snapshot.seq;
    return this.#boot([]);
  }

  /** Queues an event; batches leave on the next turn of the event loop. */
  send(event: E): void {
    if (this.#status === 'stopped' || this.#status === 'failed') throw new ActorFailedError(`actor ${this.id} is ${this.#status}`);
    this.#seq += 1;
    this.#queue.push({ seq: this.#seq, event });
    if (this.#queue.length >= this.init.batchSize) this.#flush();
    else if (!this.#flushScheduled) {
      this.#flushScheduled = true;
      setImmediate(() => {
        this.#flushScheduled = false;
        this.#flush();
      });
    }
  }

  /** Sends a command and waits for the actor's reply to it. */
  ask(event: OmitFrom<E, 'replyTo'>, timeoutMs = this.init.askTimeoutMs): Promise<ReplyBody> {
    this.#askSeq += 1;
    const replyTo = `${this.id}#${this.#askSeq}`;
    return new Promise<ReplyBody>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#pending.delete(replyTo);
        reject(new AskTimeoutError(this.id, event.type, timeoutMs));
      }, timeoutMs);
      this.#pending.set(replyTo, { resolve, reject, timer });
      try {
        this.send({ ...event, replyTo } as unknown as E);
      } catch (e) {
        clearTimeout(timer);
        this.#pending.delete(replyTo);
        reject(e as Error);
      }
    });
  }

  /** The actor's current state, after every event sent so far. */
  async view(): Promise<ActorView> {
    await this.drain();
    this.#assertAlive();
    return this.#remote.view(this.id);
  }

  /** Resolves when every queued event has been processed. */
  drain(): Promise<void> {
    if (this.#status === 'stopped' || this.#status === 'failed') return Promise.reject(new ActorFailedError(`actor ${this.id} is ${this.#status}`));
    this.#flush();
    if (this.#inFlight === 0 && this.#queue.length === 0 && this.#status === 'running') return Promise.resolve();
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

  async stop(): Promise<void> {
    if (this.#status === 'stopped') return;
    if (this.#status === 'running') await this.drain();
    this.#status = 'stopped';
    this.#rejectAll(new ActorFailedError(`actor ${this.id} stopped`));
    let timer: NodeJS.Timeout | undefined;
    try {
      await Promise.race([this.#remote.stop(this.id), new Promise((r) => (timer = setTimeout(r, 1000)))]);
    } catch {
      // the worker may already be gone
    } finally {
      clearTimeout(timer);
    }
    this.#remote[releaseProxy]();
    await this.#worker.terminate();
  }

  async #boot(replay: readonly unknown[]): Promise<ActorView> {
    const epoch = ++this.#epoch;
    const worker = new Worker(this.deps.workerUrl ?? DEFAULT_WORKER_URL);
    this.#worker = worker;
    this.#remote = wrap<ActorHostApi>(nodeEndpoint(worker));
    worker.on('error', (err) => this.deps.log.error({ actor: this.id, err }, 'actor worker error'));
    // comlink never settles a call to a worker that died, so a worker that exits before it answers init fails the boot.
    let booted = false;
    const exited = new Promise<never>((_, reject) => worker.once('exit', (code) => reject(new Error(`actor ${this.id}: worker exited with code ${code} before it started`))));
    exited.catch(() => {});
    worker.on('exit', (code) => {
      if (booted && epoch === this.#epoch && this.#status !== 'stopped' && this.#status !== 'failed') this.#failed(`worker exited with code ${code}`);
    });
    const view = await Promise.race([this.#remote.init(this.id, this.kind, { input: this.input, replay, ...(this.#snapshot ? { snapshot: this.#snapshot } : {}) }), exited]);
    booted = true;
    if (epoch !== this.#epoch) return view;
    this.#status = 'running';
    this.#flush();
    return view;
  }

  #flush(): void {
    if (this.#status !== 'running') return;
    while (this.#queue.length > 0) {
      const batch = this.#queue.splice(0, this.init.batchSize);
      this.#journal.push(...batch);
      this.#inFlight += 1;
      const epoch = this.#epoch;
      this.#remote.deliver(this.id, batch.map((e) => e.event)).then(
        (r) => this.#delivered(epoch, batch, r),
        (err: Error) => epoch === this.#epoch && this.#failed(`deliver failed: ${err.message}`),
      );
    }
    this.#notifyIdle();
  }

  #delivered(epoch: number, batch: readonly Entry[], r: DeliverResult): void {
    if (epoch !== this.#epoch) return;
    this.#inFlight -= 1;
    const done = r.failure ? r.failure.index : batch.length;
    if (done > 0) this.#acked = batch[done - 1]!.seq;
    this.#handleIntents(r.intents);
    if (r.failure) {
      const poison = batch[r.failure.index]!;
      this.#journal = this.#journal.filter((e) => e.seq !== poison.seq);
      this.deps.log.error({ actor: this.id, event: poison.event.type, error: r.failure }, `actor ${this.id} failed on ${poison.event.type}: ${r.failure.message}; the event is dropped and the actor restarted`);
      if (poison.event.replyTo) this.#settle(poison.event.replyTo, null, new ActorFailedError(`${poison.event.type} failed: ${r.failure.message}`));
      this.#failed(r.failure.message);
      return;
    }
    this.#maybeSnapshot();
    this.#notifyIdle();
  }

  #handleIntents(intents: readonly unknown[]): void {
    const rest: unknown[] = [];
    for (const i of intents) {
      const intent = i as { type: string; replyTo?: string } & ReplyBody;
      if (intent.type === 'reply.send' && intent.replyTo) this.#settle(intent.replyTo, intent, null);
      else rest.push(i);
    }
    if (rest.length > 0) this.deps.onIntents(this.id, rest);
  }

  #settle(replyTo: string, body: ReplyBody | null, err: Error | null): void {
    const p = this.#pending.get(replyTo);
    if (!p) return;
    this.#pending.delete(replyTo);
    clearTimeout(p.timer);
    if (err) p.reject(err);
    else p.resolve(body as ReplyBody);
  }

  #maybeSnapshot(): void {
    const since = this.#acked - (this.#snapshot?.seq ?? 0);
    if (this.#snapshotting || since < this.init.snapshotEvery || this.#queue.length > 0) return;
    this.#snapshotting = true;
    const epoch = this.#epoch;
    // The worker answers after every batch sent so far (the queue is empty), not only the acknowledged ones.
    const seq = this.#seq;
    this.#remote.persisted(this.id, seq).then(
      (snap) => {
        this.#snapshotting = false;
        if (epoch !== this.#epoch) return;
        this.#snapshot = snap;
        this.#journal = this.#journal.filter((e) => e.seq > snap.seq);
      },
      () => {
        this.#snapshotting = false;
      },
    );
  }

  #failed(cause: string): void {
    if (this.#status === 'restarting' || this.#status === 'stopped' || this.#status === 'failed') return;
    this.#epoch += 1;
    this.#inFlight = 0;
    this.#snapshotting = false;
    const now = (this.deps.now ?? Date.now)();
    this.#restarts = this.#restarts.filter((t) => now - t < this.init.withinMs);
    const old = this.#worker;
    void old.terminate();
    if (this.#restarts.length >= this.init.maxRestarts) {
      this.#status = 'failed';
      const err = new RestartIntensityError(this.id, this.#restarts.length, this.init.withinMs, cause);
      this.#rejectAll(err);
      this.deps.onEscalate(err);
      return;
    }
    this.#restarts.push(now);
    this.#status = 'restarting';
    const replay = this.#journal.filter((e) => e.seq <= this.#acked);
    const unacked = this.#journal.filter((e) => e.seq > this.#acked);
    this.#journal = replay;
    this.#queue = [...unacked, ...this.#queue];
    this.deps.log.warn({ actor: this.id, cause, replay: replay.length, redeliver: unacked.length, restarts: this.#restarts.length }, `restarting actor ${this.id} from its snapshot`);
    this.#boot(replay.map((e) => e.event)).catch((err: Error) => {
      this.#status = 'running';
      this.#failed(`restart failed: ${err.message}`);
    });
  }

  #assertAlive(): void {
    if (this.#status === 'stopped' || this.#status === 'failed') throw new ActorFailedError(`actor ${this.id} is ${this.#status}`);
  }

  #rejectAll(err: Error): void {
    for (const [k, p] of this.#pending) {
      clearTimeout(p.timer);
      p.reject(err);
      this.#pending.delete(k);
    }
    this.#notifyIdle(true);
  }

  #notifyIdle(force = false): void {
    if (!force && (this.#inFlight > 0 || this.#queue.length > 0 || this.#status !== 'running')) return;
    const waiters = this.#idle;
    this.#idle = [];
    for (const w of waiters) w();
  }
}

/** Spawns and tracks actors; stops them in reverse order of creation. */
export class Supervisor {
  readonly #actors = new Map<string, ActorRef>();

  constructor(
    readonly init: SupervisorInit,
    readonly deps: SupervisorDeps,
  ) {}

  async spawn<E extends { readonly type: string }>(spec: { id: string; kind: string; input?: unknown; snapshot?: VersionedSnapshot }): Promise<ActorRef<E>> {
    if (this.#actors.has(spec.id)) throw new Error(`actor ${spec.id} already exists`);
    const ref = new ActorRef<E>(spec.id, spec.kind, spec.input, this.init, this.deps);
    this.#actors.set(spec.id, ref as unknown as ActorRef);
    try {
      await ref.start(spec.snapshot);
    } catch (e) {
      this.#actors.delete(spec.id);
      await ref.stop().catch(() => {});
      throw e;
    }
    return ref;
  }

  get(id: string): ActorRef | undefined {
    return this.#actors.get(id);
  }

  async stop(): Promise<void> {
    for (const ref of [...this.#actors.values()].reverse()) await ref.stop();
    this.#actors.clear();
  }
}
