/**
 * The types, errors and defaults of supervision: what a supervisor is configured with, what it needs, what it
 * reports, and the errors its actors' callers see (matched by `name`: comlink carries only name and message).
 */
import type { InspectionRecord } from '../../actors/actor.protocol.ts';
import type { EventLog } from '../../actors/event-log.ts';

/** Where an actor is in its life: `stopped` and `failed` are for good (see `ended`). */
export type ActorStatus = 'starting' | 'running' | 'restarting' | 'stopped' | 'failed';

/** Stopped or failed: the actor takes no more events. */
export function ended(status: ActorStatus): boolean {
  return status === 'stopped' || status === 'failed';
}

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
  /** Where events are made durable before actors act on them. */
  readonly eventLog: EventLog;
  /** Inspection records from every actor (only asked for when set). */
  readonly onInspect?: (records: readonly InspectionRecord[]) => void;
  /** Facts from live events, and from the events replayed when an actor is recovered at spawn. */
  readonly onFacts?: (facts: readonly FactRecord[]) => void;
  /** Store rows to save together with an actor's snapshot (e.g. the indexes as of that snapshot). */
  readonly snapshotMeta?: (actorId: string) => readonly { readonly key: string; readonly value: unknown }[];
  readonly now?: () => number;
  readonly workerUrl?: URL;
}

/** A fact with the logged event that produced it. */
export interface FactRecord {
  readonly actor: string;
  readonly seq: number;
  readonly ts: number;
  readonly fact: { readonly type: string };
}

/** How an actor came up: fresh, or rebuilt from its log. */
export interface Recovery {
  readonly recovered: boolean;
  readonly snapshotSeq: number;
  readonly replayed: number;
  readonly lastSeq: number;
  readonly ms: number;
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

/** Removes a key from each member of a union. */
export type OmitFrom<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never;
