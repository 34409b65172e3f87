// Array job benchmark: real `node runtime/main.js` processes on loopback (`--bid-window 500ms`), beside the raw
// baseline it is built on, in the same run:
//   array-throughput  4 nodes (A requester; B, C and D providers, default cpu). One array job of ARRAY_BENCH_N
//                     (2000) instances of the tiny example WASM module (0.01 cpu, 16 MiB each) deployed through the
//                     API (POST /v1/deploy { job, module }); tasks/s from the deploy sent to the record's `endedAt`
//                     (A's clock, the same machine). Raw: the same module instantiated and run (`_start` under
//                     @bjorn3/browser_wasi_shim, a fresh WebAssembly.Instance each time, the module compiled once) as
//                     many times in this process, one after another: what running the instances alone costs on one
//                     core, with no negotiation, no isolation and no reporting. Also reported: rounds, deals, CPU the
//                     nodes and their runners spent per instance (/proc).
// Standalone: `npm run build && node test/bench/arrays.mjs [--json FILE]` (ARRAY_BENCH_PROF=DIR: the nodes write
// --cpu-prof profiles there); from run.mjs: `arrayBenches` gives
// [id, fn] pairs resolving to arrays of rows in run.mjs's shape. Env: ARRAY_BENCH_N (2000), ARRAY_BENCH_RUNS (2).
import { writeFile } from 'node:fs/promises';
import os from 'node:os';
import { fileURLToPath } from 'node:url';
import { children, cleanup, descendantsCpu, guard, loadAverage, note, reportHead, round, step, table } from './common.mjs';
import { helloJob, startCluster, stopNodes, warmUp } from './deals.mjs';
import { killNetPeers } from './net.mjs';

const env = (name, dflt) => (process.env[name] === undefined ? dflt : Number(process.env[name]));
const N = env('ARRAY_BENCH_N', 2000);
const RUNS = env('ARRAY_BENCH_RUNS', 2);
const MiB = 2 ** 20;
const TERMINAL = ['completed', 'failed', 'cancelled'];
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** The module run in this process N times, each a fresh instance: instances/s. */
async function rawRuns(bytes, n) {
  const { WASI, OpenFile, File, ConsoleStdout } = await import('@bjorn3/browser_wasi_shim');
  const module = await WebAssembly.compile(bytes);
  let out = 0;
  const t0 = performance.now();
  for (let i = 0; i < n; i += 1) {
    const fds = [new OpenFile(new File([])), new ConsoleStdout((d) => (out += d.byteLength)), new ConsoleStdout((d) => (out += d.byteLength))];
    const wasi = new WASI(['hello'], [`DMS_INDEX=${i}`, `DMS_COUNT=${n}`], fds, { debug: false });
    const instance = await WebAssembly.instantiate(module, { wasi_snapshot_preview1: wasi.wasiImport });
    wasi.start(instance);
  }
  const ms = performance.now() - t0;
  return { perSec: (n * 1000) / ms, ms, outBytes: out };
}

