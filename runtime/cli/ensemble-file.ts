/**
 * Reads an ensemble file (a job file with `allocations`, INTERFACE.md "Ensembles") into a checked EnsembleSpec and
 * the modules of its WASM parts. It shares the job file's reading, field schemas and module checks
 * (runtime/cli/job-file.ts), and refuses the same way: a JobFileError (exit code 2) naming the file and the field.
 */
import path from 'node:path';
import { z } from 'zod';
import {
  defaultRestart,
  ENSEMBLE_DEFAULTS,
  ENSEMBLE_LIMITS,
  type EnsemblePart,
  type EnsembleSpec,
  type Healthcheck,
  type RestartPolicy,
  PART_TYPES,
  partJob,
  partNameProblem,
  RECOVERY_STRATEGIES,
} from '../../machines/ensemble.ts';
import { HEALTH_DEFAULTS } from '../../machines/health.ts';
import { RESTART_POLICIES } from '../../machines/restart-policy.ts';
import { validateEnsemble } from '../../machines/ensemble.rules.ts';
import { DEFAULT_JOB_TIMEOUT_MS, describeJobProblems } from '../../machines/job.ts';
import { describeIssues, durationSchema } from '../api/input-schemas.ts';
import { jobSizeProblem } from '../deals/deal-schemas.ts';
import { MAX_RUNNABLE_MODULE_BYTES } from '../executors/limits.ts';
import { sha256Hex } from '../executors/wasm-module.ts';
import { JobFileError, jobFileErrors, jobFileFields, type JobFileOptions, loadModule, readBounded, readJobDocument, requireExecutorSection, scalarText } from './job-file.ts';

export interface LoadedEnsemble {
  readonly ensemble: EnsembleSpec;
  /** The WASM parts' modules by sha256 (as their `wasm.module` names them); one entry for parts that share one. */
  readonly modules: ReadonlyMap<string, Uint8Array>;
}

/** An enum whose refusal lists the choices. */
const choice = <const T extends readonly [string, ...string[]]>(values: T) =>
  z.enum(values, { error: (iss) => (iss.input === undefined ? 'is required' : `${JSON.stringify(iss.input)} is not one of ${values.join(', ')}`) });

const names = z.array(z.string()).default([]);
/** restart-policy.ts's list, as the tuple z.enum takes. */
const RESTART_CHOICES = RESTART_POLICIES as unknown as readonly [RestartPolicy, ...RestartPolicy[]];

const healthcheckSchema = z
  .strictObject({
    http: z.strictObject({ port: z.string(), path: z.string() }).optional(),
    command: z.array(scalarText).optional(),
    interval: durationSchema.default(ENSEMBLE_DEFAULTS.healthcheckIntervalMs),
    retries: z.number().default(HEALTH_DEFAULTS.retries),
  })
  .superRefine((h, ctx) => {
    if (h.http && h.command) ctx.addIssue({ code: 'custom', message: 'has both http and command; give one of them' });
    if (!h.http && !h.command) ctx.addIssue({ code: 'custom', message: 'needs http: { port, path } or command: [program, args...]' });
  });

const partSchema = z
  .strictObject({
    type: choice(PART_TYPES).default(ENSEMBLE_DEFAULTS.type),
    ...jobFileFields,
    /** A task's own limit; absent: the ensemble's (validateEnsemble refuses one on a service). */
    timeout: durationSchema.optional(),
    ports: names,
    healthcheck: healthcheckSchema.optional(),
    restart: choice(RESTART_CHOICES).optional(),
    dependsOn: names,
  })
  .superRefine(requireExecutorSection);
type PartFile = z.output<typeof partSchema>;

const { maxRestarts } = ENSEMBLE_DEFAULTS;
const ensembleFileSchema = z.strictObject({
  name: z.string(),
  timeout: durationSchema.default(DEFAULT_JOB_TIMEOUT_MS),
  recovery: choice(RECOVERY_STRATEGIES).default(ENSEMBLE_DEFAULTS.recovery),
  maxRestarts: z
    .strictObject({ count: z.number().default(maxRestarts.count), within: durationSchema.default(maxRestarts.withinMs) })
    .default({ count: maxRestarts.count, within: maxRestarts.withinMs }),
  allocations: z.record(z.string(), partSchema),
  constraints: jobFileFields.constraints,
});
type EnsembleFile = z.output<typeof ensembleFileSchema>;

type ModuleRef = { readonly sha256: string; readonly size: number };

