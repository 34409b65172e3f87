/**
 * The rules of an ensemble part's health check: what a check is (`http` to a named port, or a `command`), how
 * often it runs, and how its results make a part `starting`, `healthy` or `unhealthy`. Pure: the probe itself is
 * runtime/executors/health-probe.ts, and time arrives in events as `now`. A step says when the next check is due
 * (an absolute time, for a `timer.schedule` intent) and whether the part just became healthy or unhealthy.
 */
import type { JobProblem } from './job.ts';

/** An HTTP GET to `http://127.0.0.1:<the port assigned to `port`><path>`; any 2xx passes. */
export interface HttpCheck {
  /** One of the part's named `ports`. */
  readonly port: string;
  readonly path: string;
}

/** What a check runs, as the job file says it: `{ http: { port, path } }` or `{ command: [argv...] }`. */
export type HealthProbeSpec = { readonly http: HttpCheck } | { readonly command: readonly string[] };

/** A check's timing, durations parsed to ms. Left out: the defaults of `healthRules`. */
export interface HealthTiming {
  readonly intervalMs: number;
  /** Consecutive counted failures that make the part unhealthy (default 3). */
  readonly retries?: number;
  /** Grace after a start or restart: failures of checks due within it do not count (default: one interval). */
  readonly startPeriodMs?: number;
  /** How long one check may take before it fails (default: one interval). */
  readonly timeoutMs?: number;
}

/** A part's `healthcheck`. */
export type HealthCheckSpec = HealthProbeSpec & HealthTiming;

/** A check's timing with every default filled in. */
export interface HealthRules {
  readonly intervalMs: number;
  readonly retries: number;
  readonly startPeriodMs: number;
  readonly timeoutMs: number;
}

/** A check as the runtime runs it: the named port resolved to the port the provider assigned. */
export type HealthProbeTarget =
  | { readonly type: 'http'; readonly port: number; readonly path: string }
  | { readonly type: 'command'; readonly command: readonly string[] };

export const HEALTH_DEFAULTS = Object.freeze({ retries: 3 });

/** Bounds past which a health check is a mistake (or a way to make the provider spawn a process every ms). */
export const HEALTH_LIMITS = Object.freeze({
  minIntervalMs: 100,
  maxIntervalMs: 3_600_000,
  maxRetries: 100,
  maxStartPeriodMs: 3_600_000,
  maxTimeoutMs: 600_000,
  maxPathLength: 1024,
  maxCommandArgs: 256,
  /** The most of a check's output that is kept (UTF-8 bytes): it may become a part's failure reason. */
  outputBytes: 1024,
});

export type HealthStatus = 'starting' | 'healthy' | 'unhealthy';

/** The last check's result, its output bounded to HEALTH_LIMITS.outputBytes. */
export interface CheckRecord {
  readonly ok: boolean;
  readonly at: number;
  readonly output: string;
}

export interface HealthState {
  readonly status: HealthStatus;
  /** When the part last started or restarted. */
  readonly startedAt: number;
  /** Consecutive failures counted toward `retries` (a pass resets it; failures in the start period never add). */
  readonly failures: number;
  /** When the next check is due. */
  readonly nextCheckAt: number;
  readonly lastCheck: CheckRecord | null;
}

/** The part started or restarted (the runtime stamps `now`): health starts over. */
export interface PartStartedEvent {
  readonly type: 'part.started';
  readonly now: number;
}
/** A check's result, as the probe gave it: `now` is when it arrived, `ms` how long the check took. */
export interface CheckResultEvent {
  readonly type: 'check.passed' | 'check.failed';
  readonly now: number;
  readonly ms: number;
  readonly output: string;
}
export type HealthEvent = PartStartedEvent | CheckResultEvent;

export interface HealthStep {
  readonly state: HealthState;
  /** Set on the step where the part became healthy or unhealthy; null on every other step. */
  readonly transition: 'healthy' | 'unhealthy' | null;
  /** When the next check is due (= state.nextCheckAt). */
  readonly nextCheckAt: number;
}

