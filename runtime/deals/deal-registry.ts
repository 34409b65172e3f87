/**
 * The live deal actors of this node (requester negotiations, provider negotiations, allocations), by actor id: it
 * spawns them on the supervisor's shared worker, each under a supervisor of its own, queues events for them in order, and forgets them when they are
 * retired. Once closed (a stopping node) it spawns no more.
 */
import type { AllocationEvent, AllocationInput } from '../../machines/allocation.messages.ts';
import type { EnsembleEvent, EnsembleInput } from '../../machines/ensemble.messages.ts';
import type { ArrayEvent } from '../../machines/array.machine.ts';
import type { BatchEvent } from '../../machines/batch.machine.ts';
import type { ProviderEvent, ProviderInput } from '../../machines/provider.messages.ts';
import type { RequesterEvent, RequesterInput } from '../../machines/requester.messages.ts';
import type { Logger } from '../logger.ts';
import type { ActorRef, Supervisor } from '../supervisor/supervisor.ts';

/** Each kind of deal actor: the input it is spawned with and the events it takes. */
export interface DealKinds {
  readonly requester: { readonly input: RequesterInput; readonly event: RequesterEvent };
  readonly provider: { readonly input: ProviderInput; readonly event: ProviderEvent };
  readonly allocation: { readonly input: AllocationInput; readonly event: AllocationEvent };
  readonly ensemble: { readonly input: EnsembleInput; readonly event: EnsembleEvent };
  /** An array job on the requester (`job/<id>`). */
  readonly array: { readonly input: RequesterInput; readonly event: ArrayEvent };
  /** An array job's allocation on the provider (`allocation/<key>`). */
  readonly batch: { readonly input: AllocationInput; readonly event: BatchEvent };
}
export type DealKind = keyof DealKinds;

/** Any deal actor's event: each machine takes the members of its own union. */
export type DealEvent = DealKinds[DealKind]['event'];
export type DealRef = ActorRef<DealEvent>;

interface Entry {
  readonly kind: DealKind;
  /** A promise while the actor is being spawned; undefined if the spawn failed. */
  readonly ref: Promise<DealRef | undefined>;
}

export class DealRegistry {
  readonly #actors = new Map<string, Entry>();
  /** Who wants to know when an actor's record may have changed (see `watch`), by actor id. */
  readonly #watchers = new Map<string, Set<() => void>>();
  #closed = false;

  constructor(private readonly deps: { readonly supervisor: Supervisor; readonly log: Logger }) {}

  /** Spawns a deal actor on the shared worker and sends it its first event; the live one when it runs already. */
  spawn<K extends DealKind>(id: string, kind: K, input: DealKinds[K]['input'], first: DealKinds[K]['event']): Promise<DealRef | undefined> {
    const existing = this.#actors.get(id);
    if (existing) return existing.ref;
    if (this.#closed) return Promise.resolve(undefined);
    const ref = this.#supervised(id, kind, input).then(
      (r) => {
        r.send(first);
        return r;
      },
      (e: Error) => {
        this.#actors.delete(id);
        this.deps.log.error({ actor: id, err: e.message }, `could not start ${kind} actor ${id}`);
        return undefined;
      },
    );
    this.#actors.set(id, { kind, ref });
    this.#changed(id);
    return ref;
  }

  /**
   * Each deal actor runs under a supervisor of its own (one_for_one, the root's intensity, gone with its actor):
   * its restarts count against it alone, so many deals failing once each (a crash of the shared worker restarts
   * every actor on it) do not add up to the node giving up. A deal actor that keeps failing fails its supervisor,
   * which the root restarts once, counted against the node's own intensity.
   */
  async #supervised(id: string, kind: DealKind, input: unknown): Promise<DealRef> {
    const sup = this.deps.supervisor.supervisor({ id: `deal:${id}`, autoShutdown: true });
    try {
      return await sup.spawn<DealEvent>({ id, kind, input, placement: 'shared' });
    } catch (e) {
      await this.deps.supervisor.retire(sup.name);
      throw e;
    }
  }

  /** Queues an event for a live actor, in order; false when no such actor runs here. */
  deliver(id: string, event: DealEvent, origin = 'local'): boolean {
    const entry = this.#actors.get(id);
    if (!entry) return false;
    void entry.ref.then((ref) => {
      try {
        ref?.send(event, origin);
      } catch (e) {
        this.deps.log.debug({ actor: id, type: event.type, err: (e as Error).message }, 'event for a stopped actor dropped');
      }
    });
    this.#changed(id);
    return true;
  }

  /**
   * Calls `listener` whenever actor `id`'s record may have changed: an event was queued for it (its view, which
   * waits for queued events, shows the result) or it was retired (its saved record is final). Every change of a
   * deal's record comes from one of those. Returns the function that stops the calls.
   */
  watch(id: string, listener: () => void): () => void {
    let set = this.#watchers.get(id);
    if (!set) this.#watchers.set(id, (set = new Set()));
    set.add(listener);
    return () => {
      set.delete(listener);
      if (set.size === 0 && this.#watchers.get(id) === set) this.#watchers.delete(id);
    };
  }

  /** Listeners registered with `watch`, over every actor (0 once every watcher stopped). */
  get watchers(): number {
    let n = 0;
    for (const set of this.#watchers.values()) n += set.size;
    return n;
  }

  #changed(id: string): void {
    const set = this.#watchers.get(id);
    if (!set) return;
    for (const listener of [...set]) {
      try {
        listener();
      } catch (e) {
        this.deps.log.warn({ actor: id, err: (e as Error).message }, 'a record watcher failed');
      }
    }
  }

  has(id: string): boolean {
    return this.#actors.has(id);
  }

  /** The actor `id` once spawned (undefined if its spawn failed), or undefined when none runs here. */
  ref(id: string): Promise<DealRef | undefined> | undefined {
    return this.#actors.get(id)?.ref;
  }

  /** Ids of the live actors of one kind. */
  ids(kind: DealKind): string[] {
    return [...this.#actors].filter(([, e]) => e.kind === kind).map(([id]) => id);
  }

  /** Every live actor now, as id and (pending) ref. */
  entries(): [string, Promise<DealRef | undefined>][] {
    return [...this.#actors].map(([id, e]) => [id, e.ref]);
  }

  /** Resolves once every actor spawned so far has started (or failed to). */
  async started(): Promise<void> {
    await Promise.all([...this.#actors.values()].map((e) => e.ref));
  }

  /** Forgets an ended actor and stops it (no final snapshot: it leaves the live store); its log stays for replay. */
  async retire(id: string): Promise<void> {
    this.#actors.delete(id);
    this.#changed(id);
    await this.deps.supervisor.retire(id).catch((e: Error) => this.deps.log.warn({ actor: id, err: e.message }, 'actor did not stop cleanly'));
  }

  /** No new actors from now on (the supervisor stops the live ones). */
  close(): void {
    this.#closed = true;
  }
}
