// Ensemble files: a job file with `allocations`, read into a checked EnsembleSpec with the job file's sizes,
// durations, resources and module checks, its defaults filled in, WASM modules resolved next to the file, and every
// refusal a JobFileError (exit code 2) naming the file and the field. Files are written to a fresh temp dir.
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { exampleModule } from '../../../runtime/executors/examples/examples.ts';
import { sha256Hex } from '../../../runtime/executors/wasm-module.ts';
import { exitCodeOf } from '../../../runtime/errors.ts';
import { type LoadedEnsemble, loadEnsembleFile } from '../../../runtime/cli/ensemble-file.ts';
import { type JobFileOptions, loadJobFile } from '../../../runtime/cli/job-file.ts';

const MiB = 2 ** 20;
let helloModule: Promise<Uint8Array> | undefined;
const hello = () => (helloModule ??= exampleModule('hello'));

interface Ctx {
  dir: string;
  /** Writes `content` (an object is written as JSON) to `name` in the temp dir; returns its path. */
  write(name: string, content: string | object | Uint8Array): Promise<string>;
}

function fileSuite(title: string) {
  const s = suite<Ctx>(title);
  s.before.each(async (ctx) => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'dms-ensemble-file-test-'));
    ctx.dir = dir;
    ctx.write = async (name, content) => {
      const file = path.join(dir, name);
      await mkdir(path.dirname(file), { recursive: true });
      await writeFile(file, typeof content === 'string' || content instanceof Uint8Array ? content : JSON.stringify(content, null, 2));
      return file;
    };
  });
  s.after.each(async (ctx) => {
    await rm(ctx.dir, { recursive: true, force: true });
  });
  return s;
}

/** The example of INTERFACE.md "Ensembles: several allocations deployed as one", as written there. */
const KV_DEMO = `name: kv-demo
timeout: 10m                       # the ensemble's whole life; at its end services are stopped
recovery: one_for_one              # when a part fails for good: one_for_one (only it), one_for_all (every part),
                                   # rest_for_one (it and every part started after it, in dependency order)
maxRestarts: { count: 5, within: 60s }   # more restarts than this in the window: the ensemble fails
allocations:
  kv:
    type: service                  # service: runs until the ensemble ends; task (default): runs to completion
    executor: process              # any executor, as in a one-part job, with the same fields (wasm/process)
    process: { command: node, args: [-e, "..."] }
    resources: { cpu: 1, memory: 64MiB }
    ports: [http]                  # named ports; the provider assigns each a free port: env DMS_PORT_HTTP
    healthcheck: { http: { port: http, path: /health }, interval: 1s, retries: 3 }   # or { command: [sh, -c, "..."] }
    restart: on-failure            # never | on-failure | always; default: always for services, never for tasks
  client:
    executor: process
    process: { command: node, args: [-e, "..."] }
    resources: { cpu: 1, memory: 64MiB }
    dependsOn: [kv]                # starts once kv runs (and passes its health check); kv may be on another node
constraints: { peers: [], excludePeers: [] }   # for every part; a part may have its own \`constraints\` too
`;

const NO_CONSTRAINTS = { peers: [], excludePeers: [] };
const PROC = { executor: 'process', process: { command: 'sh', args: ['-c', 'true'] }, resources: { cpu: 1, memory: '64MiB' } };
/** An ensemble file of the given parts (each a process part unless it says otherwise). */
const file = (allocations: Record<string, object>, over: object = {}) => ({
  name: 'e',
  allocations: Object.fromEntries(Object.entries(allocations).map(([k, v]) => [k, { ...PROC, ...v }])),
  ...over,
});

/** The JobFileError loadEnsembleFile rejects with; fails the test when it resolves or rejects with anything else. */
async function refusal(f: string, options?: JobFileOptions): Promise<Error & { field?: string }> {
  let loaded: LoadedEnsemble | undefined;
  try {
    loaded = await loadEnsembleFile(f, options);
  } catch (err) {
    const e = err as Error & { field?: string; file?: string };
    assert.is(e.name, 'JobFileError', `expected a JobFileError, got ${e.name}: ${e.message}`);
    assert.is(exitCodeOf(e), 2, 'bad input exits with 2');
    assert.is(e.file, f);
    return e;
  }
  assert.unreachable(`expected ${f} to be refused, got ${JSON.stringify(loaded.ensemble)}`);
  throw new Error('unreachable');
}

/** Refused, naming `field` first in the message (right after the file) and as `.field`. */
async function refusedAt(f: string, field: string, detail: RegExp, options?: JobFileOptions): Promise<void> {
  const e = await refusal(f, options);
  assert.is(e.field, field, e.message);
  assert.ok(e.message.startsWith(`${f}: ${field}: `), `field named first: ${e.message}`);
  assert.match(e.message, detail);
}

