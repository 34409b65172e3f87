// A part as its provider runs it, with real processes: the allocation machine, carried out by the runtime's own
// Executions (the ProcessExecutor, real HTTP health checks through probeHealth) and DealTimers on the real clock.
// The part serves HTTP on $DMS_PORT_HTTP; its health check reaches it there.
import { promises as fs } from 'node:fs';
import { connect } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { type Actor, createActor } from 'xstate';
import { type AllocationMachine, allocationMachine } from '../../../machines/allocation.machine.ts';
import type { AllocationInput, AllocationIntent } from '../../../machines/allocation.messages.ts';
import type { AllocationStatusMsg } from '../../../machines/deal.wire.ts';
import type { JobSpec, PartRole } from '../../../machines/job.ts';
import type { Execution, ExecutionResult, ExecutionSpec, Executor } from '../../../actors/executor.ts';
import { ManualClock, realClock } from '../../../runtime/clock.ts';
import { DealTimers } from '../../../runtime/deals/deal-timers.ts';
import { type ExecutionEvent, Executions } from '../../../runtime/deals/executions.ts';
import { ModuleStore } from '../../../runtime/deals/module-store.ts';
import { OutputLog } from '../../../runtime/deals/output-log.ts';
import { ProcessExecutor } from '../../../runtime/executors/process-executor.ts';
import { closedPort } from '../../fixtures/ports.ts';
import { waitFor } from '../../fixtures/waiting.ts';

const ID = 'ens-1-web.1@12D3KooWRequesterRequesterRequesterRequester1';
type Status = Omit<AllocationStatusMsg, 'type'>;

/**
 * A service that answers 200 on /health at $DMS_PORT_HTTP. With $FLAKY_MARK set it exits 1 shortly after its
 * first start (leaving the mark), and serves normally once the mark is there.
 */
const SERVICE = `
const fs = require('node:fs');
const mark = process.env.FLAKY_MARK;
const first = mark && !fs.existsSync(mark);
if (first) fs.writeFileSync(mark, String(process.pid));
require('node:http').createServer((q, s) => { s.statusCode = q.url === '/health' ? 200 : 404; s.end('ok ' + process.pid); })
  .listen(Number(process.env.DMS_PORT_HTTP), '127.0.0.1', () => console.log('listening on', process.env.DMS_PORT_HTTP));
if (first) setTimeout(() => process.exit(1), 300);
`;

interface Ctx {
  dir: string;
  actor: Actor<AllocationMachine>;
  executions: Executions;
  timers: DealTimers;
  statuses: Status[];
  pids: number[];
}

/** Starts the part with the runtime's own effects for its intents. */
async function runPart(ctx: Ctx, env: Record<string, string>, part: Partial<PartRole> = {}): Promise<number> {
  const port = await closedPort();
  const role: PartRole = {
    ensemble: 'ens-1', name: 'web', type: 'service', ports: ['http'], restart: 'on-failure', dependsOn: [],
    maxRestarts: { count: 3, withinMs: 60_000 }, healthcheck: { http: { port: 'http', path: '/health' }, intervalMs: 150, retries: 3 }, ...part,
  };
  const job: JobSpec = {
    executor: 'process', name: 'web', resources: { cpu: 1, memory: 1 << 30, disk: 0, gpus: 0 }, timeoutMs: 60_000,
    constraints: { peers: [], excludePeers: [] }, process: { command: process.execPath, args: ['-e', SERVICE], env }, part: role,
  };
  const input: AllocationInput = { allocationId: ID, dealId: 'ens-1-web', nonce: 1, requester: '12D3KooWRequesterRequesterRequesterRequester1', job, ports: { http: port } };
  const output = new OutputLog(ctx.dir, (_id, e) => assert.unreachable(e.message), { clock: realClock });
  await output.create(ID);
  ctx.executions = new Executions({ executor: async (k) => (k === 'process' ? new ProcessExecutor({ cgroups: false, user: null }) : undefined), output, modules: new ModuleStore(ctx.dir), clock: realClock });
  ctx.actor = createActor(allocationMachine, { input });
  ctx.timers = new DealTimers(realClock, (_id, key) => ctx.actor.send({ type: 'timer.fired', key, now: Date.now() }));
  const deliver = (e: Parameters<typeof ctx.actor.send>[0]) => {
    if (e.type === 'execution.started') ctx.pids.push(e.pid);
    ctx.actor.send(e);
  };
  ctx.actor.on('*', (i: AllocationIntent) => {
    switch (i.type) {
      case 'execution.start':
        return void ctx.executions.run(i.allocationId, i.job, deliver, i.env);
      case 'execution.cancel':
        return ctx.executions.cancel(i.allocationId);
      case 'health.check':
        return void ctx.executions.check(i.target, i.timeoutMs, i.env, deliver);
      case 'timer.schedule':
        return ctx.timers.schedule(ID, i.key, i.at);
      case 'timer.cancel':
        return ctx.timers.cancel(ID, i.key);
      case 'status.push':
        return void ctx.statuses.push(i.status);
      default:
        return;
    }
  });
  ctx.actor.start();
  ctx.actor.send({ type: 'allocation.start', now: Date.now() });
  return port;
}

