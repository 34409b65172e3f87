/**
 * Payload schemas of every deal message (machines/deal.wire.ts, `DealWireMessage`, and at the end the output
 * and query requests), one per type, checked at the network edge. Each payload is the message without `type`
 * (the envelope carries it). Strict and bounded: an unknown field, a string past its length or a number out of range is refused with the field named. A job is
 * also held to every rule of `validateJob`, so the deal machines only ever see jobs they could run, and to
 * MAX_JOB_BYTES as a whole (MAX_BID_JOB_BYTES in a bid request, which carries it without args and env).
 */
import { z } from 'zod';
import { ARRAY_DEFAULTS } from '../../machines/deal.constants.ts';
import type { AllocationState, DealWireMessage, DeclineCode } from '../../machines/deal.wire.ts';
import { ENSEMBLE_LIMITS, PART_NAME_PATTERN, PORT_NAME_PATTERN } from '../../machines/ensemble.ts';
import { JOB_ID_PATTERN, JOB_LIMITS, type JobProblem, type JobSpec, PEER_ID_PATTERN, requirementsOf, validateJob } from '../../machines/job.ts';
import { encodedSize } from './encoded-size.ts';
import type { OutputPage } from './output-page.ts';

/** The most module bytes `deal.allocate` carries: what fits in a 1 MiB message with the envelope around it. */
export const MAX_DEAL_MODULE_BYTES = 900 * 1024;
/**
 * The most a whole job may take, DAG-CBOR encoded: everything the job says (name, args, env, command, resources,
 * constraints, the module's hash and size). It travels whole only in `deal.allocate`, to the chosen provider.
 */
export const MAX_JOB_BYTES = 64 * 1024;
/**
 * The most the job in a `bid.request` may take: the job without its args and env (`requirementsOf`). A bid request
 * reaches every provider the requester reaches, and each logs it before deciding, so it carries only what a
 * provider decides on; the module's bytes and the args and env travel in `deal.allocate`.
 */
export const MAX_BID_JOB_BYTES = 16 * 1024;

/** The job is over MAX_JOB_BYTES, or what its bid request carries is over MAX_BID_JOB_BYTES: names the largest part. */
export function jobSizeProblem(job: JobSpec): JobProblem | undefined {
  const section = job.executor === 'wasm' ? job.wasm : job.process;
  const common: [string, unknown][] = [
    ['name', job.name],
    ['constraints.peers', job.constraints.peers],
    ['constraints.excludePeers', job.constraints.excludePeers],
    ...(job.executor === 'process' ? ([['process.command', job.process.command]] as [string, unknown][]) : []),
  ];
  const largest = (parts: [string, unknown][]) => parts.map(([f, v]) => [f, encodedSize(v)] as const).reduce((a, b) => (b[1] > a[1] ? b : a));
  const size = encodedSize(job);
  if (size > MAX_JOB_BYTES) {
    const [field, bytes] = largest([...common, [`${job.executor}.args`, section.args], [`${job.executor}.env`, section.env]]);
    const instead = job.executor === 'wasm' ? 'put large inputs in the module' : 'pass large inputs some other way than args and env';
    return { field, message: `takes ${bytes} of the job's ${size} bytes; a job is at most ${MAX_JOB_BYTES} bytes (64 KiB, DAG-CBOR): ${instead}` };
  }
  const asked = encodedSize(requirementsOf(job));
  if (asked > MAX_BID_JOB_BYTES) {
    const [field, bytes] = largest(common);
    return { field, message: `takes ${bytes} of the ${asked} bytes a bid request carries to every provider it reaches (the job without its args and env); at most ${MAX_BID_JOB_BYTES} bytes (16 KiB, DAG-CBOR)` };
  }
  return undefined;
}
/** Longest free text (reasons, messages): one line for a person, not a log. */
export const MAX_TEXT = 2048;
const MAX_ARG = 8192;
const MAX_ENV_NAME = 256;
const MAX_COMMAND = 4096;

