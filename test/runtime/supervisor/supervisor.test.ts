// The supervisor with real worker threads running the Node machine (runtime/supervisor/actor.worker.js, so build first).
// One suite per behaviour; each test gets a fresh Supervisor and one spawned Node actor, stopped after it.
import { MemoryEventLog } from '../../../actors/event-log.ts';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import type { ActorView } from '../../../actors/actor.protocol.ts';
import type { NodeView } from '../../../actors/node.actor.ts';
import type { Resources } from '../../../machines/capability.ts';
import { NODE_MACHINE_VERSION } from '../../../machines/node.machine.ts';
import type { NodeEvent, NodeIntent, ReplyBody, Sample } from '../../../machines/node.messages.ts';
import { type ActorRef, type OmitFrom, SUPERVISOR_DEFAULTS, Supervisor, type SupervisorInit } from '../../../runtime/supervisor/supervisor.ts';
import { BENCH, CAPABILITY, GiB, HOST, OFFER, T0, res } from '../../fixtures/node-fixtures.ts';
import { sleep, waitFor, within as withinMs } from '../../fixtures/waiting.ts';

const HOUR = 3_600_000;
const ACTOR = 'node';

type Command = OmitFrom<NodeEvent, 'replyTo'>;

const onboard = (): Command => ({ type: 'node.onboard', offer: OFFER, host: HOST, benchmark: BENCH });
/** An onboard with no benchmark known: the machine asks for one and keeps the request waiting until it comes. */
const onboardUnmeasured = (): Command => ({ type: 'node.onboard', offer: OFFER, host: HOST });
const lockEv = (id: string, resources: Resources, expiresAt = T0 + HOUR, ports?: { dynamic: number }): Command => ({
  type: 'ledger.lock',
  id,
  resources,
  expiresAt,
  now: T0,
  ...(ports ? { ports } : {}),
});
const allocEv = (allocationId: string, lockId: string): Command => ({ type: 'ledger.allocate', allocationId, lockId, now: T0 + 1 });
const sampleEv = (at: number, memoryAvailable: number): Command => {
  const sample: Sample = { at, load1: 0.5, memoryTotal: 10 * GiB, memoryAvailable, diskFree: 1000 * GiB };
  return { type: 'monitor.sample', sample };
};

// ---- bounded waiting ----

/** `p`, or a rejection naming `what` after `ms`: worker threads get longer than the shared default. */
const within = <T>(what: string, p: Promise<T>, ms = 20_000): Promise<T> => withinMs(what, p, ms);

/** The error `p` rejects with (within `ms`); fails if it resolves. */
async function rejection(what: string, p: Promise<unknown>, ms = 5000): Promise<Error> {
  let settled: { ok: true } | { ok: false; err: Error };
  try {
    await within(what, p, ms);
    settled = { ok: true };
  } catch (err) {
    settled = { ok: false, err: err as Error };
  }
  if (settled.ok) throw new Error(`expected ${what} to reject, but it resolved`);
  if (/^timed out after/.test(settled.err.message)) throw settled.err;
  return settled.err;
}

function thrown(fn: () => void): Error {
  try {
    fn();
  } catch (err) {
    return err as Error;
  }
  throw new Error('expected a throw');
}

// ---- the harness ----

interface Ctx {
  sup: Supervisor;
  node: ActorRef<NodeEvent>;
  /** Every intent onIntents received, flattened in order. */
  intents: NodeIntent[];
  /** The actor ids onIntents was called with. */
  intentIds: Set<string>;
  /** How many times onIntents was called. */
  intentCalls: number;
  escalations: Error[];
  warnings: Record<string, unknown>[];
  errors: Record<string, unknown>[];
  /** When set, the supervisor's clock (deps.now). */
  clock: number | undefined;
}

interface Options {
  /** Spawn the Node actor `node` in before.each (default true). */
  spawn?: boolean;
  workerUrl?: URL;
}

