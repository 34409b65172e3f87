/**
 * A job as the deal machines carry it: what to run, with what resources, for how long, and where. Plain data
 * (structured-clone and CBOR safe), checked once at the edge (runtime/cli/job-file.ts) and by `validateJob` for the
 * rules that need no I/O. The union is discriminated on `executor`, not `type`, because that is the job file's
 * field and the executor port's (actors/executor.ts).
 */
import type { Resources } from './capability.ts';
import type { Healthcheck, MaxRestarts, PartType, RestartPolicy } from './ensemble.ts';

/** A job's id: made only by `createJobId` or `parseJobId`. */
export type JobId = string & { readonly __brand: 'JobId' };

/** Ids that can also name a ledger lock or allocation: letters, digits and . _ : @ - only. */
export const JOB_ID_PATTERN = /^[\w.:@-]{1,200}$/;
const JOB_ID = JOB_ID_PATTERN;

/** A new id from at least 16 random bytes, which come in as input (no randomness in here). */
export function createJobId(random: Uint8Array): JobId {
  if (random.byteLength < 16) throw new RangeError(`a job id needs 16 random bytes, got ${random.byteLength}`);
  return Array.from(random.subarray(0, 16), (b) => b.toString(16).padStart(2, '0')).join('') as JobId;
}

/** The id, when `value` is one; undefined otherwise. */
export function parseJobId(value: unknown): JobId | undefined {
  return typeof value === 'string' && JOB_ID.test(value) ? (value as JobId) : undefined;
}

/** A WASI preview1 module, named by its hash; its bytes travel with the deal, separately. */
export interface WasmSpec {
  readonly module: { readonly sha256: string; readonly size: number };
  readonly args: readonly string[];
  readonly env: Readonly<Record<string, string>>;
  /** The module gets a writable `/out` (bounded by `resources.disk`) whose files the requester fetches (`results`). */
  readonly outputs?: boolean;
}

export interface ProcessSpec {
  readonly command: string;
  readonly args: readonly string[];
  readonly env: Readonly<Record<string, string>>;
}

/** Peers the job must run on (empty: any), and peers it must not. Peer ids as strings. */
export interface JobConstraints {
  readonly peers: readonly string[];
  readonly excludePeers: readonly string[];
}

/**
 * What a job is within an ensemble (INTERFACE.md "Ensembles"): absent for a job of its own. The provider runs a
 * part by it: a service until it is stopped, restarts by `restart` within `maxRestarts`, the health check, named
 * ports as `DMS_PORT_<NAME>`, and a part with `dependsOn` held until the requester sends `part.start` with the
 * addresses of the parts it depends on.
 */
export interface PartRole {
  /** The ensemble's job id. */
  readonly ensemble: string;
  readonly name: string;
  readonly type: PartType;
  readonly ports: readonly string[];
  readonly restart: RestartPolicy;
  readonly healthcheck?: Healthcheck;
  readonly dependsOn: readonly string[];
  readonly maxRestarts: MaxRestarts;
}

interface JobSpecBase {
  /** A short name for messages and argv[0]. */
  readonly name: string;
  /** Cores (fractional allowed), memory and disk in bytes, a count of GPUs. */
  readonly resources: Resources;
  /** Wall-clock time the job may run before it is killed. */
  readonly timeoutMs: number;
  readonly constraints: JobConstraints;
  /** Set when the job is a part of an ensemble. */
  readonly part?: PartRole;
  /**
   * An array job: this many instances of the task, each with `DMS_INDEX` (0..count-1) and `DMS_COUNT` in its env,
   * negotiated in bulk (INTERFACE.md "Many tasks"). Absent: one task.
   */
  readonly count?: number;
  /** How long the job (or an array job's unplaced instances) may wait for room before it fails; absent: its placement deadline. */
  readonly queueTimeoutMs?: number;
  /** An array job: how often a failed instance is run again (on another provider where it can) before the job fails. */
  readonly retries?: number;
}

export interface WasmJobSpec extends JobSpecBase {
  readonly executor: 'wasm';
  readonly wasm: WasmSpec;
}

export interface ProcessJobSpec extends JobSpecBase {
  readonly executor: 'process';
  readonly process: ProcessSpec;
}

export type JobSpec = WasmJobSpec | ProcessJobSpec;

const TiB = 2 ** 40;
/** Bounds past which a request is a mistake rather than a big job. */
export const JOB_LIMITS = Object.freeze({
  maxCpu: 1024,
  maxMemory: 64 * TiB,
  maxDisk: 1024 * TiB,
  maxGpus: 64,
  minTimeoutMs: 1000,
  maxTimeoutMs: 7 * 24 * 3600 * 1000,
  maxNameLength: 128,
  maxArgs: 1024,
  maxEnv: 1024,
  maxPeers: 10_000,
  maxCount: 100_000,
  maxRetries: 10,
  maxQueueTimeoutMs: 7 * 24 * 3600 * 1000,
});
/** Default retries of a failed array instance. */
export const DEFAULT_INSTANCE_RETRIES = 2;
/** Default when a job file names no timeout. */
export const DEFAULT_JOB_TIMEOUT_MS = 10 * 60 * 1000;
/** The Go DMS refuses a deployment with less than about a minute to complete. */
export const MIN_DEPLOYMENT_WINDOW_MS = 60 * 1000;