const DECLINE_CODES = ['not-onboarded', 'excluded', 'not-chosen', 'executor', 'privileged', 'insufficient', 'too-large', 'preferences', 'lock-limit', 'disk-full', 'unauthorized', 'duplicate', 'expired', 'invalid'] as const;
const ALLOCATION_STATES = ['pending', 'starting', 'running', 'stopping', 'completed', 'failed', 'terminated'] as const;
// Compile-time: the lists name every member of the contract's unions (a code added there must be added here).
type Missing<U, L extends readonly unknown[]> = Exclude<U, L[number]>;
const complete: [Missing<DeclineCode, typeof DECLINE_CODES>, Missing<AllocationState, typeof ALLOCATION_STATES>] extends [never, never] ? true : false = true;
void complete;

const safeInt = z.number().int().nonnegative().max(Number.MAX_SAFE_INTEGER);
/** ms since the epoch, or a count of ms. */
const time = safeInt;
const nonce = safeInt;
export const dealIdSchema = z.string().regex(JOB_ID_PATTERN, 'is not a deal id (1 to 200 of letters, digits and . _ : @ -)');
const dealId = dealIdSchema;
/** An allocation id is a deal key (`${dealId}.${nonce}@${requester}`): the deal id's characters, longer. */
export const allocationIdSchema = z.string().regex(/^[\w.:@-]{1,400}$/, 'is not an allocation id (1 to 400 of letters, digits and . _ : @ -)');
const allocationId = allocationIdSchema;
const peer = z.string().regex(PEER_ID_PATTERN, 'is not a peer id (base58, like 12D3KooW…)');
const text = z.string().max(MAX_TEXT);
const amount = z.number().nonnegative().max(Number.MAX_SAFE_INTEGER);

const resources = z.strictObject({
  cpu: z.number().nonnegative().max(JOB_LIMITS.maxCpu),
  memory: safeInt.max(JOB_LIMITS.maxMemory),
  disk: safeInt.max(JOB_LIMITS.maxDisk),
  gpus: safeInt.max(JOB_LIMITS.maxGpus),
});

const args = z.array(z.string().max(MAX_ARG)).max(JOB_LIMITS.maxArgs);
const env = z
  .record(z.string().min(1).max(MAX_ENV_NAME), z.string().max(MAX_ARG))
  .refine((e) => Object.keys(e).length <= JOB_LIMITS.maxEnv, `has more than ${JOB_LIMITS.maxEnv} variables`);
const peers = z.array(peer).max(JOB_LIMITS.maxPeers);

const partName = z.string().regex(PART_NAME_PATTERN, 'is not a part name (a letter, then letters, digits, - and _)').max(ENSEMBLE_LIMITS.maxNameLength);
const portName = z.string().regex(PORT_NAME_PATTERN, 'is not a port name (letters, digits, - and _)').max(ENSEMBLE_LIMITS.maxNameLength);
const healthTiming = {
  intervalMs: safeInt.min(ENSEMBLE_LIMITS.minHealthcheckIntervalMs).max(ENSEMBLE_LIMITS.maxHealthcheckIntervalMs),
  retries: safeInt.max(ENSEMBLE_LIMITS.maxHealthcheckRetries),
};
const healthcheck = z.union([
  z.strictObject({ ...healthTiming, http: z.strictObject({ port: portName, path: z.string().startsWith('/').max(ENSEMBLE_LIMITS.maxHealthcheckPathLength) }) }),
  z.strictObject({ ...healthTiming, command: z.array(z.string().max(MAX_ARG)).min(1).max(JOB_LIMITS.maxArgs) }),
]);
/** A job's role in an ensemble (machines/job.ts PartRole). */
const partRole = z.strictObject({
  ensemble: dealIdSchema,
  name: partName,
  type: z.enum(['service', 'task']),
  ports: z.array(portName).max(ENSEMBLE_LIMITS.maxPortsPerPart),
  restart: z.enum(['never', 'on-failure', 'always']),
  healthcheck: healthcheck.optional(),
  dependsOn: z.array(partName).max(ENSEMBLE_LIMITS.maxParts),
  maxRestarts: z.strictObject({ count: safeInt.max(ENSEMBLE_LIMITS.maxRestartCount), withinMs: safeInt.min(1).max(JOB_LIMITS.maxTimeoutMs) }),
});

