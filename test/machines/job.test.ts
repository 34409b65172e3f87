// The job spec's pure rules: ids, resources within sane bounds, timeout within 1 s..7 days, argv and env, peer
// constraints, and the Go DMS refusal of a deployment with less than a minute left (clock passed in).
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import {
  createJobId,
  DEFAULT_JOB_TIMEOUT_MS,
  describeJobProblems,
  type JobProblem,
  type JobSpec,
  MIN_DEPLOYMENT_WINDOW_MS,
  parseJobId,
  type ProcessJobSpec,
  requirementsMismatch,
  requirementsOf,
  validateJob,
  type WasmJobSpec,
} from '../../machines/job.ts';

const MiB = 2 ** 20;
const TiB = 2 ** 40;
const DAY = 24 * 3600 * 1000;
const PEER_A = '12D3KooWGzxzKZYveHXtpG6AsrUJBcWxHBFS2HsEoGTxrMLvKXtf';
const PEER_B = '12D3KooWRBhwfeP2Y4TCx1SM6s9rUoHhR5nq5UwzpGvbXm7sGKTq';

function wasmJob(over: Partial<WasmJobSpec> = {}): WasmJobSpec {
  return {
    name: 'hello',
    executor: 'wasm',
    wasm: { module: { sha256: 'ab'.repeat(32), size: 1234 }, args: ['a'], env: { K: 'V' } },
    resources: { cpu: 1, memory: 128 * MiB, disk: 10 * MiB, gpus: 0 },
    timeoutMs: 60_000,
    constraints: { peers: [], excludePeers: [] },
    ...over,
  };
}

function processJob(over: Partial<ProcessJobSpec> = {}): ProcessJobSpec {
  const { wasm: _, ...base } = wasmJob();
  return { ...base, executor: 'process', process: { command: 'sh', args: ['-c', 'echo hi'], env: {} }, ...over };
}

const withResources = (r: Partial<JobSpec['resources']>) => wasmJob({ resources: { ...wasmJob().resources, ...r } });
const fields = (ps: readonly JobProblem[]) => ps.map((p) => p.field);

function only(problems: JobProblem[], field: string): JobProblem {
  assert.equal(fields(problems), [field], `expected exactly one ${field} problem, got ${JSON.stringify(problems)}`);
  return problems[0]!;
}

function deepFreeze<T>(o: T): T {
  if (typeof o === 'object' && o !== null) {
    for (const v of Object.values(o)) deepFreeze(v);
    Object.freeze(o);
  }
  return o;
}

const Ids = suite('job ids: made only by createJobId / parseJobId');

Ids('createJobId turns 16 random bytes into 32 hex digits, the same bytes into the same id', () => {
  const random = Uint8Array.from({ length: 16 }, (_, i) => i * 17);
  const id = createJobId(random);
  assert.is(id, '00112233445566778899aabbccddeeff');
  assert.is(createJobId(random), id);
  assert.is(parseJobId(id), id);
});

Ids('createJobId refuses fewer than 16 random bytes', () => {
  assert.throws(() => createJobId(new Uint8Array(15)), /16 random bytes/);
});

Ids('parseJobId accepts ledger-safe strings and refuses the rest', () => {
  for (const ok of ['job-1', 'a', 'x'.repeat(200), 'deal:1@peer.x_y']) assert.is(parseJobId(ok), ok, ok);
  for (const bad of ['', 'a b', 'x'.repeat(201), 'a/b', 'é', 42, null, undefined, {}]) assert.is(parseJobId(bad), undefined, String(bad));
});

Ids.run();

const Valid = suite('validateJob: good jobs');

Valid('a wasm job and a process job have no problems', () => {
  assert.equal(validateJob(wasmJob()), []);
  assert.equal(validateJob(processJob()), []);
});

Valid('the bounds themselves are accepted: 1024 cores, 64 TiB, 1 s and 7 days', () => {
  assert.equal(validateJob(withResources({ cpu: 1024, memory: 64 * TiB, disk: 0, gpus: 64 })), []);
  assert.equal(validateJob(withResources({ cpu: 0.1 })), []);
  assert.equal(validateJob(wasmJob({ timeoutMs: 1000 })), []);
  assert.equal(validateJob(wasmJob({ timeoutMs: 7 * DAY })), []);
});