/** CPU seconds of a node, the runners it reaped, and every process under it now (its live runners). */
async function treeCpu(child) {
  const { readFile } = await import('node:fs/promises');
  try {
    const stat = await readFile(`/proc/${child.pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(f[11]) + Number(f[12]) + Number(f[13]) + Number(f[14])) / 100 + (await descendantsCpu(child.pid));
  } catch {
    return 0;
  }
}

async function benchArray() {
  const { body, bytes } = await helloJob(0.01);
  const arrayBody = { ...body, job: { ...body.job, name: 'sweep', resources: { ...body.job.resources, memory: 16 * MiB }, count: N } };
  let cl;
  try {
    const t0 = performance.now();
    const prof = process.env.ARRAY_BENCH_PROF;
    cl = await startCluster('arr', 3, prof ? ['--cpu-prof', `--cpu-prof-dir=${prof}`] : []);
    const { a } = cl;
    note(`arrays: 4 nodes up in ${round((performance.now() - t0) / 1000, 1)} s`);
    await warmUp(a, body);
    const runs = [];
    const raws = [];
    for (let r = 0; r < RUNS; r += 1) {
      raws.push(await rawRuns(bytes, N));
      const cpu0 = await Promise.all(cl.all.map((n) => treeCpu(n.child)));
      const sent = Date.now();
      const rec = await a.api('POST', '/v1/deploy', arrayBody);
      let end;
      for (const deadline = Date.now() + 120_000; ; ) {
        end = await a.api('GET', `/v1/jobs/${rec.id}`);
        if (TERMINAL.includes(end.state)) break;
        if (Date.now() > deadline) throw new Error(`the array job is still ${end.state} after 120 s: ${end.message}`);
        await sleep(50);
      }
      if (end.state !== 'completed') throw new Error(`the array job ${end.state}: ${end.message}`);
      const cpu1 = await Promise.all(cl.all.map((n) => treeCpu(n.child)));
      const ms = end.endedAt - sent;
      const cpuMs = cpu1.reduce((s, c, i) => s + (c - cpu0[i]), 0) * 1000;
      const placedAt = end.history.find((h) => h.state === 'running')?.at;
      note(`arrays: placed ${placedAt ? placedAt - sent : '?'} ms after the deploy; history ${JSON.stringify(end.history.map((h) => [h.state, h.at - sent]))}`);
      const byNode = Object.fromEntries(cl.all.map((n, i) => [n.name, round(((cpu1[i] - cpu0[i]) * 1000) / N, 2)]));
      runs.push({ ms, perSec: (N * 1000) / ms, rounds: end.rounds, deals: end.deals.length, completedBy: end.deals.map((d) => d.completed), cpuMsPerTask: cpuMs / N, cpuMsPerTaskByNode: byNode, duplicates: end.duplicates });
      note(`arrays: run ${r + 1}: ${N} instances in ${ms} ms (${round(runs.at(-1).perSec)} /s), ${end.deals.length} deals ${JSON.stringify(runs.at(-1).completedBy)}, ${round(cpuMs / N, 2)} CPU-ms per instance (${JSON.stringify(runs.at(-1).cpuMsPerTaskByNode)}); raw ${round(raws.at(-1).perSec)} /s`);
    }
    const best = runs.reduce((x, y) => (y.perSec > x.perSec ? y : x));
    const raw = raws.reduce((x, y) => (y.perSec > x.perSec ? y : x));
    return [
      {
        id: 'array-throughput',
        name: `array job of ${N} tiny WASM instances, 1 requester + 3 providers: tasks/s deploy -> all completed vs raw: the same module instantiated and run ${N} times in one process`,
        unit: 'tasks/s',
        lowerIsBetter: false,
        ours: round(best.perSec),
        raw: round(raw.perSec),
        ratio: round(best.perSec / raw.perSec, 3),
        targets: [{ kind: 'ours', min: 1000 }],
        detail: { runs, raws },
        notes: [
          ...runs.map((r, i) => `run ${i + 1}: ${r.ms} ms, ${r.rounds} round(s), ${r.deals} deals (instances each: ${r.completedBy.join(', ')}), ${round(r.cpuMsPerTask, 2)} CPU-ms per instance on the nodes and runners (by node with its runners: ${Object.entries(r.cpuMsPerTaskByNode).map(([k, v]) => `${k} ${v}`).join(', ')}), ${r.duplicates} duplicate reports`),
          `raw: ${raws.map((r) => `${round(r.ms)} ms`).join(', ')} for ${N} fresh instances in one process`,
        ],
      },
    ];
  } finally {
    if (cl) await stopNodes(cl.all);
  }
}

export const arrayBenches = [['array-throughput', benchArray]];

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const args = process.argv.slice(2);
  const jsonFile = args.includes('--json') ? args[args.indexOf('--json') + 1] : undefined;
  const watchdog = guard(300_000, 'arrays bench');
  const started = performance.now();
  const loadBefore = os.loadavg()[0];
  const results = [];
  try {
    for (const [id, fn] of arrayBenches) await step(results, 'bench', id, fn, cleanup);
  } finally {
    killNetPeers();
    await cleanup();
  }
  void children;
  const report = { ...reportHead('dms-runtime arrays bench', started), loadAverage1m: loadAverage(loadBefore), ok: results.every((r) => !r.error && r.pass !== false), results };
  process.stdout.write(`\n${table(results, (r) => r.notes ?? [])}\n\ntotal ${report.totalSeconds} s on ${report.cpus} cores, Node ${report.node}; 1-minute load average ${report.loadAverage1m.before} before, ${report.loadAverage1m.after} after\n`);
  if (jsonFile) await writeFile(jsonFile, `${JSON.stringify(report, null, 2)}\n`);
  process.stdout.write(`${JSON.stringify(report)}\n`);
  clearTimeout(watchdog);
  process.exit(results.some((r) => r.error) ? 1 : 0);
}