/** What is wrong with a job, by dotted field path (`resources.memory`, `wasm.env.K`, `deadline`). */
export interface JobProblem {
  readonly field: string;
  readonly message: string;
}

/** When the deployment is being made: both epoch milliseconds, from the caller's clock. */
export interface DeploymentWindow {
  readonly now: number;
  readonly deadline: number;
}

/** A libp2p peer id as text (base58btc). */
export const PEER_ID_PATTERN = /^[1-9A-HJ-NP-Za-km-z]{32,128}$/;
const PEER_ID = PEER_ID_PATTERN;
const CONTROL = /[\u0000-\u001f\u007f]/;

/** Every rule that needs no I/O; empty when the job is fine. With a window, also refuses a too-close deadline. */
export function validateJob(job: JobSpec, window?: DeploymentWindow): JobProblem[] {
  const problems: JobProblem[] = [];
  const add = (field: string, message: string) => problems.push({ field, message });
  if (job.name.trim() === '' || job.name.length > JOB_LIMITS.maxNameLength || CONTROL.test(job.name)) {
    add('name', `${JSON.stringify(job.name)} is not a job name; use 1 to ${JOB_LIMITS.maxNameLength} printable characters`);
  }
  problems.push(...resourceProblems(job.resources));
  const { timeoutMs: t } = job;
  if (!Number.isFinite(t) || t < JOB_LIMITS.minTimeoutMs || t > JOB_LIMITS.maxTimeoutMs) {
    add('timeout', `${t} ms is outside 1 s..7 days; give the job a timeout such as "30s" or "2h"`);
  }
  switch (job.executor) {
    case 'wasm': {
      const { sha256, size } = job.wasm.module;
      if (!/^[0-9a-f]{64}$/.test(sha256)) add('wasm.module', `sha256 "${sha256}" is not 64 lowercase hex digits`);
      if (!Number.isSafeInteger(size) || size <= 0) add('wasm.module', `size ${size} is not a positive number of bytes`);
      problems.push(...argvProblems('wasm', job.wasm));
      break;
    }
    case 'process':
      if (job.process.command.trim() === '' || job.process.command.includes('\0')) {
        add('process.command', 'is empty; name the program to run, e.g. "sh"');
      }
      problems.push(...argvProblems('process', job.process));
      break;
    default:
      return assertNever(job);
  }
  problems.push(...constraintProblems(job.constraints));
  problems.push(...arrayProblems(job));
  if (window) problems.push(...windowProblems(window));
  return problems;
}

function resourceProblems(r: Resources): JobProblem[] {
  const problems: JobProblem[] = [];
  const check = (field: keyof Resources, ok: boolean, want: string) => {
    if (!ok) problems.push({ field: `resources.${field}`, message: `${r[field]} is not ${want}` });
  };
  check('cpu', Number.isFinite(r.cpu) && r.cpu > 0 && r.cpu <= JOB_LIMITS.maxCpu, `a number of cores above 0 and at most ${JOB_LIMITS.maxCpu}`);
  check('memory', Number.isSafeInteger(r.memory) && r.memory > 0 && r.memory <= JOB_LIMITS.maxMemory, 'a size above 0 and at most 64 TiB');
  check('disk', Number.isSafeInteger(r.disk) && r.disk >= 0 && r.disk <= JOB_LIMITS.maxDisk, 'a size of at most 1024 TiB');
  check('gpus', Number.isInteger(r.gpus) && r.gpus >= 0 && r.gpus <= JOB_LIMITS.maxGpus, `a whole number of GPUs from 0 to ${JOB_LIMITS.maxGpus}`);
  return problems;
}

function argvProblems(section: 'wasm' | 'process', s: WasmSpec | ProcessSpec): JobProblem[] {
  const problems: JobProblem[] = [];
  if (s.args.length > JOB_LIMITS.maxArgs) problems.push({ field: `${section}.args`, message: `has ${s.args.length} entries; at most ${JOB_LIMITS.maxArgs}` });
  s.args.forEach((a, i) => {
    if (a.includes('\0')) problems.push({ field: `${section}.args.${i}`, message: 'contains a NUL character' });
  });
  const entries = Object.entries(s.env);
  if (entries.length > JOB_LIMITS.maxEnv) problems.push({ field: `${section}.env`, message: `has ${entries.length} variables; at most ${JOB_LIMITS.maxEnv}` });
  for (const [k, v] of entries) {
    if (!/^[^=\0]+$/.test(k)) problems.push({ field: `${section}.env`, message: `${JSON.stringify(k)} is not a variable name (empty, or has = or NUL)` });
    else if (v.includes('\0')) problems.push({ field: `${section}.env.${k}`, message: 'contains a NUL character' });
  }
  return problems;
}