Valid('it only reads the job (a deeply frozen job validates the same)', () => {
  const job = deepFreeze(withResources({ cpu: -1 }));
  assert.equal(fields(validateJob(job)), ['resources.cpu']);
});

Valid('the default timeout is itself valid', () => {
  assert.equal(validateJob(wasmJob({ timeoutMs: DEFAULT_JOB_TIMEOUT_MS })), []);
});

Valid.run();

const Resources = suite('validateJob: resources positive and not absurd');

Resources('cpu must be above 0 and at most 1024', () => {
  for (const cpu of [0, -1, 1025, Number.NaN, Number.POSITIVE_INFINITY]) {
    assert.match(only(validateJob(withResources({ cpu })), 'resources.cpu').message, /at most 1024/, `cpu ${cpu}`);
  }
});

Resources('memory must be a whole number of bytes above 0 and at most 64 TiB', () => {
  for (const memory of [0, -MiB, 64 * TiB + 1, 1.5, Number.NaN]) {
    assert.match(only(validateJob(withResources({ memory })), 'resources.memory').message, /64 TiB/, `memory ${memory}`);
  }
});

Resources('disk must not be negative or beyond 1024 TiB; gpus a whole count up to 64', () => {
  only(validateJob(withResources({ disk: -1 })), 'resources.disk');
  only(validateJob(withResources({ disk: 1025 * TiB })), 'resources.disk');
  for (const gpus of [-1, 1.5, 65]) only(validateJob(withResources({ gpus })), 'resources.gpus');
});

Resources('every wrong field is reported, not just the first', () => {
  const problems = validateJob(wasmJob({ resources: { cpu: 0, memory: 0, disk: -1, gpus: -1 }, timeoutMs: 0 }));
  assert.equal(fields(problems), ['resources.cpu', 'resources.memory', 'resources.disk', 'resources.gpus', 'timeout']);
  assert.match(describeJobProblems(problems), /^resources\.cpu: 0 is not .*; resources\.memory: 0 is not .*; timeout: 0 ms/);
});

Resources.run();

const Timeout = suite('validateJob: timeout between 1 s and 7 days');

Timeout('a timeout under 1 s or over 7 days is refused and names timeout', () => {
  for (const timeoutMs of [0, 999, 7 * DAY + 1, -1000, Number.NaN]) {
    assert.match(only(validateJob(wasmJob({ timeoutMs })), 'timeout').message, /1 s\.\.7 days/, `timeout ${timeoutMs}`);
  }
});

Timeout.run();

const Executors = suite('validateJob: executor sections');

Executors('a wasm module needs a hex sha256 and a positive size', () => {
  const module = (m: { sha256: string; size: number }) => wasmJob({ wasm: { ...wasmJob().wasm, module: m } });
  assert.match(only(validateJob(module({ sha256: 'AB'.repeat(32), size: 1 })), 'wasm.module').message, /sha256/);
  assert.match(only(validateJob(module({ sha256: 'ab'.repeat(31), size: 1 })), 'wasm.module').message, /sha256/);
  assert.match(only(validateJob(module({ sha256: 'ab'.repeat(32), size: 0 })), 'wasm.module').message, /size 0/);
});

Executors('a process job needs a command', () => {
  for (const command of ['', '  ', 'sh\0']) {
    only(validateJob(processJob({ process: { command, args: [], env: {} } })), 'process.command');
  }
});

Executors('env names must not be empty or contain =; args and values must not contain NUL', () => {
  const wasm = wasmJob().wasm;
  assert.match(only(validateJob(wasmJob({ wasm: { ...wasm, env: { 'A=B': 'x' } } })), 'wasm.env').message, /"A=B"/);
  only(validateJob(wasmJob({ wasm: { ...wasm, env: { '': 'x' } } })), 'wasm.env');
  only(validateJob(wasmJob({ wasm: { ...wasm, env: { K: 'a\0b' } } })), 'wasm.env.K');
  only(validateJob(wasmJob({ wasm: { ...wasm, args: ['ok', 'b\0d'] } })), 'wasm.args.1');
  only(validateJob(processJob({ process: { command: 'sh', args: Array(1025).fill('x'), env: {} } })), 'process.args');
});

