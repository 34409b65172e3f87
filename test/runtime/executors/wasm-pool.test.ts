// WasmRunnerPool: instances of one requester in its own warm runner process, each with fresh memory; limits per
// instance; requesters apart. Needs the compiled runner (npx tsc -p tsconfig.json), as the node does.
import { readdirSync, readFileSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import type { ExecutionResult } from '../../../actors/executor.ts';
import { compileWat, exampleModule } from '../../../runtime/executors/examples/examples.ts';
import { sha256Hex } from '../../../runtime/executors/wasm-module.ts';
import { WasmRunnerPool, type PoolInstance, type PoolInstanceSpec, type WasmRunnerPoolInit } from '../../../runtime/executors/wasm-pool.ts';
import { sleep, waitFor, within } from '../../fixtures/waiting.ts';

const MiB = 2 ** 20;
const RUNNER_JS = fileURLToPath(new URL('../../../runtime/executors/wasm-pool-runner.js', import.meta.url));
const fixtures = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'fixtures', 'wasm');
const TRAP_WAT = '(module (memory (export "memory") 1) (func (export "_start") unreachable))';
const NO_START_WAT = '(module (memory (export "memory") 1) (func (export "main")))';

let dir = '';
const modules = new Map<string, { path: string; sha256: string }>();
async function moduleFile(name: string, bytes: Uint8Array): Promise<{ path: string; sha256: string }> {
  const file = path.join(dir, `${name}.wasm`);
  await writeFile(file, bytes);
  return { path: file, sha256: sha256Hex(bytes) };
}
/** test/fixtures/wasm/<name>.wat, or inline WAT, compiled to a file once. */
async function mod(name: string, wat?: string): Promise<{ path: string; sha256: string }> {
  let m = modules.get(name);
  if (!m) {
    const bytes = name === 'hello' ? await exampleModule('hello') : await compileWat(wat ?? (await readFile(path.join(fixtures, `${name}.wat`), 'utf8')), `${name}.wat`);
    m = await moduleFile(name, bytes);
    modules.set(name, m);
  }
  return m;
}

function spec(module: { path: string; sha256: string }, over: Partial<PoolInstanceSpec> = {}): PoolInstanceSpec {
  return { name: 'task.wasm', module, args: [], env: {}, memoryBytes: 16 * MiB, timeoutMs: 10_000, logLimitBytes: MiB, ...over };
}

interface Ran {
  readonly instance: PoolInstance;
  readonly result: Promise<ExecutionResult>;
  stdout: string;
  stderr: string;
}
async function start(pool: WasmRunnerPool, owner: string, s: PoolInstanceSpec): Promise<Ran> {
  const ran = { stdout: '', stderr: '' } as Ran & { instance: PoolInstance; result: Promise<ExecutionResult> };
  const instance = await within('run()', pool.run(owner, s, (c) => (ran[c.stream] += Buffer.from(c.data).toString('utf8'))), 10_000);
  return Object.assign(ran, { instance, result: within('the instance to end', instance.wait(), 15_000) });
}
async function runOne(pool: WasmRunnerPool, owner: string, s: PoolInstanceSpec): Promise<Ran & { end: ExecutionResult }> {
  const ran = await start(pool, owner, s);
  return Object.assign(ran, { end: await ran.result });
}