export function healthRules(timing: HealthTiming): HealthRules {
  const { intervalMs } = timing;
  return {
    intervalMs,
    retries: timing.retries ?? HEALTH_DEFAULTS.retries,
    startPeriodMs: timing.startPeriodMs ?? intervalMs,
    timeoutMs: timing.timeoutMs ?? intervalMs,
  };
}

/** A part that (re)started at `startedAt`: starting, no failures, the first check one interval later. */
export function startHealth(rules: HealthRules, startedAt: number): HealthState {
  return { status: 'starting', startedAt, failures: 0, nextCheckAt: startedAt + rules.intervalMs, lastCheck: null };
}

/**
 * One step of a part's health.
 * - `part.started` starts over (`startHealth`).
 * - A pass resets the failures; a part not yet healthy becomes healthy (also within the start period).
 * - A failure counts unless the part is still `starting` and the check it answers was due within the start period
 *   (at or before startedAt + startPeriod: by the due time, not the arrival, so a late timer changes nothing).
 *   `retries` consecutive counted failures make the part unhealthy.
 * - A result of a check begun before the last start (`now - ms < startedAt`) probed the previous run: ignored.
 * The transition is reported on the step that makes it and never again while the status stays.
 */
export function evolveHealth(rules: HealthRules, state: HealthState, event: HealthEvent): HealthStep {
  switch (event.type) {
    case 'part.started':
      return step(startHealth(rules, event.now), null);
    case 'check.passed':
    case 'check.failed': {
      if (event.now - event.ms < state.startedAt) return step(state, null);
      const lastCheck: CheckRecord = { ok: event.type === 'check.passed', at: event.now, output: boundOutput(event.output) };
      const next = { ...state, lastCheck, nextCheckAt: event.now + rules.intervalMs };
      return lastCheck.ok ? passed(next) : failed(rules, state, next);
    }
    default: {
      const never: never = event;
      return never;
    }
  }
}

function step(state: HealthState, transition: HealthStep['transition']): HealthStep {
  return { state, transition, nextCheckAt: state.nextCheckAt };
}

function passed(next: HealthState): HealthStep {
  const transition = next.status === 'healthy' ? null : 'healthy';
  return step({ ...next, status: 'healthy', failures: 0 }, transition);
}

/** `before` decides the grace (the check answered was due at its nextCheckAt); `next` carries the new record. */
function failed(rules: HealthRules, before: HealthState, next: HealthState): HealthStep {
  if (before.status === 'starting' && inStartPeriod(rules, before)) return step(next, null);
  const failures = before.failures + 1;
  if (failures < rules.retries || before.status === 'unhealthy') return step({ ...next, failures }, null);
  return step({ ...next, status: 'unhealthy', failures }, 'unhealthy');
}

function inStartPeriod(rules: HealthRules, state: HealthState): boolean {
  return state.nextCheckAt <= state.startedAt + rules.startPeriodMs;
}

/** Why an unhealthy part fails: the count and the last check's output. */
export function unhealthyReason(rules: HealthRules, state: HealthState): string {
  const output = state.lastCheck?.output.trim() ?? '';
  const times = rules.retries === 1 ? 'once' : `${rules.retries} times in a row`;
  return `the health check failed ${times}${output ? `; last output: ${output}` : ''}`;
}

