/**
 * End to end: the durable event log (issue 3). Real `node runtime/main.js` processes on loopback, killed with
 * SIGKILL at chosen and at random moments, restarted on the same data dir, replayed with `replay`, and watched
 * through the Stately inspector's websocket protocol; driven only through the CLI and the HTTP API.
 */
import type { Capability as Cap } from '../../machines/capability.ts';
import { type ChildProcess, spawn } from 'node:child_process';
import { promises as fs } from 'node:fs';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { WebSocketServer } from 'ws';
import { type NodeProcess, MAIN, ROOT, apiOf as harnessApi, cli, cliJson, eventually, jsonLines, killAll, makeTempDir, removeTempDirs, startNode } from './harness.ts';

interface Capability {
  registered: Cap;
  locked: Cap;
  allocated: Cap;
  available: Cap;
}
interface Lock {
  id: string;
  resources: { cpu: number; memory: number; disk: number; gpus: number };
  expiresAt: number;
  holder: string;
}
interface Allocation {
  id: string;
  lockId: string;
  resources: Lock['resources'];
  since: number;
}
interface Info {
  state: string;
  capability: Capability;
  locks: Lock[];
  allocations: Allocation[];
}
interface Prefs {
  provider: { minPrice: number; acceptRequesters: string[]; refuseRequesters: string[]; keepFree: number };
  requester: { weights: { price: number; score: number; rtt: number } };
}
/** The `recovered` field of the ready line. */
interface Recovered {
  recovered: boolean;
  snapshotSeq: number;
  replayed: number;
  lastSeq: number;
  ms: number;
}
interface TimelineLine {
  seq: number;
  ts: number;
  type: string;
  state: unknown;
}
interface FinalLine {
  event: 'final';
  actor: string;
  events: number;
  lastSeq: number;
  state: unknown;
  context: { capability: Capability; locks: Record<string, Lock>; allocations: Record<string, Allocation>; preferences: Prefs };
  failed: unknown;
}

const MiB = 1024 ** 2;
const info = (dir: string) => cliJson<Info>(['info', '--data-dir', dir]);
const byId = <T extends { id: string }>(list: readonly T[]) => [...list].sort((a, b) => a.id.localeCompare(b.id));
const recoveredOf = (node: NodeProcess) => (node.ready as unknown as { recovered: Recovered | null }).recovered;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A client of one running node's HTTP API (URL from its ready line, token from the data dir). */
async function apiOf(node: NodeProcess) {
  const token = (await fs.readFile(path.join(node.dataDir, 'api.token'), 'utf8')).trim();
  const { call } = await harnessApi(node);
  /** Like `call`, but a non-2xx answer fails the test. */
  const ok = async <T = unknown>(method: string, route: string, body?: unknown): Promise<T> => {
    const r = await call(method, route, body);
    assert.ok(r.status >= 200 && r.status < 300, `${method} ${route} ${JSON.stringify(body)} answered ${r.status}: ${JSON.stringify(r.body)}`);
    return r.body as T;
  };
  return {
    call,
    ok,
    lock: (id: string, resources: { cpu: number; memory: string | number; disk: string | number }, ttl: string | number = '10m') => ok<Lock>('POST', '/v1/ledger/lock', { id, resources, ttl }),
    unlock: (id: string) => ok('POST', '/v1/ledger/unlock', { id }),
    allocate: (allocationId: string, lockId: string) => ok<Allocation>('POST', '/v1/ledger/allocate', { allocationId, lockId }),
    release: (allocationId: string) => ok('POST', '/v1/ledger/release', { allocationId }),
    info: () => ok<Info>('GET', '/v1/info'),
  };
}


/** A long-running CLI command whose end we decide (SIGINT): `replay --inspect` waits for Ctrl-C. */
interface Background {
  readonly child: ChildProcess;
  stdout(): string;
  stderr(): string;
  /** Sends `signal`, waits (bounded) for the exit; SIGKILLs and reports undefined when it does not end in time. */
  end(signal: NodeJS.Signals, timeoutMs: number): Promise<{ code: number | null; signal: NodeJS.Signals | null } | undefined>;
}
const background = new Set<ChildProcess>();

