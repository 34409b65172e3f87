// Job files: JSON or YAML (told by content), one schema, the module resolved next to the job file and checked, and
// every refusal a JobFileError (exit code 2) naming the file and the field. Files are written to a fresh temp dir.
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { exampleModule } from '../../../runtime/executors/examples/examples.ts';
import { sha256Hex } from '../../../runtime/executors/wasm-module.ts';
import { exitCodeOf } from '../../../runtime/errors.ts';
import { type JobFileOptions, type LoadedJob, loadJobFile, MAX_JOB_FILE_BYTES } from '../../../runtime/cli/job-file.ts';
import { MAX_BID_JOB_BYTES, MAX_JOB_BYTES } from '../../../runtime/deals/deal-schemas.ts';
import { encodedSize } from '../../../runtime/deals/encoded-size.ts';
import { requirementsOf } from '../../../machines/job.ts';

const MiB = 2 ** 20;
let helloModule: Promise<Uint8Array> | undefined;
const hello = () => (helloModule ??= exampleModule('hello'));

interface Ctx {
  dir: string;
  /** Writes `content` (an object is written as JSON) to `name` in the temp dir; returns its path. */
  write(name: string, content: string | object | Uint8Array): Promise<string>;
}

function jobSuite(title: string) {
  const s = suite<Ctx>(title);
  s.before.each(async (ctx) => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'dms-job-file-test-'));
    ctx.dir = dir;
    ctx.write = async (name, content) => {
      const file = path.join(dir, name);
      await mkdir(path.dirname(file), { recursive: true });
      const data = typeof content === 'string' || content instanceof Uint8Array ? content : JSON.stringify(content, null, 2);
      await writeFile(file, data);
      return file;
    };
  });
  s.after.each(async (ctx) => {
    await rm(ctx.dir, { recursive: true, force: true });
  });
  return s;
}

const WASM_JOB = {
  name: 'hello',
  executor: 'wasm',
  wasm: { module: './hello.wasm', args: ['a'], env: { K: 'V' } },
  resources: { cpu: 1, memory: '128MiB', disk: '10MiB' },
  timeout: '60s',
  constraints: { peers: [], excludePeers: [] },
};
const PROCESS_JOB = { name: 'hi', executor: 'process', process: { command: 'sh', args: ['-c', 'echo hi'] }, resources: { cpu: 0.5, memory: '1GB' } };

/** The JobFileError loadJobFile rejects with; fails the test when it resolves or rejects with anything else. */
async function refusal(file: string, options?: JobFileOptions): Promise<Error & { field?: string; file?: string }> {
  let loaded: LoadedJob | undefined;
  try {
    loaded = await loadJobFile(file, options);
  } catch (err) {
    const e = err as Error & { field?: string; file?: string };
    assert.is(e.name, 'JobFileError', `expected a JobFileError, got ${e.name}: ${e.message}`);
    assert.is(exitCodeOf(e), 2, 'bad input exits with 2');
    assert.is(e.file, file);
    assert.ok(e.message.startsWith(`${file}: `), `the message names the file: ${e.message}`);
    return e;
  }
  assert.unreachable(`expected ${file} to be refused, got ${JSON.stringify(loaded.job)}`);
  throw new Error('unreachable');
}

/** Refused, naming `field` both in the message (right after the file) and as `.field`. */
async function refusedAt(file: string, field: string, detail: RegExp, options?: JobFileOptions): Promise<void> {
  const e = await refusal(file, options);
  assert.is(e.field, field, e.message);
  assert.ok(e.message.startsWith(`${file}: ${field}: `), `field named first: ${e.message}`);
  assert.match(e.message, detail);
}

const Good = jobSuite('job files: good JSON and YAML');

Good('a JSON wasm job: sizes, duration, module hashed and its bytes returned', async (ctx) => {
  const bytes = await hello();
  await ctx.write('hello.wasm', bytes);
  const { job, module } = await loadJobFile(await ctx.write('job.json', WASM_JOB));
  assert.equal(job, {
    name: 'hello',
    resources: { cpu: 1, memory: 128 * MiB, disk: 10 * MiB, gpus: 0 },
    timeoutMs: 60_000,
    constraints: { peers: [], excludePeers: [] },
    executor: 'wasm',
    wasm: { module: { sha256: sha256Hex(bytes), size: bytes.byteLength }, args: ['a'], env: { K: 'V' } },
  });
  assert.equal(module, bytes);
});

