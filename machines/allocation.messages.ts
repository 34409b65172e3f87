/**
 * The allocation (actor `allocation/<allocationId>`), one per running job on the provider: its input, the events
 * it takes, the intents it emits and the record it leaves.
 */
import type { Resources } from './capability.ts';
import type { At, DealGrant, LogIntent, TimerCancelIntent, TimerFiredEvent, TimerScheduleIntent } from './deal.events.ts';
import type { AllocationState, AllocationStatusMsg } from './deal.wire.ts';
import type { HealthProbeTarget } from './health.ts';
import type { JobSpec } from './job.ts';

export interface AllocationInput {
  readonly allocationId: string;
  readonly dealId: string;
  readonly nonce: number;
  readonly requester: string;
  readonly job: JobSpec;
  /** A part's named ports and the port the provider's ledger gave each (`DMS_PORT_<NAME>`). */
  readonly ports?: Readonly<Record<string, number>>;
  /** An array job (`job.count`): how many instances run at once, and the ones the allocate named to run first. */
  readonly slots?: number;
  readonly assign?: readonly number[];
  /** The capability grant its deal was accepted under (the provider input's), kept in its record. */
  readonly grant?: DealGrant;
}

/** How an execution ended (the executor's ExecutionResult, as the machine needs it). */
export interface ExecutionOutcome {
  readonly exitCode: number | null;
  readonly reason: 'completed' | 'failed' | 'timeout' | 'cancelled' | 'memory' | 'crashed';
  readonly message: string;
  readonly durationMs: number;
  readonly outputBytes: number;
  readonly outputTruncated: boolean;
}

export interface AllocationRecordView {
  readonly allocationId: string;
  readonly dealId: string;
  readonly requester: string;
  readonly name: string;
  readonly executor: JobSpec['executor'];
  readonly resources: Resources;
  readonly state: AllocationState;
  readonly exitCode: number | null;
  readonly message: string;
  readonly pid: number | null;
  readonly createdAt: number;
  readonly startedAt: number | null;
  readonly endedAt: number | null;
  /** A part with a health check: whether it passes now (absent: no check, or not known yet since its last start). */
  readonly healthy?: boolean;
  /** A part: how often it was started again by its `restart` policy (absent for an allocation that is no part). */
  readonly restarts?: number;
  /**
   * The capability grant its deal was accepted under, when the provider required one: its output and result files
   * are served only while it holds, also after the allocation ended.
   */
  readonly grant?: DealGrant;
}

/** Sent once by the runtime right after spawning. */
export interface AllocationStartEvent extends At {
  readonly type: 'allocation.start';
}
export interface ExecutionStartedEvent extends At {
  readonly type: 'execution.started';
  readonly pid: number;
}
/** The executor refused the job before it ran (bad module, unknown command, ...). */
export interface ExecutionRefusedEvent extends At {
  readonly type: 'execution.refused';
  readonly reason: string;
}
export interface ExecutionEndedEvent extends At {
  readonly type: 'execution.ended';
  readonly outcome: ExecutionOutcome;
}
export interface AllocationCancelEvent extends At {
  readonly type: 'allocation.cancel';
}
export interface AllocationRecoveredEvent extends At {
  readonly type: 'allocation.recovered';
}

/**
 * A part held for the parts it depends on may start: the requester's `part.start` arrived and the runtime opened
 * the tunnel listeners; `addrsEnv` is `DMS_ADDR_<PART>_<PORT>` -> `127.0.0.1:PORT` for each of their ports. Sent
 * again (after a dependency moved) it replaces the addresses a later restart runs with.
 */
export interface PartStartEvent extends At {
  readonly type: 'part.start';
  readonly addrsEnv: Readonly<Record<string, string>>;
}
/** The runtime's answer to `health.check`: whether the check passed, what it said, how long it took (ms). */
export interface HealthResultEvent extends At {
  readonly type: 'health.result';
  readonly ok: boolean;
  readonly output: string;
  readonly ms: number;
}

export type AllocationEvent =
  | AllocationStartEvent
  | ExecutionStartedEvent
  | ExecutionRefusedEvent
  | ExecutionEndedEvent
  | AllocationCancelEvent
  | AllocationRecoveredEvent
  | PartStartEvent
  | HealthResultEvent
  | TimerFiredEvent;

export type AllocationIntent =
  /**
   * Run the job; `env` (a part's `DMS_PORT_*` and `DMS_ADDR_*`) is merged over the job's own env. A part may be
   * started again after its execution ended: the previous execution must not be left running.
   */
  | { readonly type: 'execution.start'; readonly allocationId: string; readonly job: JobSpec; readonly env?: Readonly<Record<string, string>> }
  | { readonly type: 'execution.cancel'; readonly allocationId: string }
  /**
   * Run one health check of a part within `timeoutMs` and answer `health.result` (never fail: a check that cannot
   * run is a failed check). `env`: a command check runs with the part's env (`DMS_PORT_*`, `DMS_ADDR_*`).
   */
  | { readonly type: 'health.check'; readonly allocationId: string; readonly target: HealthProbeTarget; readonly timeoutMs: number; readonly env?: Readonly<Record<string, string>> }
  /** Tell the requester (the runtime also repeats the latest status as a heartbeat while the job runs). */
  | { readonly type: 'status.push'; readonly to: string; readonly status: Omit<AllocationStatusMsg, 'type'> }
  /** Give the allocation's resources back to the Node's ledger; emitted exactly once, on entering a final state. */
  | { readonly type: 'ledger.release'; readonly allocationId: string }
  | { readonly type: 'allocation.ended'; readonly record: AllocationRecordView }
  | TimerScheduleIntent
  | TimerCancelIntent
  | LogIntent;
