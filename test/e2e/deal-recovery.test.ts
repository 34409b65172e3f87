/**
 * End to end: crash recovery of deals between real `node runtime/main.js` processes on loopback. Two nodes:
 *   A  the requester (jobs are deployed from it)
 *   B  a provider (wasm only), joined through A
 * The first three tests SIGKILL one side of a running deal and start it again on the same data dir, then check
 * that both sides end the deal cleanly: the records, the provider's resources, the job's runner process; the last
 * stops and starts the idle provider cleanly. The third (a job that ends while its requester is down) fails on a
 * product bug: the provider sends a job's end once, so the restarted requester takes it as lost and runs it again.
 * At most one loop job runs at a time (loop.wat burns a core). A SIGKILLed provider leaves its job's runner process
 * group alive until the provider starts again (it ends it then); `after` ends any runner still left, by the pid and
 * command line seen before.
 */
import type { Capability as Cap } from '../../machines/capability.ts';
import type { JobRecord } from '../../machines/requester.messages.ts';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { compileWat } from '../../runtime/executors/examples/examples.ts';
import { type NodeApiClient, type NodeProcess, ROOT, apiOf, childProcesses, cli, cliJson, jsonLines, killAll, makeTempDir, removeTempDirs, startNode, waitFor, type AllocationRow, type NodeInfo, type PeerRow, jobUntil as untilJob } from './harness.ts';

interface Member {
  name: string;
  node: NodeProcess;
  readonly dir: string;
  readonly flags: readonly string[];
  readonly peerId: string;
  api: NodeApiClient;
}
interface Ctx {
  A: Member;
  B: Member;
  /** Job files and the module. */
  jobs: string;
}

const TERMINAL = ['completed', 'failed', 'cancelled'];
const FLAGS = ['--bid-window', '500ms'];

/** Runner processes seen on a provider: `after` ends any that still run. */
const runners: { pid: number; cmdline: string }[] = [];
/** Jobs that may still be live on A: `after` cancels them before the nodes go. */
const live: string[] = [];

const Recovery = suite<Ctx>('e2e: deals survive a SIGKILL of either side', {} as Ctx);

Recovery.before(async (ctx) => {
  try {
    const aDir = await makeTempDir('drec-a');
    const a = await startNode(aDir, FLAGS, { timeoutMs: 40_000 });
    const bFlags = [...FLAGS, '--bootstrap', a.ready.listen[0]!];
    const bDir = await makeTempDir('drec-b');
    const b = await startNode(bDir, bFlags, { timeoutMs: 40_000 });
    ctx.A = { name: 'A', node: a, dir: aDir, flags: FLAGS, peerId: a.ready.peerId, api: await apiOf(a) };
    ctx.B = { name: 'B', node: b, dir: bDir, flags: bFlags, peerId: b.ready.peerId, api: await apiOf(b) };
    await Promise.all([seesDms(ctx.A, ctx.B), seesDms(ctx.B, ctx.A)]);
    ctx.jobs = await makeTempDir('drec-jobs');
    const wat = await fs.readFile(path.join(ROOT, 'test', 'fixtures', 'wasm', 'loop.wat'), 'utf8');
    await fs.writeFile(path.join(ctx.jobs, 'loop.wasm'), await compileWat(wat, 'loop.wat'));
  } catch (e) {
    // uvu reports nothing when a `before` hook throws: say why on stderr first
    process.stderr.write(`e2e deal-recovery: the network did not come up: ${(e as Error).stack ?? String(e)}\n`);
    throw e;
  }
});

Recovery.after(async (ctx) => {
  if (ctx.A) for (const id of live) await cli(['cancel', id, '--data-dir', ctx.A.dir], { timeoutMs: 5000 }).catch(() => undefined);
  // a runner still going would outlive the SIGKILL of its node below
  for (const m of [ctx.A, ctx.B]) if (m?.node.child.pid) runners.push(...(await runnerOf(m).catch(() => [])));
  await killAll();
  await killRunners();
  await removeTempDirs();
});

// ---- helpers ------------------------------------------------------------------------------------------------------