/** A suite with a fresh Supervisor (defaults overridden by `init`) per test, stopped after it. */
function behaviour(title: string, init: Partial<SupervisorInit> = {}, opts: Options = {}) {
  const s = suite<Ctx>(title, {} as Ctx);
  s.before.each(async (ctx) => {
    ctx.intents = [];
    ctx.intentCalls = 0;
    ctx.intentIds = new Set();
    ctx.escalations = [];
    ctx.warnings = [];
    ctx.errors = [];
    ctx.clock = undefined;
    ctx.sup = new Supervisor(
      { ...SUPERVISOR_DEFAULTS, askTimeoutMs: 10_000, ...init },
      {
        log: {
          info: () => {},
          warn: (obj) => ctx.warnings.push(obj as Record<string, unknown>),
          error: (obj) => ctx.errors.push(obj as Record<string, unknown>),
        },
        onIntents: (id, intents) => {
          ctx.intentIds.add(id);
          ctx.intentCalls += 1;
          for (const i of intents) ctx.intents.push(i as NodeIntent);
        },
        onEscalate: (e) => ctx.escalations.push(e),
        eventLog: new MemoryEventLog(),
        now: () => ctx.clock ?? Date.now(),
        ...(opts.workerUrl ? { workerUrl: opts.workerUrl } : {}),
      },
    );
    if (opts.spawn !== false) ctx.node = await within('spawn', ctx.sup.spawn<NodeEvent>({ id: ACTOR, kind: 'node', input: {} }));
  });
  s.after.each(async (ctx) => {
    await within('supervisor.stop()', ctx.sup.stop());
  });
  return s;
}

async function nodeView(ref: ActorRef<NodeEvent>): Promise<{ value: unknown; view: NodeView; raw: ActorView }> {
  const raw = await within('view()', ref.view());
  return { value: raw.value, view: raw.context as NodeView, raw };
}

/** The reply's body: ask() resolves with the whole reply.send intent, whose routing fields are not the answer. */
function body(r: ReplyBody): ReplyBody {
  const { type: _type, replyTo: _replyTo, ...rest } = r as ReplyBody & { type?: string; replyTo?: string };
  return JSON.parse(JSON.stringify(rest)) as ReplyBody; // and without `value: undefined`
}

async function ask(ref: ActorRef<NodeEvent>, cmd: Command): Promise<ReplyBody> {
  return body(await within(`ask ${cmd.type}`, ref.ask(cmd)));
}

async function registered(ref: ActorRef<NodeEvent>): Promise<void> {
  const r = await ask(ref, onboard());
  assert.equal(r, { ok: true, value: CAPABILITY });
}

/** Crashes the actor's worker and waits until it runs again with `restarts` restarts counted. */
async function crashAndRestart(ctx: Ctx, restarts: number): Promise<void> {
  const warned = ctx.warnings.length;
  ctx.node.crash();
  await waitFor(`restart #${restarts}`, () => ctx.node.restarts === restarts && ctx.node.status === 'running' && ctx.warnings.length > warned);
}

/** The restart log entries (the supervisor logs one warning per restart, with how many events it replays). */
const restartLogs = (ctx: Ctx) => ctx.warnings.filter((w) => typeof w['replay'] === 'number');

const ofType = <K extends NodeIntent['type']>(intents: readonly NodeIntent[], type: K) =>
  intents.filter((i): i is Extract<NodeIntent, { type: K }> => i.type === type);

// ---------------------------------------------------------------------------------------------------------------

const Burst = behaviour('supervisor: a burst of events is batched, processed in order, and its intents reach onIntents');

Burst('20k lock/unlock pairs: every event processed in order, one timer intent per event, in order', async (ctx) => {
  await registered(ctx.node);
  const from = ctx.intents.length;
  const calls = ctx.intentCalls;
  const pairs = 20_000;
  for (let i = 0; i < pairs; i += 1) {
    ctx.node.send(lockEv(`l${i}`, res(1, GiB, GiB), T0 + HOUR + i) as NodeEvent);
    ctx.node.send({ type: 'ledger.unlock', id: `l${i}` });
  }
  const { value, view } = await nodeView(ctx.node);
  assert.is(value, 'registered');
  assert.equal(view.locks, {}, 'an unlock ran before its lock');
  assert.equal(view.capability.available, CAPABILITY);
  const got = ctx.intents.slice(from);
  assert.is(got.length, 2 * pairs);
  for (let i = 0; i < pairs; i += 1) {
    const lock = got[2 * i];
    const unlock = got[2 * i + 1];
    if (lock?.type !== 'timer.schedule' || lock.at !== T0 + HOUR + i || unlock?.type !== 'timer.schedule' || unlock.at !== null) {
      assert.unreachable(`intents for pair ${i} out of order: ${JSON.stringify([lock, unlock])}`);
    }
  }
  // Batched: onIntents runs once per delivered batch, not once per event.
  const batches = Math.ceil((2 * pairs) / SUPERVISOR_DEFAULTS.batchSize);
  assert.ok(ctx.intentCalls - calls <= batches + 1, `${ctx.intentCalls - calls} onIntents calls for ${batches} batches`);
});

