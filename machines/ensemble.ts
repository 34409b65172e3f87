/**
 * An ensemble: several parts (allocations) deployed as one job, each a `service` or a `task` with any executor,
 * named ports, an optional health check, a restart policy and the parts it depends on (INTERFACE.md "Ensembles").
 * Plain data like JobSpec, checked at the edge (runtime/cli/ensemble-file.ts) and by `validateEnsemble`
 * (ensemble.rules.ts); the dependency order and the restart strategies are in ensemble.order.ts.
 *
 * A one-part job is an ensemble of one task part (`ensembleOf`), and each part deploys as a JobSpec (`partJob`).
 */
import type { Resources } from './capability.ts';
import { HEALTH_LIMITS } from './health.ts';
import type { JobConstraints, JobSpec, ProcessJobSpec, WasmJobSpec } from './job.ts';
import { DEFAULT_MAX_RESTARTS, defaultRestart, type PartType, RESTART_LIMITS, type RestartIntensity, type RestartPolicy } from './restart-policy.ts';

// A part's type, restart policy and restart intensity are restart-policy.ts's; health.ts runs its health check.
export type { PartType, RestartPolicy } from './restart-policy.ts';
export { defaultRestart };

export const PART_TYPES = ['task', 'service'] as const satisfies readonly PartType[];
export const RECOVERY_STRATEGIES = ['one_for_one', 'one_for_all', 'rest_for_one'] as const;
/** Which parts restart when one fails for good: OTP's supervisor strategies (ensemble.order.ts `partsToRestart`). */
export type RecoveryStrategy = (typeof RECOVERY_STRATEGIES)[number];

/** `maxRestarts`: more than `count` restarts within `withinMs` and the ensemble fails. */
export type MaxRestarts = RestartIntensity;

interface HealthcheckTiming {
  /** Time between checks. */
  readonly intervalMs: number;
  /** Failed checks in a row that make the part unhealthy. */
  readonly retries: number;
}
/** An HTTP GET of `path` on the part's named `port`; a 2xx answer passes. */
export interface HttpHealthcheck extends HealthcheckTiming {
  readonly http: { readonly port: string; readonly path: string };
}
/** A command run beside the part; exit status 0 passes. */
export interface CommandHealthcheck extends HealthcheckTiming {
  readonly command: readonly string[];
}
/**
 * Told apart by `http` or `command`, as the job file writes them (no `type` field to keep in step). What the wire
 * carries (deal-schemas.ts); health.ts runs it (a HealthCheckSpec whose start period and timeout are the defaults).
 */
export type Healthcheck = HttpHealthcheck | CommandHealthcheck;

interface EnsemblePartBase {
  /** The key under `allocations`: a letter, then letters, digits, `-` and `_` (it becomes part of env names). */
  readonly name: string;
  readonly type: PartType;
  readonly resources: Resources;
  /** A task's own time limit; absent: the ensemble's. A service has none: it runs until the ensemble ends. */
  readonly timeoutMs?: number;
  /** Named ports; the provider assigns each a free port, passed as `DMS_PORT_<NAME>`. */
  readonly ports: readonly string[];
  readonly healthcheck?: Healthcheck;
  readonly restart: RestartPolicy;
  /** Parts that must be running (and healthy) before this one starts; it gets their addresses. */
  readonly dependsOn: readonly string[];
  /** The part's own constraints; `constraintsOf` merges them with the ensemble's. */
  readonly constraints: JobConstraints;
}

/** A part runs with the same executor fields as a one-part job. */
export type EnsemblePart = EnsemblePartBase & (Pick<WasmJobSpec, 'executor' | 'wasm'> | Pick<ProcessJobSpec, 'executor' | 'process'>);

export interface EnsembleSpec {
  readonly name: string;
  /** The ensemble's whole life; at its end its services are stopped. */
  readonly timeoutMs: number;
  readonly recovery: RecoveryStrategy;
  readonly maxRestarts: MaxRestarts;
  /** For every part. */
  readonly constraints: JobConstraints;
  /** In declaration order, which breaks ties in the start order. */
  readonly parts: readonly EnsemblePart[];
}

/** What an ensemble file may leave out. */
export const ENSEMBLE_DEFAULTS = Object.freeze({
  recovery: 'one_for_one' as RecoveryStrategy,
  /** 5 restarts within 60 s, then the ensemble fails (OTP's default is 1 in 5 s, too tight for remote parts). */
  maxRestarts: DEFAULT_MAX_RESTARTS,
  type: 'task' as PartType,
  /** A health check's interval; its retries default in health.ts (HEALTH_DEFAULTS). */
  healthcheckIntervalMs: 5_000,
});

/** Bounds past which an ensemble is a mistake (those of health checks and maxRestarts as health.ts and restart-policy.ts set them). */
export const ENSEMBLE_LIMITS = Object.freeze({
  maxParts: 64,
  maxPortsPerPart: 32,
  maxNameLength: 64,
  maxRestartCount: RESTART_LIMITS.maxCount,
  minHealthcheckIntervalMs: HEALTH_LIMITS.minIntervalMs,
  maxHealthcheckIntervalMs: HEALTH_LIMITS.maxIntervalMs,
  maxHealthcheckRetries: HEALTH_LIMITS.maxRetries,
  maxHealthcheckPathLength: HEALTH_LIMITS.maxPathLength,
});

