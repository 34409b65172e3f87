/**
 * The supervisor: spawns actors in worker threads through comlink, writes every event to the durable event
 * log before the actor sees it, delivers events in batches, hands the intents actors emit to the runtime, and
 * restarts a failed actor from its latest snapshot plus the logged events since (replayed with effects off),
 * with an Erlang-style restart intensity limit. On process start, actors the log knows are recovered the same way.
 */
import type { VersionedSnapshot } from '../actors/actor.protocol.ts';
import { ActorRef, type SupervisorDeps, type SupervisorInit } from './actor-ref.ts';

export {
  ActorFailedError,
  ActorRef,
  AskTimeoutError,
  type FactRecord,
  type OmitFrom,
  type Recovery,
  RestartIntensityError,
  SUPERVISOR_DEFAULTS,
  type SupervisorDeps,
  type SupervisorInit,
  type SupervisorLog,
} from './actor-ref.ts';

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