const jobBase = {
  name: z.string().min(1).max(JOB_LIMITS.maxNameLength),
  resources,
  timeoutMs: safeInt.max(JOB_LIMITS.maxTimeoutMs),
  constraints: z.strictObject({ peers, excludePeers: peers }),
  part: partRole.optional(),
  count: safeInt.min(1).max(JOB_LIMITS.maxCount).optional(),
  queueTimeoutMs: safeInt.max(JOB_LIMITS.maxQueueTimeoutMs).optional(),
  retries: safeInt.max(JOB_LIMITS.maxRetries).optional(),
};
const wasmJob = z.strictObject({
  ...jobBase,
  executor: z.literal('wasm'),
  wasm: z.strictObject({
    // A module bigger than deal.allocate can carry could never be placed.
    module: z.strictObject({ sha256: z.string().regex(/^[0-9a-f]{64}$/, 'is not 64 lowercase hex digits'), size: safeInt.min(1).max(MAX_DEAL_MODULE_BYTES) }),
    args,
    env,
    outputs: z.boolean().optional(),
  }),
});
const processJob = z.strictObject({
  ...jobBase,
  executor: z.literal('process'),
  process: z.strictObject({ command: z.string().min(1).max(MAX_COMMAND), args, env }),
});

/** validateJob names `timeout` as the job file does; on the wire the field is `timeoutMs`. */
function jobPath(field: string): string[] {
  const [head = '', ...rest] = field.split('.');
  return [head === 'timeout' ? 'timeoutMs' : head, ...rest];
}

// Piped, so the rules run only on a job whose shape is already right (validateJob trusts the JobSpec type).
const jobShape = z.discriminatedUnion('executor', [wasmJob, processJob]);
export const jobSchema: z.ZodType<JobSpec> = jobShape.pipe(
  z.custom<z.output<typeof jobShape>>().superRefine((job, ctx) => {
    const problems = validateJob(job);
    const tooBig = problems.length === 0 ? jobSizeProblem(job) : undefined;
    for (const p of tooBig ? [tooBig] : problems) ctx.addIssue({ code: 'custom', path: jobPath(p.field), message: p.message });
  }),
);

const partBase = {
  name: partName,
  type: z.enum(['service', 'task']),
  resources,
  timeoutMs: safeInt.max(JOB_LIMITS.maxTimeoutMs).optional(),
  ports: z.array(portName).max(ENSEMBLE_LIMITS.maxPortsPerPart),
  healthcheck: healthcheck.optional(),
  restart: z.enum(['never', 'on-failure', 'always']),
  dependsOn: z.array(partName).max(ENSEMBLE_LIMITS.maxParts),
  constraints: z.strictObject({ peers, excludePeers: peers }),
};
const ensemblePart = z.discriminatedUnion('executor', [
  z.strictObject({ ...partBase, executor: z.literal('wasm'), wasm: wasmJob.shape.wasm }),
  z.strictObject({ ...partBase, executor: z.literal('process'), process: processJob.shape.process }),
]);
/** An ensemble as the API takes it (machines/ensemble.ts EnsembleSpec); its rules are validateEnsemble's. */
export const ensembleSpecSchema = z.strictObject({
  name: z.string().min(1).max(JOB_LIMITS.maxNameLength),
  timeoutMs: safeInt.max(JOB_LIMITS.maxTimeoutMs),
  recovery: z.enum(['one_for_one', 'one_for_all', 'rest_for_one']),
  maxRestarts: z.strictObject({ count: safeInt.max(ENSEMBLE_LIMITS.maxRestartCount), withinMs: safeInt.min(1).max(JOB_LIMITS.maxTimeoutMs) }),
  constraints: z.strictObject({ peers, excludePeers: peers }),
  parts: z.array(ensemblePart).min(1).max(ENSEMBLE_LIMITS.maxParts),
});

