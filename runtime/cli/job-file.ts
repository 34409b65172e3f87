/**
 * Reads a job file (JSON or YAML, told apart by content) into a checked JobSpec, and for a WASM job its module's
 * bytes. Everything wrong is refused here, before anything is sent, with a JobFileError naming the file and field.
 */
import { open } from 'node:fs/promises';
import path from 'node:path';
import { parseDocument } from 'yaml';
import { z } from 'zod';
import { DEFAULT_JOB_TIMEOUT_MS, describeJobProblems, type JobSpec, validateJob } from '../../machines/job.ts';
import { KNOWN_EXECUTORS } from '../../machines/onboarding.ts';
import { formatBytes, MAX_RUNNABLE_MODULE_BYTES } from '../executors/limits.ts';
import { loadCheckedModule, sha256Hex } from '../executors/wasm-module.ts';
import { describeIssues, durationSchema, sizeSchema } from '../api/input-schemas.ts';
import { jobSizeProblem } from '../deals/deal-schemas.ts';

/** A job file that cannot be read, parsed or accepted. Bad input: ends a command with exit code 2. */
export class JobFileError extends Error {
  override name = 'JobFileError';
  readonly exitCode = 2;
  /** `file` as the caller gave it; `field` the dotted path of the first wrong field, when one is to blame. */
  constructor(message: string, readonly file: string, readonly field?: string) {
    super(message);
  }
}

/** A job file this large is a mistake (a module or a log given by accident). */
export const MAX_JOB_FILE_BYTES = 2 ** 20;

export interface LoadedJob {
  readonly job: JobSpec;
  /** The WASM module's bytes, checked against `job.wasm.module`; absent for other executors. */
  readonly module?: Uint8Array;
}

export interface JobFileOptions {
  /** Largest module accepted; the WASM executor's limit by default. */
  readonly maxModuleBytes?: number;
  /** Reads a whole regular file, refusing one over `maxBytes` with a FileTooLargeError; for tests. */
  readonly readFile?: (file: string, maxBytes: number) => Promise<Uint8Array>;
}

/** Thrown by a `readFile` that refuses a file over its limit. */
export class FileTooLargeError extends Error {
  override name = 'FileTooLargeError';
  constructor(readonly size: number) {
    super(`the file is ${size} bytes`);
  }
}

/** YAML writes `K: 1` and `- 2` unquoted: scalars are taken as the strings they read as. */
export const scalarText = z.union([z.string(), z.number(), z.boolean()]).transform(String);
const text = scalarText;
const args = z.array(text).default([]);
const env = z.record(z.string(), text).default({});
const peers = z.array(z.string()).default([]);

/** The fields a job file and each part of an ensemble file share, as the job file writes them. */
export const jobFileFields = {
  executor: z.enum(KNOWN_EXECUTORS, {
    error: (iss) => (iss.input === undefined ? 'is required' : `unknown executor ${JSON.stringify(iss.input)}; use ${KNOWN_EXECUTORS.map((e) => `"${e}"`).join(' or ')}`),
  }),
  /** `module` is a path relative to the job file; `sha256`, when given, pins the module's content. */
  wasm: z.strictObject({ module: z.string().min(1, 'is empty; give the path of a .wasm file'), sha256: z.string().optional(), args, env, outputs: z.boolean({ error: (iss) => `must be true or false, not ${JSON.stringify(iss.input)}` }).optional() }).optional(),
  // `outputs` is taken here only to be refused by requireExecutorSection with a message that says why
  process: z.strictObject({ command: z.string(), args, env, outputs: z.unknown().optional() }).optional(),
  resources: z.strictObject({ cpu: z.number(), memory: sizeSchema, disk: sizeSchema.default(0), gpus: z.number().default(0) }),
  constraints: z.strictObject({ peers, excludePeers: peers }).default({ peers: [], excludePeers: [] }),
};

/** The section the executor needs is there (`wasm` for "wasm", `process` for "process"); for a superRefine. */
export function requireExecutorSection(j: { executor: string; wasm?: unknown; process?: unknown }, ctx: z.RefinementCtx): void {
  // result files are a WASM job's /out: a process job asking for them is told so, not that the field is unknown
  if (j.executor === 'process' && typeof j.process === 'object' && j.process !== null && 'outputs' in j.process) {
    ctx.addIssue({ code: 'custom', path: ['process', 'outputs'], message: 'result files (/out) are for WASM jobs only; a process job writes its results elsewhere, or use executor "wasm" with wasm.outputs: true' });
  }
  if (j.executor === 'process' && (j.wasm as { outputs?: unknown } | undefined)?.outputs !== undefined) {
    ctx.addIssue({ code: 'custom', path: ['wasm', 'outputs'], message: 'is for WASM jobs only, and this job\'s executor is "process"' });
  }
  if (j.executor === 'wasm' && !j.wasm) ctx.addIssue({ code: 'custom', path: ['wasm', 'module'], message: 'is required for executor "wasm"; give the path of a .wasm file' });
  if (j.executor === 'process' && !j.process) ctx.addIssue({ code: 'custom', path: ['process', 'command'], message: 'is required for executor "process"; name the program to run' });
}

