/**
 * End to end: result files of an array job, between real `node runtime/main.js` processes on loopback. A deploys
 * an array job of 6 instances of index-out.wat with `wasm.outputs: true` to providers B and C; each instance writes
 * `index.txt` ("I\n") and `part/I.bin` ((I+1) * 1000 bytes of I+1) into its own /out. `results JOB` fetches every
 * instance into DIR/<index>/, each file checked; `--index I` fetches one; a file changed on its provider is not
 * kept (exit 1); an instance that has not completed is refused, saying so.
 */
import { createHash } from 'node:crypto';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { compileWat } from '../../runtime/executors/examples/examples.ts';
import { type CliResult, type NodeApiClient, type NodeProcess, ROOT, apiOf, cli, exists, killAll, makeTempDir, removeTempDirs, startNode, waitFor } from './harness.ts';

type Rec = Record<string, any>;
interface Member {
  readonly node: NodeProcess;
  readonly api: NodeApiClient;
}
interface Ctx {
  A: Member;
  providers: Member[];
  jobs: string;
  /** The completed array job of 6. */
  id: string;
}

const COUNT = 6;
const test = suite<Ctx>('e2e: result files of an array job, per instance', {} as Ctx);
const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');
const indexTxt = (i: number) => Buffer.from(`${i}\n`);
const partBin = (i: number) => Buffer.alloc((i + 1) * 1000, i + 1);
/** What instance `i` lists, in manifest order. */
const filesOf = (i: number) => [
  { path: 'index.txt', size: indexTxt(i).length, sha256: sha(indexTxt(i)) },
  { path: `part/${i}.bin`, size: partBin(i).length, sha256: sha(partBin(i)) },
];

test.before(async (ctx) => {
  try {
    const flags = ['--bid-window', '500ms', '--cpu', '1'];
    const a = await startNode(await makeTempDir('ares-a'), flags, { timeoutMs: 40_000 });
    const boot = ['--bootstrap', a.ready.listen[0]!];
    const [b, c] = await Promise.all([startNode(await makeTempDir('ares-b'), [...flags, ...boot], { timeoutMs: 40_000 }), startNode(await makeTempDir('ares-c'), [...flags, ...boot], { timeoutMs: 40_000 })]);
    ctx.A = { node: a, api: await apiOf(a) };
    ctx.providers = [{ node: b, api: await apiOf(b) }, { node: c, api: await apiOf(c) }];
    await waitFor('A to see B and C', async () => ((await ctx.A.api.get<{ dms: boolean }[]>('/v1/peers')).filter((p) => p.dms).length >= 2 ? true : undefined), 30_000, 200);
    ctx.jobs = await makeTempDir('ares-jobs');
    for (const f of ['index-out', 'loop']) {
      const wat = await fs.readFile(path.join(ROOT, 'test', 'fixtures', 'wasm', `${f}.wat`), 'utf8');
      await fs.writeFile(path.join(ctx.jobs, `${f}.wasm`), await compileWat(wat, `${f}.wat`));
    }
  } catch (e) {
    process.stderr.write(`e2e array results: the nodes did not come up: ${(e as Error).stack ?? String(e)}\n`);
    throw e;
  }
});

test.after(async () => {
  await killAll();
  await removeTempDirs();
});

function assertExit(r: CliResult, code: number, what: string): void {
  assert.is(r.code, code, `${what}: exit ${String(r.code)} (expected ${code})\nstdout: ${r.stdout.slice(0, 800)}\nstderr: ${r.stderr.slice(0, 2000)}`);
}

let files = 0;
async function deploy(ctx: Ctx, job: Rec): Promise<string> {
  const file = path.join(ctx.jobs, `job-${++files}.json`);
  await fs.writeFile(file, JSON.stringify(job));
  const r = await cli(['deploy', file, '--data-dir', ctx.A.node.dataDir, '--json']);
  assertExit(r, 0, 'deploy');
  return (JSON.parse(r.stdout.trim().split('\n').at(-1)!) as Rec).id as string;
}

function until(ctx: Ctx, id: string, what: string, pred: (r: Rec) => boolean, timeoutMs = 60_000): Promise<Rec> {
  return waitFor(what, async () => {
    const r = await ctx.A.api.get<Rec>(`/v1/jobs/${id}`);
    return pred(r) ? r : undefined;
  }, timeoutMs, 100);
}

const ended = (r: Rec) => ['completed', 'failed', 'cancelled'].includes(r.state as string);

/** Where instance `i` ran (status --index), and its files' directory on that provider. */
async function instanceFiles(ctx: Ctx, id: string, i: number): Promise<string> {
  const r = await cli(['status', id, '--index', String(i), '--data-dir', ctx.A.node.dataDir, '--json']);
  assertExit(r, 0, `status --index ${i}`);
  const inst = JSON.parse(r.stdout) as Rec;
  const provider = ctx.providers.find((p) => p.node.ready.peerId === inst.provider);
  assert.ok(provider, `instance ${i} ran on B or C (${String(inst.provider)})`);
  return path.join(provider!.node.dataDir, 'outputs', encodeURIComponent(inst.allocationId as string), String(i));
}