/** Reads, parses and checks the ensemble file at `file`, and the modules its WASM parts name. Rejects with a JobFileError. */
export async function loadEnsembleFile(file: string, options: JobFileOptions = {}): Promise<LoadedEnsemble> {
  const readFile = options.readFile ?? readBounded;
  const maxModuleBytes = options.maxModuleBytes ?? MAX_RUNNABLE_MODULE_BYTES;
  const doc = await readJobDocument(file, readFile);
  refuseMisplaced(file, doc);
  const parsed = ensembleFileSchema.safeParse(doc, { error: jobFileErrors });
  if (!parsed.success) throw new JobFileError(`${file}: ${describeIssues(parsed.error)}`, file, parsed.error.issues[0]?.path.join('.'));
  const f = parsed.data;
  // Refuse what the file itself gets wrong before reading any module (a stand-in module passes every rule).
  checked(file, specOf(f, () => ({ sha256: '0'.repeat(64), size: 1 })));
  const modules = new Map<string, Uint8Array>();
  const refs = new Map<string, ModuleRef>();
  for (const [name, part] of Object.entries(f.allocations)) {
    if (part.executor !== 'wasm') continue;
    const key = moduleKey(file, part.wasm!);
    if (refs.has(key)) continue;
    const bytes = await loadModule(file, part.wasm!, readFile, maxModuleBytes, `allocations.${name}.`);
    const ref = { sha256: sha256Hex(bytes), size: bytes.byteLength };
    refs.set(key, ref);
    modules.set(ref.sha256, bytes);
  }
  return { ensemble: checked(file, specOf(f, (p) => refs.get(moduleKey(file, p.wasm!))!)), modules };
}

/** Parts naming the same module file (and the same pin) share one read. */
function moduleKey(file: string, wasm: { module: string; sha256?: string | undefined }): string {
  return `${path.resolve(path.dirname(path.resolve(file)), wasm.module)}\0${wasm.sha256 ?? ''}`;
}

/**
 * Before the schema: part names are checked as keys (zod would drop `__proto__` and JavaScript reorders
 * names of digits), their number bounded, and one-part job fields at the top level get a hint.
 */
function refuseMisplaced(file: string, doc: object): void {
  const refuse = (field: string, message: string) => {
    throw new JobFileError(`${file}: ${field}: ${message}`, file, field);
  };
  for (const field of ['executor', 'wasm', 'process', 'resources']) {
    if (field in doc) refuse(field, `belongs to each part in an ensemble; move it under allocations.<part>`);
  }
  const allocations: unknown = (doc as { allocations?: unknown }).allocations;
  if (typeof allocations !== 'object' || allocations === null || Array.isArray(allocations)) return;
  const keys = Object.keys(allocations);
  if (keys.length > ENSEMBLE_LIMITS.maxParts) refuse('allocations', `has ${keys.length} parts; an ensemble has at most ${ENSEMBLE_LIMITS.maxParts}`);
  for (const key of keys) {
    const bad = partNameProblem(key);
    if (bad) refuse(`allocations.${key}`, bad);
  }
}

function specOf(f: EnsembleFile, moduleOf: (p: PartFile) => ModuleRef): EnsembleSpec {
  const parts = Object.entries(f.allocations).map(([name, p]) => partOf(name, p, moduleOf));
  const maxRestarts = { count: f.maxRestarts.count, withinMs: f.maxRestarts.within };
  return { name: f.name, timeoutMs: f.timeout, recovery: f.recovery, maxRestarts, constraints: f.constraints, parts };
}

function partOf(name: string, p: PartFile, moduleOf: (p: PartFile) => ModuleRef): EnsemblePart {
  const common = {
    name,
    type: p.type,
    resources: p.resources,
    ...(p.timeout !== undefined && { timeoutMs: p.timeout }),
    ports: p.ports,
    ...(p.healthcheck && { healthcheck: healthcheckOf(p.healthcheck) }),
    restart: p.restart ?? defaultRestart(p.type),
    dependsOn: p.dependsOn,
    constraints: p.constraints,
  };
  if (p.executor === 'process') return { ...common, executor: 'process', process: { command: p.process!.command, args: p.process!.args, env: p.process!.env } };
  return { ...common, executor: 'wasm', wasm: { module: moduleOf(p), args: p.wasm!.args, env: p.wasm!.env, ...(p.wasm!.outputs ? { outputs: true } : {}) } };
}

function healthcheckOf(h: NonNullable<PartFile['healthcheck']>): Healthcheck {
  const timing = { intervalMs: h.interval, retries: h.retries };
  return h.http ? { http: { port: h.http.port, path: h.http.path }, ...timing } : { command: h.command!, ...timing };
}

/** The ensemble's rules, then each part's size as a job (the deals' budget, `jobSizeProblem`). */
function checked(file: string, spec: EnsembleSpec): EnsembleSpec {
  const problems = validateEnsemble(spec);
  if (problems.length === 0) {
    for (const part of spec.parts) {
      const tooBig = jobSizeProblem(partJob(spec, part));
      if (tooBig) problems.push({ field: `allocations.${part.name}.${tooBig.field}`, message: tooBig.message });
    }
  }
  if (problems.length > 0) throw new JobFileError(`${file}: ${describeJobProblems(problems)}`, file, problems[0]!.field);
  return spec;
}