Executors('a job name is 1..128 printable characters', () => {
  for (const name of ['', '   ', 'x'.repeat(129), 'a\nb']) only(validateJob(wasmJob({ name })), 'name');
  assert.equal(validateJob(wasmJob({ name: 'x'.repeat(128) })), []);
});

Executors.run();

const Constraints = suite('validateJob: peer constraints');

Constraints('peer ids are checked in both lists', () => {
  assert.equal(validateJob(wasmJob({ constraints: { peers: [PEER_A], excludePeers: [PEER_B] } })), []);
  assert.match(only(validateJob(wasmJob({ constraints: { peers: ['not-a-peer'], excludePeers: [] } })), 'constraints.peers').message, /"not-a-peer" is not a peer id/);
  only(validateJob(wasmJob({ constraints: { peers: [], excludePeers: [''] } })), 'constraints.excludePeers');
});

Constraints('a peer both required and excluded is refused', () => {
  const p = only(validateJob(wasmJob({ constraints: { peers: [PEER_A, PEER_B], excludePeers: [PEER_A] } })), 'constraints');
  assert.match(p.message, new RegExp(`${PEER_A} is both required`));
});

Constraints.run();

const Deadline = suite('validateJob: a deployment with less than a minute left is refused (Go DMS)');

const NOW = 1_700_000_000_000;

Deadline('exactly a minute left is enough; a millisecond less is refused naming deadline', () => {
  assert.equal(validateJob(wasmJob(), { now: NOW, deadline: NOW + MIN_DEPLOYMENT_WINDOW_MS }), []);
  const p = only(validateJob(wasmJob(), { now: NOW, deadline: NOW + MIN_DEPLOYMENT_WINDOW_MS - 1 }), 'deadline');
  assert.match(p.message, /59 s away; it needs at least 1 minute/);
});

Deadline('a deadline in the past is refused and says so', () => {
  assert.match(only(validateJob(wasmJob(), { now: NOW, deadline: NOW - 5000 }), 'deadline').message, /passed 5 s ago/);
});

Deadline('without a window there is no clock and no deadline check; a non-finite time is refused', () => {
  assert.equal(validateJob(wasmJob()), []);
  only(validateJob(wasmJob(), { now: NOW, deadline: Number.NaN }), 'deadline');
});

Deadline('the deadline is checked alongside every other rule', () => {
  assert.equal(fields(validateJob(withResources({ cpu: 0 }), { now: NOW, deadline: NOW })), ['resources.cpu', 'deadline']);
});

Deadline.run();

const Requirements = suite('requirementsOf: what a bid request carries; requirementsMismatch: the allocate brings the same job');

Requirements('args and env are dropped, everything else kept; a job without them is returned as is', () => {
  const w = wasmJob();
  assert.equal(requirementsOf(w), { ...w, wasm: { ...w.wasm, args: [], env: {} } });
  const p = processJob({ process: { command: 'sh', args: ['-c', 'x'], env: { A: '1' } } });
  assert.equal(requirementsOf(p), { ...p, process: { command: 'sh', args: [], env: {} } });
  const bare = processJob({ process: { command: 'true', args: [], env: {} } });
  assert.is(requirementsOf(bare), bare);
});

Requirements('the whole job matches its requirements whatever the key order; any other difference is named', () => {
  const w = wasmJob();
  assert.is(requirementsMismatch(requirementsOf(w), w), null);
  const reordered = JSON.parse(JSON.stringify({ constraints: w.constraints, wasm: { env: w.wasm.env, args: w.wasm.args, module: w.wasm.module }, timeoutMs: w.timeoutMs, resources: w.resources, executor: w.executor, name: w.name })) as JobSpec;
  assert.is(requirementsMismatch(requirementsOf(w), reordered), null);
  assert.match(String(requirementsMismatch(requirementsOf(w), { ...w, resources: { ...w.resources, cpu: 8 } })), /differs .* in resources/);
  assert.match(String(requirementsMismatch(requirementsOf(w), { ...w, wasm: { ...w.wasm, module: { sha256: 'cd'.repeat(32), size: 1 } } })), /in wasm/);
  assert.match(String(requirementsMismatch(requirementsOf(w), processJob())), /in executor, wasm, process/);
});

Requirements.run();
