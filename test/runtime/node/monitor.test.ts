import { statfs, mkdir, mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import type { Sample } from '../../../machines/node.messages.ts';
import { ManualClock } from '../../../runtime/clock.ts';
import { memoryTotal } from '../../../runtime/node/benchmark.ts';
import { type Monitor, createMonitor } from '../../../runtime/node/monitor.ts';
import { waitFor } from '../../fixtures/waiting.ts';

const T0 = 1_700_000_000_000;

interface Ctx {
  dir: string;
  samples: Sample[];
  errors: Error[];
  /** The monitor's time: a sample is due only when a test advances it. */
  clock: ManualClock;
  monitor?: Monitor;
}

/** A suite with a fresh data dir and clock per test, and the test's monitor stopped and the dir removed after it. */
function monitorSuite(title: string) {
  const s = suite<Ctx>(title);
  s.before.each(async (ctx) => {
    ctx.dir = await mkdtemp(path.join(os.tmpdir(), 'dms-monitor-test-'));
    ctx.samples = [];
    ctx.errors = [];
    ctx.clock = new ManualClock(T0);
    delete ctx.monitor;
  });
  s.after.each(async (ctx) => {
    await ctx.monitor?.stop();
    await rm(ctx.dir, { recursive: true, force: true });
  });
  return s;
}

function create(ctx: Ctx, intervalMs: number, onSample?: (s: Sample) => void): Monitor {
  ctx.monitor = createMonitor({ dataDir: ctx.dir, intervalMs, onError: (e) => ctx.errors.push(e), clock: ctx.clock }, onSample ?? ((s) => ctx.samples.push(s)));
  return ctx.monitor;
}

function start(ctx: Ctx, intervalMs: number, onSample?: (s: Sample) => void): Promise<void> {
  return create(ctx, intervalMs, onSample).start();
}

/** Moves the clock by `ms` and waits until the sample that fell due was taken and the next one is scheduled. */
async function nextTick(ctx: Ctx, ms: number, outcomes: () => number = () => ctx.samples.length + ctx.errors.length): Promise<void> {
  const before = outcomes();
  ctx.clock.advance(ms);
  await waitFor(`the sample due at ${ctx.clock.now()}`, () => outcomes() > before && ctx.clock.pending === 1);
}

// ---- timing ----

const timing = monitorSuite('monitor samples on its interval and stops cleanly');

timing('start() resolves after the first sample was delivered', async (ctx) => {
  await start(ctx, 60_000);
  assert.is(ctx.samples.length, 1);
  assert.is(ctx.samples[0]!.at, T0);
});

timing('samples every 50 ms, each at its due time, none early, and none after stop()', async (ctx) => {
  await start(ctx, 50);
  assert.is(ctx.clock.pending, 1, 'the next sample is scheduled');
  ctx.clock.advance(49);
  assert.is(ctx.samples.length, 1, 'a sample before the interval was up');
  await nextTick(ctx, 1);
  await nextTick(ctx, 50);
  await ctx.monitor!.stop();
  assert.equal(ctx.samples.map((s) => s.at - T0), [0, 50, 100]);
  assert.is(ctx.clock.pending, 0, 'stop() left a timer');
  ctx.clock.advance(500);
  assert.is(ctx.samples.length, 3, 'a sample arrived after stop()');
  assert.equal(ctx.errors, []);
});

timing('stop() during the first sample means it is never delivered', async (ctx) => {
  const m = create(ctx, 50);
  const started = m.start();
  await m.stop();
  await started;
  assert.is(ctx.clock.pending, 0, 'a sample is still scheduled');
  ctx.clock.advance(500);
  assert.is(ctx.samples.length, 0);
});

timing('start() twice runs one sampling loop, and a stopped monitor can start again', async (ctx) => {
  await start(ctx, 50);
  await ctx.monitor!.start();
  assert.is(ctx.clock.pending, 1, 'two loops');
  for (let i = 0; i < 4; i += 1) await nextTick(ctx, 50);
  await ctx.monitor!.stop();
  // one loop gives 5 samples in 200 ms; two would give 10
  assert.is(ctx.samples.length, 5);
  await ctx.monitor!.start();
  assert.is(ctx.samples.length, 6);
  assert.is(ctx.clock.pending, 1);
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
  await nextTick(ctx, 30);
  await nextTick(ctx, 30);
  assert.is(ctx.errors.length, 2);
  assert.is(ctx.errors[0]!.name, 'MonitorError');
  assert.ok(ctx.errors[0]!.message.includes(ctx.dir), ctx.errors[0]!.message);
  const n = ctx.samples.length;
  await mkdir(ctx.dir);
  await nextTick(ctx, 30);
  await nextTick(ctx, 30);
  assert.is(ctx.samples.length, n + 2);
});

failing('an onSample that throws is reported and sampling goes on', async (ctx) => {
  let calls = 0;
  await start(ctx, 30, () => {
    calls++;
    throw new Error('consumer broke');
  });
  await nextTick(ctx, 30, () => calls);
  await nextTick(ctx, 30, () => calls);
  assert.is(calls, 3);
  assert.is(ctx.errors.length, 3, 'each throw is reported');
  assert.is(ctx.errors[0]!.name, 'MonitorError');
  assert.match(ctx.errors[0]!.message, /consumer broke/);
});

failing.run();