function startBackground(args: readonly string[]): Background {
  const env: NodeJS.ProcessEnv = { ...process.env, NO_COLOR: '1' };
  delete env.DMS_HOME;
  const child = spawn(process.execPath, [MAIN, ...args], { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
  background.add(child);
  let out = '';
  let err = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
  child.stderr.setEncoding('utf8').on('data', (d: string) => (err += d));
  const closed = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('close', (code, signal) => {
      background.delete(child);
      resolve({ code, signal });
    }),
  );
  return {
    child,
    stdout: () => out,
    stderr: () => err,
    async end(signal, timeoutMs) {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      const r = await Promise.race([closed, sleep(timeoutMs).then(() => undefined)]);
      if (!r) {
        child.kill('SIGKILL');
        await Promise.race([closed, sleep(5000)]);
      }
      return r;
    },
  };
}

async function killBackground(): Promise<void> {
  await Promise.all(
    [...background].map(async (c) => {
      c.kill('SIGKILL');
      await Promise.race([new Promise((r) => c.once('close', r)), sleep(5000)]);
    }),
  );
}

/** A stand-in for the inspector relay: a websocket server on loopback that keeps every message it receives. */
async function startRecordingRelay(): Promise<{ url: string; messages: Record<string, unknown>[]; close: () => Promise<void> }> {
  const wss = new WebSocketServer({ host: '127.0.0.1', port: 0 });
  const messages: Record<string, unknown>[] = [];
  wss.on('connection', (ws) =>
    ws.on('message', (data) => {
      const text = data.toString();
      try {
        messages.push(JSON.parse(text) as Record<string, unknown>);
      } catch {
        messages.push({ type: 'not-json', text });
      }
    }),
  );
  await new Promise<void>((resolve, reject) => {
    wss.once('listening', () => resolve());
    wss.once('error', reject);
  });
  const { port } = wss.address() as AddressInfo;
  return {
    url: `ws://127.0.0.1:${port}`,
    messages,
    close: () =>
      new Promise<void>((resolve) => {
        for (const c of wss.clients) c.terminate();
        wss.close(() => resolve());
      }),
  };
}

async function cleanUp(): Promise<void> {
  await killBackground();
  await killAll();
  await removeTempDirs();
}

// ---------------------------------------------------------------------------------------------------------------

const Crash = suite('e2e: kill -9 loses nothing the node acknowledged');
Crash.after(cleanUp);

Crash('after SIGKILL the restarted node has the same ledger and preferences, and says once what it recovered', async () => {
  const dir = await makeTempDir('crash');
  const node = await startNode(dir);
  const api = await apiOf(node);
  await api.lock('job-1', { cpu: 0.1, memory: '256MiB', disk: '1GiB' });
  await api.lock('job-2', { cpu: 0.2, memory: '512MiB', disk: '2GiB' });
  await api.lock('job-3', { cpu: 0, memory: '64MiB', disk: '100MiB' });
  await api.lock('job-4', { cpu: 0.05, memory: '1MiB', disk: 0 });
  await api.allocate('alloc-2', 'job-2');
  const prefsFile = path.join(dir, 'prefs.yaml');
  await fs.writeFile(
    prefsFile,
    ['provider:', '  minPrice: 2.5', '  acceptRequesters: []', '  refuseRequesters: [12D3KooWBadRequester]', '  keepFree: 0.2', 'requester:', '  weights: { price: 2, score: 1, rtt: 0.25 }', ''].join('\n'),
  );
  const set = await cli(['preferences', '--data-dir', dir, '--set', prefsFile]);
  assert.is(set.code, 0, `preferences --set failed: ${set.stderr}`);
  const wanted: Prefs = { provider: { minPrice: 2.5, acceptRequesters: [], refuseRequesters: ['12D3KooWBadRequester'], keepFree: 0.2 }, requester: { weights: { price: 2, score: 1, rtt: 0.25 } } };

  const before = await info(dir);
  const prefsBefore = await api.ok<Prefs>('GET', '/v1/preferences');
  // the state to survive is what we think it is, so the comparison below means something
  assert.equal(byId(before.locks).map((l) => l.id), ['job-1', 'job-3', 'job-4']);
  assert.equal(before.allocations.map((a) => [a.id, a.lockId]), [['alloc-2', 'job-2']]);
  assert.ok(before.capability.locked.memory === (256 + 64 + 1) * MiB && before.capability.allocated.memory === 512 * MiB, JSON.stringify(before.capability));
  assert.equal(prefsBefore, wanted);

  const gone = await node.stop('SIGKILL');
  assert.is(gone.signal, 'SIGKILL');

  const again = await startNode(dir, ['--log-level', 'info']);
  const after = await info(dir);
  assert.equal(after.capability, before.capability, 'registered, locked, allocated and available as before the crash');
  assert.equal(byId(after.locks), byId(before.locks), 'the same locks: ids, resources, expiresAt');
  assert.equal(byId(after.allocations), byId(before.allocations));
  assert.equal(await (await apiOf(again)).ok<Prefs>('GET', '/v1/preferences'), wanted, 'the preferences set before the crash');

  const rec = recoveredOf(again);
  assert.ok(rec, `the ready line reports the recovery: ${JSON.stringify(again.ready)}`);
  assert.is(rec.recovered, true);
  assert.type(rec.snapshotSeq, 'number');
  assert.type(rec.ms, 'number');
  // a SIGKILL leaves no snapshot at stop: the five ledger events and the preferences change come from the log
  assert.ok(rec.replayed >= 6 && rec.snapshotSeq + rec.replayed <= rec.lastSeq, `replayed ${rec.replayed}, snapshotSeq ${rec.snapshotSeq}, lastSeq ${rec.lastSeq}`);

  let said: { msg: string }[] = [];
  const oneLine = await eventually(() => {
    said = again
      .stderr()
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as { msg?: string })
      .filter((l): l is { msg: string } => /recover/i.test(l.msg ?? ''));
    return said.length > 0;
  }, 3000);
  assert.ok(oneLine, `a log line about the recovery; stderr:\n${again.stderr()}`);
  assert.is(said.length, 1, `exactly one line says what was recovered:\n${again.stderr()}`);
  const line = said[0] as { msg: string; snapshotSeq?: unknown; replayed?: unknown; ms?: unknown };
  assert.match(line.msg, /snapshot/, 'it names the snapshot used');
  assert.match(line.msg, new RegExp(`${rec.replayed} events replayed`), 'it says how many events were replayed');
  assert.match(line.msg, /\d+ ms/, 'it says how long it took');
  assert.is(line.replayed, rec.replayed);
  assert.is(line.snapshotSeq, rec.snapshotSeq);
  await again.stop();
});

