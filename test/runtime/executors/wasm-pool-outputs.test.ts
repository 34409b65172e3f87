// WasmRunnerPool with `/out` (outputsDir): an instance writes its files on disk, bounded by outputsMaxBytes (past
// it: failed, in WasiExecutor's words), large writes do not crash the runner, and no file an instance left open
// (it ended, or was stopped at its time limit) stays open in the runner. Needs the compiled runner (npx tsc -p tsconfig.json).
import { mkdir, mkdtemp, readdir, readFile, readlink, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import type { ExecutionResult } from '../../../actors/executor.ts';
import { compileWat } from '../../../runtime/executors/examples/examples.ts';
import { sha256Hex } from '../../../runtime/executors/wasm-module.ts';
import { WasmRunnerPool, type PoolInstanceSpec } from '../../../runtime/executors/wasm-pool.ts';
import { instanceOutputs } from '../../../runtime/executors/wasm-pool-outputs.ts';
import { ConsoleStdout, WASI } from '@bjorn3/browser_wasi_shim';
import { sleep, within } from '../../fixtures/waiting.ts';

const MiB = 2 ** 20;
const RUNNER_JS = fileURLToPath(new URL('../../../runtime/executors/wasm-pool-runner.js', import.meta.url));
const fixtures = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'fixtures', 'wasm');

/** Opens /out/held.txt, writes "x" into it, says so on stdout, then loops forever with the file open ("exit" as its data: returns). */
const holdWat = (then: 'loop' | 'exit') => `(module
  (import "wasi_snapshot_preview1" "path_open" (func $path_open (param i32 i32 i32 i32 i32 i64 i64 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 64) "held.txt")
  (data (i32.const 80) "x")
  (data (i32.const 96) "holding\\0a")
  (func (export "_start")
    (if (call $path_open (i32.const 3) (i32.const 0) (i32.const 64) (i32.const 8) (i32.const 9) (i64.const -1) (i64.const -1) (i32.const 0) (i32.const 16))
      (then unreachable))
    (i32.store (i32.const 0) (i32.const 80))
    (i32.store (i32.const 4) (i32.const 1))
    (drop (call $fd_write (i32.load (i32.const 16)) (i32.const 0) (i32.const 1) (i32.const 8)))
    (i32.store (i32.const 0) (i32.const 96))
    (i32.store (i32.const 4) (i32.const 8))
    (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8)))
    ${then === 'loop' ? '(loop $forever (br $forever))' : ''}))`;

interface Ctx {
  pool: WasmRunnerPool;
  dir: string;
}

const test = suite<Ctx>('wasm-pool: /out', { pool: undefined as unknown as WasmRunnerPool, dir: '' });
const modules = new Map<string, { path: string; sha256: string }>();
let dirs = 0;

async function mod(ctx: Ctx, name: string, wat?: string): Promise<{ path: string; sha256: string }> {
  let m = modules.get(name);
  if (!m) {
    const bytes = await compileWat(wat ?? (await readFile(path.join(fixtures, `${name}.wat`), 'utf8')), `${name}.wat`);
    const file = path.join(ctx.dir, `${name}.wasm`);
    await writeFile(file, bytes);
    m = { path: file, sha256: sha256Hex(bytes) };
    modules.set(name, m);
  }
  return m;
}

/** A fresh, empty directory for one instance's /out. */
async function outDir(ctx: Ctx): Promise<string> {
  const d = path.join(ctx.dir, `out-${++dirs}`);
  await mkdir(d);
  return d;
}

function spec(module: { path: string; sha256: string }, over: Partial<PoolInstanceSpec> = {}): PoolInstanceSpec {
  return { name: 'task.wasm', module, args: [], env: {}, memoryBytes: 16 * MiB, timeoutMs: 20_000, logLimitBytes: MiB, ...over };
}

async function runOne(pool: WasmRunnerPool, s: PoolInstanceSpec, onStdout?: (text: string) => void): Promise<{ pid: number; end: ExecutionResult; stderr: string }> {
  let stderr = '';
  const instance = await within('run()', pool.run('owner-a', s, (c) => (c.stream === 'stderr' ? (stderr += Buffer.from(c.data).toString()) : onStdout?.(Buffer.from(c.data).toString()))), 10_000);
  const end = await within('the instance to end', instance.wait(), 30_000);
  return { pid: instance.pid, end, stderr };
}