Burst('20k monitor samples with asks in between: intents in order, replies settle asks and never reach onIntents', async (ctx) => {
  await registered(ctx.node);
  const from = ctx.intents.length;
  const n = 20_000;
  const asks: Promise<ReplyBody>[] = [];
  for (let i = 0; i < n; i += 1) {
    // Alternately short of memory (1 GiB < the 4 GiB offered) and not: each sample flips `constrained`.
    ctx.node.send(sampleEv(T0 + i, i % 2 === 0 ? GiB : 8 * GiB) as NodeEvent);
    if (i % 1000 === 999) asks.push(ctx.node.ask({ type: 'ledger.unlock', id: `none-${i}` }));
  }
  const replies = (await within('20 asks', Promise.all(asks))).map(body);
  assert.equal(replies, Array.from({ length: 20 }, () => ({ ok: true })));
  const { view } = await nodeView(ctx.node);
  assert.is(view.sample?.at, T0 + n - 1);
  assert.is(view.sample?.memoryAvailable, 8 * GiB);
  assert.equal(view.constrained, { memory: false, disk: false });
  const got = ctx.intents.slice(from);
  assert.equal(ofType(got, 'reply.send'), []);
  assert.equal([...ctx.intentIds], [ACTOR]);
  assert.is(got.length, n);
  for (let i = 0; i < n; i += 1) {
    const g = got[i];
    const level = i % 2 === 0 ? 'warn' : 'info';
    if (g?.type !== 'log.write' || g.level !== level || g.data?.['observed'] !== (i % 2 === 0 ? GiB : 8 * GiB)) {
      assert.unreachable(`intent ${i} is ${JSON.stringify(g)}, expected a ${level} log.write`);
    }
  }
});

Burst.run();

// ---------------------------------------------------------------------------------------------------------------

const Ask = behaviour('supervisor: ask() resolves with the machine reply');

Ask('onboard answers with the registered capability; a lock within what is available answers with the lock', async (ctx) => {
  await registered(ctx.node);
  const r = await ask(ctx.node, lockEv('a', res(1, GiB, GiB), T0 + HOUR, { dynamic: 2 }));
  assert.equal(r, { ok: true, value: { id: 'a', resources: res(1, GiB, GiB), ports: [32768, 32769], expiresAt: T0 + HOUR } });
  const { view } = await nodeView(ctx.node);
  assert.equal(Object.keys(view.locks), ['a']);
});

Ask('a lock beyond what is available is refused with code insufficient and changes nothing', async (ctx) => {
  await registered(ctx.node);
  await ask(ctx.node, lockEv('a', res(1, 3 * GiB)));
  const r = await ask(ctx.node, lockEv('b', res(1, 2 * GiB)));
  assert.is(r.ok, false);
  assert.is(!r.ok && r.code, 'insufficient');
  assert.match(!r.ok ? r.message : '', /memory/);
  const { view } = await nodeView(ctx.node);
  assert.equal(Object.keys(view.locks), ['a']);
});

Ask('before onboarding a lock is refused with code offboarded; replies never reach onIntents', async (ctx) => {
  const r = await ask(ctx.node, lockEv('a', res(1)));
  assert.is(!r.ok && r.code, 'offboarded');
  assert.equal(ofType(ctx.intents, 'reply.send'), []);
});

Ask.run();

// ---------------------------------------------------------------------------------------------------------------

const Crash = behaviour('supervisor: a crashed actor restarts from its snapshot plus replay, with the same state', { snapshotEvery: 10, batchSize: 50 });

Crash('onboard, lock, allocate, crash: the restarted actor has the same ledger and takes new events', async (ctx) => {
  await registered(ctx.node);
  assert.is((await ask(ctx.node, lockEv('l1', res(1, GiB, GiB), T0 + HOUR, { dynamic: 2 }))).ok, true);
  assert.is((await ask(ctx.node, allocEv('a1', 'l1'))).ok, true);
  assert.is((await ask(ctx.node, lockEv('l2', res(0.5, GiB, GiB), T0 + 2 * HOUR, { dynamic: 1 }))).ok, true);
  const before = await nodeView(ctx.node);
  assert.equal(Object.keys(before.view.allocations), ['a1']);
  assert.equal(Object.keys(before.view.locks), ['l2']);

  await crashAndRestart(ctx, 1);
  const after = await nodeView(ctx.node);
  assert.is(after.value, 'registered');
  assert.equal(after.view, before.view);
  assert.is(ctx.node.restarts, 1);
  assert.equal(ctx.escalations, []);

  // New events see the restored ledger: ports and resources in use stay taken.
  const l3 = await ask(ctx.node, lockEv('l3', res(0.5, GiB, GiB), T0 + HOUR, { dynamic: 1 }));
  assert.equal(l3, { ok: true, value: { id: 'l3', resources: res(0.5, GiB, GiB), ports: [32771], expiresAt: T0 + HOUR } });
  const over = await ask(ctx.node, lockEv('l4', res(0.5, 2 * GiB)));
  assert.is(!over.ok && over.code, 'insufficient');
  assert.equal(Object.keys((await nodeView(ctx.node)).view.locks).sort(), ['l2', 'l3']);
});

