/**
 * Events the Node actor accepts, and the intents it emits for its shell to carry out.
 * Time arrives in events (`now`, `at`): the machine never reads a clock.
 */
import type { BidRequestEvent, NodeDealIntent } from './bidding.messages.ts';
import type { LedgerRefusalCode, LockCommand } from './ledger.ts';
import type { Benchmark, HostFacts, Offer, OnboardingProblem, Registration } from './onboarding.ts';
import type { Preferences } from './preferences.ts';

/** One monitoring sample of the machine. */
export interface Sample {
  readonly at: number;
  /** 1-minute load average. */
  readonly load1: number;
  readonly memoryTotal: number;
  /** Memory other programs leave free (the OS's "available"). */
  readonly memoryAvailable: number;
  /** Free bytes on the data dir's file system. */
  readonly diskFree: number;
}

/** Present on commands that expect an answer: the shell routes the `reply.send` intent back by this id. */
interface Replyable {
  readonly replyTo?: string;
}

export interface OnboardEvent extends Replyable {
  readonly type: 'node.onboard';
  readonly offer: Offer;
  readonly host: HostFacts;
  /** A benchmark taken earlier; when absent the node uses the one it has, or benchmarks first. */
  readonly benchmark?: Benchmark;
  /** Benchmark again even if a benchmark is known. */
  readonly rebenchmark?: boolean;
}
export interface BenchmarkDoneEvent {
  readonly type: 'benchmark.done';
  readonly benchmark: Benchmark;
}
export interface BenchmarkFailEvent {
  readonly type: 'benchmark.fail';
  readonly reason: string;
}
export interface OffboardEvent extends Replyable {
  readonly type: 'node.offboard';
}
/** A lock request: the ledger's LockCommand as an event. */
export interface LockEvent extends Replyable, LockCommand {
  readonly type: 'ledger.lock';
}
export interface UnlockEvent extends Replyable {
  readonly type: 'ledger.unlock';
  readonly id: string;
}
export interface ExpireEvent {
  readonly type: 'ledger.expire';
  readonly now: number;
}
export interface AllocateEvent extends Replyable {
  readonly type: 'ledger.allocate';
  readonly allocationId: string;
  readonly lockId: string;
  readonly now: number;
}
export interface ReleaseEvent extends Replyable {
  readonly type: 'ledger.release';
  readonly allocationId: string;
}
export interface SampleEvent {
  readonly type: 'monitor.sample';
  readonly sample: Sample;
}
export interface PreferencesSetEvent extends Replyable {
  readonly type: 'preferences.set';
  readonly preferences: Preferences;
}
export interface StopEvent {
  readonly type: 'node.stop';
}
/** Settings of this run that the Node's decisions use; the runtime sends it at every start. */
export interface ConfigureEvent {
  readonly type: 'node.configure';
  /** Bytes that must stay free on the data dir's disk; under it the Node declines new work with `disk-full`. */
  readonly minFreeDisk: number;
  /** `--require-grants`: bid only for requesters whose capability tokens grant `deploy` (absent: false). */
  readonly requireGrants?: boolean;
}
/** Sent once after the node's state was rebuilt from its log: re-arms what the old process was doing. */
export interface RecoveredEvent {
  readonly type: 'node.recovered';
  readonly now: number;
}

export type NodeEvent =
  | OnboardEvent
  | BenchmarkDoneEvent
  | BenchmarkFailEvent
  | OffboardEvent
  | LockEvent
  | UnlockEvent
  | ExpireEvent
  | AllocateEvent
  | ReleaseEvent
  | SampleEvent
  | PreferencesSetEvent
  | StopEvent
  | ConfigureEvent
  | RecoveredEvent
  /** A peer asks for bids; the Node bids or declines (machines/bidding.ts). */
  | BidRequestEvent;

export type NodeEventType = NodeEvent['type'];

export type RefusalCode = LedgerRefusalCode | 'offboarded' | 'onboarding' | 'stopped';

/** The answer to a command that carried `replyTo`. */
export type ReplyBody =
  | { readonly ok: true; readonly value?: unknown }
  | { readonly ok: false; readonly code: RefusalCode; readonly message: string };

export type ReplyIntent = { readonly type: 'reply.send'; readonly replyTo: string } & ReplyBody;

export type LogLevel = 'debug' | 'info' | 'warn' | 'error';

/** Effects the Node asks its shell for. During replay the shell does not carry them out. */
export type NodeIntent =
  | { readonly type: 'benchmark.run' }
  | { readonly type: 'registration.save'; readonly registration: Registration | null }
  | { readonly type: 'preferences.save'; readonly preferences: Preferences }
  | { readonly type: 'onboarding.failed'; readonly problems: readonly OnboardingProblem[] }
  | { readonly type: 'timer.schedule'; readonly at: number | null }
  | { readonly type: 'allocation.stop'; readonly allocationId: string }
  | { readonly type: 'log.write'; readonly level: LogLevel; readonly message: string; readonly data?: Record<string, unknown> }
  | ReplyIntent
  | NodeDealIntent;
