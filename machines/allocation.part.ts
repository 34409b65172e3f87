/**
 * What an allocation does differently when it is a part of an ensemble (its job has `part`): the env it runs with,
 * whether it is held for the parts it depends on, when an ended execution is started again, and its health
 * checks. Pure functions over the allocation's input and context; allocation.machine.ts applies them. An
 * allocation without `part` never reaches any of these rules.
 */
import type { AllocationInput, ExecutionOutcome } from './allocation.messages.ts';
import { portEnvName } from './ensemble.ts';
import { type HealthProbeTarget, type HealthRules, type HealthState, type HealthStep, evolveHealth, healthRules, probeTarget } from './health.ts';
import { type PartExit, type RestartWindow, admitRestart, decideRestart, exitOf } from './restart-policy.ts';

export type Env = Readonly<Record<string, string>>;

/** A part with dependencies waits for `part.start` (the addresses of the parts it depends on) before it starts. */
export function heldFor(input: AllocationInput, addrsEnv: Env | null): readonly string[] {
  const deps = input.job.part?.dependsOn ?? [];
  return deps.length > 0 && addrsEnv === null ? deps : [];
}

/**
 * The env a part's execution gets on top of its job's: `DMS_PORT_<NAME>` for each of its ports, and the
 * `DMS_ADDR_<PART>_<PORT>` of its dependencies. Undefined for an allocation that is no part.
 */
export function partEnv(input: AllocationInput, addrsEnv: Env | null): Env | undefined {
  if (!input.job.part) return undefined;
  const env: Record<string, string> = {};
  for (const [name, port] of Object.entries(input.ports ?? {})) env[portEnvName(name)] = String(port);
  return { ...env, ...(addrsEnv ?? {}) };
}

/** What follows an execution's end that nobody asked for (or a stop for ill health). */
export type RestartStep =
  /** Start it again; the restart window with this restart in it. */
  | { readonly type: 'restart'; readonly window: RestartWindow }
  /** The policy says restart, but the part has restarted `maxRestarts.count` times within the window already. */
  | { readonly type: 'exceeded' }
  /** It ends, as an allocation that is no part would. */
  | { readonly type: 'end' };

const END: RestartStep = Object.freeze({ type: 'end' });

/**
 * The restart rules for a part whose process ended as `exit` at `now`. A part killed by its own time limit is not
 * started again: its job's timeout is the whole life it was given (for a service, the ensemble's).
 */
export function restartStep(input: AllocationInput, window: RestartWindow, exit: PartExit, now: number): RestartStep {
  const part = input.job.part;
  if (!part) return END;
  if (decideRestart(part.restart, part.type, exit).type === 'end') return END;
  const admitted = admitRestart(part.maxRestarts, window, now);
  return admitted.exceeded ? { type: 'exceeded' } : { type: 'restart', window: admitted.window };
}

/** An execution's end as the restart rules see it; null when it must not restart whatever the policy (a timeout). */
export function partExitOf(outcome: ExecutionOutcome): PartExit | null {
  return outcome.reason === 'timeout' ? null : exitOf(outcome);
}

/** Why a part was not restarted although its policy says so. */
export function exceededMessage(input: AllocationInput, why: string): string {
  const limit = input.job.part?.maxRestarts;
  const bound = limit ? `${limit.count} restarts within ${limit.withinMs / 1000} s` : 'its restart limit';
  return `${why}; not restarted: it already had ${bound} (maxRestarts)`;
}

/** The part's health check rules, when it has a check. */
export function partHealthRules(input: AllocationInput): HealthRules | null {
  const check = input.job.part?.healthcheck;
  return check ? healthRules(check) : null;
}

/** The check to run now: the named port resolved to the part's assigned port; undefined for a port it lacks. */
export function checkTarget(input: AllocationInput): HealthProbeTarget | undefined {
  const check = input.job.part?.healthcheck;
  return check ? probeTarget(check, input.ports ?? {}) : undefined;
}

/** What a check that could not be run reports, in place of the probe's output. */
export function missingTargetOutput(input: AllocationInput): string {
  const check = input.job.part?.healthcheck;
  const port = check && 'http' in check ? check.http.port : '?';
  return `the health check's port "${port}" has no port assigned on this provider`;
}

/** One check's result folded into the part's health. */
export function foldCheck(rules: HealthRules, state: HealthState, r: { ok: boolean; output: string; ms: number; now: number }): HealthStep {
  return evolveHealth(rules, state, { type: r.ok ? 'check.passed' : 'check.failed', now: r.now, ms: r.ms, output: r.output });
}
