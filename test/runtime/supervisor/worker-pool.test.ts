// Where supervised actors run: the WorkerPool itself, and the supervisor's `placement: 'shared'` (many small actors
// on one worker thread) next to the default dedicated placement. Real worker threads running the compiled actor
// worker (build first); the threads a supervisor starts are counted through test/fixtures/announcing-actor.worker.mjs,
// which is the real worker plus one BroadcastChannel message naming its thread.
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { BroadcastChannel } from 'node:worker_threads';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import type { ActorView } from '../../../actors/actor.protocol.ts';
import { MemoryEventLog } from '../../../actors/event-log.ts';
import type { NodeView } from '../../../actors/node.actor.ts';
import type { AllocationInput } from '../../../machines/allocation.messages.ts';
import { DEAL_DEFAULTS } from '../../../machines/deal.constants.ts';
import type { Bid } from '../../../machines/deal.wire.ts';
import type { JobSpec } from '../../../machines/job.ts';
import type { ProviderInput } from '../../../machines/provider.messages.ts';
import type { RequesterInput } from '../../../machines/requester.messages.ts';
import { type ActorRef, SUPERVISOR_DEFAULTS, Supervisor } from '../../../runtime/supervisor/supervisor.ts';
import { DEFAULT_WORKER_URL, type WorkerHost, WorkerPool } from '../../../runtime/supervisor/worker-pool.ts';
import { BENCH, GiB, HOST, OFFER, T0, res } from '../../fixtures/node-fixtures.ts';
import { sleep, waitFor, within } from '../../fixtures/waiting.ts';
import { PROCESS_JOB } from '../../fixtures/deal-fixtures.ts';

const ANNOUNCING_WORKER = new URL('../../fixtures/announcing-actor.worker.mjs', import.meta.url);
const WORKER_STARTS_CHANNEL = 'dms-test-worker-starts';
const HOUR = 3_600_000;
/** Worker threads get longer than the shared default. */
const LONG = 15_000;

type AnyEvent = { readonly type: string; readonly [field: string]: unknown };
type Ref = ActorRef<AnyEvent>;

const REQUESTER = '12D3KooWRequesterRequesterRequesterRequester';
const PROVIDER = '12D3KooWProviderProviderProviderProviderPro';
const JOB: JobSpec = PROCESS_JOB;

// ---- the four actor kinds, each with its input and a few events that move it on ----

const allocationInput = (n: number): AllocationInput => ({ allocationId: `deal-${n}.1`, dealId: `deal-${n}`, nonce: 1, requester: REQUESTER, job: JOB });
const requesterInput = (n: number): RequesterInput => ({
  dealId: `deal-${n}`,
  job: JOB,
  self: REQUESTER,
  createdAt: T0,
  deadline: T0 + 60_000,
  weights: { price: 1, score: 0, rtt: 0 },
  timing: DEAL_DEFAULTS.requester,
});
function providerInput(n: number): ProviderInput {
  const bid: Bid = { dealId: `deal-${n}`, nonce: 1, provider: PROVIDER, price: 10, score: 100, resources: JOB.resources, expiresAt: T0 + 15_000 };
  return { key: `deal-${n}.1`, bid, requester: REQUESTER, job: JOB, lockId: `deal-${n}.1` };
}

interface Spec {
  readonly id: string;
  readonly kind: 'node' | 'allocation' | 'provider' | 'requester';
  readonly input: unknown;
}

/** Actor `n` of a mixed crowd: node, allocation, provider and requester kinds in turn. */
function crowdMember(n: number): Spec {
  switch (n % 4) {
    case 0:
      return { id: `node-${n}`, kind: 'node', input: {} };
    case 1:
      return { id: `allocation/deal-${n}.1`, kind: 'allocation', input: allocationInput(n) };
    case 2:
      return { id: `provider/deal-${n}.1`, kind: 'provider', input: providerInput(n) };
    default:
      return { id: `job/deal-${n}`, kind: 'requester', input: requesterInput(n) };
  }
}