Good('the same job in YAML, with unquoted numbers taken as strings in args and env', async (ctx) => {
  await ctx.write('hello.wasm', await hello());
  const yaml = `# a job
name: hello
executor: wasm
wasm:
  module: hello.wasm
  args: [a, 2]
  env: { K: V, N: 1, B: true }
resources: { cpu: 2, memory: 1GB, disk: 0 }
timeout: 90000
`;
  const { job } = await loadJobFile(await ctx.write('job.yaml', yaml));
  assert.is(job.executor, 'wasm');
  if (job.executor !== 'wasm') return;
  assert.equal(job.wasm.args, ['a', '2']);
  assert.equal(job.wasm.env, { K: 'V', N: '1', B: 'true' });
  assert.equal(job.resources, { cpu: 2, memory: 1_000_000_000, disk: 0, gpus: 0 });
  assert.is(job.timeoutMs, 90_000);
});

Good('the format is told by content: YAML in job.json, JSON in job.yaml, YAML flow style, no extension', async (ctx) => {
  await ctx.write('hello.wasm', await hello());
  const yaml = `name: p\nexecutor: process\nprocess:\n  command: sh\nresources:\n  cpu: 1\n  memory: 64MiB\n`;
  for (const [name, text] of [
    ['yaml-in.json', yaml],
    ['json-in.yaml', JSON.stringify(PROCESS_JOB)],
    ['flow.json', '{name: p, executor: process, process: {command: sh}, resources: {cpu: 1, memory: 64MiB}}'],
    ['jobfile', '\uFEFF' + JSON.stringify(PROCESS_JOB)],
  ] as const) {
    const { job } = await loadJobFile(await ctx.write(name, text));
    assert.is(job.executor, 'process', name);
  }
});

Good('a process job: command and defaults (disk 0, gpus 0, 10 min timeout, no constraints), no module', async (ctx) => {
  const loaded = await loadJobFile(await ctx.write('p.json', PROCESS_JOB));
  assert.equal(loaded, {
    job: {
      name: 'hi',
      resources: { cpu: 0.5, memory: 1_000_000_000, disk: 0, gpus: 0 },
      timeoutMs: 600_000,
      constraints: { peers: [], excludePeers: [] },
      executor: 'process',
      process: { command: 'sh', args: ['-c', 'echo hi'], env: {} },
    },
  });
});

Good('the module path is relative to the job file, not the working directory; a matching sha256 pin passes', async (ctx) => {
  const bytes = await hello();
  await ctx.write('jobs/wasm/hello.wasm', bytes);
  const job = { ...WASM_JOB, wasm: { module: 'wasm/hello.wasm', sha256: sha256Hex(bytes).toUpperCase() } };
  const file = await ctx.write('jobs/job.json', job);
  assert.is.not(path.dirname(file), process.cwd());
  const loaded = await loadJobFile(file);
  assert.equal(loaded.module, bytes);
  // An absolute module path works too.
  await loadJobFile(await ctx.write('jobs/abs.json', { ...WASM_JOB, wasm: { module: path.join(ctx.dir, 'jobs/wasm/hello.wasm') } }));
});

Good('a wasm job may carry a process section (and vice versa): only the chosen one is used', async (ctx) => {
  await ctx.write('hello.wasm', await hello());
  const { job } = await loadJobFile(await ctx.write('both.json', { ...WASM_JOB, process: { command: 'sh' } }));
  assert.is(job.executor, 'wasm');
  assert.not.ok('process' in job);
});

Good.run();

const Reads = jobSuite('job files: nothing but the job file and its module is read');

/** A reader that records what it is asked to read. */
function recording(): { reads: string[]; options: JobFileOptions } {
  const reads: string[] = [];
  return { reads, options: { readFile: async (file) => (reads.push(file), new Uint8Array(await readFile(file))) } };
}

Reads('a wasm job reads the job file, then the module, once each', async (ctx) => {
  await ctx.write('other.json', '{}');
  await ctx.write('hello.wasm', await hello());
  const file = await ctx.write('job.json', WASM_JOB);
  const { reads, options } = recording();
  await loadJobFile(file, options);
  assert.equal(reads, [file, path.join(ctx.dir, 'hello.wasm')]);
});

Reads('a process job reads only the job file; a wasm job with bad resources is refused before its module is read', async (ctx) => {
  await ctx.write('hello.wasm', await hello());
  const p = recording();
  const pfile = await ctx.write('p.json', PROCESS_JOB);
  await loadJobFile(pfile, p.options);
  assert.equal(p.reads, [pfile]);
  const w = recording();
  const wfile = await ctx.write('w.json', { ...WASM_JOB, resources: { cpu: -1, memory: 1 } });
  await refusedAt(wfile, 'resources.cpu', /-1 is not/, w.options);
  assert.equal(w.reads, [wfile]);
});