// ---------------------------------------------------------------------------------------------------------------

const Burst = suite('e2e: SIGKILL at a random moment during a burst of lock/unlock requests');
Burst.after(cleanUp);

Burst('every acknowledged lock survives, every acknowledged unlock stays done, nothing unrequested appears (3 rounds)', async () => {
  const dir = await makeTempDir('burst');
  let node = await startNode(dir, ['--monitor-interval', '60000']);
  /** Locks the node has shown after the last restart (all of them checked), and every lock id ever requested. */
  let present = new Set<string>();
  const requested = new Set<string>();
  const res = { cpu: 0, memory: '1MiB', disk: '1MiB' };
  let totalAcked = 0;

  for (let round = 1; round <= 3; round += 1) {
    const api = await apiOf(node);
    const ackedLock = new Set<string>();
    const unlockRequested = new Set<string>();
    const ackedUnlock = new Set<string>();
    const unlockable = [...present];
    let next = 0;
    let dead = false;
    const delay = 200 + Math.floor(Math.random() * 1300);
    const worker = async (w: number) => {
      while (!dead) {
        const candidate = unlockable.length > 0 && Math.random() < 0.3 ? unlockable.splice(Math.floor(Math.random() * unlockable.length), 1)[0] : undefined;
        try {
          if (candidate !== undefined) {
            unlockRequested.add(candidate);
            const r = await api.call('POST', '/v1/ledger/unlock', { id: candidate }, 5000);
            if (r.status >= 200 && r.status < 300) ackedUnlock.add(candidate);
          } else {
            const id = `r${round}-w${w}-${next++}`;
            requested.add(id);
            const r = await api.call('POST', '/v1/ledger/lock', { id, resources: res, ttl: '10m' }, 5000);
            if (r.status >= 200 && r.status < 300) {
              ackedLock.add(id);
              unlockable.push(id);
            } else if (!dead) assert.unreachable(`lock ${id} refused while the node ran: ${r.status} ${JSON.stringify(r.body)}`);
          }
        } catch (e) {
          if (!dead) throw e; // the node is gone: this request was not acknowledged
        }
      }
    };
    const killer = sleep(delay).then(() => {
      dead = true;
      node.child.kill('SIGKILL');
    });
    await Promise.all([killer, ...Array.from({ length: 8 }, (_, w) => worker(w))]);
    await node.kill();
    totalAcked += ackedLock.size;
    const what = `round ${round}, SIGKILL ${delay} ms into the burst: ${ackedLock.size} locks and ${ackedUnlock.size} unlocks acknowledged`;

    node = await startNode(dir, ['--monitor-interval', '60000']);
    assert.is(recoveredOf(node)?.recovered, true, what);
    const after = await (await apiOf(node)).info();
    const ids = new Set(after.locks.map((l) => l.id));
    const mustHave = [...present, ...ackedLock].filter((id) => !unlockRequested.has(id));
    const missing = mustHave.filter((id) => !ids.has(id));
    assert.equal(missing, [], `acknowledged locks lost (${what})`);
    const resurrected = [...ackedUnlock].filter((id) => ids.has(id));
    assert.equal(resurrected, [], `acknowledged unlocks undone (${what})`);
    const unknown = [...ids].filter((id) => !requested.has(id));
    assert.equal(unknown, [], `locks nobody asked for (${what})`);
    for (const l of after.locks) assert.equal([l.resources.cpu, l.resources.memory, l.resources.disk, l.resources.gpus], [0, MiB, MiB, 0], `lock ${l.id} resources (${what})`);
    // the ledger's sums agree with its locks: nothing half-applied
    assert.is(after.capability.locked.memory, ids.size * MiB, what);
    assert.is(after.capability.available.memory, after.capability.registered.memory - ids.size * MiB, what);
    present = ids;
  }
  assert.ok(totalAcked >= 3, `the bursts got some locks acknowledged at all (${totalAcked})`);
  await node.stop();
});

