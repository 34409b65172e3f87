/**
 * End to end: a job's output paged from its provider to the requester, between two real `node runtime/main.js`
 * processes on loopback (A deploys, B runs), through the CLI. Each `logs.page` must fit one envelope (1 MiB frames):
 * a job that writes a byte at a time (drip.wat: 150,000 one-byte writes) once made pages of 1.6 MB that the
 * requester refused, closing the connection; a job that writes 1 MiB of every byte value (nasty.wat) takes several
 * pages, which `logs`, `logs --follow` and `logs | cat` read to the end. On the provider the output is a file
 * about 4/3 of the output, not one line per chunk.
 */
import type { JobRecord } from '../../machines/requester.messages.ts';
import { spawn } from 'node:child_process';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { compileWat } from '../../runtime/executors/examples/examples.ts';
import { type CliResult, type NodeApiClient, type NodeProcess, MAIN, ROOT, apiOf, cli, cliJson, jobUntil, killAll, makeTempDir, type NetInfo, removeTempDirs, startNode, waitFor, type PeerRow } from './harness.ts';

interface Ctx {
  A: { node: NodeProcess; api: NodeApiClient };
  B: { node: NodeProcess; api: NodeApiClient };
  jobs: string;
}

const MiB = 1024 ** 2;
const test = suite<Ctx>('e2e: job output paged from the provider, every page one envelope', {} as Ctx);

