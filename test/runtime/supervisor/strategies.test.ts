// Supervision as in OTP, with real worker threads crashing (runtime/supervisor/actor.worker.js, so build first):
// restart strategies, restart types, intensity, nested supervisors escalating, and a failing event log.
import { MemoryEventLog } from '../../../actors/event-log.ts';
import type { LoggedEvent } from '../../../actors/event-log.ts';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import type { NodeEvent } from '../../../machines/node.messages.ts';
import { type ActorRef, SUPERVISOR_DEFAULTS, Supervisor, type SupervisorInit } from '../../../runtime/supervisor/supervisor.ts';
import { BENCH, HOST, OFFER } from '../../fixtures/node-fixtures.ts';
import { sleep, waitFor, within } from '../../fixtures/waiting.ts';

const LONG = 20_000;

interface Ctx {
  sup: Supervisor;
  log: FlakyLog;
  escalations: Error[];
  warnings: Record<string, unknown>[];
}

/** An in-memory event log whose appends start failing when told to. */
class FlakyLog extends MemoryEventLog {
  failing = false;
  override async append(actor: string, events: readonly LoggedEvent[]): Promise<number> {
    if (this.failing) throw new Error('disk full (test)');
    await super.append(actor, events);
    return JSON.stringify(events).length; // as the durable log reports
  }
}

function behaviour(title: string, init: Partial<SupervisorInit> = {}) {
  const s = suite<Ctx>(title, {} as Ctx);
  s.before.each((ctx) => {
    ctx.escalations = [];
    ctx.warnings = [];
    ctx.log = new FlakyLog();
    ctx.sup = new Supervisor(
      { ...SUPERVISOR_DEFAULTS, ...init },
      {
        log: { info: () => {}, warn: (obj) => ctx.warnings.push(obj as Record<string, unknown>), error: () => {} },
        onIntents: () => {},
        onEscalate: (e) => ctx.escalations.push(e),
        eventLog: ctx.log,
      },
    );
  });
  s.after.each(async (ctx) => {
    await within('supervisor.stop()', ctx.sup.stop(), LONG);
  });
  return s;
}

type Ref = ActorRef<NodeEvent>;

/** Spawns registered Node actors (each on a worker thread of its own) under `sup`, in order. */
async function spawnRegistered(sup: Supervisor, ids: readonly string[], restart?: 'permanent' | 'transient' | 'temporary'): Promise<Ref[]> {
  const refs: Ref[] = [];
  for (const id of ids) {
    const ref = await within(`spawn ${id}`, sup.spawn<NodeEvent>({ id, kind: 'node', input: {}, ...(restart ? { restart } : {}) }), LONG);
    const r = await within(`onboard ${id}`, ref.ask({ type: 'node.onboard', offer: OFFER, host: HOST, benchmark: BENCH }), LONG);
    assert.ok(r.ok, `${id} did not onboard`);
    refs.push(ref);
  }
  return refs;
}

/** The actors whose restart was logged (one warning per restart, with how many events it replays). */
const restarted = (ctx: Ctx, from = 0) => ctx.warnings.slice(from).filter((w) => typeof w['replay'] === 'number').map((w) => w['actor'] as string);

/** Every ref runs again, with the state it had (registered). */
async function allRunning(refs: readonly Ref[]): Promise<void> {
  await waitFor('every actor to run again', () => refs.every((r) => r.status === 'running'), LONG);
  for (const r of refs) assert.is((await within(`view ${r.id}`, r.view(), LONG)).value, 'registered', `${r.id} lost its state`);
}

// ---------------------------------------------------------------------------------------------------------------

const OneForOne = behaviour('supervisor strategy one_for_one: only the failed child restarts', { strategy: 'one_for_one' });