/** Until `m` lists `other` as a connected DMS peer. */
function seesDms(m: Member, other: Member, timeoutMs = 20_000): Promise<true> {
  return waitFor(`${m.name} to see ${other.name} as a DMS peer`, async () => {
    const peers = await m.api.get<PeerRow[]>('/v1/peers');
    return peers.some((p) => p.dms && p.peer === other.peerId) ? true : undefined;
  }, timeoutMs, 200);
}

/** SIGKILLs any runner noted in `runners` that still runs (the same process: its command line unchanged). */
async function killRunners(): Promise<void> {
  for (const r of runners.splice(0)) {
    if (!(await sameProcess(r))) continue;
    // the runner leads its own process group: end the group, else the process
    for (const target of [-r.pid, r.pid]) {
      try {
        process.kill(target, 'SIGKILL');
        break;
      } catch {
        // no such group, or it ended meanwhile
      }
    }
  }
}

async function sameProcess(r: { pid: number; cmdline: string }): Promise<boolean> {
  const now = await fs.readFile(`/proc/${r.pid}/cmdline`, 'utf8').catch(() => '');
  return now.replaceAll('\0', ' ').trim() === r.cmdline;
}

/** The processes of process group `pgid`, with their state letter (Z: a zombie, ended but not yet reaped). */
async function groupMembers(pgid: number): Promise<{ pid: number; state: string; cmdline: string }[]> {
  const out: { pid: number; state: string; cmdline: string }[] = [];
  for (const e of await fs.readdir('/proc')) {
    if (!/^\d+$/.test(e)) continue;
    try {
      const stat = await fs.readFile(`/proc/${e}/stat`, 'utf8');
      // "pid (comm) state ppid pgrp ...": comm may hold spaces and parentheses, so read after the last ")"
      const [state, , pgrp] = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (Number(pgrp) === pgid) out.push({ pid: Number(e), state: state!, cmdline: (await fs.readFile(`/proc/${e}/cmdline`, 'utf8')).replaceAll('\0', ' ').trim() });
    } catch {
      // it ended while we looked
    }
  }
  return out;
}

let files = 0;
async function jobFile(ctx: Ctx, job: Record<string, unknown>): Promise<string> {
  const file = path.join(ctx.jobs, `job-${++files}.json`);
  await fs.writeFile(file, JSON.stringify(job, null, 2));
  return file;
}

const loopJob = (peer: string, timeout: string) => ({
  name: 'loop',
  executor: 'wasm',
  wasm: { module: './loop.wasm' },
  resources: { cpu: 0.5, memory: '64MiB' },
  timeout,
  constraints: { peers: [peer] },
});

const deploy = (from: Member, file: string) => cliJson<JobRecord>(['deploy', file, '--data-dir', from.dir]);
const info = (m: Member) => cliJson<NodeInfo>(['info', '--data-dir', m.dir]);
const allocations = (m: Member) => cliJson<AllocationRow[]>(['allocations', '--data-dir', m.dir]);
const record = (from: Member, id: string) => from.api.get<JobRecord>(`/v1/jobs/${id}`);

const holdsNothing = (i: NodeInfo) => [i.capability.locked, i.capability.allocated].every((x) => x.cpu === 0 && x.memory === 0 && x.disk === 0);

/** A member's `info --json` once it holds no lock and no allocation (or after timeoutMs, as it is then). */
async function idleInfo(m: Member, timeoutMs = 10_000): Promise<NodeInfo> {
  return (await waitFor(`${m.name} to hold nothing`, async () => {
    const i = await info(m);
    return holdsNothing(i) ? i : undefined;
  }, timeoutMs, 200).catch(() => undefined)) ?? info(m);
}

/**
 * `now`'s resources are `before`'s: the same locks and allocations, so the same available cpu and memory. (Only
 * those two: monitoring caps available memory and disk by what the machine has free, and disk moves with what
 * other processes write; cpu and memory are what the jobs here ask for.)
 */
function assertSameResources(now: NodeInfo, before: NodeInfo, what: string): void {
  const c = (i: NodeInfo) => i.capability;
  assert.equal(c(now).registered, c(before).registered, `${what}: registered unchanged`);
  assert.equal(c(now).locked, c(before).locked, `${what}: locked as before`);
  assert.equal(c(now).allocated, c(before).allocated, `${what}: allocated as before`);
  const pick = (x: Cap) => ({ cpu: x.cpu, memory: x.memory });
  assert.equal(pick(c(now).available), pick(c(before).available), `${what}: available cpu and memory exactly as before`);
}

