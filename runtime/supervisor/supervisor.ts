/**
 * The supervisor, as in OTP: it starts children (actors in worker threads, or nested supervisors) from child specs,
 * and owns what happens when one fails. Each child has a restart type (`permanent`, `transient`, `temporary`);
 * each supervisor a strategy (`one_for_one`, `one_for_all`, `rest_for_one`) and an intensity (at most
 * `maxRestarts` restarts within `withinMs`). One failure more and the supervisor gives up: it takes its children
 * down and fails to its parent, which applies its own strategy to it as to any child; the top supervisor then fails
 * every actor and calls `onEscalate` (the node ends with exit 1 and the reason).
 *
 * An actor is restarted from its latest snapshot plus the logged events since (replayed with effects off; see
 * actor-ref.ts), so a restart loses nothing that was acknowledged. On process start, actors the log knows are
 * recovered the same way. Actor ids are unique in the whole tree (they name the actor's log).
 */
import type { VersionedSnapshot } from '../../actors/actor.protocol.ts';
import { type ActorOwner, ActorRef } from './actor-ref.ts';
import { ActorFailedError, type ChildSpec, RestartIntensityError, type RestartType, type Strategy, type SupervisorDeps, type SupervisorInit, type SupervisorSpec } from './supervision.ts';
import { type Placement, WorkerPool } from './worker-pool.ts';

export { ActorRef } from './actor-ref.ts';
export {
  ActorFailedError,
  AskTimeoutError,
  type ChildSpec,
  type FactRecord,
  type OmitFrom,
  type Recovery,
  RestartIntensityError,
  type RestartType,
  type Strategy,
  SUPERVISOR_DEFAULTS,
  type SupervisorDeps,
  type SupervisorInit,
  type SupervisorLog,
  type SupervisorSpec,
} from './supervision.ts';

type Child =
  | { readonly id: string; readonly restart: RestartType; readonly ref: ActorRef; readonly sup?: undefined }
  | { readonly id: string; readonly restart: RestartType; readonly sup: Supervisor; readonly ref?: undefined };

/** What the whole tree shares: one worker pool, and every actor by id. */
interface Tree {
  readonly pool: WorkerPool;
  readonly actors: Map<string, ActorRef>;
  readonly owners: Map<string, Supervisor>;
  /** Actor restarts this tree ordered since it began, by actor kind (the node's metrics). */
  readonly restarts: Map<string, number>;
}

type SupervisorStatus = 'running' | 'down' | 'failed' | 'stopped';

/** Spawns and tracks children; restarts them by its strategy; stops them in reverse order of start. */
export class Supervisor implements ActorOwner {
  readonly #children: Child[] = [];
  readonly #tree: Tree;
  readonly #parent: Supervisor | undefined;
  /** Restarts within the intensity window: when, and of which child. */
  #restarts: { readonly at: number; readonly id: string }[] = [];
  #status: SupervisorStatus = 'running';
  #autoShutdown = false;

  constructor(
    readonly init: SupervisorInit,
    readonly deps: SupervisorDeps,
    readonly name = 'root',
    parent?: Supervisor,
  ) {
    this.#parent = parent;
    this.#tree = parent ? parent.#tree : { pool: new WorkerPool(deps.workerUrl), actors: new Map(), owners: new Map(), restarts: new Map() };
  }

  get strategy(): Strategy {
    return this.init.strategy ?? 'one_for_one';
  }

  get status(): SupervisorStatus {
    return this.#status;
  }