OneForOne('crashing b restarts b alone; a and c keep running untouched', async (ctx) => {
  const refs = await spawnRegistered(ctx.sup, ['a', 'b', 'c']);
  refs[1]!.crash();
  await waitFor('b to restart', () => restarted(ctx).length === 1 && refs[1]!.status === 'running', LONG);
  await allRunning(refs);
  await sleep(100);
  assert.equal(restarted(ctx), ['b']);
  assert.equal(refs.map((r) => r.restarts), [0, 1, 0]);
  assert.equal(ctx.escalations, []);
});

OneForOne.run();

const OneForAll = behaviour('supervisor strategy one_for_all: every child restarts when one fails', { strategy: 'one_for_all' });

OneForAll('crashing b restarts a, b and c, each from its log with its state', async (ctx) => {
  const refs = await spawnRegistered(ctx.sup, ['a', 'b', 'c']);
  refs[1]!.crash();
  await waitFor('all three to restart', () => restarted(ctx).length === 3, LONG);
  await allRunning(refs);
  assert.equal(restarted(ctx).sort(), ['a', 'b', 'c']);
  // one failure is one restart of the supervisor's intensity, counted against the child that failed
  assert.equal(refs.map((r) => r.restarts), [0, 1, 0]);
  // while the metrics count every actor restart, by kind (dms_actor_restarts_total)
  assert.equal([...ctx.sup.restartsByKind], [['node', 3]]);
  // the restarted siblings take new events
  const answer = await within('ask a', refs[0]!.ask({ type: 'ledger.unlock', id: 'none' }), LONG);
  assert.type(answer.ok, 'boolean');
  assert.equal(ctx.escalations, []);
});

OneForAll('a temporary sibling is stopped, not restarted', async (ctx) => {
  const [a, b] = await spawnRegistered(ctx.sup, ['a', 'b']);
  const [t] = await spawnRegistered(ctx.sup, ['t'], 'temporary');
  b!.crash();
  await waitFor('a and b to restart', () => restarted(ctx).length === 2, LONG);
  await allRunning([a!, b!]);
  await waitFor('t to stop', () => t!.status === 'stopped', LONG);
  assert.is(ctx.sup.get('t'), undefined);
  assert.equal(ctx.sup.children, ['a', 'b']);
});

OneForAll.run();

const RestForOne = behaviour('supervisor strategy rest_for_one: the failed child and those started after it restart', { strategy: 'rest_for_one' });

RestForOne('crashing b restarts b and c, not a', async (ctx) => {
  const refs = await spawnRegistered(ctx.sup, ['a', 'b', 'c']);
  refs[1]!.crash();
  await waitFor('b and c to restart', () => restarted(ctx).length === 2, LONG);
  await allRunning(refs);
  await sleep(100);
  assert.equal(restarted(ctx).sort(), ['b', 'c']);
  assert.equal(ctx.escalations, []);
});

RestForOne.run();

// ---------------------------------------------------------------------------------------------------------------

const Types = behaviour('supervisor restart types: temporary children are never restarted', { maxRestarts: 0 });

Types('a temporary child that crashes ends as failed and leaves the tree; nothing escalates, even at intensity 0', async (ctx) => {
  const [p] = await spawnRegistered(ctx.sup, ['p']);
  const t = await within('spawn t', ctx.sup.spawn<NodeEvent>({ id: 't', kind: 'node', input: {}, restart: 'temporary' }), LONG);
  const pending = t.ask({ type: 'node.onboard', offer: OFFER, host: HOST }).then(() => null, (e: Error) => e); // waits for a benchmark
  await within('drain', t.drain(), LONG);
  t.crash();
  await waitFor('t to fail', () => t.status === 'failed', LONG);
  assert.is((await within('the pending ask', pending, LONG))?.name, 'ActorFailedError');
  assert.is(ctx.sup.get('t'), undefined);
  assert.equal(ctx.sup.children, ['p']);
  assert.equal(ctx.escalations, []);
  assert.is(p!.status, 'running');
  assert.equal(restarted(ctx), []);
});

Types.run();

// ---------------------------------------------------------------------------------------------------------------