/** Events that take an actor of `kind` out of its initial state (node: registered with a lock held). */
function progress(spec: Spec, n: number): AnyEvent[] {
  switch (spec.kind) {
    case 'node':
      return [
        { type: 'node.onboard', offer: OFFER, host: HOST, benchmark: BENCH },
        { type: 'ledger.lock', id: `lock-${n}`, resources: res(0.5, GiB), expiresAt: T0 + HOUR, now: T0 },
      ];
    case 'allocation':
      return [
        { type: 'allocation.start', now: T0 + 1 },
        { type: 'execution.started', pid: 1000 + n, now: T0 + 2 },
      ];
    case 'provider':
      return [
        { type: 'provider.start', now: T0 + 1 },
        { type: 'deal.commit', dealId: `deal-${n}`, nonce: 1, from: REQUESTER, now: T0 + 2 },
      ];
    case 'requester':
      return [
        { type: 'deal.start', now: T0 + 1 },
        { type: 'bid.request.sent', nonce: 1, candidates: [PROVIDER], now: T0 + 2 },
      ];
  }
}

/** The state each kind reaches with `progress` (as the actor's view shows it). */
const EXPECTED_VALUE: Record<Spec['kind'], unknown> = {
  node: 'registered',
  allocation: 'running',
  provider: 'committed',
  requester: { requesting: 'collecting' },
};

/** An event that makes an actor fail: a node sample without its sample, an execution end without its outcome. */
const POISON: Partial<Record<Spec['kind'], AnyEvent>> = {
  node: { type: 'monitor.sample', sample: null },
  allocation: { type: 'execution.ended', now: T0 + 3 },
};

/** An event each kind takes after the test, with what it leads to. */
function later(spec: Spec, n: number): { event: AnyEvent; check: (v: ActorView) => void } {
  switch (spec.kind) {
    case 'node':
      return {
        event: { type: 'ledger.lock', id: `later-${n}`, resources: res(0.5, GiB), expiresAt: T0 + HOUR, now: T0 },
        check: (v) => assert.equal(Object.keys((v.context as NodeView).locks).sort(), [`later-${n}`, `lock-${n}`], `${spec.id} locks`),
      };
    case 'allocation':
      return {
        event: { type: 'execution.ended', outcome: { exitCode: 0, reason: 'completed', message: 'done', durationMs: 5, outputBytes: 0, outputTruncated: false }, now: T0 + 10 },
        check: (v) => assert.is((v.context as { state: string }).state, 'completed', `${spec.id} state`),
      };
    case 'provider':
      return {
        event: { type: 'deal.revert', dealId: `deal-${n}`, nonce: 1, reason: 'changed my mind', from: REQUESTER, now: T0 + 10 },
        check: (v) => assert.is((v.context as { state: string }).state, 'released', `${spec.id} state`),
      };
    case 'requester':
      return {
        event: { type: 'job.cancel', now: T0 + 10 },
        check: (v) => assert.is((v.context as { state: string }).state, 'cancelled', `${spec.id} state`),
      };
  }
}

// ---- the harness ----

interface Ctx {
  sup: Supervisor;
  /** Thread ids of the worker threads started since the test began, in order. */
  started: number[];
  channel: BroadcastChannel;
  warnings: Record<string, unknown>[];
  errors: Record<string, unknown>[];
  escalations: Error[];
  /** Promise rejections nobody handled while the test ran (each one would end a node process). */
  unhandled: unknown[];
  onUnhandled: (reason: unknown) => void;
  /** Intents by actor id. */
  intents: Map<string, unknown[]>;
}