// ---------------------------------------------------------------------------------------------------------------

const Expiry = suite('e2e: a lock that expires while the node is down');
Expiry.after(cleanUp);

Expiry('is released on recovery', async () => {
  const dir = await makeTempDir('expiry');
  const node = await startNode(dir, ['--monitor-interval', '60000']);
  const api = await apiOf(node);
  const lock = await api.lock('short-1', { cpu: 0.1, memory: '128MiB', disk: '1GiB' }, '2s');
  const live = await api.info();
  assert.equal(live.locks.map((l) => l.id), ['short-1']);
  assert.is(live.capability.locked.memory, 128 * MiB);
  const stopped = await node.stop('SIGTERM');
  assert.is(stopped.code, 0);
  // the lock must still have been live when the node went down, or this proves nothing about recovery
  assert.ok(Date.now() < lock.expiresAt, `the node took until ${Date.now() - lock.expiresAt} ms after the expiry to stop`);
  await sleep(Math.max(0, lock.expiresAt + 1000 - Date.now()));

  const again = await startNode(dir, ['--monitor-interval', '60000', '--log-level', 'info']);
  const after = await (await apiOf(again)).info();
  assert.equal(after.locks, [], 'the expired lock is gone');
  assert.equal(after.capability.locked, { ...after.capability.locked, cpu: 0, memory: 0, disk: 0, gpus: [] });
  assert.equal(after.capability.available, after.capability.registered, 'everything is available again');
  assert.match(again.stderr(), /expired while the node was down: short-1/, 'the log says which lock expired while the node was down');
  await again.stop();
});

