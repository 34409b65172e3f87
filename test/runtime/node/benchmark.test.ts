import { chmod, mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import type { Benchmark } from '../../../machines/onboarding.ts';
import { memoryTotal, readMachineFacts, runBenchmark } from '../../../runtime/node/benchmark.ts';

async function rejection(p: Promise<unknown>): Promise<Error & { stage?: string }> {
  try {
    await p;
  } catch (err) {
    return err as Error;
  }
  throw new Error('expected a rejection, but the promise resolved');
}

const tempDir = (): Promise<string> => mkdtemp(path.join(os.tmpdir(), 'dms-bench-test-'));

// ---- one full benchmark with the defaults, examined by several tests ----

const measured = suite<{ dir: string; b: Benchmark; before: number; after: number }>('runBenchmark measures this machine');

measured.before(async (ctx) => {
  ctx.dir = await tempDir();
  ctx.before = Date.now();
  ctx.b = await runBenchmark({ dataDir: ctx.dir });
  ctx.after = Date.now();
});
measured.after(async (ctx) => {
  await rm(ctx.dir, { recursive: true, force: true });
});

measured('CPU rates are positive, and all cores together beat one core', ({ b }) => {
  assert.ok(Number.isFinite(b.cpuOpsPerSecPerCore) && b.cpuOpsPerSecPerCore > 0, `per core ${b.cpuOpsPerSecPerCore}`);
  assert.ok(Number.isFinite(b.cpuOpsPerSecTotal) && b.cpuOpsPerSecTotal > 0, `total ${b.cpuOpsPerSecTotal}`);
  assert.is(b.cores, os.availableParallelism());
  const floor = b.cores > 1 ? b.cpuOpsPerSecPerCore * 0.8 : b.cpuOpsPerSecPerCore * 0.5;
  assert.ok(b.cpuOpsPerSecTotal >= floor, `total ${b.cpuOpsPerSecTotal} < ${floor} with ${b.cores} cores`);
});

measured('CPU work was actually run: the benchmark took at least both 300 ms phases, and about 1 s', ({ b }) => {
  assert.ok(b.durationMs >= 600, `durationMs ${b.durationMs}`);
  assert.ok(b.durationMs < 5000, `durationMs ${b.durationMs} is far beyond the ~1 s budget`);
});

measured('disk write throughput is measured and the temp file is gone', async ({ b, dir }) => {
  assert.ok(Number.isFinite(b.diskWriteBytesPerSec) && b.diskWriteBytesPerSec > 0, `write ${b.diskWriteBytesPerSec}`);
  assert.equal(await readdir(dir), []);
});

measured('memory, disk space, arch, CPU model and GPUs are sane', ({ b }) => {
  assert.is(b.memoryTotal, memoryTotal());
  assert.ok(b.memoryTotal > 0 && b.memoryTotal <= os.totalmem());
  assert.ok(b.diskTotal > 0 && b.diskFree > 0 && b.diskFree <= b.diskTotal, `disk ${b.diskFree}/${b.diskTotal}`);
  assert.is(b.arch, os.arch());
  assert.type(b.cpuModel, 'string');
  assert.ok(b.cpuModel.trim().length > 0);
  assert.ok(Array.isArray(b.gpus));
  for (const g of b.gpus) {
    assert.type(g.vendor, 'string');
    assert.type(g.model, 'string');
    assert.ok(Number.isFinite(g.vram) && g.vram >= 0, `vram ${g.vram}`);
  }
});

measured('measuredAt is the ISO time the run started', ({ b, before, after }) => {
  const t = Date.parse(b.measuredAt);
  assert.is(new Date(t).toISOString(), b.measuredAt);
  assert.ok(t >= before && t <= after, `${b.measuredAt} outside the run`);
});

measured.run();

// ---- failures ----

const failures = suite<{ dir: string }>('runBenchmark fails clearly on a bad data dir or options');

failures.before.each(async (ctx) => {
  ctx.dir = await tempDir();
});
failures.after.each(async (ctx) => {
  await rm(ctx.dir, { recursive: true, force: true });
});

failures('a missing data dir is a BenchmarkError naming it, before any CPU work', async ({ dir }) => {
  const missing = path.join(dir, 'nope');
  const t0 = performance.now();
  const err = await rejection(runBenchmark({ dataDir: missing }));
  assert.is(err.name, 'BenchmarkError');
  assert.ok(err.message.includes(missing), err.message);
  assert.match(err.message, /does not exist/);
  assert.ok(performance.now() - t0 < 200, 'failed fast');
  assert.not.ok(existsSync(missing), 'the benchmark must not create the data dir');
});

failures('a data dir that is a file is a BenchmarkError naming it', async ({ dir }) => {
  const file = path.join(dir, 'file');
  await writeFile(file, 'x');
  const err = await rejection(runBenchmark({ dataDir: file }));
  assert.is(err.name, 'BenchmarkError');
  assert.ok(err.message.includes(file), err.message);
  assert.match(err.message, /not a directory/);
});

failures('a data dir nobody may write to is a BenchmarkError naming it', async ({ dir }) => {
  // root writes through file modes, so use a tree the kernel refuses even to root
  const target = process.getuid?.() === 0 ? '/sys' : path.join(dir, 'ro');
  if (target !== '/sys') {
    await mkdir(target);
    await chmod(target, 0o555);
  }
  const err = await rejection(runBenchmark({ dataDir: target, cpuMillis: 20, diskBytes: 1024 }));
  assert.is(err.name, 'BenchmarkError');
  assert.ok(err.message.includes(target), err.message);
  assert.match(err.message, /not writable/);
});

failures('nonsense options are refused', async ({ dir }) => {
  for (const opts of [{ cpuMillis: 0 }, { cpuMillis: Number.NaN }, { diskBytes: -1 }, { diskBytes: 1.5 }]) {
    const err = await rejection(runBenchmark({ dataDir: dir, ...opts }));
    assert.is(err.name, 'BenchmarkError', JSON.stringify(opts));
    assert.is(err.stage, 'options');
  }
  assert.equal(await readdir(dir), []);
});

failures.run();

// ---- fast facts ----

const facts = suite<{ dir: string }>('readMachineFacts is fast and agrees with the benchmark');

facts.before.each(async (ctx) => {
  ctx.dir = await tempDir();
});
facts.after.each(async (ctx) => {
  await rm(ctx.dir, { recursive: true, force: true });
});

facts('reports cores, memory and disk space in under 30 ms', async ({ dir }) => {
  const times: number[] = [];
  let f = await readMachineFacts(dir);
  for (let i = 0; i < 5; i++) {
    const t0 = performance.now();
    f = await readMachineFacts(dir);
    times.push(performance.now() - t0);
  }
  times.sort((a, b) => a - b);
  assert.ok(times[2]! < 30, `median ${times[2]} ms`);
  assert.is(f.cores, os.availableParallelism());
  assert.is(f.memoryTotal, memoryTotal());
  assert.ok(f.diskTotal > 0 && f.diskFree > 0 && f.diskFree <= f.diskTotal);
});

facts('matches a small benchmark of the same dir', async ({ dir }) => {
  const f = await readMachineFacts(dir);
  const b = await runBenchmark({ dataDir: dir, cpuMillis: 30, diskBytes: 64 * 1024 });
  assert.is(b.cores, f.cores);
  assert.is(b.memoryTotal, f.memoryTotal);
  assert.is(b.diskTotal, f.diskTotal);
  assert.ok(b.cpuOpsPerSecPerCore > 0 && b.diskWriteBytesPerSec > 0);
});

facts('a missing dir is a BenchmarkError naming it', async ({ dir }) => {
  const missing = path.join(dir, 'gone');
  const err = await rejection(readMachineFacts(missing));
  assert.is(err.name, 'BenchmarkError');
  assert.ok(err.message.includes(missing), err.message);
});

facts.run();