Crash('after a burst of many batches, the restart replays fewer than snapshotEvery events and the ledger is unchanged', async (ctx) => {
  await registered(ctx.node);
  // Lock-then-allocate is not idempotent: replaying a pair the snapshot already holds leaves a stray lock behind.
  const pairs = 300;
  for (let i = 0; i < pairs; i += 1) {
    ctx.node.send(lockEv(`l${i}`, res(0, 1, 1)) as NodeEvent);
    ctx.node.send(allocEv(`a${i}`, `l${i}`) as NodeEvent);
  }
  const before = await nodeView(ctx.node);
  assert.is(Object.keys(before.view.allocations).length, pairs);
  assert.equal(before.view.locks, {});

  await crashAndRestart(ctx, 1);
  const after = await nodeView(ctx.node);
  assert.equal(after.view, before.view);
  const [log] = restartLogs(ctx);
  assert.ok(log, 'no restart was logged');
  assert.ok((log['replay'] as number) < 10, `replayed ${String(log['replay'])} of ${2 * pairs + 1} events: not from a snapshot`);

  // And again, with events on top of the restored actor.
  for (let i = 0; i < 13; i += 1) ctx.node.send({ type: 'ledger.release', allocationId: `a${i}` });
  const before2 = await nodeView(ctx.node);
  assert.is(Object.keys(before2.view.allocations).length, pairs - 13);
  await crashAndRestart(ctx, 2);
  assert.equal((await nodeView(ctx.node)).view, before2.view);
  assert.ok((restartLogs(ctx)[1]!['replay'] as number) < 10);
});

Crash('an ask left waiting in the machine (onboard while benchmarking) is answered after a restart', async (ctx) => {
  const pending = ctx.node.ask(onboardUnmeasured());
  await within('drain', ctx.node.drain());
  assert.is((await nodeView(ctx.node)).value, 'benchmarking');
  await crashAndRestart(ctx, 1);
  assert.is((await nodeView(ctx.node)).value, 'benchmarking');
  ctx.node.send({ type: 'benchmark.done', benchmark: BENCH });
  assert.equal(body(await within('the onboard reply', pending)), { ok: true, value: CAPABILITY });
  assert.is((await nodeView(ctx.node)).value, 'registered');
});

Crash.run();

// ---------------------------------------------------------------------------------------------------------------

const Replay = behaviour('supervisor: replayed events do not emit their intents again', { snapshotEvery: 10 });

Replay('after a crash, onIntents has seen each intent once: nothing from the snapshot or the replay is repeated', async (ctx) => {
  await registered(ctx.node);
  // Each lock expires before the ones already held, so each one schedules the timer anew.
  for (let i = 0; i < 11; i += 1) assert.is((await ask(ctx.node, lockEv(`l${i}`, res(0.1), T0 + HOUR - i))).ok, true);
  for (let i = 0; i < 3; i += 1) await ask(ctx.node, { type: 'ledger.unlock', id: `none-${i}` });
  ctx.node.send(sampleEv(T0, GiB) as NodeEvent);
  await within('drain', ctx.node.drain());
  const before = [...ctx.intents];
  assert.is(ofType(before, 'timer.schedule').length, 11);
  assert.is(ofType(before, 'registration.save').length, 1);
  assert.is(ofType(before, 'log.write').length, 2, JSON.stringify(ofType(before, 'log.write')));

  await crashAndRestart(ctx, 1);
  await nodeView(ctx.node);
  await sleep(50);
  const [log] = restartLogs(ctx);
  assert.ok((log!['replay'] as number) > 0, 'nothing was replayed, so the test proves nothing');
  assert.equal(ctx.intents, before);

  // Live events after the restart emit as usual.
  await ask(ctx.node, lockEv('later', res(0.1), T0 + 60_000));
  assert.equal(ctx.intents.slice(before.length), [{ type: 'timer.schedule', at: T0 + 60_000 }]);
});