const alive = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};
/** Whether something accepts connections on 127.0.0.1:port. */
const listening = (port: number): Promise<boolean> =>
  new Promise((resolve) => {
    const s = connect({ host: '127.0.0.1', port });
    s.once('connect', () => (s.destroy(), resolve(true)));
    s.once('error', () => resolve(false));
  });

const test = suite<Ctx>('a part with real processes: DMS_PORT_HTTP, health checks, restarts', {} as Ctx);
test.before.each(async (ctx) => {
  ctx.dir = await fs.mkdtemp(path.join(os.tmpdir(), 'dms-part-'));
  ctx.statuses = [];
  ctx.pids = [];
});
test.after.each(async (ctx) => {
  ctx.executions?.cancelAll();
  ctx.timers?.close();
  ctx.actor?.stop();
  await fs.rm(ctx.dir, { recursive: true, force: true });
});

test('a service serving HTTP on $DMS_PORT_HTTP is checked healthy; a cancel stops it, terminated, port closed', async (ctx) => {
  const port = await runPart(ctx, {});
  await waitFor('a healthy status', () => ctx.statuses.some((s) => s.healthy === true), 10_000);
  const healthy = ctx.statuses.find((s) => s.healthy === true)!;
  assert.equal([healthy.state, healthy.restarts], ['running', 0]);
  assert.ok(await listening(port), 'the service does not listen on its DMS_PORT_HTTP');
  ctx.actor.send({ type: 'allocation.cancel', now: Date.now() });
  await waitFor('the end', () => ctx.actor.getSnapshot().status === 'done', 10_000);
  assert.is(ctx.actor.getSnapshot().value, 'terminated');
  assert.is(ctx.pids.length, 1);
  await waitFor('the process to be gone', () => !alive(ctx.pids[0]!), 5_000);
  assert.not.ok(await listening(port));
});

test('a service that exits 1 is started again (on-failure), the first one gone, and is then healthy with restarts 1', async (ctx) => {
  const mark = path.join(ctx.dir, 'started-once');
  await runPart(ctx, { FLAKY_MARK: mark });
  await waitFor('a healthy status after a restart', () => ctx.statuses.some((s) => s.healthy === true && s.restarts === 1), 15_000);
  assert.equal(ctx.statuses.filter((s) => s.state === 'failed'), []);
  assert.is(ctx.pids.length, 2);
  assert.is(Number(await fs.readFile(mark, 'utf8')), ctx.pids[0]);
  assert.not.ok(alive(ctx.pids[0]!), 'the first execution is still running');
  assert.ok(alive(ctx.pids[1]!));
  const restarting = ctx.statuses.find((s) => s.state === 'starting' && s.restarts === 1);
  assert.match(restarting?.message ?? '', 'restarting the job (restart 1) after: ');
});

test.run();

// ---------------------------------------------------------------------------------------------------------------

