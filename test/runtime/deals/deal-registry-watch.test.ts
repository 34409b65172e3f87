// DealRegistry.watch (runtime/deals/deal-registry.ts): the hook the API's job event streams listen on. Whatever may
// change a deal's record (an event queued for its actor, the actor's spawn, its retirement) tells the watchers of that
// actor, and only them; an unwatched registry keeps no listener.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { type DealEvent, DealRegistry } from '../../../runtime/deals/deal-registry.ts';
import type { Logger } from '../../../runtime/logger.ts';
import type { Supervisor } from '../../../runtime/supervisor/supervisor.ts';

interface Ctx {
  registry: DealRegistry;
  sent: string[];
}

const quiet = { debug() {}, warn() {}, error() {}, info() {} } as unknown as Logger;

const Watch = suite<Ctx>('deals: DealRegistry.watch', {} as Ctx);

Watch.before.each((ctx) => {
  ctx.sent = [];
  const ref = { send: (e: DealEvent) => ctx.sent.push(e.type) };
  const supervisor = {
    supervisor: ({ id }: { id: string }) => ({ name: id, spawn: async () => ref }),
    retire: async () => {},
  } as unknown as Supervisor;
  ctx.registry = new DealRegistry({ supervisor, log: quiet });
});

const event = (type: string) => ({ type, now: 1 }) as unknown as DealEvent;

Watch('spawn, each event queued and the retirement tell the actor\'s watchers, and only its', async (ctx) => {
  const calls: string[] = [];
  ctx.registry.watch('job/a', () => calls.push('a'));
  ctx.registry.watch('job/b', () => calls.push('b'));
  await ctx.registry.spawn('job/a', 'requester', {} as never, event('deal.start') as never);
  ctx.registry.deliver('job/a', event('timer.fired'));
  ctx.registry.deliver('job/a', event('bid.received'));
  await ctx.registry.retire('job/a');
  assert.equal(calls, ['a', 'a', 'a', 'a']);
  assert.is(ctx.registry.deliver('job/gone', event('timer.fired')), false);
  assert.equal(calls.length, 4, 'an event for no actor changed nothing');
});

Watch('unwatch stops the calls and leaves no listener', async (ctx) => {
  let n = 0;
  const stops = Array.from({ length: 100 }, () => ctx.registry.watch('job/a', () => (n += 1)));
  assert.is(ctx.registry.watchers, 100);
  await ctx.registry.spawn('job/a', 'requester', {} as never, event('deal.start') as never);
  assert.is(n, 100);
  for (const stop of stops) stop();
  stops[0]!(); // twice: harmless
  assert.is(ctx.registry.watchers, 0);
  ctx.registry.deliver('job/a', event('timer.fired'));
  assert.is(n, 100);
});

Watch('a watcher that throws does not stop the event, nor the other watchers', async (ctx) => {
  let called = false;
  ctx.registry.watch('job/a', () => {
    throw new Error('boom');
  });
  ctx.registry.watch('job/a', () => (called = true));
  await ctx.registry.spawn('job/a', 'requester', {} as never, event('deal.start') as never);
  assert.ok(ctx.registry.deliver('job/a', event('timer.fired')));
  assert.ok(called);
  await new Promise((r) => setTimeout(r, 0));
  assert.equal(ctx.sent, ['deal.start', 'timer.fired']);
});

Watch.run();