/** The job in a bid request: what a provider decides on, small (MAX_BID_JOB_BYTES whole). */
const bidJobSchema: z.ZodType<JobSpec> = jobSchema.refine((job) => encodedSize(job) <= MAX_BID_JOB_BYTES, `is over ${MAX_BID_JOB_BYTES} bytes (DAG-CBOR); a bid request carries the job without its args and env`);

const deal = { dealId, nonce };
const members = z.array(z.strictObject({ part: partName, provider: peer })).max(ENSEMBLE_LIMITS.maxParts);
const bid = z.strictObject({ ...deal, provider: peer, price: amount, score: amount, resources, expiresAt: time, slots: safeInt.min(1).max(ARRAY_DEFAULTS.maxSlotsPerBid).optional() });
/** The most instances one `batch.assign`, `deal.allocate` or `batch.progress` names. */
export const MAX_BATCH_INDEXES = 4096;
const indexes = z.array(safeInt.max(JOB_LIMITS.maxCount - 1)).max(MAX_BATCH_INDEXES);
const moduleBytes = z
  .instanceof(Uint8Array, { message: 'is not bytes' })
  .refine((b) => b.byteLength > 0 && b.byteLength <= MAX_DEAL_MODULE_BYTES, `must be 1 byte to ${MAX_DEAL_MODULE_BYTES / 1024} KiB of DAG-CBOR`);

/**
 * The most capability tokens a bid request carries, and the most characters of each: runtime/trust's
 * MAX_GRANTS_PER_REQUEST and MAX_TOKEN_CHARS (32 KiB in all), not imported, as these schemas load without the token
 * codec (its DAG-CBOR is ESM only); test/runtime/deals/deal-grants.test.ts checks they agree.
 */
export const MAX_BID_GRANTS = 4;
export const MAX_BID_GRANT_CHARS = 8 * 1024;
const grants = z.array(z.string().min(1).max(MAX_BID_GRANT_CHARS).regex(/^[\w-]+$/, 'is not a capability token (base64url)')).min(1).max(MAX_BID_GRANTS);

/** The most listen addresses a broadcast bid request carries for the answer. */
export const MAX_REPLY_ADDRS = 8;
/** A full multiaddr over websockets, ending in the sender's /p2p/ id (checked against the signer where used). */
const replyAddr = z.string().max(256).regex(/^\/(ip4|ip6|dns|dns4|dns6)\/[^/]+\/tcp\/\d{1,5}\/(ws|wss|tls\/ws)\/p2p\/\w+$/, 'is not a /ws or /wss multiaddr ending in /p2p/<peer id>');

type Payload<T extends DealWireMessage['type']> = Omit<Extract<DealWireMessage, { type: T }>, 'type'>;
/**
 * A broadcast `bid.request` also carries the requester's listen addresses, so a provider the gossip mesh reached
 * (not a neighbour) can send its answer directly; the runtime takes them off before the Node machine.
 */
export type BidRequestPayload = Payload<'bid.request'> & { readonly replyAddrs?: readonly string[] };
/** `deal.allocate` on the wire also carries the WASM module's bytes, which the runtime takes off before the machine. */
export type DealAllocatePayload = Payload<'deal.allocate'> & { readonly module?: Uint8Array };

/** The payload of each deal message as its schema below parses it. */
export type DealPayloads = { [T in DealWireMessage['type']]: T extends 'deal.allocate' ? DealAllocatePayload : T extends 'bid.request' ? BidRequestPayload : Payload<T> };

