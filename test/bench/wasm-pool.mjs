// Many tiny WASM instances of one requester through WasmRunnerPool (runtime/executors/wasm-pool.ts): N instances of
// the demo's hello module (runtime/executors/examples/hello.wat: a few WASI writes, args and env) with CONCURRENCY
// in flight, each a fresh instance in the requester's warm runner process, vs the raw floor in this process:
// WebAssembly.instantiate of the same compiled module + _start under the same WASI shim, no pool, no worker, no IPC.
//   instances/s   wall clock, each side alone
//   CPU/instance  ours: this process + the runner process (all their threads); raw: this process
// The target is on the CPU each pooled instance costs beyond the raw instance (well under 1 ms).
//
// Standalone: `npm run build && node test/bench/wasm-pool.mjs [--json FILE]`; from run.mjs: `wasmPoolBenches`
// gives [id, fn] pairs, each fn resolving to an array of rows in run.mjs's shape.
import { writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { ConsoleStdout, File, OpenFile, WASI } from '@bjorn3/browser_wasi_shim';
import { exampleModule } from '../../runtime/executors/examples/examples.js';
import { sha256Hex } from '../../runtime/executors/wasm-module.js';
import { WasmRunnerPool } from '../../runtime/executors/wasm-pool.js';
import { alternate, cleanup, cleanups, cpuSecondsOf, guard, loadAverage, median, reportHead, round, step, table, tempDir, withTimeout } from './common.mjs';

const N = 2000;
const CONCURRENCY = 4;
const RUNS = 3;
const WARM = 300;
const OWNER = '12D3KooWBenchRequesterAAAAAAAAAAAAAAAAAAAAAAAAAA';
const ARGS = ['task'];
const ENV = { DMS_INDEX: '0' };

/** N instances through the pool, CONCURRENCY at a time: { ms, cpuMs } (this process and the runner). */
async function poolSide(pool, spec, runnerPid, n) {
  const c0 = process.cpuUsage();
  const r0 = await cpuSecondsOf(runnerPid);
  const t0 = performance.now();
  let next = 0;
  let outputBytes = 0;
  const lane = async () => {
    while (next < n) {
      next += 1;
      const instance = await pool.run(OWNER, { ...spec, env: { DMS_INDEX: String(next) } }, (c) => (outputBytes += c.data.byteLength));
      const r = await instance.wait();
      if (r.reason !== 'completed') throw new Error(`a pooled instance ended ${r.reason}: ${r.message}`);
      if (instance.pid !== runnerPid) throw new Error(`the requester's runner changed from ${runnerPid} to ${instance.pid}`);
    }
  };
  await withTimeout(Promise.all(Array.from({ length: CONCURRENCY }, lane)), 120_000, `${n} pooled instances`);
  const ms = performance.now() - t0;
  const c = process.cpuUsage(c0);
  const r1 = await cpuSecondsOf(runnerPid);
  if (outputBytes === 0) throw new Error('the pooled instances wrote nothing');
  return { ms, cpuMs: (c.user + c.system) / 1000 + (r1 - r0) * 1000 };
}

/** N raw instances in this process: instantiate the compiled module and run _start under the shim. */
async function rawSide(module, n) {
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  let outputBytes = 0;
  for (let i = 1; i <= n; i += 1) {
    const sink = new ConsoleStdout((d) => (outputBytes += d.byteLength));
    const wasi = new WASI(['hello.wasm', ...ARGS], [`DMS_INDEX=${i}`], [new OpenFile(new File([])), sink, sink], { debug: false });
    const instance = await WebAssembly.instantiate(module, { wasi_snapshot_preview1: wasi.wasiImport });
    const code = wasi.start(instance);
    if (code !== 0) throw new Error(`a raw instance exited ${code}`);
  }
  const ms = performance.now() - t0;
  const c = process.cpuUsage(c0);
  if (outputBytes === 0) throw new Error('the raw instances wrote nothing');
  return { ms, cpuMs: (c.user + c.system) / 1000 };
}

async function benchWasmPool() {
  const bytes = await exampleModule('hello');
  const file = path.join(await tempDir('wasm-pool'), 'hello.wasm');
  await writeFile(file, bytes);
  const spec = { name: 'hello.wasm', module: { path: file, sha256: sha256Hex(bytes) }, args: ARGS, env: ENV, memoryBytes: 16 * 2 ** 20, timeoutMs: 10_000, logLimitBytes: 64 * 1024 };
  const module = await WebAssembly.compile(bytes);

  const pool = new WasmRunnerPool({ spare: 1 });
  const close = () => pool.close();
  cleanups.add(close);
  await withTimeout(pool.warm(), 20_000, 'the spare runner');
  const tFirst = performance.now();
  const first = await pool.run(OWNER, spec);
  const firstRunMs = performance.now() - tFirst; // a spare taken: no process start
  await first.wait();
  const runnerPid = first.pid;
  await poolSide(pool, spec, runnerPid, WARM);
  await rawSide(module, WARM);

  const ours = [];
  const raw = [];
  for (let k = 0; k < RUNS; k += 1) {
    const [o, b] = await alternate(k, () => poolSide(pool, spec, runnerPid, N), () => rawSide(module, N));
    ours.push(o);
    raw.push(b);
  }
  await withTimeout(pool.warm(), 20_000, 'the spare runner');
  const stats = pool.stats();
  await close();
  cleanups.delete(close);

  const rate = (x) => N / (x.ms / 1000);
  const cpuUs = (x) => (x.cpuMs * 1000) / N;
  const oRate = median(ours.map(rate));
  const bRate = median(raw.map(rate));
  const oCpu = median(ours.map(cpuUs));
  const bCpu = median(raw.map(cpuUs));
  const notes = [
    `${N} instances a run, ${CONCURRENCY} in flight, ${RUNS} runs a side (medians); runner threads ${Math.min(4, os.availableParallelism())}`,
    `CPU per instance: ours ${round(oCpu)} µs (this process + the runner), raw ${round(bCpu)} µs; the pool's overhead ${round(oCpu - bCpu)} µs an instance`,
    `runner start (spawn to ready, median of ${stats.started}): ${round(stats.startMs ?? NaN)} ms; the first run() of a new requester took ${round(firstRunMs, 1)} ms (a spare was taken)`,
  ];
  return [
    {
      id: 'wasm-pool-rate',
      name: `tiny WASM instances/s of one requester: WasmRunnerPool (warm runner process, worker threads, fresh instance each) vs raw instantiate + _start in-process`,
      unit: 'instances/s',
      ours: round(oRate),
      raw: round(bRate),
      ratio: round(oRate / bRate, 3),
      targets: [],
      detail: { oursRuns: ours.map((x) => round(rate(x))), rawRuns: raw.map((x) => round(rate(x))) },
      notes,
    },
    {
      id: 'wasm-pool-cpu',
      name: 'CPU per tiny WASM instance (µs, lower is better): WasmRunnerPool (both processes) vs raw in-process; target: the pool adds well under 1 ms',
      unit: 'µs',
      lowerIsBetter: true,
      ours: round(oCpu),
      raw: round(bCpu),
      ratio: round(oCpu / bCpu, 2),
      // the target is on the overhead: what the pool adds to the raw instance's own CPU
      targets: [{ kind: 'ours', max: round(bCpu + 1000) }],
      detail: { oursRuns: ours.map((x) => round(cpuUs(x))), rawRuns: raw.map((x) => round(cpuUs(x))), overheadUs: round(oCpu - bCpu), runnerStartMs: round(stats.startMs ?? NaN), firstRunMs: round(firstRunMs, 1) },
    },
  ];
}

/** [id, fn] pairs for run.mjs; each fn resolves to an array of rows. */
export const wasmPoolBenches = [['wasm-pool', benchWasmPool]];

// ---------------------------------------------------------------------------------------------- standalone

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const args = process.argv.slice(2);
  const jsonFile = args.includes('--json') ? args[args.indexOf('--json') + 1] : undefined;
  const watchdog = guard(180_000, 'wasm-pool bench');
  const started = performance.now();
  const loadBefore = os.loadavg()[0];
  const results = [];
  try {
    for (const [id, fn] of wasmPoolBenches) await step(results, 'bench', id, fn, cleanup);
  } finally {
    await cleanup();
  }
  const report = { ...reportHead('dms-runtime wasm-pool bench', started), loadAverage1m: loadAverage(loadBefore), ok: results.every((r) => !r.error && r.pass !== false), results };
  const lines = (r) => (r.error ? [] : [`ours runs ${r.detail.oursRuns.join(', ')} ${r.unit}; raw runs ${r.detail.rawRuns.join(', ')} ${r.unit}`, ...(r.notes ?? [])]);
  process.stdout.write(`\n${table(results, lines)}\n\ntotal ${report.totalSeconds} s on ${report.cpus} cores, Node ${report.node}; 1-minute load average ${report.loadAverage1m.before} before, ${report.loadAverage1m.after} after\n`);
  if (jsonFile) await writeFile(jsonFile, `${JSON.stringify(report, null, 2)}\n`);
  process.stdout.write(`${JSON.stringify(report)}\n`);
  clearTimeout(watchdog);
  process.exit(results.some((r) => r.error) ? 1 : 0);
}