/** Polls the job on `from` until `pred` holds; rejects with the last record seen. */
const jobUntil = (from: Member, id: string, what: string, pred: (r: JobRecord) => boolean, timeoutMs?: number) => untilJob(from.api, id, what, pred, timeoutMs);

/** SIGKILLs the member's node and waits until it is gone. */
async function crash(m: Member): Promise<void> {
  const gone = await m.node.stop('SIGKILL');
  assert.is(gone.signal, 'SIGKILL', `${m.name} was killed`);
}

/**
 * Starts the member's node again on its data dir, with its flags by default. Every listen port is 0, so a
 * restarted node has a new address and no peer can dial it by the old one: it must `--bootstrap` to the other.
 */
async function startAgain(m: Member, flags: readonly string[] = m.flags): Promise<void> {
  m.node = await startNode(m.dir, flags, { timeoutMs: 30_000 });
  m.api = await apiOf(m.node);
}

/** The wasm-runner child of a member's node (one job runs at a time here). */
async function runnerOf(m: Member): Promise<{ pid: number; cmdline: string }[]> {
  return (await childProcesses(m.node.child.pid!)).filter((c) => /wasm-(pool-)?runner/.test(c.cmdline));
}

// ---- 1. the provider restarts under a running job ---------------------------------------------------------------

Recovery('a provider SIGKILLed mid-run and started again: its allocation ends failed ("restarted"), its resources and the runner are back, A does not hang', async (ctx) => {
  const { A, B } = ctx;
  const before = await info(B);
  assert.ok(holdsNothing(before), `B holds nothing before the job: ${JSON.stringify(before.capability)}`);
  const id = (await deploy(A, await jobFile(ctx, loopJob(B.peerId, '30s')))).id;
  live.push(id);
  const running = await jobUntil(A, id, 'the loop job to run on B', (r) => r.state === 'running', 15_000);
  assert.is(running.provider, B.peerId);
  const allocationId = running.allocationId!;
  const during = await info(B);
  assert.is(during.capability.allocated.cpu, 0.5, 'B has the job\'s cpu allocated');

  // the job's runner: a child of B in its own process group, which outlives a SIGKILL of B
  // the job's runner (its requester's warm runner, and the pool's spare beside it)
  const seen = await waitFor('the wasm-runner on B', async () => {
    const r = await runnerOf(B);
    return r.length >= 1 ? r : undefined;
  }, 5000);
  runners.push(...seen);
  const runner = seen[0]!;
  for (const r of seen) {
    const group = await groupMembers(r.pid);
    assert.ok(group.some((p) => p.pid === r.pid), `the runner leads its own process group: ${JSON.stringify(group)}`);
  }

  const t0 = Date.now();
  await crash(B);
  // the kernel ends the runner with its node (setpriv --pdeathsig), though it is in a process group of its own
  for (const r of seen) await waitFor('the runner to die with its node', async () => ((await sameProcess(r)) ? undefined : true), 3000, 50);
  // the same flags: B bootstraps to A, which has not moved
  await startAgain(B);
  const recovered = (B.node.ready as unknown as { recovered: { recovered: boolean } | null }).recovered;
  assert.ok(recovered?.recovered, `B says it recovered from its log: ${JSON.stringify(B.node.ready)}`);

  // B: the allocation ended failed, saying the provider restarted
  const row = await waitFor('B\'s allocation to end', async () => {
    const r = (await allocations(B)).find((a) => a.id === allocationId);
    return r && r.endedAt !== null && r.state !== undefined ? r : undefined;
  }, 10_000, 200);
  assert.is(row.state, 'failed', `the allocation failed: ${JSON.stringify(row)}`);
  assert.match(row.message ?? '', /provider restarted/);
  assert.ok(row.runEndedAt !== null, 'the job\'s run has ended');
  // B: the resources come back exactly, and its identity and registered offer are unchanged
  const now = await idleInfo(B);
  assertSameResources(now, before, 'B after the restart');
  assert.equal(now.identity, before.identity, 'B keeps its identity');
  // B: the old runner's process group is gone (ended by the restarted node, not by us)
  const gone = await waitFor('the old runner to be gone', async () => ((await sameProcess(runner)) ? undefined : true), 5000).catch(() => false);
  assert.ok(gone, `the runner ${runner.pid} (${runner.cmdline}) of the killed node was ended on restart`);
  const left = await waitFor('the runner\'s process group to be empty', async () => {
    const g = await groupMembers(runner.pid);
    return g.some((p) => p.state !== 'Z') ? undefined : g;
  }, 5000).catch(async () => groupMembers(runner.pid));
  assert.equal(left.filter((p) => p.state !== 'Z'), [], `no live process is left in the runner's group ${runner.pid}: ${JSON.stringify(left)}`);

  // A: the job does not hang; B's "failed" status reaches it, so it fails, naming the restart
  const end = await jobUntil(A, id, 'the job on A to end', (r) => TERMINAL.includes(r.state), 15_000);
  const took = Date.now() - t0;
  assert.is(end.state, 'failed', `the job failed: ${JSON.stringify(end)}`);
  assert.is(end.provider, B.peerId);
  assert.equal(end.allocations, [allocationId], 'it was placed once');
  assert.match(end.message, new RegExp(`^failed on ${B.peerId}: `));
  assert.match(end.message, /provider restarted/);
  assert.ok(took < 15_000, `A knew within ~15 s of the kill (${took} ms)`);
  live.splice(live.indexOf(id), 1);
});