// ---------------------------------------------------------------------------------------------------------------

const Replay = suite<{ dir: string; before?: Info; prefs?: Prefs; lines: unknown[] }>('e2e: replay of a recorded log', { dir: '', lines: [] });

/** One node's history: locks, an allocation, an unlock, a released allocation, new preferences; then a clean stop. */
Replay.before(async (ctx) => {
  ctx.dir = await makeTempDir('replay');
  const node = await startNode(ctx.dir, ['--monitor-interval', '60000']);
  const api = await apiOf(node);
  await api.lock('k1', { cpu: 0.1, memory: '128MiB', disk: '1GiB' });
  await api.lock('k2', { cpu: 0.2, memory: '256MiB', disk: '2GiB' });
  await api.lock('k3', { cpu: 0, memory: '32MiB', disk: 0 });
  await api.allocate('b1', 'k1');
  await api.unlock('k2');
  await api.lock('k4', { cpu: 0.1, memory: '16MiB', disk: '16MiB' });
  await api.allocate('b2', 'k4');
  await api.release('b2');
  await api.ok('PUT', '/v1/preferences', { provider: { minPrice: 7, acceptRequesters: ['12D3KooWFriend'], refuseRequesters: [], keepFree: 0.3 }, requester: { weights: { price: 1, score: 3, rtt: 0 } } });
  ctx.before = await info(ctx.dir);
  ctx.prefs = await api.ok<Prefs>('GET', '/v1/preferences');
  assert.equal(ctx.before.locks.map((l) => l.id), ['k3']);
  assert.equal(ctx.before.allocations.map((a) => a.id), ['b1']);
  const stopped = await node.stop('SIGTERM');
  assert.is(stopped.code, 0);
  const r = await cli(['replay', '--data-dir', ctx.dir, '--json']);
  assert.is(r.code, 0, r.stderr);
  ctx.lines = jsonLines<unknown>(r.stdout);
});
Replay.after(cleanUp);

Replay('--json prints one line per event, then a final state equal to what the live node showed', ({ before, prefs, lines }) => {
  const timeline = lines.slice(0, -1) as TimelineLine[];
  const final = lines.at(-1) as FinalLine;
  assert.ok(timeline.length >= 9, `at least the nine requests are in the timeline: ${timeline.length}`);
  for (const [i, l] of timeline.entries()) {
    assert.type(l.seq, 'number');
    assert.type(l.ts, 'number');
    assert.type(l.type, 'string');
    assert.ok(l.state !== undefined, `line ${i} has the resulting state`);
    if (i > 0) assert.ok(l.seq > timeline[i - 1]!.seq, `seqs ascend at line ${i}`);
  }
  const types = timeline.map((l) => l.type);
  for (const t of ['node.onboard', 'ledger.lock', 'ledger.allocate', 'ledger.unlock', 'ledger.release', 'preferences.set']) assert.ok(types.includes(t), `${t} in the timeline: ${types.join(' ')}`);
  assert.is(final.event, 'final');
  assert.is(final.actor, 'node');
  assert.is(final.failed, null);
  assert.is(final.events, timeline.length);
  assert.is(final.lastSeq, timeline.at(-1)!.seq);
  assert.is(final.state, before!.state);
  assert.equal(final.context.capability, before!.capability, 'registered, locked, allocated, available as the live node had them');
  assert.equal(byId(Object.values(final.context.locks)), byId(before!.locks));
  assert.equal(byId(Object.values(final.context.allocations)), byId(before!.allocations));
  assert.equal(final.context.preferences, prefs);
});