test.before(async (ctx) => {
  await readFile(RUNNER_JS).catch(() => {
    throw new Error(`${RUNNER_JS} is missing: build first (npx tsc -p tsconfig.json)`);
  });
  ctx.dir = await mkdtemp(path.join(os.tmpdir(), 'dms-wasm-pool-out-'));
});

test.after(async (ctx) => {
  await rm(ctx.dir, { recursive: true, force: true });
});

test.before.each(async (ctx) => {
  ctx.pool = new WasmRunnerPool({ runnerPath: RUNNER_JS, threads: 2 });
  await within('the spare runner', ctx.pool.warm(), 10_000);
});

test.after.each(async (ctx) => {
  await within('close()', ctx.pool.close(), 10_000);
});

test('an instance writes its files into /out on disk, by its DMS_INDEX', async (ctx) => {
  const m = await mod(ctx, 'index-out');
  const dirsOf = await Promise.all([0, 3, 5].map(async (i) => ({ i, dir: await outDir(ctx) })));
  const ends = await Promise.all(dirsOf.map(({ i, dir }) => runOne(ctx.pool, spec(m, { env: { DMS_INDEX: String(i) }, outputsDir: dir, outputsMaxBytes: MiB }))));
  for (const [k, { i, dir }] of dirsOf.entries()) {
    assert.is(ends[k]!.end.reason, 'completed', `instance ${i}: ${ends[k]!.end.message} ${ends[k]!.stderr}`);
    assert.is(await readFile(path.join(dir, 'index.txt'), 'utf8'), `${i}\n`);
    assert.ok((await readFile(path.join(dir, 'part', `${i}.bin`))).equals(Buffer.alloc((i + 1) * 1000, i + 1)), `part/${i}.bin`);
    assert.equal((await readdir(dir)).sort(), ['index.txt', 'part']);
  }
});

test('without outputsDir there is no /out: the module cannot create a file', async (ctx) => {
  const r = await runOne(ctx.pool, spec(await mod(ctx, 'index-out'), { env: { DMS_INDEX: '1' } }));
  assert.is(r.end.reason, 'failed');
  assert.is(r.end.exitCode, 1);
  assert.match(r.stderr, /a write to \/out failed/);
});

test('a 64 MiB file within the cap is written whole, and the runner lives on', async (ctx) => {
  const dir = await outDir(ctx);
  const r = await runOne(ctx.pool, spec(await mod(ctx, 'outputs'), { args: ['big'], outputsDir: dir, outputsMaxBytes: 80 * MiB }));
  assert.is(r.end.reason, 'completed', `${r.end.message} ${r.stderr}`);
  const big = await readFile(path.join(dir, 'data', 'big.bin'));
  assert.is(big.length, 1024 * 65536 + 123);
  assert.is(big.subarray(0, 4).toString('latin1'), 'HEAD');
  assert.is(big[65536 + 300], 300 % 251);
  const after = await runOne(ctx.pool, spec(await mod(ctx, 'index-out'), { env: { DMS_INDEX: '2' }, outputsDir: await outDir(ctx), outputsMaxBytes: MiB }));
  assert.is(after.end.reason, 'completed', after.end.message);
  assert.is(after.pid, r.pid, 'the same runner');
});

test('writing past outputsMaxBytes: the write fails (ENOSPC) and the instance ends failed, as WasiExecutor says it', async (ctx) => {
  const dir = await outDir(ctx);
  const r = await runOne(ctx.pool, spec(await mod(ctx, 'outputs'), { outputsDir: dir, outputsMaxBytes: MiB }));
  assert.is(r.end.reason, 'failed');
  assert.is(r.end.exitCode, 1);
  assert.match(r.end.message, /^wrote more than its disk: its files in \/out would have taken \d+ bytes, over its resources\.disk of 1048576 bytes \(1 MiB\) \(the write failed with ENOSPC; the module then exited with code 1\); ask for more disk$/);
  assert.match(r.stderr, /a write to \/out failed/);
  const ok = await runOne(ctx.pool, spec(await mod(ctx, 'index-out'), { env: { DMS_INDEX: '4' }, outputsDir: await outDir(ctx), outputsMaxBytes: MiB }));
  assert.is(ok.end.reason, 'completed', 'the next instance runs');
});