const Nested = behaviour('supervisors nest: a child supervisor that gives up fails to its parent', { maxRestarts: 1, withinMs: 60_000 });

Nested('past its intensity the child supervisor fails; the parent restarts it (fresh window) and its actor comes back with its state', async (ctx) => {
  const [top] = await spawnRegistered(ctx.sup, ['top']);
  const deal = ctx.sup.supervisor({ id: 'deal', maxRestarts: 1 });
  const [x] = await spawnRegistered(deal, ['x']);
  x!.crash();
  await waitFor('x restarted by its supervisor', () => restarted(ctx).length === 1 && x!.status === 'running', LONG);
  assert.is(x!.restarts, 1);
  x!.crash(); // the second failure within the window: `deal` gives up, and the root restarts it
  await waitFor('x restarted by the root restarting its supervisor', () => restarted(ctx).length === 2 && x!.status === 'running', LONG);
  await allRunning([top!, x!]);
  assert.is(x!.restarts, 0, 'the restarted supervisor starts a fresh window');
  assert.is(deal.status, 'running');
  assert.is(ctx.sup.restartsOf('deal'), 1);
  assert.is(top!.restarts, 0);
  assert.equal([...deal.restartsByKind], [['node', 2]], 'x twice: by its supervisor, then by the root restarting that supervisor; the tree counts once');
  assert.equal(ctx.escalations, []);
});

Nested('when the root too is past its intensity, everything fails and onEscalate gets one RestartIntensityError naming both', async (ctx) => {
  const [top] = await spawnRegistered(ctx.sup, ['top']);
  const deal = ctx.sup.supervisor({ id: 'deal', maxRestarts: 0 });
  const [x] = await spawnRegistered(deal, ['x']);
  x!.crash(); // deal gives up at once; the root restarts it (its 1 restart)
  await waitFor('x to run again', () => restarted(ctx).length === 1 && x!.status === 'running', LONG);
  x!.crash(); // deal gives up again; the root has no restart left
  await waitFor('escalation', () => ctx.escalations.length > 0, LONG);
  await sleep(100);
  assert.is(ctx.escalations.length, 1);
  const [err] = ctx.escalations;
  assert.is(err!.name, 'RestartIntensityError');
  assert.match(err!.message, 'supervisor root');
  assert.match(err!.message, 'supervisor deal');
  assert.match(err!.message, 'actor x');
  assert.is(x!.status, 'failed');
  assert.is(top!.status, 'failed', 'a sibling outside the failing branch survived the root giving up');
  assert.is((await within('ask after', top!.ask({ type: 'node.offboard' }).then(() => null, (e: Error) => e), LONG))?.name, 'ActorFailedError');
});

Nested('a temporary child supervisor that gives up is dropped with its actors; the rest of the tree runs on', async (ctx) => {
  const [top] = await spawnRegistered(ctx.sup, ['top']);
  const deal = ctx.sup.supervisor({ id: 'deal', maxRestarts: 0, restart: 'temporary' });
  const [x, y] = await spawnRegistered(deal, ['x', 'y']);
  x!.crash();
  await waitFor('x and y to fail', () => x!.status === 'failed' && y!.status === 'failed', LONG);
  assert.equal(ctx.sup.children, ['top']);
  assert.is(ctx.sup.get('y'), undefined);
  assert.is(top!.status, 'running');
  assert.equal(ctx.escalations, []);
});

Nested('autoShutdown: retiring the last child retires its supervisor too', async (ctx) => {
  const deal = ctx.sup.supervisor({ id: 'deal', autoShutdown: true });
  await spawnRegistered(deal, ['x', 'y']);
  await within('retire x', ctx.sup.retire('x'), LONG);
  assert.equal(ctx.sup.children, ['deal']);
  await within('retire y', ctx.sup.retire('y'), LONG);
  assert.equal(ctx.sup.children, []);
  assert.is(deal.status, 'stopped');
  assert.is(ctx.sup.size, 0);
});