function behaviour(title: string) {
  const s = suite<Ctx>(title, {} as Ctx);
  s.before.each((ctx) => {
    ctx.started = [];
    ctx.warnings = [];
    ctx.errors = [];
    ctx.escalations = [];
    ctx.unhandled = [];
    ctx.intents = new Map();
    ctx.onUnhandled = (reason) => ctx.unhandled.push(reason);
    process.on('unhandledRejection', ctx.onUnhandled);
    ctx.channel = new BroadcastChannel(WORKER_STARTS_CHANNEL);
    ctx.channel.onmessage = (e) => ctx.started.push((e as { data: { threadId: number } }).data.threadId);
    ctx.channel.unref();
    ctx.sup = new Supervisor(
      { ...SUPERVISOR_DEFAULTS, askTimeoutMs: 10_000 },
      {
        log: {
          info: () => {},
          warn: (obj) => ctx.warnings.push(obj as Record<string, unknown>),
          error: (obj) => ctx.errors.push(obj as Record<string, unknown>),
        },
        onIntents: (id, intents) => ctx.intents.set(id, [...(ctx.intents.get(id) ?? []), ...intents]),
        onEscalate: (e) => ctx.escalations.push(e),
        eventLog: new MemoryEventLog(),
        workerUrl: ANNOUNCING_WORKER,
      },
    );
  });
  s.after.each(async (ctx) => {
    try {
      await within('supervisor.stop()', ctx.sup.stop(), LONG);
    } finally {
      ctx.channel.close();
      // late rejections of this test still land here rather than ending the whole test run
      await sleep(20);
      process.off('unhandledRejection', ctx.onUnhandled);
    }
  });
  return s;
}

async function spawnAll(ctx: Ctx, specs: readonly Spec[], placement: 'shared' | 'dedicated' = 'shared'): Promise<Ref[]> {
  const refs: Ref[] = [];
  // each under a supervisor of its own, as the node places deal actors: one actor's failures count only against it
  for (const s of specs) refs.push(await within(`spawn ${s.id}`, ctx.sup.supervisor({ id: `sup:${s.id}`, autoShutdown: true }).spawn<AnyEvent>({ ...s, placement }), LONG));
  return refs;
}

/** Sends each actor its `progress` events and checks it reached its state. */
async function advance(specs: readonly Spec[], refs: readonly Ref[], from = 0): Promise<void> {
  specs.forEach((s, i) => {
    for (const e of progress(s, from + i)) refs[i]!.send(e);
  });
  for (const [i, s] of specs.entries()) {
    const v = await within(`view of ${s.id}`, refs[i]!.view(), LONG);
    assert.equal(v.value, EXPECTED_VALUE[s.kind], `${s.id} did not reach its state`);
  }
}

const views = (refs: readonly Ref[]) => within('every view', Promise.all(refs.map((r) => r.view())), LONG);

/** The worker threads started so far, after giving late announcements a moment to arrive. */
async function threadsStarted(ctx: Ctx, atLeast: number): Promise<number[]> {
  await waitFor(`${atLeast} worker thread(s) to announce themselves`, () => ctx.started.length >= atLeast, LONG);
  await sleep(50);
  return [...ctx.started];
}

/** How many live worker threads (and other message ports) keep this process alive. */
const messagePorts = () => process.getActiveResourcesInfo().filter((r) => r === 'MessagePort').length;

const restartLogs = (ctx: Ctx) => ctx.warnings.filter((w) => typeof w['replay'] === 'number');

/** The first unhandled rejection with its stack (the others are usually the same one, once per actor). */
function describeUnhandled(ctx: Ctx): string {
  const [first] = ctx.unhandled;
  const text = first instanceof Error ? (first.stack ?? `${first.name}: ${first.message}`) : String(first);
  return `${text}${ctx.unhandled.length > 1 ? `\n(and ${ctx.unhandled.length - 1} more)` : ''}`;
}

// ---------------------------------------------------------------------------------------------------------------

const Pool = suite<{ pool: WorkerPool; hosts: WorkerHost[] }>('worker pool: one shared worker, a dedicated one per acquire', { pool: undefined as never, hosts: [] });

Pool.before.each((ctx) => {
  ctx.pool = new WorkerPool(DEFAULT_WORKER_URL);
  ctx.hosts = [];
});
Pool.after.each(async (ctx) => {
  await ctx.pool.stop();
  await Promise.all(ctx.hosts.map((h) => h.worker.terminate()));
});