/** Pids of this process's children running the pool runner script (whatever wraps them exec'd into node). */
function runnerChildren(): number[] {
  const pids: number[] = [];
  for (const p of readdirSync('/proc').filter((d) => /^\d+$/.test(d))) {
    try {
      const stat = readFileSync(`/proc/${p}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      const cmd = readFileSync(`/proc/${p}/cmdline`, 'utf8');
      if (ppid === process.pid && cmd.includes('wasm-pool-runner.js')) pids.push(Number(p));
    } catch {
      // gone meanwhile
    }
  }
  return pids;
}

function poolSuite(name: string, init: WasmRunnerPoolInit = {}) {
  const s = suite<{ pool: WasmRunnerPool }>(name, { pool: undefined as unknown as WasmRunnerPool });
  s.before(async () => {
    await readFile(RUNNER_JS).catch(() => {
      throw new Error(`${RUNNER_JS} is missing: build first (npx tsc -p tsconfig.json)`);
    });
    dir ||= await mkdtemp(path.join(os.tmpdir(), 'dms-wasm-pool-'));
  });
  s.before.each(async (ctx) => {
    ctx.pool = new WasmRunnerPool({ runnerPath: RUNNER_JS, ...init });
    await within('the spare runner', ctx.pool.warm(), 10_000);
  });
  s.after.each(async (ctx) => {
    await within('close()', ctx.pool.close(), 10_000);
  });
  return s;
}

// ---- instances

const instances = poolSuite('wasm-pool: instances', { threads: 1 });

instances('each instance gets fresh memory and globals, in the same runner and thread', async ({ pool }) => {
  const m = await mod('fresh-memory');
  const pids = new Set<number>();
  for (let i = 0; i < 12; i += 1) {
    const r = await runOne(pool, 'owner-a', spec(m));
    assert.is(r.end.reason, 'completed', `instance ${i}: ${r.end.message} (exit 7: memory reused, 8: globals reused, 9: memory size reused)`);
    pids.add(r.instance.pid);
  }
  assert.is(pids.size, 1, 'one runner served them all');
});

instances('args and env (DMS_INDEX) reach the module, and nothing else of the environment', async ({ pool }) => {
  const r = await runOne(pool, 'owner-a', spec(await mod('hello'), { args: ['one', 'dö'], env: { DMS_INDEX: '7' } }));
  assert.is(r.end.reason, 'completed', r.end.message);
  assert.equal(r.stdout.split('\n').filter((l) => l.startsWith('env: ')), ['env: DMS_INDEX=7']);
  assert.ok(r.stdout.includes('arg: one\narg: dö\n'), r.stdout);
  assert.is(r.stderr, 'hello on stderr\n');
  assert.is(r.end.outputBytes, Buffer.byteLength(r.stdout) + Buffer.byteLength(r.stderr));
});

instances('a trap fails the instance, and the next one runs', async ({ pool }) => {
  const r = await runOne(pool, 'owner-a', spec(await mod('trap', TRAP_WAT)));
  assert.is(r.end.reason, 'failed');
  assert.match(r.end.message, /trapped: RuntimeError: unreachable/);
  const after = await runOne(pool, 'owner-a', spec(await mod('hello'), { args: ['exit=3'] }));
  assert.is(after.end.reason, 'failed');
  assert.is(after.end.exitCode, 3);
  assert.is(after.instance.pid, r.instance.pid);
});

instances('memory: growing past the cap ends the instance with reason memory', async ({ pool }) => {
  const r = await runOne(pool, 'owner-a', spec(await mod('grow'), { memoryBytes: 20 * MiB }));
  assert.is(r.end.reason, 'memory', r.end.message);
  assert.match(r.end.message, /past its 20 MiB limit/);
  const big = await runOne(pool, 'owner-a', spec(await mod('bigmem'), { memoryBytes: 8 * MiB }));
  assert.is(big.end.reason, 'memory', big.end.message);
  const ok = await runOne(pool, 'owner-a', spec(await mod('hello')));
  assert.is(ok.end.reason, 'completed', 'the runner survives');
});

instances('output past logLimitBytes is counted and dropped', async ({ pool }) => {
  const r = await runOne(pool, 'owner-a', spec(await mod('chatty'), { logLimitBytes: 1000 }));
  assert.is(r.end.reason, 'completed', r.end.message);
  assert.is(r.stdout.length, 1000);
  assert.is(r.end.outputBytes, 2 * MiB);
  assert.ok(r.end.outputTruncated);
});

instances('refusals: module file problems reject, a module that is not a WASI command fails', async ({ pool }) => {
  const hello = await mod('hello');
  const err = await pool.run('owner-a', spec({ path: hello.path, sha256: 'ab'.repeat(32) })).catch((e: Error) => e);
  assert.is((err as Error).name, 'ModuleHashMismatchError');
  const missing = await pool.run('owner-a', spec({ path: path.join(dir, 'nope.wasm'), sha256: 'ab'.repeat(32) })).catch((e: Error) => e);
  assert.is((missing as Error).name, 'ModuleNotFoundError');
  const tooBig = await pool.run('owner-a', spec(hello, { memoryBytes: 4096 * MiB })).catch((e: Error) => e);
  assert.is((tooBig as Error).name, 'InvalidJobError');
  const r = await runOne(pool, 'owner-a', spec(await mod('no-start', NO_START_WAT)));
  assert.is(r.end.reason, 'failed');
  assert.match(r.end.message, /not a WASI command/);
});

instances.run();

// ---- time and cancel

const time = poolSuite('wasm-pool: timeout and cancel', { threads: 2 });

time('a timeout ends that instance only; the others in the runner complete', async ({ pool }) => {
  const loop = await start(pool, 'owner-a', spec(await mod('loop'), { timeoutMs: 400 }));
  const others = await Promise.all([0, 1, 2, 3].map(async (i) => runOne(pool, 'owner-a', spec(await mod('hello'), { env: { DMS_INDEX: String(i) } }))));
  const end = await loop.result;
  assert.is(end.reason, 'timeout', end.message);
  assert.match(end.message, /time limit of 400 ms/);
  assert.is(loop.stdout, 'looping\n', 'what it wrote before it was stopped is kept');
  for (const o of others) {
    assert.is(o.end.reason, 'completed', o.end.message);
    assert.is(o.instance.pid, loop.instance.pid);
  }
  const after = await runOne(pool, 'owner-a', spec(await mod('hello')));
  assert.is(after.end.reason, 'completed', 'the stopped thread was replaced');
});

time('cancel stops a running instance, and one still queued', async ({ pool }) => {
  const loops = await Promise.all([0, 1, 2].map(async () => start(pool, 'owner-a', spec(await mod('loop')))));
  await waitFor('two loops to start', () => loops.filter((l) => l.stdout).length === 2);
  const t0 = performance.now();
  for (const l of loops) l.instance.cancel();
  const ends = await Promise.all(loops.map((l) => l.result));
  assert.ok(performance.now() - t0 < 2000, 'cancel is prompt');
  for (const e of ends) assert.is(e.reason, 'cancelled', e.message);
  loops[0]!.instance.cancel(); // idempotent
  const after = await runOne(pool, 'owner-a', spec(await mod('hello')));
  assert.is(after.end.reason, 'completed');
});

time.run();

// ---- requesters apart

const owners = poolSuite('wasm-pool: requesters', { threads: 2, spare: 1 });

owners('a spare runner is taken by a new requester without a process start; its own runner is reused', async ({ pool }) => {
  assert.equal([pool.stats().started, pool.stats().spare], [1, 1]);
  const a = await runOne(pool, 'owner-a', spec(await mod('hello')));
  assert.is(pool.stats().started, 2, 'one start: the spare that replaces the one taken');
  const a2 = await runOne(pool, 'owner-a', spec(await mod('hello')));
  assert.is(a2.instance.pid, a.instance.pid);
  assert.is(pool.stats().started, 2);
  await within('the new spare', pool.warm(), 10_000);
  const b = await runOne(pool, 'owner-b', spec(await mod('hello')));
  assert.is(pool.stats().started, 3);
  assert.is.not(b.instance.pid, a.instance.pid, 'different requesters, different processes');
  assert.ok(typeof pool.stats().startMs === 'number' && pool.stats().startMs! > 0);
});

owners('a requester\'s runner killed: only its instances end crashed, another requester\'s carry on', async ({ pool }) => {
  const loop = await mod('loop');
  const a = await Promise.all([0, 1].map(() => start(pool, 'owner-a', spec(loop))));
  const b = await start(pool, 'owner-b', spec(loop));
  await waitFor('all three looping', () => a.every((x) => x.stdout) && b.stdout !== '', 10_000);
  assert.is.not(a[0]!.instance.pid, b.instance.pid);
  process.kill(a[0]!.instance.pid, 'SIGKILL');
  for (const x of a) {
    const end = await x.result;
    assert.is(end.reason, 'crashed');
    assert.is(end.signal, 'SIGKILL');
    assert.match(end.message, /only this requester's runner was lost/);
  }
  const bEnded = await Promise.race([b.result.then(() => true), sleep(300).then(() => false)]);
  assert.not.ok(bEnded, 'the other requester\'s instance still runs');
  b.instance.cancel();
  assert.is((await b.result).reason, 'cancelled');
  const again = await runOne(pool, 'owner-a', spec(await mod('hello')));
  assert.is(again.end.reason, 'completed', 'the requester gets a fresh runner');
  assert.is.not(again.instance.pid, a[0]!.instance.pid);
  assert.is(pool.stats().crashed, 1);
});

owners('close() kills every runner, spares included, and ends what ran', async ({ pool }) => {
  const loop = await start(pool, 'owner-a', spec(await mod('loop')));
  await waitFor('looping', () => loop.stdout !== '');
  await within('the spare', pool.warm(), 10_000);
  assert.ok(runnerChildren().length >= 2, `runners before close: ${runnerChildren().join(', ')}`);
  await within('close()', pool.close(), 10_000);
  assert.equal(runnerChildren(), []);
  assert.is((await loop.result).reason, 'cancelled');
  const err = await pool.run('owner-a', spec(await mod('hello'))).catch((e: Error) => e);
  assert.is((err as Error).name, 'ExecutorStartError');
});

owners.run();

// ---- CPU share and idleness

const upkeep = poolSuite('wasm-pool: CPU share and idle runners', { threads: 1, idleMs: 300 });

/** The cpu.cfs_quota_us of a process's cgroup, or undefined where it has none of ours. */
function cpuQuotaOf(pid: number): number | undefined {
  const line = readFileSync(`/proc/${pid}/cgroup`, 'utf8').split('\n').find((l) => /:(cpu|cpu,cpuacct|cpuacct,cpu):/.test(l));
  const rel = line?.split(':')[2];
  if (!rel?.includes('/dms/')) return undefined;
  return Number(readFileSync(path.join('/sys/fs/cgroup/cpu', rel, 'cpu.cfs_quota_us'), 'utf8'));
}

upkeep('setCpu sets the requester\'s runner CPU quota, now and for its next runner', async ({ pool }) => {
  const r = await runOne(pool, 'owner-a', spec(await mod('hello')));
  const before = cpuQuotaOf(r.instance.pid);
  if (before === undefined) return void console.log('  (no cgroups here: setCpu has nothing to set)');
  assert.is(before, os.availableParallelism() * 100_000, 'every core until set');
  pool.setCpu('owner-a', 0.25);
  await waitFor('the quota to be written', () => cpuQuotaOf(r.instance.pid) === 25_000);
  pool.setCpu('owner-b', 0.5);
  const b = await runOne(pool, 'owner-b', spec(await mod('hello')));
  await waitFor('owner-b\'s quota', () => cpuQuotaOf(b.instance.pid) === 50_000);
  assert.throws(() => pool.setCpu('owner-a', 0), /positive number of cores/);
});

upkeep('a requester with a tiny CPU share gets a runner that starts on every core, then holds to its share', async ({ pool }) => {
  // starting a runner (a Node process and its threads) costs ~0.1-0.2 CPU-s: under a 0.01-cpu quota it took ~30 s
  pool.setCpu('owner-c', 0.01);
  await runOne(pool, 'owner-d', spec(await mod('hello'))); // takes the ready spare: the next one is starting now
  const t0 = performance.now();
  const r = await within('the tiny requester\'s instance', runOne(pool, 'owner-c', spec(await mod('hello'))), 10_000);
  assert.is(r.end.reason, 'completed');
  const quota = cpuQuotaOf(r.instance.pid);
  if (quota === undefined) return void console.log(`  (no cgroups here; ran in ${Math.round(performance.now() - t0)} ms)`);
  await waitFor('its share (at least MIN_RUNNER_CPU) once ready', () => cpuQuotaOf(r.instance.pid) === 5_000);
});

upkeep('an idle requester\'s runner is stopped after idleMs, and the next instance gets a fresh one', async ({ pool }) => {
  const r = await runOne(pool, 'owner-a', spec(await mod('hello')));
  const killed = pool.stats().killed;
  await waitFor('the idle runner to go', () => pool.stats().killed === killed + 1, 5000);
  await waitFor('its process to exit', () => !runnerChildren().includes(r.instance.pid), 5000);
  const again = await runOne(pool, 'owner-a', spec(await mod('hello')));
  assert.is(again.end.reason, 'completed');
  assert.is.not(again.instance.pid, r.instance.pid);
});

upkeep.after(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

upkeep.run();