Nested('a retired actor is stopped without a final snapshot; a stopped one gets one', async (ctx) => {
  const [x, y] = await spawnRegistered(ctx.sup, ['x', 'y']);
  assert.ok(x && y);
  assert.is(await ctx.log.latestSnapshot('x'), undefined, 'onboarding is far below the snapshot interval');
  await within('retire x', ctx.sup.retire('x'), LONG);
  assert.is(await ctx.log.latestSnapshot('x'), undefined, 'retired: ended for good, nothing will start it from a snapshot');
  await within('stop y', y.stop(), LONG);
  assert.ok(await ctx.log.latestSnapshot('y'), 'a clean stop leaves a snapshot so the next start replays nothing');
});

Nested.run();

// ---------------------------------------------------------------------------------------------------------------

const LogFails = behaviour('supervisor: a failing event log escalates at once (a restart cannot help)', { maxRestarts: 5 });

LogFails('an append that fails fails the actor, rejects its asks and reaches onEscalate once, naming the cause', async (ctx) => {
  const [n, other] = await spawnRegistered(ctx.sup, ['n', 'other']);
  ctx.log.failing = true;
  const asked = n!.ask({ type: 'ledger.unlock', id: 'x' }).then(() => null, (e: Error) => e);
  const err = await within('the ask to fail', asked, LONG);
  assert.is(err?.name, 'EventLogError');
  assert.match(err!.message, 'disk full (test)');
  await waitFor('escalation', () => ctx.escalations.length > 0, LONG);
  await sleep(50);
  assert.is(ctx.escalations.length, 1);
  assert.is(ctx.escalations[0]!.name, 'EventLogError');
  assert.match(ctx.escalations[0]!.message, 'actor n cannot log events');
  assert.is(n!.status, 'failed');
  assert.equal(restarted(ctx), [], 'a log failure was treated as a crash and restarted');
  assert.is(other!.status, 'running');
});

LogFails.run();

// ---------------------------------------------------------------------------------------------------------------

const Bytes = behaviour('snapshots by bytes: a few large events do not wait for thousands more', { snapshotEvery: 100_000, snapshotBytes: 64 * 1024, batchSize: 10 });

Bytes('past snapshotBytes of logged events a snapshot is taken though snapshotEvery is far off; a restart replays little', async (ctx) => {
  const [n] = await spawnRegistered(ctx.sup, ['n']);
  assert.is((await ctx.log.latestSnapshot('n'))?.seq ?? 0, 0);
  const big = 'x'.repeat(2000);
  for (let i = 0; i < 100; i += 1) n!.send({ type: 'ledger.unlock', id: `${big}${i}` }); // ~200 KB, unknown ids
  await within('drain', n!.drain(), LONG);
  let seq = 0;
  for (let i = 0; i < 200 && seq < 30; i += 1) {
    seq = (await ctx.log.latestSnapshot('n'))?.seq ?? 0;
    if (seq < 30) await sleep(10);
  }
  assert.ok(seq >= 30, `snapshot at seq ${seq}: none taken by bytes`);
  n!.crash();
  await waitFor('the restart', () => restarted(ctx).length === 1 && n!.status === 'running', LONG);
  const [log] = ctx.warnings.filter((w) => typeof w['replay'] === 'number');
  assert.ok((log!['replay'] as number) < 100, `replayed ${String(log!['replay'])} events`);
});

Bytes('backlog counts the events sent and not yet processed, and is 0 once drained', async (ctx) => {
  const [n] = await spawnRegistered(ctx.sup, ['n']);
  assert.is(n!.backlog, 0);
  for (let i = 0; i < 500; i += 1) n!.send({ type: 'ledger.unlock', id: `u${i}` });
  assert.is(n!.backlog, 500);
  await within('drain', n!.drain(), LONG);
  assert.is(n!.backlog, 0);
});

Bytes.run();
