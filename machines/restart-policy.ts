/**
 * When an ensemble part whose process ended is started again: its `restart` policy (`never | on-failure |
 * always`, by default `always` for a service and `never` for a task), and the ensemble's restart intensity
 * (`maxRestarts: { count, within }`: one restart more than `count` within `within` fails the ensemble). Pure:
 * restart times arrive as arguments, and the window is a bounded list the caller keeps (and replays).
 */
import type { ExecutionOutcome } from './allocation.messages.ts';
import type { JobProblem } from './job.ts';

/** A service runs until the ensemble ends; a task runs to completion. */
export type PartType = 'service' | 'task';

export type RestartPolicy = 'never' | 'on-failure' | 'always';

export const RESTART_POLICIES: readonly RestartPolicy[] = Object.freeze(['never', 'on-failure', 'always']);

/** How a part's process ended, as the restart rules see it. */
export type PartExit =
  /** It exited by itself with this code. */
  | { readonly type: 'exited'; readonly code: number }
  /** It was killed by something other than us stopping it: its time or memory limit, a signal, a crash. */
  | { readonly type: 'killed'; readonly reason: string }
  /** We stopped it (cancel, the ensemble's end): never restarted. */
  | { readonly type: 'stopped' };

export type EndState = 'completed' | 'failed' | 'terminated';

export type RestartDecision = { readonly type: 'restart' } | { readonly type: 'end'; readonly state: EndState };

/** `maxRestarts`: at most `count` restarts within any `withinMs`. */
export interface RestartIntensity {
  readonly count: number;
  readonly withinMs: number;
}

/** When an ensemble file sets no `maxRestarts` (the node's own supervisors use the same). */
export const DEFAULT_MAX_RESTARTS: RestartIntensity = Object.freeze({ count: 5, withinMs: 60_000 });

export const RESTART_LIMITS = Object.freeze({ maxCount: 1000, maxWithinMs: 24 * 3600 * 1000 });

export function defaultRestart(type: PartType): RestartPolicy {
  return type === 'service' ? 'always' : 'never';
}

/** An execution's end (the executor's outcome) as a PartExit: a cancel is a stop, a limit or a crash a kill. */
export function exitOf(outcome: ExecutionOutcome): PartExit {
  switch (outcome.reason) {
    case 'completed':
      return { type: 'exited', code: outcome.exitCode ?? 0 };
    case 'failed':
      return outcome.exitCode === null ? { type: 'killed', reason: outcome.message || 'failed' } : { type: 'exited', code: outcome.exitCode };
    case 'cancelled':
      return { type: 'stopped' };
    case 'timeout':
    case 'memory':
    case 'crashed':
      return { type: 'killed', reason: outcome.message || outcome.reason };
    default: {
      const never: never = outcome.reason;
      return never;
    }
  }
}

const RESTART: RestartDecision = Object.freeze({ type: 'restart' });
const end = (state: EndState): RestartDecision => ({ type: 'end', state });

/**
 * Restart the part, or let it end and as what. `policy` undefined: the default for `type`. A stopped part always
 * ends (terminated). `never`: exit 0 completes, anything else fails. `on-failure`: exit 0 completes, anything else
 * restarts. `always`: restarts whatever the exit, for a service; for a task (which validation refuses: it could
 * never end) it is taken as `on-failure`, so a completed task is never run again.
 */
export function decideRestart(policy: RestartPolicy | undefined, type: PartType, exit: PartExit): RestartDecision {
  if (exit.type === 'stopped') return end('terminated');
  const succeeded = exit.type === 'exited' && exit.code === 0;
  const p = policy ?? defaultRestart(type);
  switch (p) {
    case 'never':
      return end(succeeded ? 'completed' : 'failed');
    case 'on-failure':
      return succeeded ? end('completed') : RESTART;
    case 'always':
      return succeeded && type === 'task' ? end('completed') : RESTART;
    default: {
      const never: never = p;
      return never;
    }
  }
}

/** The times (ms) of the restarts still inside the window, oldest first; never more than `count` of them. */
export type RestartWindow = readonly number[];

export interface IntensityStep {
  readonly window: RestartWindow;
  /** The restart asked for at this time would be one too many: the ensemble fails instead (nothing is added). */
  readonly exceeded: boolean;
}

/**
 * A restart asked for at `at`: restarts at least `withinMs` old leave the window; if `count` are still in it this
 * one is refused (exceeded), otherwise it joins the window. The same rule as the node's supervisors.
 */
export function admitRestart(limit: RestartIntensity, window: RestartWindow, at: number): IntensityStep {
  const recent = window.filter((t) => at - t < limit.withinMs);
  if (recent.length >= limit.count) return { window: recent, exceeded: true };
  return { window: [...recent, at], exceeded: false };
}

/** The fold of `admitRestart` over restart times in order: the time of the first one too many, or null. */
export function restartLimitExceededAt(limit: RestartIntensity, times: Iterable<number>): number | null {
  let window: RestartWindow = [];
  for (const at of times) {
    const s = admitRestart(limit, window, at);
    if (s.exceeded) return at;
    window = s.window;
  }
  return null;
}

/** The part's `restart` against its `type` (default task); fields are named under `field`. */
export function restartProblems(part: { readonly type?: PartType; readonly restart?: RestartPolicy }, field = 'restart'): JobProblem[] {
  if (part.restart === undefined) return [];
  if (!RESTART_POLICIES.includes(part.restart)) {
    return [{ field, message: `${JSON.stringify(part.restart)} is not a restart policy; use one of ${RESTART_POLICIES.join(', ')}` }];
  }
  if ((part.type ?? 'task') === 'task' && part.restart === 'always') {
    return [{ field, message: '"always" is not allowed for a task: it would run again even after it completed, and never end; use on-failure or never, or make the part a service (type: service)' }];
  }
  return [];
}

/** `maxRestarts`: a whole count (0: no restart allowed) within a positive window. */
export function maxRestartsProblems(limit: RestartIntensity, field = 'maxRestarts'): JobProblem[] {
  const problems: JobProblem[] = [];
  if (!Number.isInteger(limit.count) || limit.count < 0 || limit.count > RESTART_LIMITS.maxCount) {
    problems.push({ field: `${field}.count`, message: `${limit.count} is not a whole number from 0 to ${RESTART_LIMITS.maxCount}` });
  }
  if (!Number.isFinite(limit.withinMs) || limit.withinMs <= 0 || limit.withinMs > RESTART_LIMITS.maxWithinMs) {
    problems.push({ field: `${field}.within`, message: `${limit.withinMs} ms is not a duration above 0 and at most 24 h, e.g. "60s"` });
  }
  return problems;
}