// ---- 2. the requester restarts while its job runs ----------------------------------------------------------------

Recovery('a requester SIGKILLed mid-run and started again: it still lists the job, which ends failed at its 6 s timeout; replay agrees', async (ctx) => {
  const { A, B } = ctx;
  await seesDms(A, B);
  const before = await info(B);
  const id = (await deploy(A, await jobFile(ctx, loopJob(B.peerId, '6s')))).id;
  live.push(id);
  const running = await jobUntil(A, id, 'the loop job to run on B', (r) => r.state === 'running', 15_000);
  assert.is(running.provider, B.peerId);
  runners.push(...(await runnerOf(B)));

  await crash(A);
  // A's port changes and no node keeps a peer's address across restarts: A bootstraps to B to meet it again
  await startAgain(A, [...A.flags, '--bootstrap', B.node.ready.listen[0]!]);
  const listed = await cliJson<JobRecord[]>(['jobs', '--data-dir', A.dir]);
  assert.ok(listed.some((j) => j.id === id), `the restarted A lists the job: ${JSON.stringify(listed.map((j) => [j.id, j.state]))}`);

  let last: JobRecord | undefined;
  const end = await waitFor('status on A to reach a terminal state', async () => {
    last = await cliJson<JobRecord>(['status', id, '--data-dir', A.dir]);
    return TERMINAL.includes(last.state) ? last : undefined;
  }, 20_000, 300).catch((e: Error) => {
    throw new Error(`${e.message}\nlast record: ${JSON.stringify(last, null, 2)}`);
  });
  live.splice(live.indexOf(id), 1);
  assert.is(end.state, 'failed', `the job failed: ${JSON.stringify(end)}`);
  assert.is(end.provider, B.peerId);
  assert.equal(end.allocations, [running.allocationId], `it ran once, on the allocation it had before the restart: ${JSON.stringify(end.history.map((h) => h.message))}`);
  assert.match(end.message, new RegExp(`^failed on ${B.peerId}: `));
  assert.match(end.message, /time limit of 6(\.0)? s/, `the message names the time limit: ${end.message}`);
  assert.match(end.message, /timeout/);
  assert.ok(end.endedAt! - running.startedAt! >= 5500, `it ran its 6 s, not cut short by the restart (ran ${end.endedAt! - running.startedAt!} ms)`);

  const r = await cli(['replay', '--data-dir', A.dir, '--actor', `job/${id}`, '--summary', '--json'], { timeoutMs: 20_000 });
  assert.is(r.code, 0, `replay of the job on A: ${r.stderr}`);
  const final = jsonLines<{ event: string; state: unknown; context: JobRecord; failed: unknown }>(r.stdout).at(-1)!;
  assert.is(final.event, 'final');
  assert.is(final.failed, null);
  assert.equal(final.state, { ended: 'failed' });
  assert.is(final.context.state, 'failed');
  assert.is(final.context.message, end.message);
  assert.is(final.context.allocationId, end.allocationId);

  // B let go of the job
  const row = (await allocations(B)).find((a) => a.id === running.allocationId);
  assert.is(row?.state, 'failed');
  assertSameResources(await idleInfo(B), before, 'B after the job');
});