// Typed per message, so a schema that drifts from the contract fails to compile; a Record, so none is missing.
const schemas: { [T in keyof DealPayloads]: z.ZodType<DealPayloads[T]> } = {
  'bid.request': z.strictObject({ ...deal, job: bidJobSchema, expiresAt: time, count: safeInt.min(1).max(JOB_LIMITS.maxCount).optional(), replyAddrs: z.array(replyAddr).max(MAX_REPLY_ADDRS).optional(), grants: grants.optional() }),
  'bid.submit': z.strictObject({ bid }),
  'bid.decline': z.strictObject({ ...deal, code: z.enum(DECLINE_CODES), reason: text }),
  'deal.commit': z.strictObject(deal),
  'deal.committed': z.strictObject(deal),
  'deal.allocate': z.strictObject({ ...deal, job: jobSchema.optional(), members: members.optional(), module: moduleBytes.optional(), assign: indexes.optional() }),
  'batch.assign': z.strictObject({ ...deal, indexes }),
  'batch.release': z.strictObject(deal),
  'batch.progress': z.strictObject({
    ...deal,
    allocationId,
    results: z.array(z.strictObject({ index: safeInt.max(JOB_LIMITS.maxCount - 1), state: z.enum(['completed', 'failed', 'lost']), exitCode: z.number().int().min(-(2 ** 31)).max(2 ** 32 - 1).nullable(), message: text })).max(MAX_BATCH_INDEXES),
    running: safeInt.max(MAX_BATCH_INDEXES),
  }),
  'deal.allocated': z.strictObject({ ...deal, allocationId }),
  'deal.refused': z.strictObject({ ...deal, step: z.enum(['commit', 'allocate']), reason: text }),
  'deal.revert': z.strictObject({ ...deal, reason: text }),
  'deal.cancel': z.strictObject(deal),
  'part.start': z.strictObject({ ...deal, addrs: z.array(z.strictObject({ part: partName, port: portName, provider: peer })).max(ENSEMBLE_LIMITS.maxParts * ENSEMBLE_LIMITS.maxPortsPerPart), members }),
  'allocation.status': z.strictObject({
    ...deal,
    allocationId,
    state: z.enum(ALLOCATION_STATES),
    exitCode: z.number().int().min(-(2 ** 31)).max(2 ** 32 - 1).nullable(),
    message: text,
    healthy: z.boolean().optional(),
    restarts: safeInt.optional(),
  }),
};

/** One schema per deal message type, for MessageRouter.addSchemas. */
export const dealPayloadSchemas: ReadonlyMap<string, z.ZodType> = new Map<string, z.ZodType>(Object.entries(schemas));

/** Requester -> provider, inbox `provider`: the state of an allocation of this requester's. */
export interface AllocationQueryPayload {
  readonly dealId: string;
  readonly nonce: number;
  readonly allocationId: string;
}
/** Requester -> provider, inbox `provider`: a page of an allocation's output from `offset` (answered by `logs.page`). */
export interface LogsRequestPayload {
  readonly allocationId: string;
  readonly offset: number;
}
/** The payload of each output and query message as its schema below parses it. */
export interface QueryPayloads {
  readonly 'allocation.query': AllocationQueryPayload;
  readonly 'logs.request': LogsRequestPayload;
  readonly 'logs.page': OutputPage;
}

const querySchemas: { [T in keyof QueryPayloads]: z.ZodType<QueryPayloads[T]> } = {
  'allocation.query': z.strictObject({ dealId: dealIdSchema, nonce: safeInt, allocationId: allocationIdSchema }),
  'logs.request': z.strictObject({ allocationId: allocationIdSchema, offset: safeInt }),
  'logs.page': z.strictObject({
    chunks: z.array(z.strictObject({ stream: z.enum(['stdout', 'stderr']), text: z.string().max(1 << 20) })).max(100_000),
    next: safeInt,
    eof: z.boolean(),
  }),
};

/**
 * Payload schemas of the output requests and of `allocation.query` (a recovered requester asks its provider for
 * the allocation's state, which may have ended while it was down); not deal messages of the machines, so not in DealWireMessage.
 */
export const logsPayloadSchemas: ReadonlyMap<string, z.ZodType> = new Map<string, z.ZodType>(Object.entries(querySchemas));

/** Every payload that arrives at a deal inbox, by message type, as the router parsed it with the schemas above. */
export type InboundPayloads = DealPayloads & QueryPayloads;
