/**
 * The dashboard's login: one-time codes that expire, sessions from codes only, cookies that name them, and the
 * activity feed the page is pushed (what actors' logs accepted, batched, the last few per actor).
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { MemoryEventLog } from '../../../actors/event-log.ts';
import { ActivityFeed, observedLog } from '../../../runtime/api/activity-feed.ts';
import { CODE_TTL_MS, DashboardAuth, SESSION_COOKIE, SESSION_TTL_MS } from '../../../runtime/api/dashboard-auth.ts';
import { ManualClock } from '../../../runtime/clock.ts';

const auth = suite('dashboard: login codes and sessions');

auth('a code logs in once; the session cookie then passes, a forged one does not', () => {
  let now = 1_000;
  const a = new DashboardAuth(() => now);
  const { code, expiresAt } = a.issueCode();
  assert.is(expiresAt, now + CODE_TTL_MS);
  const s = a.exchange(code)!;
  assert.type(s.session, 'string');
  assert.is(a.exchange(code), null, 'spent');
  assert.ok(a.valid(`other=1; ${SESSION_COOKIE}=${s.session}`));
  assert.not.ok(a.valid(`${SESSION_COOKIE}=${s.session.slice(0, -1)}x`));
  assert.not.ok(a.valid(undefined));
  assert.not.ok(a.valid(`${SESSION_COOKIE}=`));
  now += SESSION_TTL_MS;
  assert.not.ok(a.valid(`${SESSION_COOKIE}=${s.session}`), 'expired');
});

auth('where the secret is asked for, the cookie alone does not pass (a program on another local port gets our cookie)', () => {
  const a = new DashboardAuth(() => 0);
  const s = a.exchange(a.issueCode().code)!;
  const other = a.exchange(a.issueCode().code)!;
  const cookie = `${SESSION_COOKIE}=${s.session}`;
  assert.ok(a.valid(cookie, s.secret));
  assert.not.ok(a.valid(cookie, null), 'no secret');
  assert.not.ok(a.valid(cookie, ''), 'an empty secret');
  assert.not.ok(a.valid(cookie, other.secret), "another session's secret");
  assert.ok(a.valid(cookie), 'the static page asks no secret');
});

auth('an expired or unknown code gives no session', () => {
  let now = 0;
  const a = new DashboardAuth(() => now);
  const { code } = a.issueCode();
  now += CODE_TTL_MS;
  assert.is(a.exchange(code), null);
  assert.is(a.exchange('made-up'), null);
});

auth('the cookie is HttpOnly, SameSite=Strict and host-only', () => {
  const c = DashboardAuth.cookie('abc');
  assert.match(c, /^dms_dashboard=abc; /);
  assert.match(c, /HttpOnly/);
  assert.match(c, /SameSite=Strict/);
  assert.not.match(c, /Domain=/i);
});

auth('codes outstanding are bounded: the oldest goes first', () => {
  const a = new DashboardAuth(() => 0);
  const first = a.issueCode().code;
  for (let i = 0; i < 16; i += 1) a.issueCode();
  assert.is(a.exchange(first), null);
});

auth.run();

const feed = suite('dashboard: the activity feed');

feed('an observed log tells the feed what it appended, after the append, in batches; the last few per actor', async () => {
  const clock = new ManualClock(0);
  const f = new ActivityFeed({ perActor: 3, actors: 2, batchMs: 250, batchMax: 4 }, clock);
  const log = observedLog(new MemoryEventLog(), f);
  const batches: { types: string[]; dropped: number }[] = [];
  f.subscribe((b, dropped) => batches.push({ types: b.map((a) => `${a.actor}:${a.type}`), dropped }));
  const ev = (seq: number, type: string) => ({ seq, ts: seq, type, origin: 'local', payload: { type } });
  await log.append('a', [ev(1, 'x'), ev(2, 'y')]);
  await log.append('b', [ev(1, 'z')]);
  assert.equal(batches, [], 'not before the batch interval');
  clock.advance(250);
  assert.equal(batches, [{ types: ['a:x', 'a:y', 'b:z'], dropped: 0 }]);
  await log.append('a', [ev(3, 'p'), ev(4, 'q'), ev(5, 'r'), ev(6, 's')]);
  await log.append('b', [ev(2, 't')]);
  clock.advance(250);
  assert.equal(batches[1], { types: ['a:q', 'a:r', 'a:s', 'b:t'], dropped: 1 }, 'the newest batchMax, the rest counted');
  assert.equal(f.recent('a').map((a) => a.seq), [4, 5, 6], 'perActor kept');
  await log.append('c', [ev(1, 'u')]);
  assert.equal(f.recent('a').map((a) => a.seq), [], 'the least recently active actor went');
  assert.is(await log.lastSeq('a'), 6, 'the rest of the log goes straight through');
  f.stop();
});

feed.run();