/** An executor whose jobs run until cancelled (or ended by the test), recording what it was asked to start. */
function holdingExecutor() {
  const specs: ExecutionSpec[] = [];
  const jobs: { pid: number; cancelled: number; end(r: Partial<ExecutionResult>): void }[] = [];
  const executor: Executor = {
    kind: 'process',
    async start(spec) {
      specs.push(spec);
      let end!: (r: ExecutionResult) => void;
      const done = new Promise<ExecutionResult>((resolve) => (end = resolve));
      const base: ExecutionResult = { exitCode: null, reason: 'cancelled', message: 'cancelled', signal: 'SIGKILL', durationMs: 1, outputBytes: 0, outputTruncated: false };
      const job = { pid: 9000 + jobs.length, cancelled: 0, end: (r: Partial<ExecutionResult>) => end({ ...base, ...r }) };
      jobs.push(job);
      const execution: Execution = {
        pid: job.pid,
        output: (async function* () {})(),
        wait: () => done,
        cancel: () => {
          job.cancelled += 1;
          job.end({});
        },
      };
      return execution;
    },
  };
  return { executor, specs, jobs };
}

const one = suite('executions: one execution per allocation, env merged over the job\'s');

one('a second start of the same allocation stops the first, waits for its end, drops its reports, then starts', async () => {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'dms-exec-'));
  try {
    const { executor, specs, jobs } = holdingExecutor();
    const output = new OutputLog(dir, () => {}, { clock: new ManualClock(0) });
    await output.create(ID);
    const executions = new Executions({ executor: async () => executor, output, modules: new ModuleStore(dir), clock: new ManualClock(0) });
    const job: JobSpec = {
      executor: 'process', name: 'svc', resources: { cpu: 1, memory: 1 << 20, disk: 0, gpus: 0 }, timeoutMs: 60_000,
      constraints: { peers: [], excludePeers: [] }, process: { command: 'svc', args: [], env: { A: '1', DMS_PORT_HTTP: 'from-job' } },
    };
    const first: ExecutionEvent[] = [];
    const second: ExecutionEvent[] = [];
    const r1 = executions.run(ID, job, (e) => first.push(e), { DMS_PORT_HTTP: '41000' });
    await waitFor('the first to start', () => first.length === 1);
    const r2 = executions.run(ID, job, (e) => second.push(e), { DMS_PORT_HTTP: '41001', DMS_ADDR_KV_HTTP: '127.0.0.1:5000' });
    await waitFor('the second to start', () => second.length === 1);
    assert.is(jobs[0]!.cancelled, 1);
    assert.equal(first.map((e) => e.type), ['execution.started'], 'the superseded execution reported its end');
    assert.equal(second.map((e) => e.type === 'execution.started' && e.pid), [9001]);
    assert.equal(specs.map((s) => s.executor === 'process' && s.process.env), [
      { A: '1', DMS_PORT_HTTP: '41000' },
      { A: '1', DMS_PORT_HTTP: '41001', DMS_ADDR_KV_HTTP: '127.0.0.1:5000' },
    ]);
    executions.cancel(ID);
    await Promise.all([r1, r2]);
    assert.equal(second.map((e) => e.type), ['execution.started', 'execution.ended']);
    assert.is(jobs[1]!.cancelled, 1);
  } finally {
    await fs.rm(dir, { recursive: true, force: true });
  }
});

one('a health check whose probe throws is a failed check, reported with why', async () => {
  const executions = new Executions({
    executor: async () => undefined, output: {} as OutputLog, modules: {} as ModuleStore, clock: new ManualClock(5_000),
    probe: async () => {
      throw new Error('no such port');
    },
  });
  const got: unknown[] = [];
  await executions.check({ type: 'http', port: 1, path: '/' }, 100, undefined, (e) => got.push(e));
  assert.equal(got, [{ type: 'health.result', ok: false, output: 'the health check could not run: no such port', ms: 0, now: 5_000 }]);
});

one('a command check on a node that runs no process jobs fails without running anything', async () => {
  let probed = 0;
  const executions = new Executions({
    executor: async () => undefined, output: {} as OutputLog, modules: {} as ModuleStore, clock: new ManualClock(5_000),
    probe: async () => ((probed += 1), { ok: true, output: 'exit 0', ms: 1 }),
  });
  const got: { ok: boolean; output: string }[] = [];
  await executions.check({ type: 'command', command: ['sh', '-c', 'true'] }, 100, undefined, (e) => got.push(e));
  await executions.check({ type: 'http', port: 1, path: '/' }, 100, undefined, (e) => got.push(e));
  assert.is(probed, 1);
  assert.equal(got.map((r) => r.ok), [false, true]);
  assert.match(got[0]!.output, 'this node does not run process jobs');
});

one.run();