Replay('--to N stops at seq N, with the state of that point in history', async ({ dir, lines }) => {
  const timeline = lines.slice(0, -1) as TimelineLine[];
  const allocate = timeline.find((l) => l.type === 'ledger.allocate');
  assert.ok(allocate);
  const r = await cli(['replay', '--data-dir', dir, '--to', String(allocate.seq), '--json']);
  assert.is(r.code, 0, r.stderr);
  const out = jsonLines<unknown>(r.stdout);
  const final = out.at(-1) as FinalLine;
  assert.is(final.lastSeq, allocate.seq);
  assert.is(out.length - 1, timeline.filter((l) => l.seq <= allocate.seq).length, 'the timeline up to N');
  for (const l of out.slice(0, -1) as TimelineLine[]) assert.ok(l.seq <= allocate.seq);
  // right after the first allocation: k1 became b1, k2 not yet unlocked, k4 not yet made
  assert.equal(Object.keys(final.context.locks).sort(), ['k2', 'k3']);
  assert.equal(Object.keys(final.context.allocations), ['b1']);
});

Replay('--summary prints no timeline, only the final state', async ({ dir, lines }) => {
  const json = await cli(['replay', '--data-dir', dir, '--summary', '--json']);
  assert.is(json.code, 0, json.stderr);
  const out = jsonLines<unknown>(json.stdout);
  assert.is(out.length, 1, json.stdout);
  const { ms: _a, ...summary } = out[0] as FinalLine & { ms: number };
  const { ms: _b, ...full } = lines.at(-1) as FinalLine & { ms: number };
  assert.equal(summary, full);

  // a timeline row: "      12  2026-01-01T00:00:00.000Z  ledger.lock  api  -> registered"
  const timelineRow = /^\s*\d+\s+\d{4}-\d\d-\d\dT\S+\s+\S+/;
  const short = await cli(['replay', '--data-dir', dir, '--summary']);
  assert.is(short.code, 0, short.stderr);
  assert.equal(short.stdout.split('\n').filter((l) => timelineRow.test(l)), [], short.stdout);
  assert.match(short.stdout, new RegExp(`replayed ${lines.length - 1} events of node`));
});

Replay('an unknown actor, or a data dir without a log, is bad usage (exit 2) with a message', async ({ dir }) => {
  const noActor = await cli(['replay', '--data-dir', dir, '--actor', 'nobody']);
  assert.is(noActor.code, 2, noActor.stderr);
  assert.is(noActor.stdout, '');
  assert.match(noActor.stderr, /nobody/);
  assert.is(noActor.stderr.trim().split('\n').length, 1, noActor.stderr);

  const empty = await makeTempDir('replay-empty');
  const noLog = await cli(['replay', '--data-dir', empty]);
  assert.is(noLog.code, 2, noLog.stderr);
  assert.is(noLog.stdout, '');
  assert.ok(noLog.stderr.includes(empty), `the message names the data dir: ${noLog.stderr}`);
  assert.is(noLog.stderr.trim().split('\n').length, 1, noLog.stderr);
});

// ---------------------------------------------------------------------------------------------------------------

type Relay = Awaited<ReturnType<typeof startRecordingRelay>>;
const Inspect = suite<{ relay?: Relay }>('e2e: the Stately inspector (--inspect URL)', {});
Inspect.after(async (ctx) => {
  await cleanUp();
  await ctx.relay?.close();
});

const isActor = (m: Record<string, unknown>) => m.type === '@xstate.actor' && m.name === 'node' && typeof m.definition === 'string';
const eventOf = (m: Record<string, unknown>) => (m.event as { type?: string; id?: string } | undefined) ?? {};