  /**
   * Starts an actor under this supervisor (recovering it from the log when the log knows it). `placement` 'shared'
   * hosts it on the one worker shared by small actors; 'dedicated' (the default) gives it a worker thread of its own.
   */
  async spawn<E extends { readonly type: string }>(spec: ChildSpec & { snapshot?: VersionedSnapshot; placement?: Placement }): Promise<ActorRef<E>> {
    this.#assertRunning();
    this.#claim(spec.id);
    const ref = new ActorRef<E>(spec.id, spec.kind, spec.input, this.init, this.deps, spec.placement ?? 'dedicated', this.#tree.pool, this);
    const child: Child = { id: spec.id, restart: spec.restart ?? 'permanent', ref: ref as unknown as ActorRef };
    this.#children.push(child);
    this.#tree.actors.set(spec.id, child.ref);
    try {
      await ref.start(spec.snapshot);
    } catch (e) {
      this.#forget(child);
      await ref.stop().catch(() => {});
      throw e;
    }
    return ref;
  }

  /** A nested supervisor under this one, with its own strategy and intensity (defaults: this one's). */
  supervisor(spec: SupervisorSpec): Supervisor {
    this.#assertRunning();
    this.#claim(spec.id);
    const init: SupervisorInit = {
      ...this.init,
      strategy: spec.strategy ?? 'one_for_one',
      ...(spec.maxRestarts !== undefined ? { maxRestarts: spec.maxRestarts } : {}),
      ...(spec.withinMs !== undefined ? { withinMs: spec.withinMs } : {}),
    };
    const sup = new Supervisor(init, this.deps, spec.id, this);
    sup.#autoShutdown = spec.autoShutdown ?? false;
    this.#children.push({ id: spec.id, restart: spec.restart ?? 'permanent', sup });
    return sup;
  }

  /** Starts the shared worker now, so the first actor placed on it does not wait for a thread to boot. */
  warm(): void {
    this.#tree.pool.acquire('shared');
  }

  /** An actor anywhere in this supervisor's tree. */
  get(id: string): ActorRef | undefined {
    return this.#tree.actors.get(id);
  }

  /** Stops one child anywhere in the tree for good (an actor without a final snapshot; a supervisor with all its children) and forgets it; logs stay. */
  async retire(id: string): Promise<void> {
    const owner = this.#tree.owners.get(id);
    const child = owner && owner.#children.find((c) => c.id === id);
    if (!owner || !child) return;
    owner.#forget(child);
    // retired: ended for good, so no snapshot (nothing will start it again)
    if (child.ref) await child.ref.stop({ snapshot: false });
    else await Supervisor.#stopChild(child);
    if (owner.#autoShutdown && owner.#children.length === 0 && owner.#parent && owner.#status === 'running') await this.retire(owner.name);
  }

  /** Every actor in the tree now, in start order. */
  actors(): readonly ActorRef[] {
    return [...this.#tree.actors.values()];
  }

  /** Actor restarts the tree ordered since it began, by actor kind (a restart of a nested supervisor counts each of its actors). */
  get restartsByKind(): ReadonlyMap<string, number> {
    return this.#tree.restarts;
  }

  /** How many actors run in the tree now. */
  get size(): number {
    return this.#tree.actors.size;
  }

  /** The children's ids, in start order. */
  get children(): readonly string[] {
    return this.#children.map((c) => c.id);
  }

  /** Stops the children in reverse order of start (nested supervisors with theirs); the top one ends the workers. */
  async stop(): Promise<void> {
    this.#status = 'stopped';
    for (const child of [...this.#children].reverse()) {
      this.#forget(child);
      await Supervisor.#stopChild(child);
    }
    if (!this.#parent) await this.#tree.pool.stop();
  }

  // ---- ActorOwner ----

  childFailed(ref: ActorRef, cause: string): void {
    const child = this.#children.find((c) => c.ref === ref);
    if (child) this.#childFailed(child, `actor ${ref.id} failed: ${cause}`);
  }

  restartsOf(id: string): number {
    this.#prune();
    return this.#restarts.filter((r) => r.id === id).length;
  }

  // ---- the decision ----

  /** One child went down: restart it (and its siblings, by the strategy), drop it if temporary, or give up. */
  #childFailed(child: Child, cause: string): void {
    if (this.#status !== 'running') return; // this supervisor is going down or gone: its parent decides for all
    if (child.restart === 'temporary') {
      this.deps.log.warn({ supervisor: this.name, child: child.id, cause }, `${child.id} failed and is temporary: not restarted`);
      this.#forget(child);
      Supervisor.#failChild(child, new ActorFailedError(`${child.id} failed and is not restarted (temporary): ${cause}`));
      return;
    }
    this.#prune();
    if (this.#restarts.length >= this.init.maxRestarts) {
      this.#giveUp(new RestartIntensityError(this.name, this.#restarts.length, this.init.withinMs, cause));
      return;
    }
    this.#restarts.push({ at: this.#now(), id: child.id });
    const at = this.#children.indexOf(child);
    const group = this.strategy === 'one_for_one' ? [child] : this.strategy === 'one_for_all' ? [...this.#children] : this.#children.slice(at);
    for (const c of group) {
      if (c === child || c.restart !== 'temporary') this.#restartChild(c, c === child ? cause : `${this.strategy}: ${child.id} failed`);
      else {
        this.#forget(c);
        void Supervisor.#stopChild(c);
      }
    }
  }

  /** More failures than the intensity allows: take every child down and fail to the parent (or end the tree). */
  #giveUp(err: RestartIntensityError): void {
    this.deps.log.error({ supervisor: this.name, err: err.message }, `supervisor ${this.name} gives up`);
    this.#takeDown();
    if (this.#parent) {
      const entry = this.#parent.#children.find((c) => c.sup === this);
      if (entry) this.#parent.#childFailed(entry, `supervisor ${this.name}: ${err.message}`);
      return;
    }
    this.#fail(err);
    this.deps.onEscalate(err);
  }

  /** Restarts every child (its parent restarts this supervisor) with a fresh intensity window. */
  #restartAll(cause: string): void {
    this.#status = 'running';
    this.#restarts = [];
    for (const c of this.#children) this.#restartChild(c, `supervisor ${this.name} restarted (${cause})`);
  }

  #takeDown(): void {
    this.#status = 'down';
    for (const c of this.#children) {
      if (c.ref) c.ref.takeDown();
      else c.sup.#takeDown();
    }
  }

  #fail(err: Error): void {
    this.#status = 'failed';
    for (const c of this.#children) Supervisor.#failChild(c, err);
  }

  #restartChild(c: Child, cause: string): void {
    if (c.ref) {
      this.#tree.restarts.set(c.ref.kind, (this.#tree.restarts.get(c.ref.kind) ?? 0) + 1);
      void c.ref.restart(cause);
    } else c.sup.#restartAll(cause);
  }

  static #failChild(c: Child, err: Error): void {
    if (c.ref) c.ref.fail(err);
    else c.sup.#fail(err);
  }

  static async #stopChild(c: Child): Promise<void> {
    if (c.ref) await c.ref.stop();
    else await c.sup.stop();
  }

  // ---- bookkeeping ----

  #claim(id: string): void {
    if (this.#tree.owners.has(id)) throw new Error(`actor ${id} already exists`);
    this.#tree.owners.set(id, this);
  }

  /** Removes a child from this supervisor, and it (with, for a supervisor, its whole subtree) from the tree's indexes. */
  #forget(child: Child): void {
    const i = this.#children.indexOf(child);
    if (i >= 0) this.#children.splice(i, 1);
    this.#unindex(child);
  }

  #unindex(child: Child): void {
    this.#tree.owners.delete(child.id);
    if (child.ref) this.#tree.actors.delete(child.id);
    else for (const c of child.sup.#children) this.#unindex(c);
  }

  #prune(): void {
    const now = this.#now();
    this.#restarts = this.#restarts.filter((r) => now - r.at < this.init.withinMs);
  }

  #now(): number {
    return (this.deps.now ?? Date.now)();
  }

  #assertRunning(): void {
    if (this.#status !== 'running') throw new ActorFailedError(`supervisor ${this.name} is ${this.#status}`);
  }
}