test('an array job of 6 writing /out: `results --json` fetches every instance into DIR/<index>/, each file checked', async (ctx) => {
  ctx.id = await deploy(ctx, { name: 'indexes', executor: 'wasm', wasm: { module: 'index-out.wasm', outputs: true }, resources: { cpu: 0.25, memory: '16MiB', disk: '1MiB' }, count: COUNT });
  const rec = await until(ctx, ctx.id, 'the array job to end', ended);
  assert.is(rec.state, 'completed', rec.message);
  const out = path.join(await makeTempDir('ares-out'), 'all');
  const r = await cli(['results', ctx.id, '--out', out, '--json', '--data-dir', ctx.A.node.dataDir], { timeoutMs: 60_000 });
  assertExit(r, 0, 'results of the array job');
  const printed = JSON.parse(r.stdout) as { instances: { index: number; files: unknown[] }[] };
  assert.equal(printed, { instances: Array.from({ length: COUNT }, (_, i) => ({ index: i, files: filesOf(i) })) });
  assert.equal((await fs.readdir(out)).sort(), ['0', '1', '2', '3', '4', '5']);
  for (let i = 0; i < COUNT; i += 1) {
    assert.ok((await fs.readFile(path.join(out, String(i), 'index.txt'))).equals(indexTxt(i)), `${i}/index.txt`);
    assert.ok((await fs.readFile(path.join(out, String(i), 'part', `${i}.bin`))).equals(partBin(i)), `${i}/part/${i}.bin`);
    assert.equal((await fs.readdir(path.join(out, String(i)))).sort(), ['index.txt', 'part'], 'no partial files left behind');
    // the provider wrote each instance's manifest beside its files
    const manifest = JSON.parse(await fs.readFile(path.join(await instanceFiles(ctx, ctx.id, i), 'manifest.json'), 'utf8')) as unknown;
    assert.equal(manifest, filesOf(i));
  }
  // the human form says how many
  const human = await cli(['results', ctx.id, '--out', out, '--data-dir', ctx.A.node.dataDir], { timeoutMs: 60_000 });
  assertExit(human, 0, 'results again (the files are there: nothing fetched)');
  assert.match(human.stdout, /6 of 6 instances, 12 files in /);
});

test('`results --index 3` fetches that instance only, into DIR/3/', async (ctx) => {
  const out = await makeTempDir('ares-one');
  const r = await cli(['results', ctx.id, '--index', '3', '--out', out, '--json', '--data-dir', ctx.A.node.dataDir], { timeoutMs: 60_000 });
  assertExit(r, 0, 'results --index 3');
  assert.equal(JSON.parse(r.stdout), { files: filesOf(3) });
  assert.equal(await fs.readdir(out), ['3']);
  assert.ok((await fs.readFile(path.join(out, '3', 'part', '3.bin'))).equals(partBin(3)));
  const none = await cli(['results', ctx.id, '--index', String(COUNT), '--out', out, '--data-dir', ctx.A.node.dataDir]);
  assertExit(none, 1, 'results --index past the last instance');
  assert.match(none.stderr, /instances 0 to 5; there is no instance 6/);
});

test('a file changed on its provider after the instance ended: not kept, exit 1; every other instance is fetched', async (ctx) => {
  const file = path.join(await instanceFiles(ctx, ctx.id, 2), 'files', 'part', '2.bin');
  const fh = await fs.open(file, 'r+');
  await fh.write(Buffer.from('XX'), 0, 2, 100);
  await fh.close();
  const out = await makeTempDir('ares-tampered');
  const r = await cli(['results', ctx.id, '--out', out, '--json', '--data-dir', ctx.A.node.dataDir], { timeoutMs: 60_000 });
  assertExit(r, 1, 'results with one tampered file');
  assert.match(r.stderr, /instance 2: part\/2\.bin: sha256 is [0-9a-f]{64}, not the/);
  const printed = JSON.parse(r.stdout) as { instances: { index: number; files: { path: string }[]; failed?: { path: string }[] }[] };
  assert.equal(printed.instances.map((i) => i.index), [0, 1, 2, 3, 4, 5]);
  const two = printed.instances[2]!;
  assert.equal([two.files.map((f) => f.path), two.failed?.map((f) => f.path)], [['index.txt'], ['part/2.bin']]);
  assert.not.ok(await exists(path.join(out, '2', 'part', '2.bin')), 'the tampered file is not kept');
  for (const i of [0, 1, 3, 4, 5]) assert.ok(await exists(path.join(out, String(i), 'part', `${i}.bin`)), `instance ${i} is fetched`);
});

test('an instance that has not completed: `results --index` says so (exit 1); without --index it is left out', async (ctx) => {
  const id = await deploy(ctx, { name: 'loops', executor: 'wasm', wasm: { module: 'loop.wasm', outputs: true }, resources: { cpu: 0.25, memory: '16MiB', disk: '1MiB' }, timeout: '60s', count: 2 });
  try {
    await until(ctx, id, 'an instance to run', (r) => r.instances?.running >= 1 || ended(r), 30_000);
    const status = await cli(['status', id, '--index', '0', '--data-dir', ctx.A.node.dataDir, '--json']);
    const state = (JSON.parse(status.stdout) as Rec).state as string;
    const r = await cli(['results', id, '--index', '0', '--out', await makeTempDir('ares-running'), '--data-dir', ctx.A.node.dataDir]);
    assertExit(r, 1, 'results --index of an instance that has not completed');
    assert.match(r.stderr, new RegExp(`instance 0 of job ${id} is (running|queued): its result files can be fetched once it completes`), `state ${state}`);
    const all = await cli(['results', id, '--out', await makeTempDir('ares-running-all'), '--json', '--data-dir', ctx.A.node.dataDir]);
    assertExit(all, 0, 'results of an array job none of whose instances completed');
    assert.equal(JSON.parse(all.stdout), { instances: [] });
  } finally {
    await cli(['cancel', id, '--data-dir', ctx.A.node.dataDir]);
  }
});

test.run();
