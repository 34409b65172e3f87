/**
 * End to end: result files (`wasm.outputs`) between two real `node runtime/main.js` processes on loopback: A
 * deploys, B runs outputs.wat, which writes `hello.txt` and `data/big.bin` (5 MiB + 123) into /out; `results` on
 * A fetches them over /dms/results/1.0.0 and checks each sha256. A file changed on B after the job ended is not
 * kept (exit 1); a transfer resumes from the partial file it has; `outputs` on a process job is refused (exit 2);
 * a module writing past its resources.disk ends failed.
 */
import { createHash } from 'node:crypto';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import type { JobRecord } from '../../machines/requester.messages.ts';
import { compileWat } from '../../runtime/executors/examples/examples.ts';
import { type CliResult, type NodeApiClient, type NodeProcess, ROOT, apiOf, cli, cliJson, exists, jobUntil, killAll, makeTempDir, type PeerRow, removeTempDirs, startNode, waitFor } from './harness.ts';

interface Ctx {
  A: { node: NodeProcess; api: NodeApiClient };
  B: { node: NodeProcess; api: NodeApiClient };
  jobs: string;
  done: JobRecord;
}

const MiB = 1024 ** 2;
const BIG_SIZE = 80 * 65536 + 123;
const test = suite<Ctx>('e2e: result files fetched from the provider and checked', {} as Ctx);

/** What outputs.wat writes into data/big.bin. */
function bigContent(size = BIG_SIZE): Buffer {
  const b = Buffer.alloc(size);
  for (let p = 0; p < size; p += 1) b[p] = (p % 65536) % 251;
  b.write('HEAD', 0, 'latin1');
  return b;
}
const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

test.before(async (ctx) => {
  try {
    const a = await startNode(await makeTempDir('res-a'), ['--bid-window', '500ms'], { timeoutMs: 40_000 });
    const b = await startNode(await makeTempDir('res-b'), ['--bid-window', '500ms', '--bootstrap', a.ready.listen[0]!], { timeoutMs: 40_000 });
    ctx.A = { node: a, api: await apiOf(a) };
    ctx.B = { node: b, api: await apiOf(b) };
    await waitFor('A to see B as a DMS peer', async () => ((await ctx.A.api.get<PeerRow[]>('/v1/peers')).some((p) => p.dms && p.peer === b.ready.peerId) ? true : undefined), 30_000, 200);
    ctx.jobs = await makeTempDir('res-jobs');
    const wat = await fs.readFile(path.join(ROOT, 'test', 'fixtures', 'wasm', 'outputs.wat'), 'utf8');
    await fs.writeFile(path.join(ctx.jobs, 'outputs.wasm'), await compileWat(wat, 'outputs.wat'));
  } catch (e) {
    process.stderr.write(`e2e results: the nodes did not come up: ${(e as Error).stack ?? String(e)}\n`);
    throw e;
  }
});

test.after(async () => {
  await killAll();
  await removeTempDirs();
});

function assertExit(r: CliResult, code: number, what: string): void {
  assert.is(r.code, code, `${what}: exit ${String(r.code)} (expected ${code})\nstdout: ${r.stdout.slice(0, 500)}\nstderr: ${r.stderr.slice(0, 2000)}`);
}

async function deploy(ctx: Ctx, name: string, job: object): Promise<JobRecord> {
  const file = path.join(ctx.jobs, `${name}.json`);
  await fs.writeFile(file, JSON.stringify({ name, timeout: '60s', constraints: { peers: [ctx.B.node.ready.peerId] }, ...job }));
  const { id } = await cliJson<JobRecord>(['deploy', file, '--data-dir', ctx.A.node.dataDir]);
  return jobUntil(ctx.A.api, id, `the ${name} job to end`, (r) => ['completed', 'failed', 'cancelled'].includes(r.state), 30_000);
}

const outputsJob = (disk: string) => ({ executor: 'wasm', wasm: { module: './outputs.wasm', outputs: true }, resources: { cpu: 0.5, memory: '64MiB', disk } });

/** B's copy of the job's result file `rel`. */
const onB = (ctx: Ctx, rel: string) => path.join(ctx.B.node.dataDir, 'outputs', encodeURIComponent(ctx.done.allocationId!), 'files', ...rel.split('/'));

test('a job writing two files into /out: `results --json` fetches both, each as written, with its sha256', async (ctx) => {
  ctx.done = await deploy(ctx, 'outputs', outputsJob('16MiB'));
  assert.is(ctx.done.state, 'completed', JSON.stringify(ctx.done));
  const out = path.join(await makeTempDir('res-out'), 'got');
  const r = await cli(['results', ctx.done.id, '--out', out, '--json', '--data-dir', ctx.A.node.dataDir], { timeoutMs: 60_000 });
  assertExit(r, 0, 'results');
  const hello = Buffer.from('hello from /out\n');
  const big = bigContent();
  assert.equal(JSON.parse(r.stdout), {
    files: [
      { path: 'data/big.bin', size: BIG_SIZE, sha256: sha(big) },
      { path: 'hello.txt', size: hello.length, sha256: sha(hello) },
    ],
  });
  assert.ok((await fs.readFile(path.join(out, 'hello.txt'))).equals(hello), 'hello.txt as written');
  assert.ok((await fs.readFile(path.join(out, 'data', 'big.bin'))).equals(big), 'data/big.bin as written (5 MiB + 123, HEAD at the start)');
  assert.equal((await fs.readdir(out)).sort(), ['data', 'hello.txt'], 'no partial files left behind');
  const manifest = JSON.parse(await fs.readFile(path.join(ctx.B.node.dataDir, 'outputs', encodeURIComponent(ctx.done.allocationId!), 'manifest.json'), 'utf8')) as unknown[];
  assert.is(manifest.length, 2, 'the provider wrote its manifest beside the files');
});