Replay('events sent right after crash() are processed once and their intents reach onIntents once', async (ctx) => {
  await registered(ctx.node);
  const from = ctx.intents.length;
  ctx.node.crash();
  for (let i = 0; i < 5; i += 1) ctx.node.send(lockEv(`l${i}`, res(0.1), T0 + HOUR - i) as NodeEvent);
  await waitFor('the restart', () => ctx.node.restarts === 1 && ctx.node.status === 'running');
  const { view } = await nodeView(ctx.node);
  assert.equal(Object.keys(view.locks).sort(), ['l0', 'l1', 'l2', 'l3', 'l4']);
  await sleep(50);
  assert.equal(
    ctx.intents.slice(from),
    [0, 1, 2, 3, 4].map((i) => ({ type: 'timer.schedule', at: T0 + HOUR - i })),
  );
});

Replay.run();

// ---------------------------------------------------------------------------------------------------------------

const Intensity = behaviour('supervisor: more restarts than maxRestarts within the window escalate', { maxRestarts: 2, withinMs: 60_000 });

Intensity('the third crash within 60 s escalates once; the actor fails, its asks reject and send throws', async (ctx) => {
  const pending = ctx.node.ask(onboardUnmeasured()); // waits in `benchmarking` for a benchmark that never comes
  let settled = false;
  pending.then(
    () => (settled = true),
    () => (settled = true),
  );
  await within('drain', ctx.node.drain());
  await crashAndRestart(ctx, 1);
  await crashAndRestart(ctx, 2);
  assert.is(settled, false, 'a restart settled the pending ask');
  assert.equal(ctx.escalations, []);

  ctx.node.crash();
  await waitFor('escalation', () => ctx.escalations.length > 0);
  await sleep(50);
  assert.is(ctx.escalations.length, 1);
  const [err] = ctx.escalations;
  assert.is(err!.name, 'RestartIntensityError');
  assert.match(err!.message, `actor ${ACTOR} `);
  assert.is(ctx.node.status, 'failed');
  const askErr = await rejection('the pending ask', pending);
  assert.is(askErr.name, 'RestartIntensityError');
  const sendErr = thrown(() => ctx.node.send({ type: 'node.offboard' }));
  assert.is(sendErr.name, 'ActorFailedError');
  assert.is((await rejection('an ask after the failure', ctx.node.ask({ type: 'node.offboard' }))).name, 'ActorFailedError');
  assert.is((await rejection('view() after the failure', ctx.node.view())).name, 'ActorFailedError');
  assert.is(ctx.escalations.length, 1);
});

Intensity('restarts spread further apart than the window do not escalate', async (ctx) => {
  ctx.clock = T0;
  await registered(ctx.node);
  for (let i = 1; i <= 4; i += 1) {
    await crashAndRestart(ctx, 1); // the earlier restarts fell out of the window
    ctx.clock += 61_000;
  }
  assert.equal(ctx.escalations, []);
  assert.is((await nodeView(ctx.node)).value, 'registered');
  assert.is(restartLogs(ctx).length, 4);
});

Intensity.run();

// ---------------------------------------------------------------------------------------------------------------

const Snapshots = behaviour('supervisor: a snapshot is used only if its machine version matches', {}, { spawn: false });

Snapshots('a snapshot from another machine version is refused with SnapshotVersionError', async (ctx) => {
  const err = await rejection('spawn', ctx.sup.spawn({ id: 'old', kind: 'node', input: {}, snapshot: { kind: 'node', version: 999, seq: 0, snapshot: {} } }));
  assert.is(err.name, 'SnapshotVersionError');
  assert.match(err.message, /999/);
  assert.is(ctx.sup.get('old'), undefined);
  // The id is free again, and a fresh actor starts under it.
  const fresh = await within('spawn', ctx.sup.spawn<NodeEvent>({ id: 'old', kind: 'node', input: {} }));
  assert.is((await nodeView(fresh)).value, 'offboarded');
});

Snapshots('a snapshot of another kind is refused too', async (ctx) => {
  const err = await rejection('spawn', ctx.sup.spawn({ id: 'other', kind: 'node', input: {}, snapshot: { kind: 'allocation', version: NODE_MACHINE_VERSION, seq: 0, snapshot: {} } }));
  assert.is(err.name, 'SnapshotVersionError');
});