const Good = fileSuite('ensemble files: good files');

Good('the kv-demo of INTERFACE.md parses to its spec', async (ctx) => {
  const loaded = await loadEnsembleFile(await ctx.write('kv-demo.yaml', KV_DEMO));
  const resources = { cpu: 1, memory: 64 * MiB, disk: 0, gpus: 0 };
  const node = { command: 'node', args: ['-e', '...'], env: {} };
  assert.equal(loaded.ensemble, {
    name: 'kv-demo',
    timeoutMs: 600_000,
    recovery: 'one_for_one',
    maxRestarts: { count: 5, withinMs: 60_000 },
    constraints: NO_CONSTRAINTS,
    parts: [
      {
        name: 'kv',
        type: 'service',
        resources,
        ports: ['http'],
        healthcheck: { http: { port: 'http', path: '/health' }, intervalMs: 1000, retries: 3 },
        restart: 'on-failure',
        dependsOn: [],
        constraints: NO_CONSTRAINTS,
        executor: 'process',
        process: node,
      },
      { name: 'client', type: 'task', resources, ports: [], restart: 'never', dependsOn: ['kv'], constraints: NO_CONSTRAINTS, executor: 'process', process: node },
    ],
  });
  assert.is(loaded.modules.size, 0);
});

Good('defaults: 10 min, one_for_one, 5 restarts in 60 s, parts are tasks that never restart, services always', async (ctx) => {
  const { ensemble } = await loadEnsembleFile(await ctx.write('e.json', file({ a: {}, s: { type: 'service' } })));
  assert.equal([ensemble.timeoutMs, ensemble.recovery, ensemble.maxRestarts, ensemble.constraints], [600_000, 'one_for_one', { count: 5, withinMs: 60_000 }, NO_CONSTRAINTS]);
  const [a, s] = ensemble.parts;
  assert.equal([a!.type, a!.restart, a!.ports, a!.dependsOn, a!.constraints], ['task', 'never', [], [], NO_CONSTRAINTS]);
  assert.not.ok('timeoutMs' in a! || 'healthcheck' in a!, 'nothing left undefined');
  assert.equal([s!.type, s!.restart], ['service', 'always']);
});

Good('a health check defaults to every 5 s with 3 retries; maxRestarts may give only one of its fields', async (ctx) => {
  const { ensemble } = await loadEnsembleFile(
    await ctx.write('e.yaml', file({ s: { type: 'service', healthcheck: { command: ['sh', '-c', 'exit 0'] } } }, { maxRestarts: { count: 2 } })),
  );
  assert.equal(ensemble.parts[0]!.healthcheck, { command: ['sh', '-c', 'exit 0'], intervalMs: 5000, retries: 3 });
  assert.equal(ensemble.maxRestarts, { count: 2, withinMs: 60_000 });
});

Good('sizes, durations and strategies as written: a task timeout, rest_for_one, constraints per part', async (ctx) => {
  const peer = '12D3KooWGzxzKZYveHXtpG6AsrUJBcWxHBFS2HsEoGTxrMLvKXtf';
  const yaml = `name: e
timeout: 1h
recovery: rest_for_one
maxRestarts: { count: 0, within: 5m }
allocations:
  t:
    executor: process
    process: { command: sh, env: { N: 1 } }
    resources: { cpu: 0.5, memory: 1GB, disk: 10MiB }
    timeout: 90s
    restart: on-failure
    constraints: { excludePeers: [${peer}] }
`;
  const { ensemble } = await loadEnsembleFile(await ctx.write('e.yaml', yaml));
  assert.equal([ensemble.timeoutMs, ensemble.recovery, ensemble.maxRestarts], [3_600_000, 'rest_for_one', { count: 0, withinMs: 300_000 }]);
  const [t] = ensemble.parts;
  assert.equal([t!.timeoutMs, t!.restart, t!.resources, t!.constraints], [90_000, 'on-failure', { cpu: 0.5, memory: 1e9, disk: 10 * MiB, gpus: 0 }, { peers: [], excludePeers: [peer] }]);
  assert.equal(t!.executor === 'process' && t!.process.env, { N: '1' });
});

Good('parts keep their declaration order', async (ctx) => {
  const { ensemble } = await loadEnsembleFile(await ctx.write('e.yaml', file({ zeta: {}, alpha: {}, mid: { dependsOn: ['zeta'] } })));
  assert.equal(ensemble.parts.map((p) => p.name), ['zeta', 'alpha', 'mid']);
});

Good.run();

const Wasm = fileSuite('ensemble files: WASM parts');

/** A reader that records what it is asked to read. */
function recording(): { reads: string[]; options: JobFileOptions } {
  const reads: string[] = [];
  return { reads, options: { readFile: async (f) => (reads.push(f), new Uint8Array(await readFile(f))) } };
}

