// The executors: the Executor contract against WasiExecutor and ProcessExecutor, then what only one of them does.
// Needs the compiled runner (npx tsc -p tsconfig.json), as the node does.
import { execFileSync } from 'node:child_process';
import { chmodSync, mkdtempSync, readdirSync, writeFileSync } from 'node:fs';
import { readFile, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import type { ExecutionLimits, ProcessExecutionSpec, WasmExecutionSpec } from '../../../actors/executor.ts';
import { compileWat, exampleModule } from '../../../runtime/executors/examples/examples.ts';
import { isolationReport } from '../../../runtime/executors/isolation.ts';
import { ProcessExecutor } from '../../../runtime/executors/process-executor.ts';
import { WasiExecutor } from '../../../runtime/executors/wasm-executor.ts';
import { sha256Hex } from '../../../runtime/executors/wasm-module.ts';
import { CHATTY_BYTES, executorContract, KILL_GRACE_MS, rejectsWith, runJob } from './executor.contract.ts';

const MiB = 2 ** 20;
const LIMITS: ExecutionLimits = { memoryBytes: 64 * MiB, timeoutMs: 20_000, cpu: 1 };
const LOG_LIMIT = 1 * MiB;
const fixtures = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'fixtures', 'wasm');

const compiled = new Map<string, Promise<Uint8Array>>();
/** A module from test/fixtures/wasm, compiled once. */
function fixture(name: string): Promise<Uint8Array> {
  let bytes = compiled.get(name);
  if (!bytes) compiled.set(name, (bytes = readFile(path.join(fixtures, `${name}.wat`), 'utf8').then((src) => compileWat(src, `${name}.wat`))));
  return bytes;
}
let helloModule: Promise<Uint8Array> | undefined;
/** The demo's example module (runtime/executors/examples/hello.wat). */
const helloWasm = () => (helloModule ??= exampleModule('hello'));

function wasmJob(bytes: Uint8Array, args: readonly string[] = [], env: Record<string, string> = {}, limits: Partial<ExecutionLimits> = {}): WasmExecutionSpec {
  return { executor: 'wasm', name: 'test.wasm', wasm: { module: { bytes }, sha256: sha256Hex(bytes), args, env }, limits: { ...LIMITS, ...limits }, logLimitBytes: LOG_LIMIT };
}

function processJob(command: string, args: readonly string[], env: Record<string, string> = {}, extra: { cwd?: string; limits?: Partial<ExecutionLimits> } = {}): ProcessExecutionSpec {
  return {
    executor: 'process',
    process: { command, args, env, ...(extra.cwd ? { cwd: extra.cwd } : {}) },
    limits: { ...LIMITS, ...extra.limits },
    logLimitBytes: LOG_LIMIT,
  };
}

const HELLO_SH = `echo "hello from process"
for a in "$@"; do echo "arg: $a"; done
env | grep -v -E '^(PATH|PWD|OLDPWD|SHLVL|_)=' | sed 's/^/env: /'
echo "hello on stderr" >&2
exit "$EXIT_CODE"`;

executorContract('WasiExecutor', async () => {
  const [hello, loop, chatty] = await Promise.all([helloWasm(), fixture('loop'), fixture('chatty')]);
  return {
    executor: new WasiExecutor(),
    jobs: {
      hello: (args, env, code) => wasmJob(hello, code ? [...args, `exit=${code}`] : args, env),
      forever: () => wasmJob(loop),
      chatty: () => wasmJob(chatty),
    },
  };
});

executorContract('ProcessExecutor', async () => ({
  executor: new ProcessExecutor(),
  jobs: {
    hello: (args, env, code) => processJob('sh', ['-c', `EXIT_CODE=${code}\n${HELLO_SH}`, 'hello', ...args], env),
    forever: () => processJob('sh', ['-c', 'echo looping; exec sleep 1000']),
    chatty: () => processJob('head', ['-c', String(CHATTY_BYTES), '/dev/zero']),
  },
}));

// ---- WASM only ----

const wasm = new WasiExecutor();

/** Starts a job and returns once it printed something, i.e. once its own program (not a wrapper) runs. */
async function running(executor: WasiExecutor, spec: WasmExecutionSpec) {
  const execution = await executor.start(spec);
  await execution.output[Symbol.asyncIterator]().next();
  return execution;
}