const jobFileSchema = z
  .strictObject({
    name: z.string(),
    executor: jobFileFields.executor,
    wasm: jobFileFields.wasm,
    process: jobFileFields.process,
    resources: jobFileFields.resources,
    timeout: durationSchema.default(DEFAULT_JOB_TIMEOUT_MS),
    constraints: jobFileFields.constraints,
    /** An array job: this many instances (INTERFACE.md "Many tasks"). */
    count: z.number().optional(),
    /** How long a job finding no room waits for it. */
    queueTimeout: durationSchema.optional(),
    /** An array job: runs of a failed instance before the job fails. */
    retries: z.number().optional(),
  })
  .superRefine(requireExecutorSection);
type JobFile = z.output<typeof jobFileSchema>;

/** Messages for zod's generic issues, in the words of a job file. */
export const jobFileErrors: z.core.$ZodErrorMap = (iss) => {
  if ((iss.code === 'invalid_type' || iss.code === 'invalid_union') && iss.input === undefined) return 'is required';
  if (iss.code === 'invalid_type') return `expected ${iss.expected}, got ${JSON.stringify(iss.input)}`;
  if (iss.code === 'invalid_union') {
    const expected = [...new Set(iss.errors.flat().flatMap((i) => (i.code === 'invalid_type' ? [i.expected] : [])))];
    return `expected ${expected.join(' or ') || 'something else'}, got ${JSON.stringify(iss.input)}`;
  }
  if (iss.code === 'unrecognized_keys') return `unknown field${iss.keys.length > 1 ? 's' : ''} ${iss.keys.map((k) => JSON.stringify(k)).join(', ')}; check the spelling`;
  return undefined;
};

/** Reads, parses and checks the job file at `file`, and the module a WASM job names. Rejects with a JobFileError. */
export async function loadJobFile(file: string, options: JobFileOptions = {}): Promise<LoadedJob> {
  const readFile = options.readFile ?? readBounded;
  const maxModuleBytes = options.maxModuleBytes ?? MAX_RUNNABLE_MODULE_BYTES;
  const parsed = jobFileSchema.safeParse(await readJobDocument(file, readFile), { error: jobFileErrors });
  if (!parsed.success) throw new JobFileError(`${file}: ${describeIssues(parsed.error)}`, file, parsed.error.issues[0]?.path.join('.'));
  const f = parsed.data;
  if (f.executor === 'process') return { job: checked(file, specOf(f, undefined)) };
  // Refuse what the file itself gets wrong before reading the module (a stand-in module passes every rule).
  checked(file, specOf(f, { sha256: '0'.repeat(64), size: 1 }));
  const module = await loadModule(file, f.wasm!, readFile, maxModuleBytes);
  return { job: checked(file, specOf(f, { sha256: sha256Hex(module), size: module.byteLength })), module };
}

function specOf(f: JobFile, module: { sha256: string; size: number } | undefined): JobSpec {
  const base = {
    name: f.name,
    resources: f.resources,
    timeoutMs: f.timeout,
    constraints: f.constraints,
    ...(f.count !== undefined ? { count: f.count } : {}),
    ...(f.queueTimeout !== undefined ? { queueTimeoutMs: f.queueTimeout } : {}),
    ...(f.retries !== undefined ? { retries: f.retries } : {}),
  };
  if (f.executor === 'process') return { ...base, executor: 'process', process: { command: f.process!.command, args: f.process!.args, env: f.process!.env } };
  return { ...base, executor: 'wasm', wasm: { module: module!, args: f.wasm!.args, env: f.wasm!.env, ...(f.wasm!.outputs ? { outputs: true } : {}) } };
}

/** The job's rules, then its size: a job a bid request could not carry is refused here, not by every provider. */
function checked(file: string, job: JobSpec): JobSpec {
  const problems = validateJob(job);
  const tooBig = problems.length === 0 ? jobSizeProblem(job) : undefined;
  if (tooBig) problems.push(tooBig);
  if (problems.length > 0) throw new JobFileError(`${file}: ${describeJobProblems(problems)}`, file, problems[0]!.field);
  return job;
}