test('a bad outputsMaxBytes is refused before anything runs', async (ctx) => {
  const err = await ctx.pool.run('owner-a', spec(await mod(ctx, 'index-out'), { outputsDir: ctx.dir, outputsMaxBytes: -1 })).catch((e: Error) => e);
  assert.is((err as Error).name, 'InvalidJobError');
});

/** The fds of process `pid` open on files under `dir`. */
async function fdsUnder(pid: number, dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const fd of await readdir(`/proc/${pid}/fd`).catch(() => [])) {
    const target = await readlink(`/proc/${pid}/fd/${fd}`).catch(() => '');
    if (target.startsWith(dir + path.sep)) out.push(target);
  }
  return out;
}

test('an instance that ends with a file open in /out: the runner closes it', async (ctx) => {
  const dir = await outDir(ctx);
  const r = await runOne(ctx.pool, spec(await mod(ctx, 'hold-exit', holdWat('exit')), { outputsDir: dir, outputsMaxBytes: MiB }));
  assert.is(r.end.reason, 'completed', r.end.message);
  assert.is(await readFile(path.join(dir, 'held.txt'), 'utf8'), 'x');
  assert.equal(await fdsUnder(r.pid, dir), [], 'no file of the ended instance is left open');
});

test('an instance stopped at its time limit with a file open in /out: the file is closed with its thread', async (ctx) => {
  const dir = await outDir(ctx);
  let stdout = '';
  const instance = await within('run()', ctx.pool.run('owner-a', spec(await mod(ctx, 'hold', holdWat('loop')), { timeoutMs: 1500, outputsDir: dir, outputsMaxBytes: MiB }), (c) => (stdout += Buffer.from(c.data).toString())), 10_000);
  const deadline = Date.now() + 5000;
  while (!stdout.includes('holding') && Date.now() < deadline) await sleep(10);
  assert.ok(stdout.includes('holding'), 'the module opened its file');
  assert.equal(await fdsUnder(instance.pid, dir), [path.join(dir, 'held.txt')], 'the runner holds the file open while the instance runs');
  const end = await within('the instance to end', instance.wait(), 10_000);
  assert.is(end.reason, 'timeout', end.message);
  assert.equal(await fdsUnder(instance.pid, dir), [], 'no file of the stopped instance is left open');
  assert.is(await readFile(path.join(dir, 'held.txt'), 'utf8'), 'x');
});

test.run();

// The runner's worker thread: /out writes go straight from the module's memory (the shim's own fd_write copies
// every iovec into a fresh buffer, which at a file's write rate crashes a runner with a small address space).
const worker = suite('wasm-pool-outputs: an instance\'s /out in its thread');

worker('attach makes /out file writes in place, and they land in the file', async () => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'dms-pool-out-'));
  try {
    const out = instanceOutputs({ dir, capBytes: MiB });
    const w = new WASI([], [], [new ConsoleStdout(() => {}), new ConsoleStdout(() => {}), new ConsoleStdout(() => {}), out.preopen], { debug: false });
    const shimWrite = w.wasiImport['fd_write'];
    out.attach(w);
    assert.is.not(w.wasiImport['fd_write'], shimWrite, 'fd_write is replaced');
    const memory = { buffer: new ArrayBuffer(65536) }; // what the shim reads of a WebAssembly.Memory
    (w as unknown as { inst: unknown }).inst = { exports: { memory } };
    const bytes = new Uint8Array(memory.buffer);
    bytes.set(Buffer.from('a.txt'), 100);
    bytes.set(Buffer.from('payload'), 200);
    const view = new DataView(memory.buffer);
    const imports = w.wasiImport as unknown as Record<string, (...a: unknown[]) => number>;
    assert.is(imports['path_open']!(3, 0, 100, 5, 9, -1n, -1n, 0, 16), 0);
    view.setUint32(0, 200, true);
    view.setUint32(4, 7, true);
    assert.is(imports['fd_write']!(view.getUint32(16, true), 0, 1, 8), 0);
    assert.is(view.getUint32(8, true), 7);
    assert.is(out.usage().usedBytes, 7);
    out.release();
    assert.is(await readFile(path.join(dir, 'a.txt'), 'utf8'), 'payload');
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

worker.run();