Wasm('module paths are relative to the ensemble file; a module two parts share is read once and returned once', async (ctx) => {
  const bytes = await hello();
  await ctx.write('jobs/wasm/hello.wasm', bytes);
  const wasm = { executor: 'wasm', wasm: { module: 'wasm/hello.wasm', args: ['x'] } };
  const f = await ctx.write('jobs/e.yaml', file({ a: wasm, b: { ...wasm, wasm: { module: './wasm/../wasm/hello.wasm' } }, c: {} }));
  const { reads, options } = recording();
  const { ensemble, modules } = await loadEnsembleFile(f, options);
  const ref = { sha256: sha256Hex(bytes), size: bytes.byteLength };
  const [a, b, c] = ensemble.parts;
  assert.equal(a!.executor === 'wasm' && a!.wasm, { module: ref, args: ['x'], env: {} });
  assert.equal(b!.executor === 'wasm' && b!.wasm.module, ref);
  assert.is(c!.executor, 'process');
  assert.equal([...modules.keys()], [ref.sha256]);
  assert.equal(modules.get(ref.sha256), bytes);
  assert.equal(reads, [f, path.join(ctx.dir, 'jobs/wasm/hello.wasm')]);
});

Wasm('a missing module or a wrong pin is named under its part; a bad file is refused before any module is read', async (ctx) => {
  await ctx.write('hello.wasm', await hello());
  const missing = await ctx.write('a.json', file({ ok: { executor: 'wasm', wasm: { module: 'hello.wasm' } }, w: { executor: 'wasm', wasm: { module: 'nope.wasm' } } }));
  await refusedAt(missing, 'allocations.w.wasm.module', /cannot read the module nope\.wasm: no such file; the path is relative to the job file/);
  const pinned = await ctx.write('b.json', file({ w: { executor: 'wasm', wasm: { module: 'hello.wasm', sha256: '0'.repeat(64) } } }));
  await refusedAt(pinned, 'allocations.w.wasm.sha256', /not the 0{64} the job names/);
  const { reads, options } = recording();
  const bad = await ctx.write('c.json', file({ w: { executor: 'wasm', wasm: { module: 'hello.wasm' }, restart: 'always' } }));
  await refusedAt(bad, 'allocations.w.restart', /"always" is not allowed for a task/, options);
  assert.equal(reads, [bad]);
});

Wasm.run();

const Bad = fileSuite('ensemble files: the bad files of INTERFACE.md exit 2 naming the field');

Bad('a dependency cycle, naming the parts in it', async (ctx) => {
  const f = await ctx.write('e.yaml', file({ a: { dependsOn: ['b'] }, b: { dependsOn: ['c'] }, c: { dependsOn: ['a'] } }));
  await refusedAt(f, 'allocations.a.dependsOn', /: a -> b -> c -> a is a dependency cycle/);
});

Bad('dependsOn an unknown part', async (ctx) => {
  await refusedAt(await ctx.write('e.yaml', file({ kv: {}, client: { dependsOn: ['kvv'] } })), 'allocations.client.dependsOn', /"kvv" is not a part of this ensemble \(its parts: kv, client\)/);
});

