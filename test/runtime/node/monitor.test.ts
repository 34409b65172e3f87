import { statfs, mkdir, mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import type { Sample } from '../../../machines/node.messages.ts';
import { memoryTotal } from '../../../runtime/node/benchmark.ts';
import { type Monitor, createMonitor } from '../../../runtime/node/monitor.ts';

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

async function waitFor(what: string, cond: () => boolean, timeoutMs = 2000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(5);
  }
}

interface Ctx {
  dir: string;
  samples: Sample[];
  errors: Error[];
  monitor?: Monitor;
}

/** A suite with a fresh data dir per test, and the test's monitor stopped and the dir removed after it. */
function monitorSuite(title: string) {
  const s = suite<Ctx>(title);
  s.before.each(async (ctx) => {
    ctx.dir = await mkdtemp(path.join(os.tmpdir(), 'dms-monitor-test-'));
    ctx.samples = [];
    ctx.errors = [];
    delete ctx.monitor;
  });
  s.after.each(async (ctx) => {
    await ctx.monitor?.stop();
    await rm(ctx.dir, { recursive: true, force: true });
  });
  return s;
}

function start(ctx: Ctx, intervalMs: number, onSample?: (s: Sample) => void): Promise<void> {
  ctx.monitor = createMonitor({ dataDir: ctx.dir, intervalMs, onError: (e) => ctx.errors.push(e) }, onSample ?? ((s) => ctx.samples.push(s)));
  return ctx.monitor.start();
}

// ---- timing ----

const timing = monitorSuite('monitor samples on its interval and stops cleanly');

timing('start() resolves after the first sample was delivered', async (ctx) => {
  await start(ctx, 60_000);
  assert.is(ctx.samples.length, 1);
});

timing('delivers >= 2 samples at 50 ms, spaced by the interval, and none after stop()', async (ctx) => {
  await start(ctx, 50);
  await waitFor('3 samples', () => ctx.samples.length >= 3);
  await ctx.monitor!.stop();
  const n = ctx.samples.length;
  for (let i = 1; i < n; i++) {
    const gap = ctx.samples[i]!.at - ctx.samples[i - 1]!.at;
    assert.ok(gap >= 40, `samples ${i - 1} and ${i} are ${gap} ms apart at a 50 ms interval`);
  }
  await sleep(150);
  assert.is(ctx.samples.length, n, 'a sample arrived after stop()');
  assert.equal(ctx.errors, []);
});

timing('stop() during the first sample means it is never delivered', async (ctx) => {
  ctx.monitor = createMonitor({ dataDir: ctx.dir, intervalMs: 50, onError: (e) => ctx.errors.push(e) }, (s) => ctx.samples.push(s));
  const started = ctx.monitor.start();
  await ctx.monitor.stop();
  await started;
  await sleep(120);
  assert.is(ctx.samples.length, 0);
});

timing('start() twice runs one sampling loop, and a stopped monitor can start again', async (ctx) => {
  await start(ctx, 50);
  await ctx.monitor!.start();
  await sleep(230);
  await ctx.monitor!.stop();
  // one loop gives ~5 samples in 230 ms; two would give ~10
  assert.ok(ctx.samples.length >= 2 && ctx.samples.length <= 7, `${ctx.samples.length} samples`);
  const n = ctx.samples.length;
  await ctx.monitor!.start();
  assert.is(ctx.samples.length, n + 1);
});

timing('an interval that is not a positive number is refused', () => {
  for (const intervalMs of [0, -5, Number.NaN]) {
    assert.throws(
      () => createMonitor({ dataDir: os.tmpdir(), intervalMs }, () => undefined),
      (e: Error) => e.name === 'MonitorError' && e.message.includes(String(intervalMs)),
    );
  }
});

timing.run();

// ---- contents ----

const contents = monitorSuite('monitor samples describe this machine');

contents('sample fields are sane numbers', async (ctx) => {
  const before = Date.now();
  const s = await createMonitor({ dataDir: ctx.dir, intervalMs: 1000 }, () => undefined).sampleOnce();
  const fs = await statfs(ctx.dir);
  assert.ok(s.at >= before && s.at <= Date.now(), `at ${s.at}`);
  assert.ok(Number.isFinite(s.load1) && s.load1 >= 0, `load1 ${s.load1}`);
  assert.is(s.memoryTotal, memoryTotal());
  assert.ok(s.memoryAvailable > 0 && s.memoryAvailable <= s.memoryTotal, `available ${s.memoryAvailable} of ${s.memoryTotal}`);
  assert.ok(s.diskFree > 0 && s.diskFree <= fs.blocks * fs.bsize, `diskFree ${s.diskFree}`);
  assert.ok(Number.isInteger(s.diskFree));
});

contents('sampleOnce on a missing dir rejects with a MonitorError naming it', async (ctx) => {
  const missing = path.join(ctx.dir, 'gone');
  try {
    await createMonitor({ dataDir: missing, intervalMs: 1000 }, () => undefined).sampleOnce();
    assert.unreachable('sampleOnce resolved');
  } catch (err) {
    assert.is((err as Error).name, 'MonitorError');
    assert.ok((err as Error).message.includes(missing), (err as Error).message);
  }
});

contents.run();

// ---- failures ----

const failing = monitorSuite('a failing sample is reported and the monitor keeps going');

failing('a data dir that disappears gives errors, and samples resume when it is back', async (ctx) => {
  await start(ctx, 30);
  await rm(ctx.dir, { recursive: true });
  await waitFor('2 errors', () => ctx.errors.length >= 2);
  assert.is(ctx.errors[0]!.name, 'MonitorError');
  assert.ok(ctx.errors[0]!.message.includes(ctx.dir), ctx.errors[0]!.message);
  const n = ctx.samples.length;
  await mkdir(ctx.dir);
  await waitFor('samples to resume', () => ctx.samples.length >= n + 2);
});

failing('an onSample that throws is reported and sampling goes on', async (ctx) => {
  let calls = 0;
  await start(ctx, 30, () => {
    calls++;
    throw new Error('consumer broke');
  });
  await waitFor('3 calls', () => calls >= 3);
  assert.ok(ctx.errors.length >= 2);
  assert.is(ctx.errors[0]!.name, 'MonitorError');
  assert.match(ctx.errors[0]!.message, /consumer broke/);
});

failing.run();