Inspect('a running node streams its actor, the events it gets and the snapshots after them; replay --inspect streams the recorded history', async (ctx) => {
  const relay = await startRecordingRelay();
  ctx.relay = relay;
  const dir = await makeTempDir('inspect');
  const node = await startNode(dir, ['--monitor-interval', '60000', '--inspect', relay.url]);
  const api = await apiOf(node);
  await api.lock('seen-1', { cpu: 0.1, memory: '64MiB', disk: '64MiB' });

  const live = relay.messages;
  const arrived = await eventually(
    () => live.some(isActor) && live.some((m) => m.type === '@xstate.event' && eventOf(m).type === 'ledger.lock') && live.some((m) => m.type === '@xstate.snapshot' && eventOf(m).type === 'ledger.lock'),
    5000,
  );
  assert.ok(arrived, `the relay got the node actor and the ledger.lock records; got ${JSON.stringify(live.map((m) => (m.type === '@xstate.actor' ? [m.type, m.name, `definition: ${typeof m.definition}`] : [m.type, eventOf(m).type])))}`);
  const actor = live.find(isActor)!;
  const definition = JSON.parse(actor.definition as string) as { id?: string; states?: Record<string, unknown> };
  assert.is(definition.id, 'node');
  assert.ok(definition.states && 'registered' in definition.states, 'the definition is the Node statechart');
  const event = live.find((m) => m.type === '@xstate.event' && eventOf(m).type === 'ledger.lock')!;
  assert.is(eventOf(event).id, 'seen-1');
  assert.is(event.sessionId, actor.sessionId, 'the event is recorded against the node actor');
  const snapshot = live.find((m) => m.type === '@xstate.snapshot' && eventOf(m).type === 'ledger.lock')!;
  assert.is(snapshot.sessionId, actor.sessionId);
  assert.ok(JSON.stringify(snapshot.snapshot).includes('"seen-1"'), 'the snapshot after the lock holds it');

  // a longer history (more records than the inspector client keeps while it connects), then a clean stop
  for (let i = 0; i < 40; i += 1) {
    await Promise.all([0, 1, 2].map((j) => api.lock(`more-${i}-${j}`, { cpu: 0, memory: '1MiB', disk: '1MiB' })));
    await Promise.all([0, 1, 2].map((j) => api.unlock(`more-${i}-${j}`)));
  }
  await node.stop('SIGTERM');

  live.length = 0;
  const replay = startBackground(['replay', '--data-dir', dir, '--inspect', relay.url, '--summary', '--json']);
  let recorded = 0;
  const done = await eventually(() => {
    const final = replay.stdout().split('\n').find((l) => l.startsWith('{'));
    if (final) recorded = (JSON.parse(final) as FinalLine).events;
    return final !== undefined;
  }, 10_000);
  assert.ok(done, `replay --inspect printed its final state\nstderr: ${replay.stderr()}`);
  assert.ok(recorded > 240, `${recorded} events recorded`);
  const isReplayed = (m: Record<string, unknown>) => m.type === '@xstate.event' && eventOf(m).type !== 'xstate.init';
  const streamed = await eventually(() => live.filter(isReplayed).length >= recorded && live.some(isActor), 10_000);
  const types = live.filter(isReplayed).map((m) => eventOf(m).type);
  const code = await replay.end('SIGINT', 5000);
  assert.ok(streamed, `replay --inspect streamed ${types.length} of ${recorded} events (actor announced: ${live.some(isActor)})\nstderr: ${replay.stderr()}`);
  assert.is(types.filter((t) => t === 'ledger.lock').length, 121, 'every lock of the history');
  assert.ok(live.some((m) => m.type === '@xstate.snapshot' && JSON.stringify(m.snapshot).includes('"seen-1"')), 'snapshots of the history');
  assert.equal(code, { code: 0, signal: null }, `replay --inspect ends with exit 0 on Ctrl-C\nstderr: ${replay.stderr()}`);
});

Crash.run();
Burst.run();
Expiry.run();
Replay.run();
Inspect.run();