Bad('a healthcheck port that is not in ports', async (ctx) => {
  const kv = { type: 'service', ports: ['http'], healthcheck: { http: { port: 'admin', path: '/health' } } };
  await refusedAt(await ctx.write('e.yaml', file({ kv })), 'allocations.kv.healthcheck.http.port', /"admin" is not one of the part's ports \(http\)/);
});

Bad('a task with restart: always', async (ctx) => {
  await refusedAt(await ctx.write('e.yaml', file({ job: { restart: 'always' } })), 'allocations.job.restart', /"always" is not allowed for a task/);
  await refusedAt(await ctx.write('f.yaml', file({ job: { type: 'task', restart: 'always' } })), 'allocations.job.restart', /"always" is not allowed for a task/);
});

Bad.run();

const Fields = fileSuite('ensemble files: other refusals name the field');

Fields('unknown type, restart or recovery list the choices', async (ctx) => {
  await refusedAt(await ctx.write('a.json', file({ kv: { type: 'daemon' } })), 'allocations.kv.type', /"daemon" is not one of task, service/);
  await refusedAt(await ctx.write('b.json', file({ kv: { restart: 'sometimes' } })), 'allocations.kv.restart', /"sometimes" is not one of never, on-failure, always/);
  await refusedAt(await ctx.write('c.json', file({ kv: {} }, { recovery: 'all_for_one' })), 'recovery', /"all_for_one" is not one of one_for_one, one_for_all, rest_for_one/);
});

Fields("a part's job fields as in a job file: executor, its section, resources, sizes and durations", async (ctx) => {
  await refusedAt(await ctx.write('a.json', file({ kv: { executor: 'docker' } })), 'allocations.kv.executor', /unknown executor "docker"; use "wasm" or "process"/);
  await refusedAt(await ctx.write('b.json', { name: 'e', allocations: { kv: { resources: PROC.resources } } }), 'allocations.kv.executor', /is required/);
  await refusedAt(await ctx.write('c.json', file({ kv: { process: undefined } })), 'allocations.kv.process.command', /required for executor "process"/);
  await refusedAt(await ctx.write('d.json', file({ kv: { executor: 'wasm' } })), 'allocations.kv.wasm.module', /required for executor "wasm"/);
  await refusedAt(await ctx.write('e.json', file({ kv: { resources: { cpu: 1, memory: '12x' } } })), 'allocations.kv.resources.memory', /"12x" is not a size/);
  await refusedAt(await ctx.write('f.json', file({ kv: { resources: { cpu: -1, memory: '1GB' } } })), 'allocations.kv.resources.cpu', /-1 is not a number of cores above 0/);
  await refusedAt(await ctx.write('g.json', file({ kv: { timeout: 'soon' } })), 'allocations.kv.timeout', /"soon" is not a duration/);
  await refusedAt(await ctx.write('h.json', file({ kv: {} }, { maxRestarts: { count: 5, within: 'soon' } })), 'maxRestarts.within', /"soon" is not a duration/);
  await refusedAt(await ctx.write('i.json', file({ kv: {} }, { timeout: '8d' })), 'timeout', /outside 1 s\.\.7 days/);
});

Fields('a health check needs exactly one of http and command; unknown fields are refused at their place', async (ctx) => {
  const hc = (healthcheck: object) => file({ kv: { type: 'service', ports: ['http'], healthcheck } });
  await refusedAt(await ctx.write('a.json', hc({ interval: '1s' })), 'allocations.kv.healthcheck', /needs http: \{ port, path \} or command/);
  await refusedAt(await ctx.write('b.json', hc({ http: { port: 'http', path: '/' }, command: ['true'] })), 'allocations.kv.healthcheck', /has both http and command/);
  await refusedAt(await ctx.write('c.json', file({ kv: { depends_on: ['x'] } })), 'allocations.kv', /unknown field "depends_on"/);
  await refusedAt(await ctx.write('d.json', hc({ http: { port: 'http', path: '/', method: 'GET' } })), 'allocations.kv.healthcheck.http', /unknown field "method"/);
});

Fields('part names are checked as written: not a letter first, __proto__, or the same env name', async (ctx) => {
  await refusedAt(await ctx.write('a.json', file({ '1st': {} })), 'allocations.1st', /"1st" is not a part name/);
  await refusedAt(await ctx.write('b.json', '{"name": "e", "allocations": {"__proto__": {"executor": "process"}}}'), 'allocations.__proto__', /is not a part name/);
  await refusedAt(await ctx.write('c.yaml', file({ 'kv-a': {}, kv_a: {} })), 'allocations.kv_a', /kv-a and kv_a would both be KV_A/);
});

Fields('no allocations, too many parts, or a one-part job field at the top', async (ctx) => {
  await refusedAt(await ctx.write('a.json', { name: 'e' }), 'allocations', /is required/);
  await refusedAt(await ctx.write('b.json', { name: 'e', allocations: {} }), 'allocations', /has no parts/);
  const many = Object.fromEntries(Array.from({ length: 65 }, (_, i) => [`p${i}`, {}]));
  await refusedAt(await ctx.write('c.json', file(many)), 'allocations', /has 65 parts; an ensemble has at most 64/);
  await refusedAt(await ctx.write('d.json', { ...file({ kv: {} }), executor: 'process' }), 'executor', /belongs to each part in an ensemble/);
});

Fields('a part too large for a deal is refused naming the field that takes the most', async (ctx) => {
  const args = (n: number) => Array.from({ length: n }, (_, i) => `${i}`.padEnd(8000, 'x'));
  const f = await ctx.write('e.json', file({ small: { process: { command: 'sh', args: args(1) } }, big: { process: { command: 'sh', args: args(9) } } }));
  await refusedAt(f, 'allocations.big.process.args', /takes \d+ of the job's \d+ bytes/);
});

Fields.run();

const OnePart = fileSuite('ensemble files: the one-part job file is unchanged');

OnePart('loadJobFile still refuses allocations, and loadEnsembleFile a one-part job file', async (ctx) => {
  const f = await ctx.write('e.yaml', KV_DEMO);
  let message = '';
  await loadJobFile(f).catch((err: Error) => (message = err.message));
  assert.match(message, /\(top level\): unknown fields .*"allocations"/);
  await refusedAt(await ctx.write('p.json', { name: 'hi', ...PROC }), 'executor', /belongs to each part in an ensemble/);
});

OnePart.run();
