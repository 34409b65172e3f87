/**
 * End to end: `--min-free-disk`. A provider B whose data dir is on a small tmpfs mounted by the test (these machines
 * run as root; where mount is refused the suite says so on stderr and skips) and a requester A. When a file fills the
 * tmpfs past B's minimum, B says so in `info` and once in its log, and A's job pinned to B hears `disk-full`; when the
 * file goes, B says so once more and runs the job.
 */
import { spawnSync } from 'node:child_process';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import type { JobRecord } from '../../machines/requester.messages.ts';
import { exampleModule } from '../../runtime/executors/examples/examples.ts';
import { type NodeApiClient, type NodeProcess, type PeerRow, apiOf, cli, cliJson, jobUntil, killAll, makeTempDir, removeTempDirs, startNode, waitFor } from './harness.ts';

const MiB = 1024 ** 2;
const TMPFS_MIB = 256;
const MIN_FREE_MIB = 96;

interface Ctx {
  mount?: string;
  A?: NodeProcess;
  B?: NodeProcess;
  apiA?: NodeApiClient;
  apiB?: NodeApiClient;
  jobs?: string;
}

type Monitoring = { sample: { diskFree: number } | null; diskFull: boolean; minFreeDisk: number | null };

const DiskFull = suite<Ctx>('e2e: --min-free-disk, on a small tmpfs', {});

DiskFull.before(async (ctx) => {
  const dir = await makeTempDir('tmpfs');
  const m = spawnSync('mount', ['-t', 'tmpfs', '-o', `size=${TMPFS_MIB}m`, 'tmpfs', dir], { encoding: 'utf8' });
  if (m.status !== 0) {
    process.stderr.write(`SKIP e2e --min-free-disk: cannot mount a tmpfs (${(m.stderr || m.error?.message || `exit ${m.status}`).trim()}); run as root to test it\n`);
    return;
  }
  ctx.mount = dir;
  try {
    const flags = ['--bid-window', '500ms', '--monitor-interval', '100'];
    ctx.A = await startNode(await makeTempDir('disk-a'), flags, { timeoutMs: 40_000 });
    ctx.B = await startNode(path.join(dir, 'b'), [...flags, '--min-free-disk', `${MIN_FREE_MIB}MiB`, '--bootstrap', ctx.A.ready.listen[0]!], { timeoutMs: 40_000 });
    ctx.apiA = await apiOf(ctx.A);
    ctx.apiB = await apiOf(ctx.B);
    const b = ctx.B.ready.peerId;
    await waitFor('A to see B as a DMS peer', async () => ((await ctx.apiA!.get<PeerRow[]>('/v1/peers')).some((p) => p.peer === b && p.dms) ? true : undefined), 30_000, 200);
    ctx.jobs = await makeTempDir('disk-jobs');
    await fs.writeFile(path.join(ctx.jobs, 'hello.wasm'), await exampleModule('hello'));
    await fs.writeFile(path.join(ctx.jobs, 'hello.json'), JSON.stringify({ name: 'hello', executor: 'wasm', wasm: { module: './hello.wasm' }, resources: { cpu: 0.1, memory: '32MiB' }, timeout: '20s', constraints: { peers: [b] } }));
  } catch (e) {
    process.stderr.write(`e2e --min-free-disk: the nodes did not come up: ${(e as Error).stack ?? String(e)}\n`);
    throw e;
  }
});

DiskFull.after(async (ctx) => {
  await killAll();
  if (ctx.mount) spawnSync('umount', ['-l', ctx.mount]);
  await removeTempDirs();
});

const monitoring = async (ctx: Ctx) => (await ctx.apiB!.get<{ monitoring: Monitoring }>('/v1/info')).monitoring;
const warnings = (ctx: Ctx, text: string) => ctx.B!.stderr().split('\n').filter((l) => l.includes(text) && l.includes('"level":40')).length;

DiskFull('under the minimum B declines new work with disk-full and says so; with space back it runs the job', async (ctx) => {
  if (!ctx.mount) return;
  const fill = path.join(ctx.mount, 'fill.bin');
  let id: string | undefined;
  try {
    const before = await monitoring(ctx);
    assert.is(before.minFreeDisk, MIN_FREE_MIB * MiB, 'the flag reached the Node');
    assert.is(before.diskFull, false);
    // leave 32 MiB free: under B's minimum of 96 MiB
    const free = before.sample!.diskFree;
    await fs.writeFile(fill, Buffer.alloc(Math.max(0, free - 32 * MiB)));
    await waitFor('B to find its disk full', async () => ((await monitoring(ctx)).diskFull ? true : undefined), 10_000);
    const human = await cli(['info', '--data-dir', ctx.B!.dataDir]);
    assert.match(human.stdout, /^disk {5}.* free, keeps 96\.0 MiB free: FULL: declining new work \(disk-full\)/m);

    id = (await cliJson<JobRecord>(['deploy', path.join(ctx.jobs!, 'hello.json'), '--data-dir', ctx.A!.dataDir])).id;
    const declined = await jobUntil(ctx.apiA!, id, "A's job to hear B's disk-full", (r) => r.declines.some((d) => d.code === 'disk-full'), 10_000);
    const d = declined.declines.find((x) => x.provider === ctx.B!.ready.peerId)!;
    assert.match(d.reason, /disk is nearly full .* under its minimum of 96\.0 MiB/);
    assert.is(declined.state !== 'failed', true, 'disk-full is not a reason to give up: the job waits');
    const counted = await cliJson<{ bidDeclines: Record<string, number> }>(['info', '--data-dir', ctx.B!.dataDir]);
    assert.ok((counted.bidDeclines['disk-full'] ?? 0) >= 1, `info --json counts the declines by code: ${JSON.stringify(counted.bidDeclines)}`);

    await fs.rm(fill);
    await waitFor('B to find room again', async () => ((await monitoring(ctx)).diskFull ? undefined : true), 10_000);
    const done = await jobUntil(ctx.apiA!, id, 'the job to complete on B once space returned', (r) => r.state === 'completed', 30_000);
    assert.is(done.provider, ctx.B!.ready.peerId);
    id = undefined;
    assert.is(warnings(ctx, 'disk is nearly full'), 1, `one warn line as the disk filled: ${ctx.B!.stderr()}`);
    assert.is(warnings(ctx, 'disk has room again'), 1, 'one warn line as space returned');
  } finally {
    await fs.rm(fill, { force: true });
    if (id) await cli(['cancel', id, '--data-dir', ctx.A!.dataDir]).catch(() => undefined);
  }
});

DiskFull.run();