/** The check as the runtime runs it, once the part's named ports have numbers; undefined for an unknown port. */
export function probeTarget(spec: HealthProbeSpec, ports: Readonly<Record<string, number>>): HealthProbeTarget | undefined {
  if ('command' in spec) return { type: 'command', command: spec.command };
  const port = Object.hasOwn(ports, spec.http.port) ? ports[spec.http.port] : undefined;
  return port === undefined ? undefined : { type: 'http', port, path: spec.http.path };
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();
/** UTF-8 bytes of the `…` that marks cut output. */
const MARK_BYTES = 3;

/**
 * `text` cut to at most `maxBytes` UTF-8 bytes, never inside a character, ending in `…` when it was cut (the
 * ellipsis counts toward the bound).
 */
export function boundOutput(text: string, maxBytes: number = HEALTH_LIMITS.outputBytes): string {
  // a UTF-16 unit is at most 3 UTF-8 bytes: shorter text cannot be over the bound
  if (text.length * 3 <= maxBytes) return text;
  const bytes = encoder.encode(text);
  if (bytes.byteLength <= maxBytes) return text;
  const mark = maxBytes >= MARK_BYTES ? '…' : '';
  let end = maxBytes - (mark ? MARK_BYTES : 0);
  while (end > 0 && ((bytes[end] ?? 0) & 0xc0) === 0x80) end--; // back to the start of a character
  return decoder.decode(bytes.subarray(0, end)) + mark;
}

/** Every rule a healthcheck must meet; `ports` are the part's named ports; fields are named under `field`. */
export function healthCheckProblems(spec: HealthCheckSpec, ports: readonly string[], field = 'healthcheck'): JobProblem[] {
  const problems = 'command' in spec ? commandProblems(spec.command, `${field}.command`) : httpProblems(spec.http, ports, `${field}.http`);
  return [...problems, ...timingProblems(spec, field)];
}

function httpProblems(http: HttpCheck, ports: readonly string[], field: string): JobProblem[] {
  const problems: JobProblem[] = [];
  if (!ports.includes(http.port)) {
    const known = ports.length ? `one of the part's ports (${ports.join(', ')})` : 'a port of the part, and the part has no `ports`';
    problems.push({ field: `${field}.port`, message: `${JSON.stringify(http.port)} is not ${known}; add it to ports or name another` });
  }
  const { path } = http;
  if (!path.startsWith('/') || path.length > HEALTH_LIMITS.maxPathLength || /[\s\u0000-\u001f\u007f]/.test(path)) {
    problems.push({ field: `${field}.path`, message: `${JSON.stringify(path)} is not a URL path; use one that starts with "/", has no spaces or control characters and at most ${HEALTH_LIMITS.maxPathLength} characters, e.g. "/health"` });
  }
  return problems;
}

function commandProblems(command: readonly string[], field: string): JobProblem[] {
  if (command.length === 0 || (command[0] ?? '').trim() === '') return [{ field, message: 'is empty; name the program to run and its arguments, e.g. [sh, -c, "test -f /tmp/ready"]' }];
  if (command.length > HEALTH_LIMITS.maxCommandArgs) return [{ field, message: `has ${command.length} entries; at most ${HEALTH_LIMITS.maxCommandArgs}` }];
  const bad = command.findIndex((a) => a.includes('\0'));
  return bad === -1 ? [] : [{ field: `${field}.${bad}`, message: 'contains a NUL character' }];
}

function timingProblems(t: HealthTiming, field: string): JobProblem[] {
  const problems: JobProblem[] = [];
  const check = (name: string, value: number | undefined, ok: (v: number) => boolean, want: string) => {
    if (value !== undefined && !ok(value)) problems.push({ field: `${field}.${name}`, message: `${value} is not ${want}` });
  };
  const { minIntervalMs, maxIntervalMs, maxRetries, maxStartPeriodMs, maxTimeoutMs } = HEALTH_LIMITS;
  check('interval', t.intervalMs, (v) => Number.isFinite(v) && v >= minIntervalMs && v <= maxIntervalMs, `a duration from ${minIntervalMs} ms to 1 h, e.g. "1s"`);
  check('retries', t.retries, (v) => Number.isInteger(v) && v >= 1 && v <= maxRetries, `a whole number from 1 to ${maxRetries}`);
  check('startPeriod', t.startPeriodMs, (v) => Number.isFinite(v) && v >= 0 && v <= maxStartPeriodMs, 'a duration from 0 to 1 h, e.g. "10s"');
  check('timeout', t.timeoutMs, (v) => Number.isFinite(v) && v > 0 && v <= maxTimeoutMs, 'a duration above 0 and at most 10 min, e.g. "2s"');
  return problems;
}