// ---- 3. the requester is down when its job ends ------------------------------------------------------------------

Recovery('a job that ends while its requester is down is not run again: the restarted requester learns the end, B ran it once', async (ctx) => {
  const { A, B } = ctx;
  await seesDms(A, B);
  const before = await info(B);
  const id = (await deploy(A, await jobFile(ctx, loopJob(B.peerId, '3s')))).id;
  live.push(id);
  const running = await jobUntil(A, id, 'the loop job to run on B', (r) => r.state === 'running', 15_000);
  const first = running.allocationId!;
  runners.push(...(await runnerOf(B)));
  await crash(A);
  // the job reaches its 3 s time limit on B while A is down: B's final status has nobody to go to
  const ended = await waitFor('B\'s allocation to end while A is down', async () => {
    const r = (await B.api.get<AllocationRow[]>('/v1/allocations')).find((a) => a.id === first);
    return r && r.endedAt !== null && r.state !== undefined ? r : undefined;
  }, 10_000, 200);
  assert.is(ended.state, 'failed');
  await startAgain(A, [...A.flags, '--bootstrap', B.node.ready.listen[0]!]);

  // until A knows the end, or has placed the job again (then it is cancelled, so the test ends soon and cleanly)
  let last: JobRecord | undefined;
  const seen = await waitFor('the restarted A to settle the job', async () => {
    last = await record(A, id);
    return TERMINAL.includes(last.state) || last.allocations.length > 1 ? last : undefined;
  }, 15_000, 200).catch((e: Error) => {
    throw new Error(`${e.message}\nlast record: ${JSON.stringify(last, null, 2)}`);
  });
  if (!TERMINAL.includes(seen.state)) {
    await cli(['cancel', id, '--data-dir', A.dir]);
    await jobUntil(A, id, 'the job placed again to be cancelled', (r) => TERMINAL.includes(r.state), 10_000).catch(() => undefined);
  }
  live.splice(live.indexOf(id), 1);
  const history = JSON.stringify(seen.history.map((h) => h.message));
  const runs = (await allocations(B)).filter((a) => a.id.startsWith(`${id}.`)).map((a) => [a.id, a.state]);
  assert.equal(seen.allocations, [first], `placed once, not again after the restart: ${history}`);
  assert.equal(runs, [[first, 'failed']], 'B ran the job once');
  assert.is(seen.state, 'failed', `the job failed: ${history}`);
  assert.match(seen.message, new RegExp(`^failed on ${B.peerId}: `));
  assert.match(seen.message, /time limit of 3(\.0)? s/);
  assertSameResources(await idleInfo(B), before, 'B after the job');
});

// ---- 4. a clean stop and start of an idle provider --------------------------------------------------------------

Recovery('a provider stopped cleanly with no jobs and started again keeps its identity and registered offer, and rejoins', async (ctx) => {
  const { A, B } = ctx;
  const before = await info(B);
  assert.ok(holdsNothing(before), `B is idle: ${JSON.stringify(before.capability)}`);
  const stopped = await B.node.stop('SIGTERM');
  assert.is(stopped.code, 0, `B exited 0 on SIGTERM: ${B.node.stderr()}`);
  // the same flags, and a bootstrap to where A listens now (A's port changed when the tests above restarted it)
  await startAgain(B, [...FLAGS, '--bootstrap', A.node.ready.listen[0]!]);
  assert.is(B.node.ready.peerId, B.peerId);
  assert.is(B.node.ready.benchmarked, false, 'the stored benchmark is reused');
  const after = await info(B);
  assert.equal(after.identity, before.identity);
  assertSameResources(after, before, 'B after a clean restart');
  assert.is(after.state, 'registered');
  await seesDms(A, B);
});

Recovery.run();