Reads('the readers are told the limits: 1 MiB for the job file, the module limit for the module', async (ctx) => {
  await ctx.write('hello.wasm', await hello());
  const limits: number[] = [];
  await loadJobFile(await ctx.write('job.json', WASM_JOB), { maxModuleBytes: 4096, readFile: async (f, max) => (limits.push(max), new Uint8Array(await readFile(f))) });
  assert.equal(limits, [MAX_JOB_FILE_BYTES, 4096]);
});

Reads.run();

const Fields = jobSuite('job files: refusals name the file and the field');

Fields('a size that is not a size: resources.memory "12x"', async (ctx) => {
  const file = await ctx.write('job.json', { ...PROCESS_JOB, resources: { cpu: 1, memory: '12x' } });
  await refusedAt(file, 'resources.memory', /: "12x" is not a size/);
});

Fields('negative sizes are not sizes; negative and absurd cpu, absurd memory and disk are refused', async (ctx) => {
  const cases: [object, string, RegExp][] = [
    [{ cpu: 1, memory: '-1MiB' }, 'resources.memory', /"-1MiB" is not a size/],
    [{ cpu: 1, memory: -5 }, 'resources.memory', /"-5" is not a size/],
    [{ cpu: -1, memory: '1GB' }, 'resources.cpu', /-1 is not a number of cores above 0/],
    [{ cpu: 0, memory: '1GB' }, 'resources.cpu', /0 is not/],
    [{ cpu: 5000, memory: '1GB' }, 'resources.cpu', /at most 1024/],
    [{ cpu: 1, memory: '65TiB' }, 'resources.memory', /at most 64 TiB/],
    [{ cpu: 1, memory: 0 }, 'resources.memory', /above 0/],
    [{ cpu: 1, memory: '1GB', disk: '2PiB' }, 'resources.disk', /at most 1024 TiB/],
    [{ cpu: 1, memory: '1GB', gpus: 0.5 }, 'resources.gpus', /whole number/],
    [{ cpu: '2', memory: '1GB' }, 'resources.cpu', /expected number, got "2"/],
  ];
  for (const [resources, field, detail] of cases) {
    await refusedAt(await ctx.write('job.json', { ...PROCESS_JOB, resources }), field, detail);
  }
});

Fields('an unknown executor is refused naming executor and the choices', async (ctx) => {
  await refusedAt(await ctx.write('job.yaml', 'name: x\nexecutor: docker\nresources: {cpu: 1, memory: 1GB}\n'), 'executor', /unknown executor "docker"; use "wasm" or "process"/);
});

Fields('missing required fields are named: name, executor, resources, resources.memory', async (ctx) => {
  const { name: _n, ...noName } = PROCESS_JOB;
  await refusedAt(await ctx.write('a.json', noName), 'name', /name: is required/);
  const { executor: _e, ...noExecutor } = PROCESS_JOB;
  await refusedAt(await ctx.write('b.json', noExecutor), 'executor', /executor: is required/);
  const { resources: _r, ...noResources } = PROCESS_JOB;
  await refusedAt(await ctx.write('c.json', noResources), 'resources', /resources: is required/);
  await refusedAt(await ctx.write('d.json', { ...PROCESS_JOB, resources: { cpu: 1 } }), 'resources.memory', /is required/);
});

Fields('a timeout that is not a duration, too short or too long', async (ctx) => {
  await refusedAt(await ctx.write('a.json', { ...PROCESS_JOB, timeout: 'soon' }), 'timeout', /"soon" is not a duration/);
  await refusedAt(await ctx.write('b.json', { ...PROCESS_JOB, timeout: '500ms' }), 'timeout', /500 ms is outside 1 s\.\.7 days/);
  await refusedAt(await ctx.write('c.json', { ...PROCESS_JOB, timeout: '8d' }), 'timeout', /outside 1 s\.\.7 days/);
  await refusedAt(await ctx.write('d.json', { ...PROCESS_JOB, timeout: -1 }), 'timeout', /"-1" is not a duration/);
});

Fields('a process job needs a command', async (ctx) => {
  await refusedAt(await ctx.write('a.json', { ...PROCESS_JOB, process: undefined }), 'process.command', /required for executor "process"/);
  await refusedAt(await ctx.write('b.json', { ...PROCESS_JOB, process: { args: ['x'] } }), 'process.command', /is required/);
  await refusedAt(await ctx.write('c.json', { ...PROCESS_JOB, process: { command: '' } }), 'process.command', /is empty/);
});

