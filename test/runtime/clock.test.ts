// The clock port: ManualClock runs due timers in due order (ties in the order set) with now() at each timer's due
// time, periodic timers until cleared, and refuses to move backwards; realClock's timers fire, clear, and hold the
// process only when asked to.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { ManualClock, realClock } from '../../runtime/clock.ts';
import { within } from '../fixtures/waiting.ts';

interface Ctx {
  clock: ManualClock;
  /** What ran, as `name@now()`. */
  ran: string[];
}

function clockSuite(title: string) {
  const s = suite<Ctx>(title, {} as Ctx);
  s.before.each((c) => {
    c.clock = new ManualClock(1000);
    c.ran = [];
  });
  return s;
}

const mark = (c: Ctx, name: string) => () => c.ran.push(`${name}@${c.clock.now()}`);

// ---------------------------------------------------------------------------------------------------------------

const Order = clockSuite('ManualClock runs due timers in due order, each at its due time');

Order('now() starts where it was told and moves only by advance', (c) => {
  assert.is(c.clock.now(), 1000);
  assert.is(new ManualClock().now(), 0);
  c.clock.advance(250);
  assert.is(c.clock.now(), 1250);
  c.clock.advance(0);
  assert.is(c.clock.now(), 1250);
});

Order('timers set out of order run in due order, each seeing now() at its due time', (c) => {
  c.clock.after(30, mark(c, 'c'));
  c.clock.after(10, mark(c, 'a'));
  c.clock.after(20, mark(c, 'b'));
  c.clock.advance(100);
  assert.equal(c.ran, ['a@1010', 'b@1020', 'c@1030']);
  assert.is(c.clock.now(), 1100);
});

Order('a timer runs only once its due time is reached, not before', (c) => {
  c.clock.after(50, mark(c, 'x'));
  c.clock.advance(49);
  assert.equal(c.ran, []);
  assert.is(c.clock.pending, 1);
  c.clock.advance(1);
  assert.equal(c.ran, ['x@1050']);
  assert.is(c.clock.pending, 0);
  c.clock.advance(1000);
  assert.equal(c.ran, ['x@1050'], 'a one-shot timer runs once');
});

Order('timers due at the same time run in the order they were set', (c) => {
  for (const name of ['first', 'second', 'third']) c.clock.after(10, mark(c, name));
  c.clock.after(5, mark(c, 'early'));
  c.clock.advance(10);
  assert.equal(c.ran, ['early@1005', 'first@1010', 'second@1010', 'third@1010']);
});

Order('a timer set by a running timer runs in the same advance when it falls due by its end', (c) => {
  c.clock.after(10, () => {
    mark(c, 'outer')();
    c.clock.after(0, mark(c, 'now'));
    c.clock.after(15, mark(c, 'later'));
    c.clock.after(500, mark(c, 'beyond'));
  });
  c.clock.after(10, mark(c, 'sibling'));
  c.clock.advance(100);
  assert.equal(c.ran, ['outer@1010', 'sibling@1010', 'now@1010', 'later@1025']);
  assert.is(c.clock.pending, 1);
});

Order('a delay that is negative or not a number means now', (c) => {
  c.clock.after(-5, mark(c, 'negative'));
  c.clock.after(Number.NaN, mark(c, 'nan'));
  c.clock.advance(0);
  assert.equal(c.ran, ['negative@1000', 'nan@1000']);
  assert.is(c.clock.now(), 1000);
});

Order('set(at) runs the timers due by then and stands at it', (c) => {
  c.clock.after(10, mark(c, 'a'));
  c.clock.after(40, mark(c, 'b'));
  c.clock.set(1020);
  assert.equal(c.ran, ['a@1010']);
  assert.is(c.clock.now(), 1020);
});

Order.run();

// ---------------------------------------------------------------------------------------------------------------

const Periodic = clockSuite('ManualClock: periodic timers');

Periodic('every(ms) runs at each multiple of ms from when it was set, until cleared', (c) => {
  const t = c.clock.every(100, mark(c, 'tick'));
  c.clock.advance(99);
  assert.equal(c.ran, [], 'the first run is one period away, not now');
  c.clock.advance(251);
  assert.equal(c.ran, ['tick@1100', 'tick@1200', 'tick@1300']);
  t.clear();
  c.clock.advance(1000);
  assert.equal(c.ran, ['tick@1100', 'tick@1200', 'tick@1300']);
  assert.is(c.clock.pending, 0);
});

Periodic('periodic and one-shot timers interleave by due time', (c) => {
  c.clock.every(30, mark(c, 'p'));
  c.clock.after(45, mark(c, 'once'));
  c.clock.advance(90);
  assert.equal(c.ran, ['p@1030', 'once@1045', 'p@1060', 'p@1090']);
});

Periodic('a periodic timer may clear itself from its own run', (c) => {
  let n = 0;
  const t = c.clock.every(10, () => {
    n += 1;
    if (n === 2) t.clear();
  });
  c.clock.advance(100);
  assert.is(n, 2);
  assert.is(c.clock.pending, 0);
});

Periodic('every(0) runs once per millisecond, never in a loop at the same instant', (c) => {
  let n = 0;
  c.clock.every(0, () => (n += 1));
  c.clock.advance(0);
  assert.is(n, 0);
  c.clock.advance(5);
  assert.is(n, 5);
});

