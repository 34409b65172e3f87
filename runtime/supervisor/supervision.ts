/**
 * The types, errors and defaults of supervision: what a supervisor is configured with, what it needs, what it
 * reports, and the errors its actors' callers see (matched by `name`: comlink carries only name and message).
 */
import type { InspectionRecord, VersionedSnapshot } from '../../actors/actor.protocol.ts';
import type { EventLog } from '../../actors/event-log.ts';
import type { Placement } from './worker-pool.ts';

/** Where an actor is in its life: `stopped` and `failed` are for good (see `ended`). */
export type ActorStatus = 'starting' | 'running' | 'restarting' | 'stopped' | 'failed';

/** Stopped or failed: the actor takes no more events. */
export function ended(status: ActorStatus): boolean {
  return status === 'stopped' || status === 'failed';
}

/**
 * When a child is restarted (OTP's restart types). A crash or a failed event is always an abnormal end; an actor
 * ends normally only when it is retired or stopped, so for actors `transient` restarts as `permanent` does.
 */
export type RestartType = 'permanent' | 'transient' | 'temporary';

/**
 * Which children restart when one fails: only it (`one_for_one`), all of them (`one_for_all`), or it and the
 * children started after it (`rest_for_one`), as in OTP.
 */
export type Strategy = 'one_for_one' | 'one_for_all' | 'rest_for_one';

/** How to start one actor under a supervisor. */
export interface ChildSpec {
  readonly id: string;
  readonly kind: string;
  readonly input?: unknown;
  /** Overrides the logged snapshot (tests, tools). */
  readonly snapshot?: VersionedSnapshot;
  /** 'shared': on the one worker shared by small actors; 'dedicated' (default): a worker thread of its own. */
  readonly placement?: Placement;
  readonly restart?: RestartType;
}

/** A nested supervisor: its own strategy and intensity; `restart` is what its parent does when it gives up. */
export interface SupervisorSpec {
  readonly id: string;
  readonly strategy?: Strategy;
  readonly maxRestarts?: number;
  readonly withinMs?: number;
  readonly restart?: RestartType;
  /** Ends itself (leaving its parent) once its last child is retired, as OTP's `auto_shutdown`. */
  readonly autoShutdown?: boolean;
}

export interface SupervisorInit {
  /**
   * The intensity: restarts (of all children together) allowed within `withinMs`; one more and the supervisor gives
   * up, takes its children down and escalates to its parent (the top one to `onEscalate`).
   */
  readonly maxRestarts: number;
  readonly withinMs: number;
  /** Default one_for_one. */
  readonly strategy?: Strategy;
  /** Largest number of events per cross-thread call. */
  readonly batchSize: number;
  /** Take a snapshot after this many events, so a restart replays at most this many. */
  readonly snapshotEvery: number;
  /**
   * ... or after this many bytes of logged events, whichever comes first: until a snapshot covers them, events stay
   * in the live store (and its checkpoints), so a few large events must not wait for thousands more.
   */
  readonly snapshotBytes?: number;
  readonly askTimeoutMs: number;
}

export const SUPERVISOR_DEFAULTS: SupervisorInit = Object.freeze({
  maxRestarts: 5,
  withinMs: 60_000,
  batchSize: 1000,
  snapshotEvery: 5000,
  snapshotBytes: 8 * 1024 * 1024,
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
  constructor(supervisor: string, restarts: number, withinMs: number, cause: string) {
    super(`supervisor ${supervisor}: ${restarts + 1} failures within ${Math.round(withinMs / 1000)} s, more than the ${restarts} restarts allowed (last: ${cause}); giving up. Check the log above for the cause, then start the node again`);
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
