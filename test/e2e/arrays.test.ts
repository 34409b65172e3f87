/**
 * End to end: array jobs and queueing between real `node runtime/main.js` processes on loopback, driven through the
 * CLI as a user would. A requester (A) and two WASM providers (B, C) with 1 cpu each. The test that SIGKILLs a
 * provider runs last.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { compileWat, exampleModule } from '../../runtime/executors/examples/examples.ts';
import { type NodeApiClient, type NodeProcess, ROOT, apiOf, cli, killAll, makeTempDir, removeTempDirs, startNode, waitFor } from './harness.ts';

interface Member {
  readonly node: NodeProcess;
  readonly peerId: string;
  readonly api: NodeApiClient;
}
interface Ctx {
  A: Member;
  B: Member;
  C: Member;
  jobs: string;
}

type Rec = Record<string, any>;
const TERMINAL = ['completed', 'failed', 'cancelled'];
const Arrays = suite<Ctx>('e2e: array jobs and queueing', {} as Ctx);

async function member(node: NodeProcess): Promise<Member> {
  return { node, peerId: node.ready.peerId, api: await apiOf(node) };
}

Arrays.before(async (ctx) => {
  try {
    const flags = ['--bid-window', '500ms', '--cpu', '1'];
    const a = await startNode(await makeTempDir('arr-a'), flags, { timeoutMs: 40_000 });
    const boot = ['--bootstrap', a.ready.listen[0]!];
    const [b, c] = await Promise.all([startNode(await makeTempDir('arr-b'), [...flags, ...boot], { timeoutMs: 40_000 }), startNode(await makeTempDir('arr-c'), [...flags, ...boot], { timeoutMs: 40_000 })]);
    ctx.A = await member(a);
    ctx.B = await member(b);
    ctx.C = await member(c);
    const all = [ctx.A, ctx.B, ctx.C];
    await Promise.all(all.map((m) => waitFor('DMS peers', async () => ((await m.api.get<{ dms: boolean }[]>('/v1/peers')).filter((p) => p.dms).length >= 2 ? true : undefined), 30_000, 200)));
    ctx.jobs = await makeTempDir('arr-jobs');
    const wat = (f: string) => fs.readFile(path.join(ROOT, 'test', 'fixtures', 'wasm', f), 'utf8');
    for (const f of ['env', 'exit3', 'loop', 'spin']) await fs.writeFile(path.join(ctx.jobs, `${f}.wasm`), await compileWat(await wat(`${f}.wat`), `${f}.wat`));
    await fs.writeFile(path.join(ctx.jobs, 'hello.wasm'), await exampleModule('hello'));
  } catch (e) {
    process.stderr.write(`e2e arrays: the network did not come up: ${(e as Error).stack ?? String(e)}\n`);
    throw e;
  }
});

Arrays.after(async () => {
  await killAll();
  await removeTempDirs();
});

let files = 0;
async function jobFile(ctx: Ctx, job: Rec): Promise<string> {
  const file = path.join(ctx.jobs, `job-${++files}.json`);
  await fs.writeFile(file, JSON.stringify(job));
  return file;
}

async function deploy(ctx: Ctx, job: Rec): Promise<string> {
  const r = await cli(['deploy', await jobFile(ctx, job), '--data-dir', ctx.A.node.dataDir, '--json']);
  assert.is(r.code, 0, `deploy failed: ${r.stderr}`);
  return (JSON.parse(r.stdout.trim().split('\n').at(-1)!) as Rec).id as string;
}

function until(ctx: Ctx, id: string, what: string, pred: (r: Rec) => boolean, timeoutMs = 60_000): Promise<Rec> {
  return waitFor(what, async () => {
    const r = await ctx.A.api.get<Rec>(`/v1/jobs/${id}`);
    return pred(r) ? r : undefined;
  }, timeoutMs, 100);
}

const ended = (r: Rec) => TERMINAL.includes(r.state as string);

Arrays('an array job of 60 instances runs on both providers, each instance with its DMS_INDEX and DMS_COUNT', async (ctx) => {
  const id = await deploy(ctx, { name: 'sweep', executor: 'wasm', wasm: { module: 'env.wasm' }, resources: { cpu: 0.01, memory: '16MiB' }, count: 60 });
  const rec = await until(ctx, id, 'the sweep to end', ended);
  assert.is(rec.state, 'completed', rec.message);
  assert.equal(rec.instances, { total: 60, queued: 0, running: 0, completed: 60, failed: 0 });
  assert.is(rec.duplicates, 0);
  const providers = new Set((rec.deals as Rec[]).filter((d) => d.completed > 0).map((d) => d.provider));
  assert.equal(providers, new Set([ctx.B.peerId, ctx.C.peerId]), 'the instances spread over both providers');
  assert.is((rec.deals as Rec[]).reduce((n, d) => n + (d.completed as number), 0), 60);
  assert.not.ok('instanceStates' in rec, 'status leaves the per-index table out');
  const human = await cli(['status', id, '--data-dir', ctx.A.node.dataDir]);
  assert.match(human.stdout, /instances 60 in all: 0 queued, 0 running, 60 completed, 0 failed/);
  const list = await cli(['jobs', '--data-dir', ctx.A.node.dataDir]);
  assert.match(list.stdout, new RegExp(`${id}\\s+sweep\\s+completed\\s+60/60 done`));
  // one instance: where it ran, and its own output
  const one = await cli(['status', id, '--index', '37', '--data-dir', ctx.A.node.dataDir, '--json']);
  assert.is(one.code, 0, one.stderr);
  const inst = JSON.parse(one.stdout) as Rec;
  assert.is(inst.index, 37);
  assert.is(inst.state, 'completed');
  assert.ok([ctx.B.peerId, ctx.C.peerId].includes(inst.provider as string));
  const logs = await cli(['logs', id, '--index', '37', '--data-dir', ctx.A.node.dataDir]);
  assert.is(logs.code, 0, logs.stderr);
  assert.match(logs.stdout, /^DMS_INDEX=37$/m);
  assert.match(logs.stdout, /^DMS_COUNT=60$/m);
  // both providers freed what the job held
  for (const m of [ctx.B, ctx.C]) {
    const info = await waitFor('the provider to free the array allocation', async () => {
      const i = await m.api.get<Rec>('/v1/info');
      return i.capability.locked.cpu === 0 && i.capability.allocated.cpu === 0 ? i : undefined;
    }, 15_000);
    assert.ok(info);
  }
});

Arrays('bad array jobs are refused before anything is sent', async (ctx) => {
  for (const [count, field] of [[0, 'count'], [100_001, 'count'], [2.5, 'count']] as const) {
    const r = await cli(['deploy', await jobFile(ctx, { name: 'bad', executor: 'wasm', wasm: { module: 'env.wasm' }, resources: { cpu: 0.01, memory: '16MiB' }, count }), '--data-dir', ctx.A.node.dataDir]);
    assert.is(r.code, 2, `count ${count}: ${r.stderr}`);
    assert.match(r.stderr, new RegExp(field));
  }
  const r = await cli(['deploy', await jobFile(ctx, { name: 'bad', executor: 'wasm', wasm: { module: 'env.wasm' }, resources: { cpu: 0.01, memory: '16MiB' }, retries: 2 }), '--data-dir', ctx.A.node.dataDir]);
  assert.is(r.code, 2);
  assert.match(r.stderr, /retries/);
  const idx = await cli(['status', 'f'.repeat(32), '--index', 'x', '--data-dir', ctx.A.node.dataDir]);
  assert.is(idx.code, 2, idx.stderr);
});

Arrays('an instance that keeps failing is retried, then fails the job and says which one and why', async (ctx) => {
  const id = await deploy(ctx, { name: 'fails', executor: 'wasm', wasm: { module: 'exit3.wasm' }, resources: { cpu: 0.01, memory: '16MiB' }, count: 4, retries: 1 });
  const rec = await until(ctx, id, 'the failing array to end', ended);
  assert.is(rec.state, 'failed');
  assert.match(rec.message as string, /instance \d+ failed 2 times .*exited with code 3/);
  // the instance the message names ran twice and failed both times (others may have failed once so far)
  const named = Number(/instance (\d+)/.exec(rec.message as string)![1]);
  const f = (rec.failures as Rec[]).find((x) => x.index === named)!;
  assert.is(f.attempts, 2);
  assert.is(f.exitCode, 3);
  const r = await cli(['deploy', await jobFile(ctx, { name: 'fails', executor: 'wasm', wasm: { module: 'exit3.wasm' }, resources: { cpu: 0.01, memory: '16MiB' }, count: 2, retries: 0 }), '--data-dir', ctx.A.node.dataDir, '--wait']);
  assert.is(r.code, 1, 'deploy --wait of a failed array job exits 1');
});

Arrays('a job that finds no room waits queued and runs once capacity frees', async (ctx) => {
  // both providers full (a loop of 1 cpu on each, for 4 s)
  const busy = [] as string[];
  for (const peer of [ctx.B.peerId, ctx.C.peerId]) {
    busy.push(await deploy(ctx, { name: 'hog', executor: 'wasm', wasm: { module: 'loop.wasm' }, resources: { cpu: 1, memory: '16MiB' }, timeout: '4s', constraints: { peers: [peer] } }));
  }
  for (const b of busy) await until(ctx, b, 'the hog to run', (r) => r.state === 'running', 20_000);
  const id = await deploy(ctx, { name: 'patient', executor: 'wasm', wasm: { module: 'hello.wasm' }, resources: { cpu: 1, memory: '16MiB' }, queueTimeout: '60s' });
  const queued = await until(ctx, id, 'the job to be queued', (r) => r.state === 'queued' || ended(r), 20_000);
  assert.is(queued.state, 'queued', queued.message);
  const rec = await until(ctx, id, 'the queued job to end', ended, 60_000);
  assert.is(rec.state, 'completed', rec.message);
  assert.ok((rec.history as Rec[]).some((h) => h.state === 'queued'), 'its history shows it waited');
  // a queue timeout that passes ends the job, saying so
  // (both hogs running before the impatient job asks: a hog still being placed would leave it room)
  const hogs = [] as string[];
  for (const peer of [ctx.B.peerId, ctx.C.peerId]) hogs.push(await deploy(ctx, { name: 'hog', executor: 'wasm', wasm: { module: 'loop.wasm' }, resources: { cpu: 1, memory: '16MiB' }, timeout: '10s', constraints: { peers: [peer] } }));
  for (const h of hogs) await until(ctx, h, 'the second hogs to run', (r) => r.state === 'running', 20_000);
  const late = await deploy(ctx, { name: 'impatient', executor: 'wasm', wasm: { module: 'hello.wasm' }, resources: { cpu: 1, memory: '16MiB' }, queueTimeout: '2s', count: 3 });
  const gone = await until(ctx, late, 'the impatient job to end', ended, 30_000);
  assert.is(gone.state, 'failed');
  assert.match(gone.message as string, /queue timeout/);
});

Arrays('cancel stops an array job wherever its instances run, and its providers free what it held', async (ctx) => {
  for (const m of [ctx.B, ctx.C]) await waitFor('the provider to be free', async () => ((await m.api.get<Rec>('/v1/info')).capability.allocated.cpu === 0 ? true : undefined), 20_000);
  const id = await deploy(ctx, { name: 'stopped', executor: 'wasm', wasm: { module: 'spin.wasm' }, resources: { cpu: 0.25, memory: '16MiB' }, count: 200 });
  await until(ctx, id, 'instances to run', (r) => r.instances.completed >= 2 || ended(r), 30_000);
  const r = await cli(['cancel', id, '--data-dir', ctx.A.node.dataDir, '--json']);
  assert.is(r.code, 0, r.stderr);
  const rec = await until(ctx, id, 'the array job to end', ended, 15_000);
  assert.is(rec.state, 'cancelled');
  assert.ok(rec.instances.completed < 200, 'the sweep was stopped before its end');
  for (const m of [ctx.B, ctx.C]) {
    await waitFor('the provider to free the array allocation', async () => {
      const i = await m.api.get<Rec>('/v1/info');
      return i.capability.locked.cpu === 0 && i.capability.allocated.cpu === 0 ? true : undefined;
    }, 15_000);
  }
});

Arrays('a requester SIGKILLed mid-sweep recovers the queue from its log and finishes the sweep', async (ctx) => {
  for (const m of [ctx.B, ctx.C]) await waitFor('the provider to be free', async () => ((await m.api.get<Rec>('/v1/info')).capability.allocated.cpu === 0 ? true : undefined), 20_000);
  const id = await deploy(ctx, { name: 'sweep-on', executor: 'wasm', wasm: { module: 'spin.wasm' }, resources: { cpu: 0.25, memory: '16MiB' }, count: 80 });
  const before = await until(ctx, id, 'some instances to complete', (r) => r.instances.completed >= 8 || ended(r), 30_000);
  assert.ok(before.instances.completed < 80, 'the sweep is still under way when its requester dies');
  await ctx.A.node.kill();
  const again = await startNode(ctx.A.node.dataDir, ['--bid-window', '500ms', '--cpu', '1', '--bootstrap', ctx.C.node.ready.listen[0]!], { timeoutMs: 40_000 });
  ctx.A = await member(again);
  const rec = await until(ctx, id, 'the recovered sweep to end', ended, 90_000);
  assert.is(rec.state, 'completed', rec.message);
  assert.equal(rec.instances, { total: 80, queued: 0, running: 0, completed: 80, failed: 0 });
  assert.ok(rec.instances.completed >= before.instances.completed);
});

Arrays('a provider SIGKILLed while it runs instances: they run again on the other, each counted once', async (ctx) => {
  // the hogs of the queue test hold both providers until their timeout
  for (const m of [ctx.B, ctx.C]) await waitFor('the provider to be free', async () => ((await m.api.get<Rec>('/v1/info')).capability.allocated.cpu === 0 ? true : undefined), 20_000);
  // each instance burns ~0.1-0.3 s of cpu, 4 at a time on each provider
  const id = await deploy(ctx, { name: 'survivor', executor: 'wasm', wasm: { module: 'spin.wasm' }, resources: { cpu: 0.25, memory: '16MiB' }, count: 120 });
  await until(ctx, id, 'instances to run on both providers', (r) => (r.deals as Rec[]).filter((d) => d.state === 'running').length === 2 || ended(r), 30_000);
  ctx.B.node.child.kill('SIGKILL');
  const rec = await until(ctx, id, 'the sweep to end without B', ended, 90_000);
  assert.is(rec.state, 'completed', rec.message);
  assert.is(rec.instances.completed, 120);
  const onC = (rec.deals as Rec[]).filter((d) => d.provider === ctx.C.peerId).reduce((n, d) => n + (d.completed as number), 0);
  const onB = (rec.deals as Rec[]).filter((d) => d.provider === ctx.B.peerId).reduce((n, d) => n + (d.completed as number), 0);
  assert.is(onB + onC, 120, 'each index counted completed once');
  assert.ok(onB < 120 && onC > 0, `B ran ${onB} before it died, C the rest (${onC})`);
});

Arrays.run();
