/**
 * The contract between the supervisor (main thread) and an actor host (a worker thread).
 * Everything here crosses `postMessage`, so it is plain structured-cloneable data.
 */

/** A persisted actor state, tagged with the machine version it was taken from. */
export interface VersionedSnapshot {
  readonly kind: string;
  readonly version: number;
  /** Sequence number of the last event the snapshot includes. */
  readonly seq: number;
  readonly snapshot: unknown;
}

/** An XState inspection event made plain (no actor refs), to cross threads and reach the inspector. */
export type InspectionRecord =
  | { readonly type: '@xstate.actor'; readonly sessionId: string; readonly parentId?: string; readonly rootId?: string; readonly name: string; readonly definition?: string; readonly snapshot: PlainSnapshot }
  | { readonly type: '@xstate.event'; readonly sessionId: string; readonly sourceId?: string; readonly rootId?: string; readonly event: { readonly type: string } }
  | { readonly type: '@xstate.snapshot'; readonly sessionId: string; readonly rootId?: string; readonly event: { readonly type: string }; readonly snapshot: PlainSnapshot };

/** A recorded fact and the position, in its batch or replay, of the event that produced it. */
export interface IndexedFact {
  readonly index: number;
  readonly fact: { readonly type: string };
}

export interface PlainSnapshot {
  readonly value: unknown;
  readonly context: unknown;
  readonly status: string;
}

export interface InitOptions {
  readonly snapshot?: VersionedSnapshot;
  readonly input?: unknown;
  /** Events to replay after the snapshot with effects switched off (their intents are dropped). */
  readonly replay?: readonly unknown[];
  /** Collect inspection records (returned with each delivery) for the Stately inspector. */
  readonly inspect?: boolean;
}

/** What a delivered batch produced: the intents to carry out, and the failure that stopped the actor, if any. */
export interface DeliverResult {
  /** The intents, as the JSON text of an array (see `parseIntents`). */
  readonly intents: string;
  readonly processed: number;
  /** Inspection records, when the actor was started with `inspect`. */
  readonly inspections?: readonly InspectionRecord[];
  /** Facts the batch produced (see ActorKind.facts). */
  readonly facts?: readonly IndexedFact[];
  /** Set when the actor failed on the event at `index` of the batch; events after it were not processed. */
  readonly failure?: { readonly index: number; readonly name: string; readonly message: string };
}

/** The intents of a DeliverResult as objects. */
export function parseIntents(r: DeliverResult): unknown[] {
  return r.intents === '[]' ? [] : (JSON.parse(r.intents) as unknown[]);
}

export interface ActorView {
  readonly id: string;
  readonly kind: string;
  readonly status: string;
  readonly value: unknown;
  readonly context: unknown;
}

/** The API a worker exposes through comlink. One worker may host many actors. */
export interface ActorHostApi {
  init(id: string, kind: string, opts: InitOptions): Promise<ActorView & { readonly inspections?: readonly InspectionRecord[]; readonly facts?: readonly IndexedFact[] }>;
  deliver(id: string, batch: readonly unknown[]): DeliverResult;
  persisted(id: string, seq: number): VersionedSnapshot;
  view(id: string): ActorView;
  stop(id: string): void;
  /** Delivers `events` `count` times to a fresh hosted actor of `kind` inside the worker, timed there; for benchmarks. */
  measure(kind: string, input: unknown, events: readonly unknown[], count: number): { events: number; ms: number };
  /** Ends the worker thread abruptly (tests use it to prove restarts). */
  crash(code: number): void;
}