Periodic.run();

// ---------------------------------------------------------------------------------------------------------------

const Clear = clockSuite('ManualClock: clear');

Clear('a cleared timer never runs, and the others still do', (c) => {
  const a = c.clock.after(10, mark(c, 'a'));
  c.clock.after(10, mark(c, 'b'));
  a.clear();
  assert.is(c.clock.pending, 1);
  c.clock.advance(10);
  assert.equal(c.ran, ['b@1010']);
});

Clear('a timer cleared by an earlier timer in the same advance does not run', (c) => {
  let later: { clear(): void } | undefined;
  c.clock.after(10, () => later?.clear());
  later = c.clock.after(20, mark(c, 'later'));
  c.clock.advance(50);
  assert.equal(c.ran, []);
});

Clear('clearing a timer that has run, or clearing twice, does nothing', (c) => {
  const t = c.clock.after(1, mark(c, 't'));
  c.clock.advance(1);
  t.clear();
  t.clear();
  c.clock.after(1, mark(c, 'u'));
  c.clock.advance(1);
  assert.equal(c.ran, ['t@1001', 'u@1002']);
});

Clear.run();

// ---------------------------------------------------------------------------------------------------------------

const Refused = clockSuite('ManualClock refuses to move backwards or without end');

Refused('a negative, infinite or NaN advance is refused and nothing runs', (c) => {
  c.clock.every(10, mark(c, 'tick'));
  for (const ms of [-1, Number.NEGATIVE_INFINITY, Number.POSITIVE_INFINITY, Number.NaN]) {
    assert.throws(() => c.clock.advance(ms), (e: Error) => e.name === 'RangeError' && e.message.includes(String(ms)));
  }
  assert.is(c.clock.now(), 1000);
  assert.equal(c.ran, []);
});

Refused('set() to a time in the past is refused', (c) => {
  c.clock.advance(10);
  assert.throws(() => c.clock.set(1005), (e: Error) => e.name === 'RangeError' && e.message.includes('1005'));
  assert.is(c.clock.now(), 1010);
});

Refused('advance from inside a timer is refused (time would run backwards for the outer advance)', (c) => {
  let inner: unknown;
  c.clock.after(10, () => {
    try {
      c.clock.advance(100);
    } catch (e) {
      inner = e;
    }
  });
  c.clock.after(20, mark(c, 'after'));
  c.clock.advance(50);
  assert.instance(inner, Error);
  assert.equal(c.ran, ['after@1020']);
  assert.is(c.clock.now(), 1050);
});

Refused('a timer that throws stops the advance at its due time; the rest run on the next advance', (c) => {
  c.clock.after(10, () => {
    throw new Error('boom');
  });
  c.clock.after(20, mark(c, 'next'));
  assert.throws(() => c.clock.advance(50), /boom/);
  assert.is(c.clock.now(), 1010);
  assert.equal(c.ran, []);
  c.clock.advance(40);
  assert.equal(c.ran, ['next@1020']);
  assert.is(c.clock.now(), 1050);
});

Refused.run();

// ---------------------------------------------------------------------------------------------------------------

const Real = suite('realClock: wall time and Node timers');

Real('now() is wall time', () => {
  const before = Date.now();
  const now = realClock.now();
  assert.ok(now >= before && now <= Date.now());
});

Real('after() runs once; a cleared timer does not run', async () => {
  let cleared = 0;
  realClock.after(1, () => (cleared += 1)).clear();
  await within('a 1 ms timer', new Promise<void>((resolve) => realClock.after(1, resolve)), 2000);
  // timers of equal delay fire in the order set: the cleared one would have run before this one
  await within('a second 1 ms timer', new Promise<void>((resolve) => realClock.after(1, resolve)), 2000);
  assert.is(cleared, 0);
});

Real('every() repeats until cleared', async () => {
  let n = 0;
  let t: { clear(): void } | undefined;
  await within(
    'three ticks',
    new Promise<void>((resolve) => {
      t = realClock.every(1, () => {
        n += 1;
        if (n === 3) {
          t!.clear();
          resolve();
        }
      });
    }),
    2000,
  );
  await within('a later timer', new Promise<void>((resolve) => realClock.after(5, resolve)), 2000);
  assert.is(n, 3);
});

/** Timers that keep the process alive now. */
const liveTimers = () => process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;

Real('a pending timer keeps the process alive only when keepAlive is asked for', () => {
  const base = liveTimers();
  const quiet = [realClock.after(60_000, () => {}), realClock.every(60_000, () => {})];
  assert.is(liveTimers(), base, 'unref\'d by default');
  const held = [realClock.after(60_000, () => {}, { keepAlive: true }), realClock.every(60_000, () => {}, { keepAlive: true })];
  assert.is(liveTimers(), base + 2);
  for (const t of [...quiet, ...held]) t.clear();
  assert.is(liveTimers(), base);
});

Real('a delay beyond Node\'s 2^31-1 ms limit is not cut short to 1 ms', async () => {
  let fired = false;
  const t = realClock.after(2 ** 31 + 10, () => (fired = true));
  await within('a 5 ms timer', new Promise<void>((resolve) => realClock.after(5, resolve)), 2000);
  t.clear();
  assert.is(fired, false);
});

Real.run();