Fields('a wasm job needs wasm.module', async (ctx) => {
  const { wasm: _, ...noWasm } = WASM_JOB;
  await refusedAt(await ctx.write('a.json', noWasm), 'wasm.module', /required for executor "wasm"/);
  await refusedAt(await ctx.write('b.json', { ...WASM_JOB, wasm: { module: '' } }), 'wasm.module', /is empty/);
});

Fields('unknown fields are refused at their place (a typo must not silently drop a limit)', async (ctx) => {
  await refusedAt(await ctx.write('a.json', { ...PROCESS_JOB, resources: { cpu: 1, memory: '1GB', mem: 5 } }), 'resources', /unknown field "mem"/);
  const e = await refusal(await ctx.write('b.json', { ...PROCESS_JOB, timout: '5s' }));
  assert.match(e.message, /\(top level\): unknown field "timout"/);
});

Fields('bad constraints and env are named', async (ctx) => {
  await refusedAt(await ctx.write('a.json', { ...PROCESS_JOB, constraints: { peers: ['nobody'] } }), 'constraints.peers', /"nobody" is not a peer id/);
  await refusedAt(await ctx.write('b.json', { ...PROCESS_JOB, process: { command: 'sh', env: { K: ['x'] } } }), 'process.env.K', /expected string or number or boolean, got \["x"\]/);
  await refusedAt(await ctx.write('c.json', { ...PROCESS_JOB, resources: { cpu: 1, memory: true } }), 'resources.memory', /expected number or string, got true/);
});

Fields.run();

const Module = jobSuite('job files: the module is present, WASM, within the limit and as pinned');

Module('a missing module is refused naming wasm.module and where it was looked for', async (ctx) => {
  const file = await ctx.write('job.json', WASM_JOB);
  await refusedAt(file, 'wasm.module', new RegExp(`cannot read the module ./hello.wasm: no such file; the path is relative to the job file \\(resolved to ${path.join(ctx.dir, 'hello.wasm')}\\)`));
  await mkdir(path.join(ctx.dir, 'hello.wasm'));
  await refusedAt(file, 'wasm.module', /it is a directory/);
});

Module('a module that is not WASM (WAT text) is refused', async (ctx) => {
  await ctx.write('hello.wasm', '(module (func (export "_start")))');
  await refusedAt(await ctx.write('job.json', WASM_JOB), 'wasm.module', /\.\/hello\.wasm: the module is not WebAssembly/);
});

Module('a module over the size limit is refused unread', async (ctx) => {
  const bytes = await hello();
  await ctx.write('hello.wasm', bytes);
  const e = await refusal(await ctx.write('job.json', WASM_JOB), { maxModuleBytes: bytes.byteLength - 1 });
  assert.is(e.field, 'wasm.module');
  assert.match(e.message, /the module \.\/hello\.wasm is .* over the limit/);
  // The default limit (16 MiB) applies when none is given.
  await ctx.write('big.wasm', new Uint8Array(16 * MiB + 1));
  await refusedAt(await ctx.write('big.json', { ...WASM_JOB, wasm: { module: 'big.wasm' } }), 'wasm.module', /over the limit of 16 MiB/);
});

Module('a module that does not match its sha256 pin is refused naming wasm.sha256', async (ctx) => {
  await ctx.write('hello.wasm', await hello());
  await refusedAt(await ctx.write('a.json', { ...WASM_JOB, wasm: { module: 'hello.wasm', sha256: '0'.repeat(64) } }), 'wasm.sha256', /not the 0{64} the job names/);
  await refusedAt(await ctx.write('b.json', { ...WASM_JOB, wasm: { module: 'hello.wasm', sha256: 'xyz' } }), 'wasm.sha256', /is not a hex sha256/);
});

Module.run();

const Unparsable = jobSuite('job files: files that do not parse or are not jobs');

Unparsable('a missing job file', async (ctx) => {
  const e = await refusal(path.join(ctx.dir, 'nope.json'));
  assert.match(e.message, /cannot read the job file: no such file/);
  assert.is(e.field, undefined);
});

Unparsable('broken JSON and broken YAML say so, with where', async (ctx) => {
  const json = await refusal(await ctx.write('job.json', '{"name": "x", "executor": '));
  assert.match(json.message, /is not valid JSON: /);
  const yaml = await refusal(await ctx.write('job.yaml', 'name: x\nresources:\n  cpu: 1\n cpu: [\n'));
  assert.match(yaml.message, /is not valid YAML: .* at line 4, column 1$/);
  const dup = await refusal(await ctx.write('dup.yaml', 'name: x\nname: y\n'));
  assert.match(dup.message, /is not valid YAML: .*[Uu]nique/);
});