function constraintProblems(c: JobConstraints): JobProblem[] {
  const problems: JobProblem[] = [];
  for (const list of ['peers', 'excludePeers'] as const) {
    const field = `constraints.${list}`;
    if (c[list].length > JOB_LIMITS.maxPeers) problems.push({ field, message: `has ${c[list].length} peers; at most ${JOB_LIMITS.maxPeers}` });
    const bad = c[list].find((p) => !PEER_ID.test(p));
    if (bad !== undefined) problems.push({ field, message: `${JSON.stringify(bad)} is not a peer id (base58, like 12D3KooW…)` });
  }
  const excluded = new Set(c.excludePeers);
  const both = c.peers.filter((p) => excluded.has(p));
  if (both.length > 0) problems.push({ field: 'constraints', message: `${both.join(', ')} is both required (peers) and excluded (excludePeers), so no provider could take the job` });
  return problems;
}

function arrayProblems(job: JobSpec): JobProblem[] {
  const problems: JobProblem[] = [];
  const { count, retries, queueTimeoutMs: q } = job;
  if (count !== undefined) {
    if (!Number.isSafeInteger(count) || count < 1 || count > JOB_LIMITS.maxCount) problems.push({ field: 'count', message: `${count} is not a whole number of instances from 1 to ${JOB_LIMITS.maxCount}` });
    else if (job.part) problems.push({ field: 'count', message: 'an ensemble part cannot be an array job; deploy the array as a job of its own' });
  }
  if (retries !== undefined) {
    if (count === undefined) problems.push({ field: 'retries', message: 'applies to array jobs only; add count: N' });
    else if (!Number.isInteger(retries) || retries < 0 || retries > JOB_LIMITS.maxRetries) problems.push({ field: 'retries', message: `${retries} is not a whole number from 0 to ${JOB_LIMITS.maxRetries}` });
  }
  if (q !== undefined && (!Number.isFinite(q) || q < 0 || q > JOB_LIMITS.maxQueueTimeoutMs)) problems.push({ field: 'queueTimeout', message: `${q} ms is outside 0..7 days` });
  return problems;
}

/** An array job's instance count; 1 for a job of one task. */
export function instanceCount(job: JobSpec): number {
  return job.count ?? 1;
}

function windowProblems({ now, deadline }: DeploymentWindow): JobProblem[] {
  if (!Number.isFinite(now) || !Number.isFinite(deadline)) return [{ field: 'deadline', message: `${deadline} is not a time` }];
  const left = deadline - now;
  if (left >= MIN_DEPLOYMENT_WINDOW_MS) return [];
  const what = left <= 0 ? `passed ${Math.ceil(-left / 1000)} s ago` : `is ${Math.floor(left / 1000)} s away`;
  return [{ field: 'deadline', message: `the deployment's deadline ${what}; it needs at least 1 minute to complete, so give it a later deadline` }];
}

/**
 * What a provider needs to decide on a job: the job without its args and env. A bid request carries only this (it
 * reaches every provider, and each logs it before deciding); the whole job travels in `deal.allocate`, to the one
 * provider chosen.
 */
export function requirementsOf(job: JobSpec): JobSpec {
  if (job.executor === 'wasm') return job.wasm.args.length === 0 && Object.keys(job.wasm.env).length === 0 ? job : { ...job, wasm: { ...job.wasm, args: [], env: {} } };
  // the job spec's process section (its command, args and env), not the host's
  const { process: spec } = job;
  return spec.args.length === 0 && Object.keys(spec.env).length === 0 ? job : { ...job, process: { ...spec, args: [], env: {} } };
}

/** Why `full` is not the job `bid` stands for (the same job but for args and env), or null when it is. */
export function requirementsMismatch(bid: JobSpec, full: JobSpec): string | null {
  const a = requirementsOf(bid);
  const b = requirementsOf(full);
  if (canonical(a) === canonical(b)) return null;
  const fields = (['name', 'executor', 'resources', 'timeoutMs', 'constraints', 'wasm', 'process'] as const).filter((f) => canonical((a as unknown as Record<string, unknown>)[f]) !== canonical((b as unknown as Record<string, unknown>)[f]));
  return `the allocate's job differs from the one bid on in ${fields.join(', ') || 'its fields'} (only args and env may come with the allocate)`;
}

/** JSON with object keys sorted, so two equal jobs compare equal whatever their key order. */
function canonical(v: unknown): string {
  return JSON.stringify(v, (_k, x: unknown) => (x && typeof x === 'object' && !Array.isArray(x) ? Object.fromEntries(Object.entries(x as Record<string, unknown>).sort(([p], [q]) => (p < q ? -1 : 1))) : x));
}

/** `field: message; field: message`, for one-line errors. */
export function describeJobProblems(problems: readonly JobProblem[]): string {
  return problems.map((p) => `${p.field}: ${p.message}`).join('; ');
}

function assertNever(x: never): never {
  throw new Error(`unexpected executor ${JSON.stringify((x as { executor?: unknown }).executor)}`);
}