/** Reads the job file at `file` (at most MAX_JOB_FILE_BYTES) and parses it as JSON or YAML into an object. */
export async function readJobDocument(file: string, readFile: Required<JobFileOptions>['readFile'] = readBounded): Promise<object> {
  return parseJobText(await readOrRefuse(readFile, file, MAX_JOB_FILE_BYTES, file, undefined, 'the job file'), file);
}

function parseJobText(raw: Uint8Array, file: string): object {
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(raw);
  } catch {
    throw new JobFileError(`${file}: is not UTF-8 text; a job file is JSON or YAML`, file);
  }
  if (text.trim() === '') throw new JobFileError(`${file}: is empty; write the job as JSON or YAML (see INTERFACE.md "Job files")`, file);
  let value: unknown;
  if (/^\s*[{[]/.test(text)) {
    try {
      value = JSON.parse(text);
    } catch (err) {
      // `{name: x}` is YAML flow style, not JSON: try YAML before blaming the JSON.
      value = parseYaml(text, file, `is not valid JSON: ${(err as Error).message}`);
    }
  } else {
    value = parseYaml(text, file);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new JobFileError(`${file}: is not a job: expected an object with name, executor and resources, got ${Array.isArray(value) ? 'a list' : JSON.stringify(value)}`, file);
  }
  return value;
}

function parseYaml(text: string, file: string, jsonError?: string): unknown {
  const doc = parseDocument(text, { uniqueKeys: true });
  const [first] = doc.errors;
  if (first) {
    // The first line says what and where ("… at line 4, column 1:"); the rest is a multi-line excerpt.
    const what = first.message.split('\n')[0]!.replace(/:$/, '');
    throw new JobFileError(`${file}: ${jsonError ?? `is not valid YAML: ${what}`}`, file);
  }
  try {
    return doc.toJS({ maxAliasCount: 100 });
  } catch (err) {
    throw new JobFileError(`${file}: is not a usable YAML document: ${(err as Error).message}`, file);
  }
}

/**
 * Reads the module `wasm.module` names (relative to the job file), checks it is WASM within `maxBytes` and as
 * pinned; refusals name `${prefix}wasm.module` or `${prefix}wasm.sha256` (prefix: "" in a job file, the part's
 * path with a trailing dot in an ensemble file).
 */
export async function loadModule(
  file: string,
  wasm: NonNullable<JobFile['wasm']>,
  readFile: Required<JobFileOptions>['readFile'],
  maxBytes: number,
  prefix = '',
): Promise<Uint8Array> {
  const modulePath = path.resolve(path.dirname(path.resolve(file)), wasm.module);
  const bytes = await readOrRefuse(readFile, modulePath, maxBytes, file, `${prefix}wasm.module`, `the module ${wasm.module}`);
  try {
    return await loadCheckedModule({ module: { bytes }, sha256: wasm.sha256 ?? sha256Hex(bytes) }, maxBytes);
  } catch (err) {
    const field = prefix + ((err as Error).name === 'ModuleHashMismatchError' || (err as Error).name === 'InvalidJobError' ? 'wasm.sha256' : 'wasm.module');
    throw new JobFileError(`${file}: ${field}: ${wasm.module}: ${(err as Error).message}`, file, field);
  }
}

async function readOrRefuse(
  readFile: Required<JobFileOptions>['readFile'],
  target: string,
  maxBytes: number,
  file: string,
  field: string | undefined,
  what: string,
): Promise<Uint8Array> {
  const where = field ? `${file}: ${field}` : file;
  try {
    return await readFile(target, maxBytes);
  } catch (err) {
    const e = err as Error & { code?: string; size?: number };
    if (e.name === 'FileTooLargeError') throw new JobFileError(`${where}: ${what} is ${formatBytes(e.size ?? 0)}, over the limit of ${formatBytes(maxBytes)}`, file, field);
    const why = e.code === 'ENOENT' ? 'no such file' : e.code === 'EISDIR' ? 'it is a directory' : e.message;
    const hint = field ? `; the path is relative to the job file (resolved to ${target})` : '';
    throw new JobFileError(`${where}: cannot read ${what}: ${why}${hint}`, file, field);
  }
}

/** Reads a whole regular file, refusing it unread when it is over `maxBytes`: the default `readFile`. */
export async function readBounded(file: string, maxBytes: number): Promise<Uint8Array> {
  const handle = await open(file, 'r');
  try {
    const stats = await handle.stat();
    if (stats.isDirectory()) throw Object.assign(new Error('it is a directory'), { code: 'EISDIR' });
    if (!stats.isFile()) throw new Error('it is not a regular file');
    if (stats.size > maxBytes) throw new FileTooLargeError(stats.size);
    return new Uint8Array(await handle.readFile());
  } finally {
    await handle.close();
  }
}