const exitOf = (h: WorkerHost) => new Promise<number>((resolve) => h.worker.once('exit', resolve));
/** The worker answers: a view of an actor it does not host is refused by the worker itself. */
async function answers(h: WorkerHost): Promise<boolean> {
  const err = await within('a call to the worker', h.remote.view('nobody').then(() => null, (e: Error) => e), LONG);
  return err?.name === 'UnknownActorError';
}

Pool('acquire("shared") hands out the same worker every time; acquire("dedicated") a new one every time', async (ctx) => {
  const a = ctx.pool.acquire('shared');
  const b = ctx.pool.acquire('shared');
  const d1 = ctx.pool.acquire('dedicated');
  const d2 = ctx.pool.acquire('dedicated');
  ctx.hosts.push(d1, d2);
  assert.is(a, b);
  assert.is(a.shared, true);
  assert.is(d1.shared, false);
  assert.is(d2.shared, false);
  const ids = new Set([a.worker.threadId, d1.worker.threadId, d2.worker.threadId]);
  assert.is(ids.size, 3, 'the dedicated workers are threads of their own');
  assert.ok(await answers(a));
  assert.ok(await answers(d1));
});

Pool('release() ends a dedicated worker but leaves the shared one running', async (ctx) => {
  const shared = ctx.pool.acquire('shared');
  const dedicated = ctx.pool.acquire('dedicated');
  const ended = exitOf(dedicated);
  assert.ok(await answers(dedicated));
  await within('release(dedicated)', ctx.pool.release(dedicated), LONG);
  await within('the dedicated worker to exit', ended, LONG);
  await within('release(shared)', ctx.pool.release(shared), LONG);
  assert.ok(await answers(shared), 'the shared worker stopped answering after release()');
  assert.is(ctx.pool.acquire('shared'), shared);
});

Pool('a shared worker that died is replaced by a new thread on the next acquire', async (ctx) => {
  const first = ctx.pool.acquire('shared');
  assert.ok(await answers(first));
  const gone = exitOf(first);
  void first.remote.crash(3);
  assert.is(await within('the shared worker to exit', gone, LONG), 3);
  const second = ctx.pool.acquire('shared');
  assert.is.not(second, first);
  assert.is.not(second.worker.threadId, first.worker.threadId);
  assert.ok(await answers(second));
});

Pool('stop() ends the shared worker; a dedicated one is left to its actor', async (ctx) => {
  const shared = ctx.pool.acquire('shared');
  const dedicated = ctx.pool.acquire('dedicated');
  ctx.hosts.push(dedicated);
  assert.ok(await answers(shared));
  const ended = exitOf(shared);
  await within('pool.stop()', ctx.pool.stop(), LONG);
  await within('the shared worker to exit', ended, LONG);
  assert.ok(await answers(dedicated));
});

Pool.run();

// ---------------------------------------------------------------------------------------------------------------

const Crowd = behaviour("placement 'shared': many actors of every kind on one worker thread");

Crowd('20 actors (node, allocation, provider, requester) spawned shared run on one thread, each with its own state', async (ctx) => {
  const ports = messagePorts();
  const specs = Array.from({ length: 20 }, (_, n) => crowdMember(n));
  const refs = await spawnAll(ctx, specs);
  assert.is((await threadsStarted(ctx, 1)).length, 1, 'more than one worker thread was started');
  assert.is(messagePorts() - ports, 1, 'more than one worker thread is alive');
  await advance(specs, refs);
  // each actor kept its own state: the allocations their pids, the nodes their own lock
  const vs = await views(refs);
  vs.forEach((v, n) => {
    assert.is(v.id, specs[n]!.id);
    assert.is(v.kind, specs[n]!.kind);
    if (specs[n]!.kind === 'allocation') assert.is((v.context as { pid: number }).pid, 1000 + n);
    if (specs[n]!.kind === 'node') assert.equal(Object.keys((v.context as NodeView).locks), [`lock-${n}`]);
  });
  // their intents came back under their own ids
  assert.equal([...ctx.intents.keys()].sort(), specs.map((s) => s.id).sort(), 'the actors that emitted intents');
  specs.forEach((s, n) => {
    if (s.kind !== 'allocation') return;
    const starts = ctx.intents.get(s.id)!.filter((i) => (i as { type: string }).type === 'execution.start');
    assert.equal(starts.map((i) => (i as { allocationId: string }).allocationId), [`deal-${n}.1`], `${s.id} intents`);
  });
  assert.equal(ctx.errors, []);
  assert.equal(ctx.unhandled, []);
});