Unparsable('empty, not text, not an object, or too large', async (ctx) => {
  assert.match((await refusal(await ctx.write('a.json', ' \n'))).message, /is empty/);
  assert.match((await refusal(await ctx.write('b.json', Uint8Array.of(0xff, 0xfe, 0x00, 0x61)))).message, /is not UTF-8 text/);
  assert.match((await refusal(await ctx.write('c.json', '[1, 2]'))).message, /is not a job: expected an object .* got a list/);
  assert.match((await refusal(await ctx.write('d.yaml', 'just some words'))).message, /is not a job: .* got "just some words"/);
  assert.match((await refusal(await ctx.write('e.yaml', '---\na: 1\n---\nb: 2\n'))).message, /is not valid YAML/);
  const big = await ctx.write('f.json', JSON.stringify({ ...PROCESS_JOB, name: 'x'.repeat(MAX_JOB_FILE_BYTES) }));
  assert.match((await refusal(big)).message, /the job file is .* over the limit of 1 MiB/);
});

Unparsable('a YAML alias bomb is refused, not expanded', async (ctx) => {
  const lines = ['a: &a [x, x, x, x, x, x, x, x, x, x]'];
  for (let i = 1; i < 12; i++) lines.push(`${String.fromCharCode(97 + i)}: &${String.fromCharCode(97 + i)} [${Array(10).fill(`*${String.fromCharCode(96 + i)}`).join(', ')}]`);
  const e = await refusal(await ctx.write('bomb.yaml', lines.join('\n') + '\n'));
  assert.match(e.message, /YAML/);
});

Unparsable.run();

// ---------------------------------------------------------------------------------------------------------------

const TooBig = jobSuite('job files: a job a bid request could not carry is refused, naming the field and the limit');

const values = (n: number, size: number) => Array.from({ length: n }, (_, i) => `${i}`.padEnd(size, 'x'));
const LIMIT = new RegExp(`at most ${MAX_JOB_BYTES} bytes \\(64 KiB`);

TooBig('a wasm job with 72 KB of env: wasm.env, the sizes, and where large inputs belong', async (ctx) => {
  await ctx.write('hello.wasm', await hello());
  const env = Object.fromEntries(values(9, 8000).map((v, i) => [`V${i}`, v]));
  await refusedAt(await ctx.write('job.json', { ...WASM_JOB, wasm: { ...WASM_JOB.wasm, env } }), 'wasm.env', new RegExp(`${LIMIT.source}.*in the module`));
});

TooBig('a process job with 80 KB of args: process.args; 1,500 excluded peers: constraints.excludePeers', async (ctx) => {
  await refusedAt(await ctx.write('args.json', { ...PROCESS_JOB, process: { command: 'sh', args: values(10, 8000) } }), 'process.args', LIMIT);
  const peers = Array(1500).fill('12D3KooWSomebodyCCCCCCCCCCCCCCCCCCCCCCCCCCCCC');
  await refusedAt(await ctx.write('peers.yaml', { ...PROCESS_JOB, constraints: { excludePeers: peers } }), 'constraints.excludePeers', LIMIT);
});

TooBig('a job just under the limit is taken, and its spec is under the limit encoded', async (ctx) => {
  const { job } = await loadJobFile(await ctx.write('ok.json', { ...PROCESS_JOB, process: { command: 'sh', args: values(7, 8000) } }));
  assert.ok(encodedSize(job) <= MAX_JOB_BYTES, `${encodedSize(job)} bytes`);
  assert.ok(encodedSize(job) > MAX_JOB_BYTES - 10_000, 'near the limit');
  assert.ok(encodedSize(requirementsOf(job)) < 1024, 'its bid request carries it without the args');
});

TooBig('what the bid request carries (the job without args and env) is held to 16 KiB: 400 excluded peers', async (ctx) => {
  const peers = Array(400).fill('12D3KooWSomebodyCCCCCCCCCCCCCCCCCCCCCCCCCCCCC');
  await refusedAt(await ctx.write('peers.yaml', { ...PROCESS_JOB, constraints: { excludePeers: peers } }), 'constraints.excludePeers', new RegExp(`bytes a bid request carries to every provider it reaches .*at most ${MAX_BID_JOB_BYTES} bytes \\(16 KiB`));
});

TooBig.run();
