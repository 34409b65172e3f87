import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { Lifecycle, LifecycleStateError, type Started } from '../../../runtime/node/lifecycle.ts';

interface Ctx {
  /** What the phases did, in order: `start a`, `stop a`, ... */
  trail: string[];
  /** Stop failures the lifecycle reported through onStopError. */
  reported: { phase: string; message: string }[];
}

function lifecycleSuite(title: string) {
  const s = suite<Ctx>(title);
  s.before.each((ctx) => {
    ctx.trail = [];
    ctx.reported = [];
  });
  return s;
}

/** A phase that records its start and stop; `fail` makes either throw (after recording). */
function recorded(ctx: Ctx, name: string, fail: { start?: boolean; stop?: boolean } = {}) {
  return async (): Promise<Started<object>> => {
    await Promise.resolve(); // a real phase awaits something
    ctx.trail.push(`start ${name}`);
    if (fail.start) throw new Error(`${name} would not start`);
    return {
      stop: async () => {
        await Promise.resolve();
        ctx.trail.push(`stop ${name}`);
        if (fail.stop) throw new Error(`${name} would not stop`);
      },
    };
  };
}

function threePhases(ctx: Ctx, fail: Record<string, { start?: boolean; stop?: boolean }> = {}) {
  return new Lifecycle({}, { onStopError: (phase, err) => ctx.reported.push({ phase, message: err.message }) })
    .phase('a', recorded(ctx, 'a', fail.a))
    .phase('b', recorded(ctx, 'b', fail.b))
    .phase('c', recorded(ctx, 'c', fail.c));
}

const Order = lifecycleSuite('lifecycle: start runs the phases in the order declared, stop in exact reverse');

Order('start order, then reverse stop order', async (ctx) => {
  const life = threePhases(ctx);
  await life.start();
  assert.equal(ctx.trail, ['start a', 'start b', 'start c']);
  assert.is(life.status, 'started');
  await life.stop();
  assert.equal(ctx.trail, ['start a', 'start b', 'start c', 'stop c', 'stop b', 'stop a']);
  assert.is(life.status, 'stopped');
});

Order('each phase gets the parts of the phases before it; start resolves with all of them', async () => {
  const seen: string[] = [];
  const life = new Lifecycle({ base: 1 })
    .phase('double', ({ base }) => ({ parts: { doubled: base * 2 } }))
    .phase('nothing to hand on', () => {})
    .phase('name', async ({ base, doubled }) => {
      seen.push(`${base},${doubled}`);
      return { parts: { name: `n${doubled}` } };
    });
  const parts = await life.start();
  assert.equal(seen, ['1,2']);
  assert.equal(parts, { base: 1, doubled: 2, name: 'n2' });
});

Order('a phase with nothing to stop is passed over by stop', async (ctx) => {
  const life = new Lifecycle({})
    .phase('a', recorded(ctx, 'a'))
    .phase('check', () => void ctx.trail.push('start check'))
    .phase('c', recorded(ctx, 'c'));
  await life.start();
  await life.stop();
  assert.equal(ctx.trail, ['start a', 'start check', 'start c', 'stop c', 'stop a']);
});

Order('a stop that fails does not keep the phases before it from stopping; stop rejects with it', async (ctx) => {
  const life = threePhases(ctx, { c: { stop: true }, b: { stop: true } });
  await life.start();
  try {
    await life.stop();
    assert.unreachable('stop should have rejected');
  } catch (e) {
    assert.is((e as Error).message, 'c would not stop', 'the first failure');
  }
  assert.equal(ctx.trail.slice(3), ['stop c', 'stop b', 'stop a']);
  assert.equal(ctx.reported, [{ phase: 'b', message: 'b would not stop' }], 'the later failure is reported, not lost');
  assert.is(life.status, 'stopped');
});

Order.run();

const Rollback = lifecycleSuite('lifecycle: a phase that fails to start stops the ones started before it');

Rollback('the started phases stop in reverse, the failing one does not, and start fails with its error', async (ctx) => {
  const life = new Lifecycle({})
    .phase('a', recorded(ctx, 'a'))
    .phase('b', recorded(ctx, 'b'))
    .phase('c', recorded(ctx, 'c', { start: true }))
    .phase('d', recorded(ctx, 'd'));
  const err = await life.start().catch((e: Error) => e);
  assert.is((err as Error).message, 'c would not start');
  assert.equal(ctx.trail, ['start a', 'start b', 'start c', 'stop b', 'stop a'], 'd never started, c is not stopped');
  assert.is(life.status, 'stopped');
});

Rollback('the start error reaches the caller as it was thrown (exit codes are matched on it)', async (ctx) => {
  class OddError extends Error {
    override name = 'OddError';
  }
  const odd = new OddError('odd');
  const life = new Lifecycle({}).phase('a', recorded(ctx, 'a')).phase('odd', () => {
    throw odd;
  });
  assert.is(await life.start().catch((e: Error) => e), odd);
  assert.equal(ctx.trail, ['start a', 'stop a']);
});

Rollback('a stop failing during the rollback is reported and the start error still wins', async (ctx) => {
  const life = threePhases(ctx, { a: { stop: true }, c: { start: true } });
  const err = await life.start().catch((e: Error) => e);
  assert.is((err as Error).message, 'c would not start');
  assert.equal(ctx.trail, ['start a', 'start b', 'start c', 'stop b', 'stop a']);
  assert.equal(ctx.reported, [{ phase: 'a', message: 'a would not stop' }]);
});

Rollback('a stop after a failed start does nothing more', async (ctx) => {
  const life = threePhases(ctx, { b: { start: true } });
  await life.start().catch(() => {});
  const trail = [...ctx.trail];
  await life.stop();
  assert.equal(ctx.trail, trail);
});

Rollback.run();

const Idempotent = lifecycleSuite('lifecycle: stop is idempotent, start happens once');

Idempotent('a second stop, later or at the same time, stops nothing again', async (ctx) => {
  const life = threePhases(ctx);
  await life.start();
  const [p1, p2] = [life.stop(), life.stop()];
  assert.is(p1, p2, 'concurrent stops share one stop');
  await p1;
  await life.stop();
  assert.equal(ctx.trail.filter((t) => t.startsWith('stop')), ['stop c', 'stop b', 'stop a']);
});

Idempotent('a stop asked for during start waits for it, then stops everything', async (ctx) => {
  const life = threePhases(ctx);
  const started = life.start();
  const stopped = life.stop();
  await started;
  await stopped;
  assert.equal(ctx.trail, ['start a', 'start b', 'start c', 'stop c', 'stop b', 'stop a']);
});

Idempotent('start twice, or a phase added once started, is refused', async (ctx) => {
  const life = threePhases(ctx);
  await life.start();
  const again = await life.start().catch((e: Error) => e);
  assert.instance(again, LifecycleStateError);
  assert.throws(() => life.phase('late', () => {}), (e: Error) => e.name === 'LifecycleStateError');
  assert.equal(ctx.trail, ['start a', 'start b', 'start c'], 'nothing started twice');
  await life.stop();
});

Idempotent.run();