Crowd('a dedicated actor next to shared ones gets a thread of its own, and its crash restarts only itself', async (ctx) => {
  const specs = Array.from({ length: 4 }, (_, n) => crowdMember(n));
  const shared = await spawnAll(ctx, specs);
  const [solo] = await spawnAll(ctx, [{ id: 'node-solo', kind: 'node', input: {} }], 'dedicated');
  const threads = await threadsStarted(ctx, 2);
  assert.is(threads.length, 2, `expected the shared worker and one dedicated, got threads ${threads.join(', ')}`);
  await advance(specs, shared);
  await advance([{ id: 'node-solo', kind: 'node', input: {} }], [solo!], 100);
  const before = await views(shared);

  solo!.crash();
  await waitFor('the dedicated actor to restart', () => solo!.restarts === 1 && solo!.status === 'running', LONG);
  assert.is((await within('view', solo!.view(), LONG)).value, 'registered');
  assert.equal(shared.map((r) => r.restarts), [0, 0, 0, 0], 'a shared actor restarted with the dedicated one');
  assert.equal(await views(shared), before);
  const after = await threadsStarted(ctx, 3);
  assert.is(after.length, 3, 'the dedicated actor restarts on one new thread');
  assert.equal(ctx.unhandled, []);
});

Crowd.run();

// ---------------------------------------------------------------------------------------------------------------

const Retire = behaviour('shared placement: retiring one actor leaves the others working');

Retire('retire(id) stops that actor only; its neighbours take events, and no thread is started or ended', async (ctx) => {
  const specs = Array.from({ length: 6 }, (_, n) => crowdMember(n));
  const refs = await spawnAll(ctx, specs);
  await advance(specs, refs);
  const gone = refs[1]!;
  await within('retire', ctx.sup.retire(gone.id), LONG);
  assert.is(gone.status, 'stopped');
  assert.is(ctx.sup.get(gone.id), undefined);
  assert.is(ctx.sup.size, 5);
  assert.is((await within('view of the retired actor', gone.view().then(() => null, (e: Error) => e), LONG))?.name, 'ActorFailedError');

  const rest = specs.map((s, n) => ({ s, n, ref: refs[n]! })).filter(({ n }) => n !== 1);
  for (const { s, n, ref } of rest) ref.send(later(s, n).event);
  for (const { s, n, ref } of rest) later(s, n).check(await within(`view of ${s.id}`, ref.view(), LONG));
  assert.is((await threadsStarted(ctx, 1)).length, 1);
  assert.equal(ctx.unhandled, []);
});

Retire('a retired actor spawned again comes back from its log on the same shared thread', async (ctx) => {
  const specs = Array.from({ length: 4 }, (_, n) => crowdMember(n));
  const refs = await spawnAll(ctx, specs);
  await advance(specs, refs);
  const before = await within('view', refs[1]!.view(), LONG);
  await within('retire', ctx.sup.retire(specs[1]!.id), LONG);
  const [again] = await spawnAll(ctx, [specs[1]!]);
  assert.is(again!.recovery?.recovered, true);
  assert.equal(await within('view', again!.view(), LONG), before);
  assert.is((await threadsStarted(ctx, 1)).length, 1);
});

Retire.run();

// ---------------------------------------------------------------------------------------------------------------

const Poison = behaviour('shared placement: an actor that fails on an event restarts without its neighbours');