/**
 * A part name: starts with a letter (a name of digits would also be reordered by JavaScript objects, losing the
 * declaration order), then letters, digits, `-` and `_`.
 */
export const PART_NAME_PATTERN = /^[A-Za-z][A-Za-z0-9_-]*$/;
/** A port name: letters, digits, `-` and `_`. */
export const PORT_NAME_PATTERN = /^[A-Za-z0-9_-]+$/;

/** Why `name` is not a part name, or undefined when it is one. */
export function partNameProblem(name: string): string | undefined {
  if (PART_NAME_PATTERN.test(name) && name.length <= ENSEMBLE_LIMITS.maxNameLength) return undefined;
  return `${JSON.stringify(name)} is not a part name; use a letter, then letters, digits, - and _ (at most ${ENSEMBLE_LIMITS.maxNameLength}), as it becomes part of env names like DMS_ADDR_<PART>_<PORT>`;
}

/** A name as it appears inside an env var name: upper case, `-` as `_`. */
export function envFragment(name: string): string {
  return name.toUpperCase().replaceAll('-', '_');
}

/** `DMS_PORT_<PORT>`: the port the provider assigned to one of the part's own named ports. */
export function portEnvName(port: string): string {
  return `DMS_PORT_${envFragment(port)}`;
}

/** `DMS_ADDR_<PART>_<PORT>`: `host:port` reaching a named port of a part this one depends on. */
export function addrEnvName(part: string, port: string): string {
  return `DMS_ADDR_${envFragment(part)}_${envFragment(port)}`;
}

/** Where a part's ports and its dependencies' ports are, once placed. */
export interface PartAddresses {
  /** The port assigned to each of the part's named ports. */
  readonly ports: Readonly<Record<string, number>>;
  /** For each part it depends on, `host:port` by that part's port name (the local end of its tunnel). */
  readonly dependencies: Readonly<Record<string, Readonly<Record<string, string>>>>;
}

/** An address `envFor` needs was not given: the runtime placed a part without assigning all it needs. */
export class MissingAddressError extends Error {
  override name = 'MissingAddressError';
}

/**
 * The env a part runs with besides its own: `DMS_PORT_<NAME>` for each of its ports, `DMS_ADDR_<PART>_<PORT>` for
 * each port of each part it depends on. Entries of `addrs.dependencies` for parts it does not depend on are left out.
 */
export function envFor(part: EnsemblePart, addrs: PartAddresses): Record<string, string> {
  const env: Record<string, string> = {};
  for (const port of part.ports) {
    const n = addrs.ports[port];
    if (n === undefined || !Number.isInteger(n) || n < 1 || n > 65535) throw new MissingAddressError(`part ${part.name} has no port assigned for "${port}" (got ${n})`);
    env[portEnvName(port)] = String(n);
  }
  for (const dep of part.dependsOn) {
    const ports = addrs.dependencies[dep];
    if (ports === undefined) throw new MissingAddressError(`part ${part.name} depends on ${dep}, which has no addresses`);
    for (const [port, addr] of Object.entries(ports)) env[addrEnvName(dep, port)] = addr;
  }
  return env;
}

/** The part's constraints within the ensemble's: required peers in both (where both name some), excluded by either. */
export function constraintsOf(spec: EnsembleSpec, part: EnsemblePart): JobConstraints {
  const outer = spec.constraints.peers;
  const inner = part.constraints.peers;
  const peers = outer.length === 0 ? inner : inner.length === 0 ? outer : inner.filter((p) => outer.includes(p));
  return { peers: [...new Set(peers)], excludePeers: [...new Set([...spec.constraints.excludePeers, ...part.constraints.excludePeers])] };
}

/** The part as a job a provider could run: its own timeout or the ensemble's, and the merged constraints. */
export function partJob(spec: EnsembleSpec, part: EnsemblePart): JobSpec {
  const base = { name: part.name, resources: part.resources, timeoutMs: part.timeoutMs ?? spec.timeoutMs, constraints: constraintsOf(spec, part) };
  return part.executor === 'wasm' ? { ...base, executor: 'wasm', wasm: part.wasm } : { ...base, executor: 'process', process: part.process };
}

/** A one-part job as an ensemble: one task part named after the job, with the job's timeout and constraints. */
export function ensembleOf(job: JobSpec): EnsembleSpec {
  const common = {
    name: partNameFor(job.name),
    type: 'task' as const,
    resources: job.resources,
    ports: [],
    restart: defaultRestart('task'),
    dependsOn: [],
    constraints: { peers: [], excludePeers: [] },
  };
  const part: EnsemblePart = job.executor === 'wasm' ? { ...common, executor: 'wasm', wasm: job.wasm } : { ...common, executor: 'process', process: job.process };
  return { name: job.name, timeoutMs: job.timeoutMs, recovery: ENSEMBLE_DEFAULTS.recovery, maxRestarts: ENSEMBLE_DEFAULTS.maxRestarts, constraints: job.constraints, parts: [part] };
}

/** A job name made a part name: the job's name when it is one, else runs of other characters as `-`. */
export function partNameFor(jobName: string): string {
  const name = jobName.replace(/[^A-Za-z0-9_-]+/g, '-').replace(/^-+|-+$/g, '');
  const lettered = /^[A-Za-z]/.test(name) ? name : `job-${name}`.replace(/-+$/, '');
  return lettered.slice(0, ENSEMBLE_LIMITS.maxNameLength).replace(/-+$/, '');
}