test('a partial file is resumed from the bytes it has: a wrong prefix makes the whole file fail its check, a right one completes it', async (ctx) => {
  const big = bigContent();
  for (const [prefix, code] of [[Buffer.alloc(MiB, 7), 1], [big.subarray(0, MiB), 0]] as const) {
    const out = await makeTempDir('res-resume');
    await fs.mkdir(path.join(out, '.dms-partial'));
    await fs.writeFile(path.join(out, '.dms-partial', sha(big)), prefix);
    const r = await cli(['results', ctx.done.id, '--out', out, '--data-dir', ctx.A.node.dataDir], { timeoutMs: 60_000 });
    assertExit(r, code, `results with a ${code ? 'wrong' : 'right'} 1 MiB prefix`);
    if (code === 1) {
      assert.match(r.stderr, /data\/big\.bin: sha256 is/);
      assert.not.ok(await exists(path.join(out, 'data', 'big.bin')), 'the file that fails its check is not kept');
      assert.not.ok(await exists(path.join(out, '.dms-partial', sha(big))), 'nor its partial copy');
    } else {
      assert.ok((await fs.readFile(path.join(out, 'data', 'big.bin'))).equals(big), 'resumed to the whole file');
    }
  }
});

test('a result file changed on the provider after the job ended: not kept, exit 1; the other file is', async (ctx) => {
  const file = onB(ctx, 'data/big.bin');
  const fh = await fs.open(file, 'r+');
  await fh.write(Buffer.from('XX'), 0, 2, 3 * MiB);
  await fh.close();
  const out = await makeTempDir('res-tampered');
  const r = await cli(['results', ctx.done.id, '--out', out, '--json', '--data-dir', ctx.A.node.dataDir], { timeoutMs: 60_000 });
  assertExit(r, 1, 'results of a tampered file');
  assert.match(r.stderr, /data\/big\.bin: sha256 is [0-9a-f]{64}, not the/);
  const printed = JSON.parse(r.stdout) as { files: { path: string }[]; failed: { path: string }[] };
  assert.equal(printed.files.map((f) => f.path), ['hello.txt']);
  assert.equal(printed.failed.map((f) => f.path), ['data/big.bin']);
  assert.not.ok(await exists(path.join(out, 'data', 'big.bin')), 'the tampered file is not kept');
  assert.ok(await exists(path.join(out, 'hello.txt')), 'the untouched one is');
});

test('`outputs` on a process job, or not a boolean: refused before anything is sent (exit 2, the field named)', async (ctx) => {
  const cases: [string, object, RegExp][] = [
    ['proc', { executor: 'process', process: { command: 'sh', args: ['-c', 'true'], outputs: true }, resources: { cpu: 0.5, memory: '64MiB' } }, /process\.outputs: result files \(\/out\) are for WASM jobs only/],
    ['notbool', { executor: 'wasm', wasm: { module: './outputs.wasm', outputs: 'yes' }, resources: { cpu: 0.5, memory: '64MiB' } }, /wasm\.outputs: must be true or false/],
  ];
  const before = (await ctx.A.api.get<unknown[]>('/v1/jobs')).length;
  for (const [name, job, message] of cases) {
    const file = path.join(ctx.jobs, `${name}.json`);
    await fs.writeFile(file, JSON.stringify({ name, ...job }));
    const r = await cli(['deploy', file, '--data-dir', ctx.A.node.dataDir]);
    assertExit(r, 2, `deploy ${name}`);
    assert.match(r.stderr, message);
  }
  assert.is((await ctx.A.api.get<unknown[]>('/v1/jobs')).length, before, 'nothing was deployed');
});

test('a module writing more than its resources.disk: the write fails (ENOSPC) and the job ends failed saying so', async (ctx) => {
  const end = await deploy(ctx, 'overflow', outputsJob('1MiB'));
  assert.is(end.state, 'failed', JSON.stringify(end));
  assert.match(end.message, /wrote more than its disk/);
});

test('results of a job that asked for none: exit 1, saying so', async (ctx) => {
  const end = await deploy(ctx, 'plain', { executor: 'wasm', wasm: { module: './outputs.wasm' }, resources: { cpu: 0.5, memory: '64MiB' } });
  const r = await cli(['results', end.id, '--out', await makeTempDir('res-none'), '--data-dir', ctx.A.node.dataDir]);
  assertExit(r, 1, 'results of a job without outputs');
  assert.match(r.stderr, /no result files/);
});

test.run();