Poison('a poison event restarts only its actor, on the same thread, without the event; the neighbours never notice', async (ctx) => {
  const specs = Array.from({ length: 6 }, (_, n) => crowdMember(n));
  const refs = await spawnAll(ctx, specs);
  await advance(specs, refs);
  const before = await views(refs);
  const victim = 1; // an allocation, running
  assert.is(specs[victim]!.kind, 'allocation');

  refs[victim]!.send(POISON.allocation!);
  await waitFor('the poisoned actor to restart', () => refs[victim]!.restarts === 1 && refs[victim]!.status === 'running', LONG);
  // dropped: the restarted actor is where it was before the poison
  assert.equal(await within('view', refs[victim]!.view(), LONG), before[victim]);
  assert.is(ctx.errors.length, 1, JSON.stringify(ctx.errors));
  assert.match(String(ctx.errors[0]!['event']), 'execution.ended');

  assert.equal(refs.map((r) => r.restarts), specs.map((_, n) => (n === victim ? 1 : 0)), 'restarts by actor');
  assert.equal((await views(refs)).filter((_, n) => n !== victim), before.filter((_, n) => n !== victim));
  for (const [n, s] of specs.entries()) refs[n]!.send(later(s, n).event);
  for (const [n, s] of specs.entries()) later(s, n).check(await within(`view of ${s.id}`, refs[n]!.view(), LONG));
  assert.is((await threadsStarted(ctx, 1)).length, 1, 'the poison cost the shared worker its thread');
  assert.equal(ctx.escalations, []);
  assert.equal(ctx.unhandled, []);
});

Poison('two neighbours poisoned at once both restart, and the others keep going', async (ctx) => {
  const specs = Array.from({ length: 6 }, (_, n) => crowdMember(n));
  const refs = await spawnAll(ctx, specs);
  await advance(specs, refs);
  const before = await views(refs);
  refs[0]!.send(POISON.node!);
  refs[4]!.send(POISON.node!);
  await waitFor('both to restart', () => [0, 4].every((n) => refs[n]!.restarts === 1 && refs[n]!.status === 'running'), LONG);
  assert.equal(refs.map((r) => r.restarts), [1, 0, 0, 0, 1, 0]);
  assert.equal(await views(refs), before);
  assert.is((await threadsStarted(ctx, 1)).length, 1);
  assert.equal(ctx.unhandled, []);
});

Poison.run();

// ---------------------------------------------------------------------------------------------------------------

const Crash = behaviour('shared placement: the shared worker crashing restarts every actor on it, state intact');

Crash('after crash() every shared actor runs again on one new thread, rebuilt from its log, and takes new events', async (ctx) => {
  const specs = Array.from({ length: 6 }, (_, n) => crowdMember(n));
  const refs = await spawnAll(ctx, specs);
  const [dedicated] = await spawnAll(ctx, [{ id: 'node-solo', kind: 'node', input: {} }], 'dedicated');
  await advance(specs, refs);
  const before = await views(refs);
  const [sharedThread] = await threadsStarted(ctx, 2);

  refs[3]!.crash();
  await waitFor('every shared actor to restart', () => refs.every((r) => r.restarts === 1 && r.status === 'running'), LONG);
  assert.equal(await views(refs), before, 'state after the restart');
  assert.is(dedicated!.restarts, 0, 'the dedicated actor restarted with the shared worker');

  const threads = await threadsStarted(ctx, 3);
  assert.is(threads.length, 3, `expected one new thread for all ${refs.length} actors, got ${threads.length - 2}`);
  assert.is.not(threads[2], sharedThread);
  // rebuilt from the log (no snapshot was taken: snapshotEvery is 5000)
  const logs = restartLogs(ctx);
  assert.is(logs.length, refs.length);
  for (const l of logs) assert.ok((l['replay'] as number) >= 2 && l['snapshotSeq'] === 0, JSON.stringify(l));

  for (const [n, s] of specs.entries()) refs[n]!.send(later(s, n).event);
  for (const [n, s] of specs.entries()) later(s, n).check(await within(`view of ${s.id}`, refs[n]!.view(), LONG));
  assert.equal(ctx.escalations, []);
  // Each of these would end a node process (Node's default for an unhandled rejection).
  assert.equal(ctx.unhandled.length, 0, `the crash left ${ctx.unhandled.length} unhandled rejection(s):\n${describeUnhandled(ctx)}`);
});

