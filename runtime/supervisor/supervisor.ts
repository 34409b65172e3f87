/**
 * The supervisor: spawns actors in worker threads through comlink, writes every event to the durable event
 * log before the actor sees it, delivers events in batches, hands the intents actors emit to the runtime, and
 * restarts a failed actor from its latest snapshot plus the logged events since (replayed with effects off),
 * with an Erlang-style restart intensity limit. On process start, actors the log knows are recovered the same way.
 */
import type { VersionedSnapshot } from '../../actors/actor.protocol.ts';
import { ActorRef } from './actor-ref.ts';
import type { SupervisorDeps, SupervisorInit } from './supervision.ts';
import { type Placement, WorkerPool } from './worker-pool.ts';

export { ActorRef } from './actor-ref.ts';
export {
  ActorFailedError,
  AskTimeoutError,
  type FactRecord,
  type OmitFrom,
  type Recovery,
  RestartIntensityError,
  SUPERVISOR_DEFAULTS,
  type SupervisorDeps,
  type SupervisorInit,
  type SupervisorLog,
} from './supervision.ts';

/** Spawns and tracks actors; stops them in reverse order of creation. */
export class Supervisor {
  readonly #actors = new Map<string, ActorRef>();
  readonly #pool: WorkerPool;

  constructor(
    readonly init: SupervisorInit,
    readonly deps: SupervisorDeps,
  ) {
    this.#pool = new WorkerPool(deps.workerUrl);
  }

  /**
   * Starts an actor (recovering it from the log when the log knows it). `placement` 'shared' hosts it on the one
   * worker shared by small actors; 'dedicated' (the default) gives it a worker thread of its own.
   */
  async spawn<E extends { readonly type: string }>(spec: { id: string; kind: string; input?: unknown; snapshot?: VersionedSnapshot; placement?: Placement }): Promise<ActorRef<E>> {
    if (this.#actors.has(spec.id)) throw new Error(`actor ${spec.id} already exists`);
    const ref = new ActorRef<E>(spec.id, spec.kind, spec.input, this.init, this.deps, spec.placement ?? 'dedicated', this.#pool);
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

  /** Starts the shared worker now, so the first actor placed on it does not wait for a thread to boot. */
  warm(): void {
    this.#pool.acquire('shared');
  }

  get(id: string): ActorRef | undefined {
    return this.#actors.get(id);
  }

  /** Stops one actor (after a final snapshot) and forgets it; its log stays. */
  async retire(id: string): Promise<void> {
    const ref = this.#actors.get(id);
    if (!ref) return;
    this.#actors.delete(id);
    await ref.stop();
  }

  /** How many actors run now. */
  get size(): number {
    return this.#actors.size;
  }

  async stop(): Promise<void> {
    for (const ref of [...this.#actors.values()].reverse()) await ref.stop();
    this.#actors.clear();
    await this.#pool.stop();
  }
}