Snapshots('a snapshot of this version restores the state, and the restored actor takes new events', async (ctx) => {
  const a = await within('spawn a', ctx.sup.spawn<NodeEvent>({ id: 'a', kind: 'node', input: {} }));
  await registered(a);
  await ask(a, lockEv('l1', res(1, GiB), T0 + HOUR, { dynamic: 1 }));
  const snap = await within('persisted()', a.persisted());
  assert.is(snap.version, NODE_MACHINE_VERSION);
  assert.is(snap.seq, 2);
  const b = await within('spawn b', ctx.sup.spawn<NodeEvent>({ id: 'b', kind: 'node', input: {}, snapshot: snap }));
  const [va, vb] = [await nodeView(a), await nodeView(b)];
  assert.is(vb.value, 'registered');
  assert.equal(vb.view, va.view);
  const r = await ask(b, lockEv('l2', res(1, GiB), T0 + HOUR, { dynamic: 1 }));
  assert.equal(r, { ok: true, value: { id: 'l2', resources: res(1, GiB), ports: [32769], expiresAt: T0 + HOUR } });
});

Snapshots.run();

// ---------------------------------------------------------------------------------------------------------------

const Stop = behaviour('supervisor: stop() ends the actor and its worker thread');

Stop('after stop() the actor is stopped: pending asks reject, send throws, view rejects', async (ctx) => {
  const pending = ctx.node.ask(onboardUnmeasured()); // waits in `benchmarking` for a benchmark
  const outcome = pending.then(
    () => null,
    (e: Error) => e,
  );
  await within('drain', ctx.node.drain());
  await within('supervisor.stop()', ctx.sup.stop());
  assert.is(ctx.node.status, 'stopped');
  assert.is((await within('the pending ask', outcome))?.name, 'ActorFailedError');
  assert.is(thrown(() => ctx.node.send({ type: 'node.offboard' })).name, 'ActorFailedError');
  assert.is((await rejection('view() after stop', ctx.node.view())).name, 'ActorFailedError');
  assert.is(ctx.sup.get(ACTOR), undefined);
  assert.equal(ctx.escalations, []);
  assert.equal(ctx.errors, []);
});

Stop('a process whose supervisor stopped exits by itself, promptly: no worker thread or timer is left', async () => {
  const supervisorJs = fileURLToPath(new URL('../../../runtime/supervisor/supervisor.js', import.meta.url));
  const eventLogJs = fileURLToPath(new URL('../../../actors/event-log.js', import.meta.url));
  const script = `
    Promise.all([import(${JSON.stringify(supervisorJs)}), import(${JSON.stringify(eventLogJs)})]).then(async ([{ Supervisor, SUPERVISOR_DEFAULTS }, { MemoryEventLog }]) => {
      const log = { info() {}, warn() {}, error() {} };
      const sup = new Supervisor(SUPERVISOR_DEFAULTS, { log, onIntents() {}, onEscalate() {}, eventLog: new MemoryEventLog() });
      const ref = await sup.spawn({ id: 'n', kind: 'node', input: {} });
      ref.send({ type: 'node.offboard' });
      const view = await ref.view();
      await sup.stop();
      console.log(JSON.stringify({ state: view.value, status: ref.status }));
      const stoppedAt = Date.now();
      process.on('exit', () => console.log(JSON.stringify({ lingeredMs: Date.now() - stoppedAt })));
    });`;
  const child = spawn(process.execPath, ['-e', script], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let errOut = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (errOut += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  let code: number | null;
  try {
    code = await within('the child process to exit by itself', exited, 10_000);
  } finally {
    child.kill('SIGKILL');
  }
  assert.is(code, 0, errOut);
  const lines = out.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
  assert.equal(lines[0], { state: 'offboarded', status: 'stopped' });
  assert.ok((lines[1]!['lingeredMs'] as number) < 500, `the process lived on ${String(lines[1]!['lingeredMs'])} ms after stop()`);
});

Stop.run();

// ---------------------------------------------------------------------------------------------------------------

const Unstartable = behaviour(
  'supervisor: a worker that dies before it answers init fails the spawn instead of hanging',
  {},
  { spawn: false, workerUrl: new URL('./no-such-actor.worker.js', import.meta.url) },
);

Unstartable('spawn rejects, and the id is not kept', async (ctx) => {
  const err = await rejection('spawn', ctx.sup.spawn({ id: 'n', kind: 'node', input: {} }));
  assert.match(err.message, /exited/);
  assert.is(ctx.sup.get('n'), undefined);
});

Unstartable.run();