Crash('a process whose shared worker crashes keeps running: its actors restart and it exits 0 after stop()', async () => {
  const { code, out, err } = await runChild(
    supervisorScript(`
      const refs = [];
      for (let i = 0; i < 3; i += 1) refs.push(await sup.spawn({ id: 'n' + i, kind: 'node', input: {}, placement: 'shared' }));
      refs[1].crash();
      const t0 = Date.now();
      while (!refs.every((r) => r.restarts === 1 && r.status === 'running') && Date.now() - t0 < 5000) await new Promise((r) => setTimeout(r, 10));
      const values = [];
      for (const r of refs) values.push((await r.view()).value);
      console.log(JSON.stringify({ restarts: refs.map((r) => r.restarts), values }));
      await sup.stop();`),
  );
  assert.is(code, 0, `the process died after its shared worker crashed (exit ${String(code)}):\n${err}`);
  assert.equal(JSON.parse(out.trim().split('\n')[0] ?? 'null'), { restarts: [1, 1, 1], values: ['offboarded', 'offboarded', 'offboarded'] });
});

Crash.run();

// ---------------------------------------------------------------------------------------------------------------

const Stop = behaviour('shared placement: supervisor.stop() ends the shared worker');

Stop('stop() stops every shared actor and ends the shared thread', async (ctx) => {
  const ports = messagePorts();
  const specs = Array.from({ length: 6 }, (_, n) => crowdMember(n));
  const refs = await spawnAll(ctx, specs);
  await advance(specs, refs);
  assert.is(messagePorts() - ports, 1);
  await within('supervisor.stop()', ctx.sup.stop(), LONG);
  assert.equal(refs.map((r) => r.status), specs.map(() => 'stopped'));
  assert.is(ctx.sup.size, 0);
  await waitFor('the shared worker thread to end', () => messagePorts() === ports, LONG);
  assert.equal(ctx.unhandled, []);
});

Stop('warm() starts the shared thread before any actor; shared spawns then use it; stop() ends it', async (ctx) => {
  const ports = messagePorts();
  ctx.sup.warm();
  const [warmed] = await threadsStarted(ctx, 1);
  ctx.sup.warm(); // again: still the one thread
  const specs = Array.from({ length: 3 }, (_, n) => crowdMember(n));
  await advance(specs, await spawnAll(ctx, specs));
  assert.equal(await threadsStarted(ctx, 1), [warmed!]);
  await within('supervisor.stop()', ctx.sup.stop(), LONG);
  await waitFor('the shared worker thread to end', () => messagePorts() === ports, LONG);
});

Stop('stop() ends a warmed shared thread that never hosted an actor', async (ctx) => {
  const ports = messagePorts();
  ctx.sup.warm();
  await threadsStarted(ctx, 1);
  await within('supervisor.stop()', ctx.sup.stop(), LONG);
  await waitFor('the shared worker thread to end', () => messagePorts() === ports, LONG);
});

Stop('stop() called just as the shared worker crashes settles, without an error, and every actor ends stopped', async () => {
  // In a process of its own: a stop that hangs must not leave a worker thread behind in this one.
  const { code, out, err } = await runChild(
    supervisorScript(`
      process.on('unhandledRejection', () => {}); // the crash's own bug has a test above; this one is about stop()
      const refs = [];
      for (let i = 0; i < 3; i += 1) refs.push(await sup.spawn({ id: 'n' + i, kind: 'node', input: {}, placement: 'shared' }));
      for (const r of refs) r.send({ type: 'node.offboard' });
      await Promise.all(refs.map((r) => r.drain()));
      refs[1].crash(); // a shutdown that meets a crash: the worker exits while the actors stop
      const outcome = await Promise.race([
        sup.stop().then(() => 'resolved', (e) => 'rejected: ' + e.message),
        new Promise((r) => setTimeout(() => r('still pending after 1.5 s'), 1500)),
      ]);
      console.log(JSON.stringify({ outcome, statuses: refs.map((r) => r.status) }));
      process.exit(0);`),
  );
  assert.is(code, 0, err);
  const res = JSON.parse(out.trim().split('\n').at(-1) ?? 'null') as { outcome: string; statuses: string[] };
  assert.is(res.outcome, 'resolved', 'supervisor.stop()');
  assert.equal(res.statuses, ['stopped', 'stopped', 'stopped']);
});