test.before(async (ctx) => {
  try {
    const a = await startNode(await makeTempDir('logs-a'), ['--bid-window', '500ms'], { timeoutMs: 40_000 });
    const b = await startNode(await makeTempDir('logs-b'), ['--bid-window', '500ms', '--bootstrap', a.ready.listen[0]!], { timeoutMs: 40_000 });
    ctx.A = { node: a, api: await apiOf(a) };
    ctx.B = { node: b, api: await apiOf(b) };
    await waitFor('A to see B as a DMS peer', async () => ((await ctx.A.api.get<PeerRow[]>('/v1/peers')).some((p) => p.dms && p.peer === b.ready.peerId) ? true : undefined), 30_000, 200);
    ctx.jobs = await makeTempDir('logs-jobs');
    for (const f of ['drip', 'nasty']) {
      const wat = await fs.readFile(path.join(ROOT, 'test', 'fixtures', 'wasm', `${f}.wat`), 'utf8');
      await fs.writeFile(path.join(ctx.jobs, `${f}.wasm`), await compileWat(wat, `${f}.wat`));
    }
  } catch (e) {
    process.stderr.write(`e2e output logs: the nodes did not come up: ${(e as Error).stack ?? String(e)}\n`);
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

/** Runs the module on B from A and waits until it completed. */
async function runOnB(ctx: Ctx, module: string): Promise<JobRecord> {
  const file = path.join(ctx.jobs, `${module}.json`);
  const job = { name: module, executor: 'wasm', wasm: { module: `./${module}.wasm` }, resources: { cpu: 0.5, memory: '64MiB' }, timeout: '60s', constraints: { peers: [ctx.B.node.ready.peerId] } };
  await fs.writeFile(file, JSON.stringify(job));
  const { id } = await cliJson<JobRecord>(['deploy', file, '--data-dir', ctx.A.node.dataDir]);
  const end = await jobUntil(ctx.A.api, id, `the ${module} job to end`, (r) => ['completed', 'failed', 'cancelled'].includes(r.state), 30_000);
  assert.is(end.state, 'completed', JSON.stringify(end));
  return end;
}

/** Same text, or where the first difference is (the strings are MiBs long). */
function same(got: string, want: string, what: string): void {
  let at = 0;
  while (at < want.length && got[at] === want[at]) at += 1;
  assert.ok(got === want, `${what}: ${got.length} characters read, ${want.length} written; the first difference at ${at}`);
}

test('150,000 one-byte writes: `logs` and `logs --follow` on A give all of it; B keeps a file of ~4/3 of it', async (ctx) => {
  const end = await runOnB(ctx, 'drip');
  const want = '0123456789'.repeat(15_000);
  for (const args of [[], ['--follow']]) {
    const r = await cli(['logs', end.id, ...args, '--data-dir', ctx.A.node.dataDir], { timeoutMs: 30_000 });
    assertExit(r, 0, `logs ${args.join(' ')}`);
    same(r.stdout, want, `logs ${args.join(' ')}`);
  }
  const file = path.join(ctx.B.node.dataDir, 'allocations', `${encodeURIComponent(end.allocationId!)}.log`);
  const stored = await fs.readFile(file, 'latin1');
  const lines = stored.split('\n').length - 1;
  // a record per 32 KiB batch, plus one per OUTPUT_FLUSH_DELAY_MS (100 ms) of the job's life: a loaded machine
  // makes the drip last longer, so more time-flushed lines, never one per write (150,000)
  const lifeMs = (end.endedAt ?? 0) - (end.startedAt ?? 0);
  const maxLines = Math.ceil(want.length / 32_768) + Math.ceil(lifeMs / 100) + 2;
  assert.ok(stored.length <= (want.length * 4) / 3 + lines * 6 && lines <= maxLines, `B stores ${want.length} bytes of output as ${stored.length} bytes in ${lines} lines (at most ${maxLines} for a job of ${lifeMs} ms)`);
});

test('1 MiB of every byte value, stdout and stderr: several pages, read to the end by `logs`, `logs --json` and `logs --follow`', async (ctx) => {
  const end = await runOnB(ctx, 'nasty');
  const block = Buffer.from(Array.from({ length: 65_536 }, (_, i) => i & 0xff));
  const want = { stdout: Buffer.concat(Array(15).fill(block)).toString('utf8'), stderr: block.toString('utf8') };
  assert.ok(Buffer.byteLength(want.stdout) > 1.5 * MiB, 'more text than one page holds, by far');
  for (const args of [[], ['--follow']]) {
    const r = await cli(['logs', end.id, ...args, '--data-dir', ctx.A.node.dataDir], { timeoutMs: 30_000 });
    assertExit(r, 0, `logs ${args.join(' ')}`);
    same(r.stdout, want.stdout, `stdout of logs ${args.join(' ')}`);
    same(r.stderr, want.stderr, `stderr of logs ${args.join(' ')}`);
  }
  // through a shell pipe, as `logs JOB | less` reads it: a pipe takes 64 KiB at a time, and nothing may be left behind
  const piped = await new Promise<string>((resolve, reject) => {
    const sh = spawn('sh', ['-c', `"${process.execPath}" "${MAIN}" logs ${end.id} --data-dir "${ctx.A.node.dataDir}" | cat`], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    sh.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
    sh.stderr.resume(); // the job's stderr (every byte value): checked above, kept out of the test report
    sh.once('error', reject).once('close', () => resolve(out));
  });
  same(piped, want.stdout, 'logs | cat');
  const j = await cli(['logs', end.id, '--json', '--data-dir', ctx.A.node.dataDir], { timeoutMs: 30_000 });
  assertExit(j, 0, 'logs --json');
  const chunks = j.stdout.split('\n').filter((l) => l !== '').map((l, i) => {
    try {
      return JSON.parse(l) as { stream: string; text: string };
    } catch {
      throw new Error(`logs --json: line ${i} is not JSON: ${l.slice(0, 80)}…${l.slice(-80)} (${l.length} characters)`);
    }
  });
  same(chunks.filter((c) => c.stream === 'stdout').map((c) => c.text).join(''), want.stdout, 'stdout of logs --json');
  // the pages came over the network from B without a refusal: A counted no oversized envelope
  const info = await ctx.A.api.get<NetInfo>('/v1/info');
  assert.ok(info.messages, 'A reports its envelope counters');
  assert.is(info.messages.rejected['oversized'] ?? 0, 0, JSON.stringify(info.messages.rejected));
});

test.run();