const checks = suite('WasiExecutor: the module is checked before it runs');
checks('a sha256 that does not match -> ModuleHashMismatchError naming both hashes', async () => {
  const [hello, loop] = [await helloWasm(), await fixture('loop')];
  const spec = wasmJob(hello);
  const wrong = { ...spec, wasm: { ...spec.wasm, sha256: sha256Hex(new Uint8Array([1])) } };
  await rejectsWith(wasm.start(wrong), 'ModuleHashMismatchError', new RegExp(`${sha256Hex(hello)}.*not the ${wrong.wasm.sha256}`));
});
checks('a sha256 that is not hex -> InvalidJobError', async () => {
  const [hello, loop] = [await helloWasm(), await fixture('loop')];
  const spec = wasmJob(hello);
  await rejectsWith(wasm.start({ ...spec, wasm: { ...spec.wasm, sha256: 'abc' } }), 'InvalidJobError', /wasm\.sha256/);
});
checks('garbage bytes (right hash) -> NotWasmError', async () => {
  const [hello, loop] = [await helloWasm(), await fixture('loop')];
  const garbage = new TextEncoder().encode('#!/bin/sh\necho this is not wasm\n');
  await rejectsWith(wasm.start(wasmJob(garbage)), 'NotWasmError', /not WebAssembly: it starts with 2321/);
  await rejectsWith(wasm.start(wasmJob(new Uint8Array())), 'NotWasmError', /starts with nothing/);
});
checks('a module over the size limit -> ModuleTooLargeError', async () => {
  const [hello, loop] = [await helloWasm(), await fixture('loop')];
  const small = new WasiExecutor({ maxModuleBytes: 100 });
  await rejectsWith(small.start(wasmJob(hello)), 'ModuleTooLargeError', /over this executor's limit/);
});
checks('a module given by path runs; a missing path -> ModuleNotFoundError', async () => {
  const [hello, loop] = [await helloWasm(), await fixture('loop')];
  const dir = await mkdtemp(path.join(os.tmpdir(), 'dms-wasm-'));
  try {
    const file = path.join(dir, 'hello.wasm');
    await writeFile(file, hello);
    const spec = wasmJob(hello, ['by-path']);
    const run = await runJob(wasm, { ...spec, wasm: { ...spec.wasm, module: { path: file } } });
    assert.match(run.stdout, /arg: by-path/);
    await rejectsWith(wasm.start({ ...spec, wasm: { ...spec.wasm, module: { path: path.join(dir, 'nope.wasm') } } }), 'ModuleNotFoundError', /nope\.wasm/);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
checks('valid WASM that is not a WASI command fails with a reason that says so', async () => {
  const [hello, loop] = [await helloWasm(), await fixture('loop')];
  const library = await compileWat('(module (memory (export "memory") 1) (func (export "add") (param i32 i32) (result i32) local.get 0 local.get 1 i32.add))');
  const run = await runJob(wasm, wasmJob(library));
  assert.is(run.result.reason, 'failed');
  assert.match(run.result.message, /does not export _start: it is not a WASI command/);
  const foreign = await compileWat('(module (import "env" "launch_missiles" (func)) (memory (export "memory") 1) (func (export "_start")))');
  const linked = await runJob(wasm, wasmJob(foreign));
  assert.is(linked.result.reason, 'failed');
  assert.match(linked.result.message, /imports env\.launch_missiles; only wasi_snapshot_preview1/);
});
checks('a missing runner script -> ExecutorStartError that says to build', async () => {
  const unbuilt = new WasiExecutor({ runnerPath: path.join(os.tmpdir(), 'no-such-runner.js') });
  await rejectsWith(unbuilt.start(wasmJob(await helloWasm())), 'ExecutorStartError', /npm run build/);
});
checks.run();

const sandbox = suite('WasiExecutor: the module gets only what the job gives');
sandbox('no file system: path_open fails on every fd, /etc/passwd is never read', async () => {
  const [hello, loop] = [await helloWasm(), await fixture('loop')];
  const run = await runJob(wasm, wasmJob(await fixture('fs-escape')));
  assert.is(run.result.reason, 'failed');
  assert.is(run.result.exitCode, 1);
  assert.is(run.stdout, '');
  assert.is(run.stderr, 'path_open failed on every fd\n');
});
sandbox('env is only the job\'s (nothing of the node\'s leaks in); non-ASCII args arrive intact', async () => {
  const [hello, loop] = [await helloWasm(), await fixture('loop')];
  const run = await runJob(wasm, wasmJob(hello, ['ünïcode ✓', 'plain']));
  assert.is(run.stdout, 'hello from wasm\narg: ünïcode ✓\narg: plain\n');
});
sandbox('the runner runs under the job\'s limits: RLIMIT_AS and the V8 page cap', async () => {
  const [hello, loop] = [await helloWasm(), await fixture('loop')];
  const execution = await running(wasm, wasmJob(loop, [], {}, { memoryBytes: 32 * MiB }));
  try {
    const limits = await readFile(`/proc/${execution.pid}/limits`, 'utf8');
    const as = /Max address space\s+(\d+)/.exec(limits)?.[1];
    assert.is(Number(as), 32 * MiB + 2 ** 30);
    assert.match(await readFile(`/proc/${execution.pid}/cmdline`, 'utf8'), /--wasm-max-mem-pages=512\0/);
  } finally {
    execution.cancel();
    await execution.wait();
  }
});
sandbox('stdin is empty and read-only: writes, allocate and set_size on fd 0 are refused, so it grows nothing outside the memory cap', async () => {
  const run = await runJob(wasm, wasmJob(await fixture('stdin-abuse')));
  assert.is(run.result.reason, 'completed', run.stderr);
  assert.is(run.stdout, 'refused\nrefused\nrefused\nrefused\n0\n');
});
sandbox.run();

const exits = suite('WasiExecutor: how a module ends');
exits('proc_exit(3) -> failed with exit code 3 and its stderr kept', async () => {
  const run = await runJob(wasm, wasmJob(await fixture('exit3')));
  assert.is(run.result.reason, 'failed');
  assert.is(run.result.exitCode, 3);
  assert.is(run.stderr, 'failing on purpose\n');
});
exits('a trap -> failed, with the trap named', async () => {
  const trap = await compileWat('(module (memory (export "memory") 1) (func (export "_start") (drop (i32.div_u (i32.const 1) (i32.const 0)))))');
  const run = await runJob(wasm, wasmJob(trap));
  assert.is(run.result.reason, 'failed');
  assert.is(run.result.exitCode, null);
  assert.match(run.result.message, /trapped: RuntimeError: divide by zero/);
});
exits.run();

const memory = suite('WasiExecutor: memory is capped, and a module cannot take the node down');
memory('growing to 1 GiB under a 64 MiB limit: memory.grow refused at the cap -> reason memory', async () => {
  const [hello, loop] = [await helloWasm(), await fixture('loop')];
  const run = await runJob(wasm, wasmJob(await fixture('grow'), [], {}, { memoryBytes: 64 * MiB }));
  assert.is(run.result.reason, 'memory', run.result.message);
  assert.match(run.result.message, /memory at 64 MiB of its 64 MiB limit/);
  assert.is(run.stdout, 'before grow\n');
  assert.is(run.stderr, 'memory.grow refused\n');
});
memory('nodejs/node#51303 trigger (WASI call, grow to 1 GiB, WASI call) with room to grow: completes, node unharmed', async () => {
  const [hello, loop] = [await helloWasm(), await fixture('loop')];
  const run = await runJob(wasm, wasmJob(await fixture('grow'), [], {}, { memoryBytes: 2 * 2 ** 30 }));
  assert.is(run.result.reason, 'completed', run.result.message);
  assert.is(run.stdout, 'before grow\ngrew to 1 GiB\n');
  assert.is(process.exitCode ?? 0, 0);
});
memory('1 GiB of declared initial memory under a 64 MiB limit -> refused, reason memory', async () => {
  const [hello, loop] = [await helloWasm(), await fixture('loop')];
  const run = await runJob(wasm, wasmJob(await fixture('bigmem')));
  assert.is(run.result.reason, 'memory');
  assert.match(run.result.message, /initial memory is over the job's memory limit/);
});
memory('a runner that dies from a signal -> reason crashed, with the signal named', async () => {
  const [hello, loop] = [await helloWasm(), await fixture('loop')];
  const run = await runJob(wasm, wasmJob(loop), (execution) => process.kill(execution.pid, 'SIGSEGV'));
  assert.is(run.result.reason, 'crashed', run.result.message);
  assert.is(run.result.signal, 'SIGSEGV');
  assert.match(run.result.message, /killed by SIGSEGV.*the node is unaffected/);
});
memory('a memory limit below one page -> InvalidJobError', async () => {
  const [hello, loop] = [await helloWasm(), await fixture('loop')];
  await rejectsWith(wasm.start(wasmJob(hello, [], {}, { memoryBytes: 1000 })), 'InvalidJobError', /64 KiB page/);
});
memory('without prlimit, the sh ulimit wrapper sets the same RLIMIT_AS', async () => {
  const [hello, loop] = [await helloWasm(), await fixture('loop')];
  const viaShell = new WasiExecutor({ prlimitPath: null });
  assert.is(viaShell.osLimitTool, 'ulimit');
  const execution = await running(viaShell, wasmJob(loop, [], {}, { memoryBytes: 32 * MiB }));
  try {
    const as = /Max address space\s+(\d+)/.exec(await readFile(`/proc/${execution.pid}/limits`, 'utf8'))?.[1];
    assert.is(Number(as), 32 * MiB + 2 ** 30);
  } finally {
    execution.cancel();
  }
  assert.is((await execution.wait()).reason, 'cancelled');
});
memory.run();

// ---- process only ----

const proc = new ProcessExecutor();
/** Whether `pid` still runs: a zombie (dead, waiting for init to reap it) does not; waits up to 1 s for death. */
async function alive(pid: number): Promise<boolean> {
  for (const until = performance.now() + 1000; ; ) {
    const stat = await readFile(`/proc/${pid}/stat`, 'latin1').catch(() => '');
    const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
    if (state === '' || state === 'Z' || state === 'X') return false;
    if (performance.now() > until) return true;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

const group = suite('ProcessExecutor: the whole process group goes with the job');
group('cancel kills a grandchild (sleep 100) too', async () => {
  const execution = await proc.start(processJob('sh', ['-c', 'sleep 100 & echo $!; wait']));
  const iterator = execution.output[Symbol.asyncIterator]();
  const first = await iterator.next();
  const grandchild = Number(Buffer.from(first.value!.data).toString().trim());
  assert.ok(grandchild > 0, 'the grandchild pid was printed');
  assert.ok(await alive(grandchild), 'the grandchild runs before the cancel');
  execution.cancel();
  const result = await execution.wait();
  assert.is(result.reason, 'cancelled');
  assert.not.ok(await alive(grandchild), `grandchild ${grandchild} survived the cancel`);
  assert.not.ok(await alive(execution.pid));
});
group('a grandchild left behind by a job that exits is killed at its end', async () => {
  const started = performance.now();
  const run = await runJob(proc, processJob('sh', ['-c', 'sleep 100 & echo $!']));
  assert.is(run.result.reason, 'completed');
  const grandchild = Number(run.stdout.trim());
  assert.ok(grandchild > 0);
  assert.not.ok(await alive(grandchild), `grandchild ${grandchild} outlived the job`);
  assert.ok(performance.now() - started < KILL_GRACE_MS + 1000, 'waited for the grandchild instead of killing it');
});
group('timeout kills the grandchild too', async () => {
  const run = await runJob(proc, processJob('sh', ['-c', 'sleep 100 & echo $!; wait'], {}, { limits: { timeoutMs: 300 } }));
  assert.is(run.result.reason, 'timeout');
  assert.not.ok(await alive(Number(run.stdout.trim())));
});
group.run();

const env = suite('ProcessExecutor: environment, command and directory');
env('the environment is the job\'s plus PATH, nothing of the node\'s', async () => {
  const run = await runJob(proc, processJob('env', [], { ONLY: 'this' }));
  assert.equal(run.stdout.trim().split('\n').sort(), ['ONLY=this', 'PATH=/usr/local/bin:/usr/bin:/bin']);
});
env('an unknown command -> CommandNotFoundError before anything runs', async () => {
  await rejectsWith(proc.start(processJob('no-such-command-7f3a', [])), 'CommandNotFoundError', /not an executable file on PATH/);
});
env('cwd: runs there; a cwd that does not exist -> InvalidJobError', async () => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'dms-proc-'));
  try {
    const run = await runJob(proc, processJob('pwd', [], {}, { cwd: dir }));
    assert.is(run.stdout.trim(), dir);
    await rejectsWith(proc.start(processJob('pwd', [], {}, { cwd: path.join(dir, 'gone') })), 'InvalidJobError', /process\.cwd/);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
env('a job that dies from its own signal -> crashed', async () => {
  const run = await runJob(proc, processJob('sh', ['-c', 'kill -SEGV $$']));
  assert.is(run.result.reason, 'crashed');
  assert.is(run.result.signal, 'SIGSEGV');
});
env.run();

const procMemory = suite('ProcessExecutor: memory');
procMemory('each process runs under RLIMIT_AS = limit + slack', async () => {
  const run = await runJob(proc, processJob('cat', ['/proc/self/limits'], {}, { limits: { memoryBytes: 100 * MiB } }));
  assert.match(run.stdout, new RegExp(`Max address space\\s+${100 * MiB + 2 ** 30}\\s`));
});
procMemory('a group whose resident memory passes the limit is killed, reason memory', async () => {
  const hog = 'const keep = []; setInterval(() => keep.push(Buffer.alloc(16 << 20, 1)), 10); console.log("hogging")';
  const big = new ProcessExecutor({ addressSpaceSlackBytes: 4 * 2 ** 30 }); // node maps ~1 GiB of address space at start
  const run = await runJob(big, processJob(process.execPath, ['-e', hog], {}, { limits: { memoryBytes: 96 * MiB } }));
  assert.is(run.result.reason, 'memory', run.result.message);
  assert.match(run.result.message, /over its memory limit of 96 MiB/);
});
procMemory.run();


// ---- isolation: a cgroup per job, process jobs as `nobody` (skipped, saying why, where the machine cannot) ----

const isolation = suite('Executors: jobs are fenced in (cgroup per job; process jobs as an unprivileged user)');

async function isolated(name: string): Promise<boolean> {
  const report = await isolationReport();
  if (report.cgroups && report.processUser) return true;
  console.log(`  skipped: ${name}: ${report.why ?? 'the node does not run as root, so process jobs run as its own user'}`);
  return false;
}

/** Job cgroups this process made that are still there. */
const leftoverCgroups = () => {
  try {
    return readdirSync(`/sys/fs/cgroup/pids/dms/${process.pid}`).filter((d) => /^(process|wasm)-/.test(d));
  } catch {
    return [];
  }
};

isolation('a process job cannot read a file of the node\'s 0700 data dir, nor signal the node', async () => {
  if (!(await isolated('data dir'))) return;
  const dir = mkdtempSync(path.join(os.tmpdir(), 'dms-secret-'));
  chmodSync(dir, 0o700);
  writeFileSync(path.join(dir, 'identity.key'), 'secret', { mode: 0o600 });
  const script = `cat '${dir}/identity.key' && echo READ; kill -0 ${process.pid} && echo SIGNALLED; id -un`;
  const run = await runJob(proc, processJob('/bin/sh', ['-c', script]));
  assert.not.match(run.stdout, /READ|secret/, 'the job read the key');
  assert.not.match(run.stdout, /SIGNALLED/, 'the job could signal the node');
  assert.match(run.stdout, /^nobody$/m);
  assert.match(run.stderr, /Permission denied/);
});

isolation('a process job granted 0.05 cpu gets about that: spinning for 1 s of wall time uses well under 1 s of CPU', async () => {
  if (!(await isolated('cpu'))) return;
  const spin = 'const t = Date.now() + 1000; while (Date.now() < t); const u = process.cpuUsage(); console.log(Math.round((u.user + u.system) / 1000))';
  const run = await runJob(proc, processJob(process.execPath, ['-e', spin], {}, { limits: { cpu: 0.05, memoryBytes: 1024 * MiB } }));
  assert.is(run.result.reason, 'completed', run.stderr);
  const cpuMs = Number(run.stdout.trim());
  assert.ok(cpuMs < 400, `the job used ${cpuMs} ms of CPU in 1 s`);
  assert.equal(leftoverCgroups(), []);
});

isolation('a fork bomb is bounded by the job\'s process limit, and nothing of it outlives the job (setsid included)', async () => {
  if (!(await isolated('pids'))) return;
  const bomb = `for i in $(seq 1000); do (setsid sleep 300 &) 2>/dev/null; done; echo done`;
  const run = await runJob(proc, processJob('/bin/sh', ['-c', bomb], {}, { limits: { timeoutMs: 15_000 } }));
  // bounded by its pids limit (forks fail: completed or failed), or by its memory limit first: a thousand
  // shells under 64 MiB, whose kernel memory the cgroup counts too, may be OOM-killed on a loaded machine
  assert.ok(['completed', 'failed', 'memory'].includes(run.result.reason), `${run.result.reason}: ${run.result.message}`);
  let sleepers = '';
  try {
    sleepers = execFileSync('pgrep', ['-u', 'nobody', '-f', 'sleep 300'], { encoding: 'utf8' }).trim();
  } catch {
    // pgrep exits 1 when nothing matches
  }
  assert.is(sleepers, '', 'sleepers outlived the job');
  assert.equal(leftoverCgroups(), []);
});

isolation('a WASM job runs in a cgroup of its own, removed when it ends', async () => {
  if (!(await isolated('wasm'))) return;
  const run = await runJob(wasm, wasmJob(await helloWasm(), ['x']));
  assert.is(run.result.reason, 'completed', run.stderr);
  assert.equal(leftoverCgroups(), []);
});

isolation.run();