Stop('stop() while the shared actors restart after a crash leaves none of them running', async (ctx) => {
  const specs = Array.from({ length: 3 }, (_, n) => crowdMember(n * 4)); // nodes
  const refs = await spawnAll(ctx, specs);
  await advance(specs, refs);
  refs[1]!.crash();
  // the worker is gone and every actor is booting again on a new one
  await waitFor('the restarts to begin', () => restartLogs(ctx).length === refs.length, LONG);
  await within('supervisor.stop()', ctx.sup.stop(), LONG);
  await sleep(200); // the boots under way finish
  assert.equal(refs.map((r) => `${r.id}: ${r.status}`), refs.map((r) => `${r.id}: stopped`), 'an actor came back to life after stop()');
  const sendErr = (() => {
    try {
      refs[2]!.send({ type: 'node.offboard' });
      return null;
    } catch (e) {
      return e as Error;
    }
  })();
  assert.is(sendErr?.name, 'ActorFailedError', 'send() after stop() was accepted');
});

Stop('a process with only shared actors exits by itself, promptly, after stop()', async () => {
  const { code, out, err } = await runChild(
    supervisorScript(`
      for (let i = 0; i < 5; i += 1) await sup.spawn({ id: 'n' + i, kind: 'node', input: {}, placement: 'shared' });
      await sup.retire('n2');
      await sup.stop();
      const stoppedAt = Date.now();
      process.on('exit', () => console.log(JSON.stringify({ lingeredMs: Date.now() - stoppedAt })));`),
  );
  assert.is(code, 0, err);
  const line = JSON.parse(out.trim().split('\n').at(-1) ?? 'null') as { lingeredMs: number } | null;
  assert.ok(line && line.lingeredMs < 500, `the process lived on ${String(line?.lingeredMs)} ms after stop()`);
});

Stop.run();

/** A script for a fresh node process: `body` runs with `sup`, a Supervisor on a MemoryEventLog (the compiled JS). */
function supervisorScript(body: string): string {
  const supervisorJs = fileURLToPath(new URL('../../../runtime/supervisor/supervisor.js', import.meta.url));
  const eventLogJs = fileURLToPath(new URL('../../../actors/event-log.js', import.meta.url));
  return `
    Promise.all([import(${JSON.stringify(supervisorJs)}), import(${JSON.stringify(eventLogJs)})]).then(async ([{ Supervisor, SUPERVISOR_DEFAULTS }, { MemoryEventLog }]) => {
      const log = { info() {}, warn() {}, error() {} };
      const sup = new Supervisor(SUPERVISOR_DEFAULTS, { log, onIntents() {}, onEscalate() {}, eventLog: new MemoryEventLog() });
      ${body}
    });`;
}

/** Runs `script` in a fresh node process; resolves with its exit code and output (it is killed after 10 s). */
async function runChild(script: string): Promise<{ code: number | null; out: string; err: string }> {
  const child = spawn(process.execPath, ['-e', script], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, NO_COLOR: '1', FORCE_COLOR: '0' } });
  let out = '';
  let err = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (err += d.toString()));
  // 'close' rather than 'exit': the output is complete by then
  const exited = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
  try {
    return { code: await within('the child process to exit by itself', exited, 10_000), out, err };
  } finally {
    child.kill('SIGKILL');
  }
}
