// A cgroup per job (runtime/executors/cgroup.ts) with real processes: CPU share, process count, memory, and a kill
// that leaves nothing behind, setsid grandchildren included. Needs writable cgroup v1 (root on these machines);
// elsewhere every test says it was skipped and why.
import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { CGROUP_ROOT, type CgroupLimits, type JobCgroup, createJobCgroup, probeCgroups, sweepStaleGroups } from '../../../runtime/executors/cgroup.ts';
import { within } from '../../fixtures/waiting.ts';

let support: Awaited<ReturnType<typeof probeCgroups>> | undefined;
const MiB = 1024 * 1024;

function cgroupTest(name: string, fn: () => Promise<void>): void {
  test(name, async () => {
    support ??= await probeCgroups();
    if (!support.ok) {
      console.log(`  skipped: ${name}: ${support.why}`);
      return;
    }
    await fn();
  });
}

async function run(cg: JobCgroup, command: string, args: string[], ms = 10_000): Promise<{ code: number | null; signal: NodeJS.Signals | null; stdout: string }> {
  const w = cg.wrap(command, args);
  const child = spawn(w.command, w.args, { stdio: ['ignore', 'pipe', 'inherit'] });
  let stdout = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  return within(`${command} to end`, new Promise((resolve) => child.on('exit', (code, signal) => resolve({ code, signal, stdout }))), ms);
}

/** Runs and is not a zombie (a killed orphan stays a zombie until init reaps it). */
function running(pid: number): boolean {
  try {
    return !/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return false;
  }
}

const limits = (l: Partial<CgroupLimits>): CgroupLimits => ({ cpu: 1, memoryBytes: 512 * MiB, pids: 64, ...l });
const id = (what: string) => `test-${what}-${process.pid}`;

cgroupTest('a 0.1-cpu job that spins for 1 s of wall time gets about 0.1 s of CPU, not 1 s', async () => {
  const cg = await createJobCgroup(CGROUP_ROOT, id('cpu'), limits({ cpu: 0.1 }));
  try {
    const r = await run(cg, process.execPath, ['-e', 'const end = Date.now() + 1000; while (Date.now() < end);']);
    assert.is(r.code, 0);
    const used = await cg.cpuMs();
    assert.ok(used > 20 && used < 300, `used ${Math.round(used)} ms of CPU`);
  } finally {
    await cg.remove();
  }
});

cgroupTest('pids.max bounds a fork bomb: at most the limit run at once, and kill() leaves none', async () => {
  const cg = await createJobCgroup(CGROUP_ROOT, id('pids'), limits({ pids: 20 }));
  try {
    // 200 background sleeps: forks past the limit fail (the shell may give up there); the sleeps that started run on
    await run(cg, '/bin/sh', ['-c', 'for i in $(seq 200); do sleep 30 2>/dev/null & done 2>/dev/null; exit 0']);
    const current = Number(readFileSync(`/sys/fs/cgroup/pids/dms/${cg.name}/pids.current`, 'utf8'));
    assert.ok(current > 1 && current <= 20, `pids.current ${current}`);
    await cg.kill();
    const left = readFileSync(`/sys/fs/cgroup/pids/dms/${cg.name}/cgroup.procs`, 'utf8').trim();
    assert.is(left, '', 'processes outlived the kill');
  } finally {
    await cg.remove();
  }
});

cgroupTest('kill() reaches a grandchild that called setsid (a process-group kill does not)', async () => {
  const cg = await createJobCgroup(CGROUP_ROOT, id('setsid'), limits({}));
  try {
    const r = await run(cg, '/bin/sh', ['-c', 'setsid sleep 60 > /dev/null 2>&1 < /dev/null & echo $!']);
    const escaped = Number(r.stdout.trim());
    assert.ok(escaped > 0);
    process.kill(escaped, 0); // it runs, in another session
    await cg.kill();
    assert.is(running(escaped), false, 'the setsid grandchild survived');
  } finally {
    await cg.remove();
  }
});

cgroupTest('memory counts all the job\'s processes: one that allocates past the limit is killed by the kernel', async () => {
  const cg = await createJobCgroup(CGROUP_ROOT, id('mem'), limits({ memoryBytes: 64 * MiB }));
  try {
    const r = await run(cg, process.execPath, ['-e', 'const a = []; for (let i = 0; i < 40; i++) { a.push(Buffer.alloc(8 << 20, 1)); } console.log("survived")']);
    assert.is(r.signal, 'SIGKILL', `ended ${r.code} ${r.signal}: ${r.stdout}`);
    assert.not.match(r.stdout, /survived/);
    assert.is(await cg.oomKills(), 1, 'the kill was not counted as the memory limit\'s');
  } finally {
    await cg.remove();
  }
});

cgroupTest('the job cgroups of a node that died are swept by the next, with what still ran in them', async () => {
  const dead = spawn(process.execPath, ['-e', '0']);
  await new Promise((r) => dead.on('exit', r));
  const cg = await createJobCgroup(CGROUP_ROOT, id('stale'), limits({}), String(dead.pid));
  const w = cg.wrap('/bin/sh', ['-c', 'setsid sleep 60 > /dev/null 2>&1 < /dev/null & echo $!']);
  const child = spawn(w.command, w.args, { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  await new Promise((r) => child.on('exit', r));
  const orphan = Number(out.trim());
  assert.ok(running(orphan), 'the orphan did not start');
  const mine = await createJobCgroup(CGROUP_ROOT, id('live'), limits({})); // this process's: never swept
  try {
    assert.ok((await sweepStaleGroups()) >= 1);
    assert.is(running(orphan), false, 'the orphan of the dead node survived the sweep');
    assert.not.ok(existsSync(`/sys/fs/cgroup/pids/dms/${dead.pid}`), 'the dead node\'s group is still there');
    assert.ok(existsSync(`/sys/fs/cgroup/pids/dms/${mine.name}`), 'a live node\'s job cgroup was swept');
  } finally {
    await mine.remove();
  }
});

test.run();
