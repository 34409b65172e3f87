// The timer bookkeeping of the deal machines (machines/deal.timers.ts): pure steps over the pending timers, and
// the one rule the machines differ in, the slack.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { type PendingTimers, timerBook } from '../../machines/deal.timers.ts';
import { requesterTimers } from '../../machines/requester.context.ts';

const T = 1_000_000;
const fire = (key: string, now: number) => ({ type: 'timer.fired', key, now }) as const;

const Steps = suite('deal timers: schedule, cancel, rearm');
const book = timerBook({ slackMs: 1000 });

Steps('schedule adds the timer at its absolute time and asks the runtime for it', () => {
  const step = book.schedule({ a: T }, 'b', T + 5);
  assert.equal(step, { timers: { a: T, b: T + 5 }, intents: [{ type: 'timer.schedule', key: 'b', at: T + 5 }] });
});

Steps('schedule under a pending key replaces its time (one intent: the runtime replaces its timer)', () => {
  const step = book.schedule({ a: T }, 'a', T + 9);
  assert.equal(step, { timers: { a: T + 9 }, intents: [{ type: 'timer.schedule', key: 'a', at: T + 9 }] });
});

Steps('cancel removes a pending timer and tells the runtime; a key not pending is no change and no intent', () => {
  const timers: PendingTimers = { a: T, b: T + 1 };
  assert.equal(book.cancel(timers, 'a'), { timers: { b: T + 1 }, intents: [{ type: 'timer.cancel', key: 'a' }] });
  const none = book.cancel(timers, 'c');
  assert.is(none.timers, timers);
  assert.equal(none.intents, []);
  // a key the prototype has is not a pending timer
  assert.equal(book.cancel({}, 'constructor').intents, []);
});

Steps('cancelAll cancels every pending timer, in order, and leaves none', () => {
  assert.equal(book.cancelAll({ a: T, b: T + 1 }), { timers: {}, intents: [{ type: 'timer.cancel', key: 'a' }, { type: 'timer.cancel', key: 'b' }] });
  assert.equal(book.cancelAll({}), { timers: {}, intents: [] });
});

Steps('rearm asks again for every pending timer at its original time', () => {
  assert.equal(book.rearm({ a: T, b: T - 50 }), [{ type: 'timer.schedule', key: 'a', at: T }, { type: 'timer.schedule', key: 'b', at: T - 50 }]);
  assert.equal(book.rearm({}), []);
});

Steps('steps never change the timers they are given', () => {
  const timers = Object.freeze({ a: T });
  book.schedule(timers, 'b', T);
  book.cancel(timers, 'a');
  book.cancelAll(timers);
  book.afterFire(timers, fire('a', T));
  assert.equal(timers, { a: T });
});

Steps.run();

const Slack = suite('deal timers: the slack decides which fires count');

Slack('with a slack, a fire counts from `slack` before its time on, and not earlier', () => {
  const timers = { step: T };
  assert.ok(book.due(timers, fire('step', T), 'step'));
  assert.ok(book.due(timers, fire('step', T + 60_000), 'step'), 'late');
  assert.ok(book.due(timers, fire('step', T - 1000), 'step'), 'exactly the slack early');
  assert.not.ok(book.due(timers, fire('step', T - 1001), 'step'), 'earlier: the stale fire of a timer scheduled again');
});

Slack('a stale fire leaves the timer pending; a due one is no longer pending', () => {
  const timers = { step: T, watch: T };
  assert.is(book.afterFire(timers, fire('step', T - 5000)), timers);
  assert.equal(book.afterFire(timers, fire('step', T - 10)), { watch: T });
});

Slack('slack 0: only a fire at or after its time counts', () => {
  const exact = timerBook({ slackMs: 0 });
  assert.ok(exact.due({ a: T }, fire('a', T), 'a'));
  assert.not.ok(exact.due({ a: T }, fire('a', T - 1), 'a'));
});

Slack('unbounded slack: every fire of a pending timer counts, however early', () => {
  const any = timerBook({ slackMs: Infinity });
  assert.ok(any.due({ expiry: T }, fire('expiry', 0), 'expiry'));
  assert.equal(any.afterFire({ expiry: T, other: T }, fire('expiry', 0)), { other: T });
});

Slack('whatever the slack, a fire of a key not pending, of another key, or another event never counts', () => {
  for (const slackMs of [0, 1000, Infinity]) {
    const b = timerBook({ slackMs });
    assert.not.ok(b.due({}, fire('a', T), 'a'), `${slackMs}: cancelled or already fired`);
    assert.not.ok(b.due({ a: T }, fire('b', T), 'a'), `${slackMs}: another key`);
    assert.not.ok(b.due({ a: T }, { type: 'deal.recovered', now: T }, 'a'), `${slackMs}: not a fire`);
    assert.not.ok(b.due({ a: T }, { type: 'timer.fired', now: T }, 'a'), `${slackMs}: a fire without a key`);
    const timers = { a: T };
    assert.is(b.afterFire(timers, fire('b', T)), timers, `${slackMs}: a fire of another key changes nothing`);
    assert.is(b.afterFire(timers, { type: 'deal.start', now: T }), timers, `${slackMs}: another event changes nothing`);
  }
});

Slack('a slack is a duration', () => {
  for (const slackMs of [-1, Number.NaN]) assert.throws(() => timerBook({ slackMs }), /slack/);
  assert.is(timerBook({ slackMs: 250 }).slackMs, 250);
});

Slack('the requester takes a fire up to 1 s early (it schedules `step` and `watch` again while they are pending)', () => {
  assert.is(requesterTimers.slackMs, 1000);
});

Slack.run();
