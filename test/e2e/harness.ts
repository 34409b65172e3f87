/**
 * End-to-end harness: starts real `node runtime/main.js` processes (the compiled JS, cwd the repo root) and
 * runs CLI commands, each bounded by a timeout. Every process it starts is tracked so `killAll` (in an
 * `after` hook) and process exit can end whatever a failing test left running.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Capability } from '../../machines/capability.ts';
import type { JobRecord } from '../../machines/requester.messages.ts';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
export const MAIN = path.join(ROOT, 'runtime', 'main.js');

/** What a finished CLI command left behind. */
export interface CliResult {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** The `--json` ready line. */
export interface ReadyLine {
  readonly event: string;
  readonly peerId: string;
  readonly did: string;
  readonly uuid: string;
  readonly listen: string[];
  readonly api: string;
  readonly dataDir: string;
  readonly state: string;
  readonly benchmarked: boolean;
  readonly startMs: number;
}

export interface NodeProcess {
  readonly child: ChildProcess;
  readonly ready: ReadyLine;
  readonly dataDir: string;
  /** Everything the node wrote to stderr so far. */
  stderr(): string;
  /** Sends `signal` and waits (bounded) for the exit; SIGKILLs and throws when the node does not exit in time. */
  stop(signal?: NodeJS.Signals, timeoutMs?: number): Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** SIGKILLs the node if it still runs and waits for it to go. */
  kill(): Promise<void>;
}

const live = new Set<ChildProcess>();
process.once('exit', () => {
  for (const c of live) c.kill('SIGKILL');
});

function track(child: ChildProcess): void {
  live.add(child);
  child.once('exit', () => live.delete(child));
}

const exited = (c: ChildProcess) => c.exitCode !== null || c.signalCode !== null;

function waitExit(child: ChildProcess, timeoutMs: number): Promise<{ code: number | null; signal: NodeJS.Signals | null } | undefined> {
  if (exited(child)) return Promise.resolve({ code: child.exitCode, signal: child.signalCode });
  return new Promise((resolve) => {
    const t = setTimeout(() => resolve(undefined), timeoutMs);
    child.once('exit', (code, signal) => {
      clearTimeout(t);
      resolve({ code, signal });
    });
  });
}

/** SIGKILLs every process this harness started that still runs. */
export async function killAll(): Promise<void> {
  await Promise.all(
    [...live].map(async (c) => {
      c.kill('SIGKILL');
      await waitExit(c, 5000);
    }),
  );
}

/** Runs `node runtime/main.js ...args` to the end; rejects (after SIGKILL) if it takes longer than timeoutMs. */
export function cli(args: readonly string[], opts: { timeoutMs?: number } = {}): Promise<CliResult> {
  const timeoutMs = opts.timeoutMs ?? 15_000;
  const child = spawn(process.execPath, [MAIN, ...args], { cwd: ROOT, env: cleanEnv(), stdio: ['ignore', 'pipe', 'pipe'] });
  track(child);
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
  child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`\`main.js ${args.join(' ')}\` did not finish within ${timeoutMs} ms\nstdout: ${stdout}\nstderr: ${stderr}`));
    }, timeoutMs);
    child.once('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    // 'close' rather than 'exit': the output streams are complete by then
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr });
    });
  });
}

/** Like `cli`, with `--json` added and stdout parsed; rejects when the command fails or prints no JSON. */
export async function cliJson<T = Record<string, unknown>>(args: readonly string[]): Promise<T> {
  const r = await cli([...args, '--json']);
  if (r.code !== 0) throw new Error(`\`main.js ${args.join(' ')} --json\` exited ${String(r.code)}: ${r.stderr}`);
  try {
    return JSON.parse(r.stdout) as T;
  } catch {
    throw new Error(`\`main.js ${args.join(' ')} --json\` printed no JSON document: ${JSON.stringify(r.stdout)}`);
  }
}

/**
 * Starts a node on `dataDir` (loopback API on a free port, JSON ready line) and resolves once the ready line
 * is out. Rejects, with the node's stderr, if it exits first or is not ready within timeoutMs (then it is killed).
 */
export async function startNode(dataDir: string, extra: readonly string[] = [], opts: { timeoutMs?: number } = {}): Promise<NodeProcess> {
  const timeoutMs = opts.timeoutMs ?? 20_000;
  const args = [MAIN, 'run', '--data-dir', dataDir, '--api', '127.0.0.1:0', '--listen', '/ip4/127.0.0.1/tcp/0/ws', '--json', ...extra];
  const child = spawn(process.execPath, args, { cwd: ROOT, env: cleanEnv(), stdio: ['ignore', 'pipe', 'pipe'] });
  track(child);
  let stdout = '';
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  const readyLine = await new Promise<string>((resolve, reject) => {
    let settled = false;
    const fail = (why: string) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      child.kill('SIGKILL');
      reject(new Error(`node on ${dataDir} ${why}\nstdout: ${stdout}\nstderr: ${stderr}`));
    };
    const timer = setTimeout(() => fail(`printed no ready line within ${timeoutMs} ms`), timeoutMs);
    child.stdout.setEncoding('utf8').on('data', (d: string) => {
      stdout += d;
      const nl = stdout.indexOf('\n');
      if (nl >= 0 && !settled) {
        settled = true;
        clearTimeout(timer);
        resolve(stdout.slice(0, nl));
      }
    });
    child.once('close', (code, signal) => fail(`exited (code ${String(code)}, signal ${String(signal)}) before it was ready`));
    child.once('error', (e) => fail(`could not be spawned: ${e.message}`));
  });
  let ready: ReadyLine;
  try {
    ready = JSON.parse(readyLine) as ReadyLine;
  } catch {
    child.kill('SIGKILL');
    throw new Error(`the ready line is not JSON: ${readyLine}`);
  }
  return {
    child,
    ready,
    dataDir,
    stderr: () => stderr,
    async stop(signal = 'SIGTERM', stopTimeoutMs = 5000) {
      if (!exited(child)) child.kill(signal);
      const r = await waitExit(child, stopTimeoutMs);
      if (r) return r;
      child.kill('SIGKILL');
      await waitExit(child, 5000);
      throw new Error(`node on ${dataDir} did not exit within ${stopTimeoutMs} ms of ${signal}\nstderr: ${stderr}`);
    },
    async kill() {
      if (!exited(child)) child.kill('SIGKILL');
      await waitExit(child, 5000);
    },
  };
}

/** The environment without DMS_HOME, so a developer's own node is never the one a test talks to. */
function cleanEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, NO_COLOR: '1' };
  // a developer's own node settings (DMS_HOME, DMS_CPU, DMS_CONFIG, ...) must not reach the nodes under test
  for (const k of Object.keys(env)) if (k.startsWith('DMS_')) delete env[k];
  return env;
}

const tempDirs = new Set<string>();

/** A fresh empty directory under os.tmpdir(); `removeTempDirs` deletes it. */
export async function makeTempDir(label = 'node'): Promise<string> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), `dms-e2e-${label}-`));
  tempDirs.add(dir);
  return dir;
}

export async function removeTempDirs(): Promise<void> {
  await Promise.all([...tempDirs].map((d) => fs.rm(d, { recursive: true, force: true })));
  tempDirs.clear();
}

/** Each file's mode and content (base64), by path relative to `dir`, subdirectories included; `null` when `dir` does not exist. */
export async function snapshotDir(dir: string): Promise<Record<string, string> | null> {
  const out: Record<string, string> = {};
  const walk = async (rel: string): Promise<void> => {
    for (const name of (await fs.readdir(path.join(dir, rel))).sort()) {
      const r = path.join(rel, name);
      const st = await fs.stat(path.join(dir, r));
      const mode = (st.mode & 0o777).toString(8);
      if (st.isDirectory()) {
        out[`${r}/`] = mode;
        await walk(r);
      } else {
        out[r] = `${mode} ${(await fs.readFile(path.join(dir, r))).toString('base64')}`;
      }
    }
  };
  try {
    await walk('');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT' && !(await exists(dir))) return null;
    throw e;
  }
  return out;
}

/** Permission bits of a file, e.g. 0o600. */
export async function modeOf(file: string): Promise<number> {
  return (await fs.stat(file)).mode & 0o777;
}

export async function exists(file: string): Promise<boolean> {
  return fs.access(file).then(
    () => true,
    () => false,
  );
}

/** Polls `check` every 50 ms until it returns true; false if it never did within timeoutMs. */
export async function eventually(check: () => Promise<boolean> | boolean, timeoutMs = 3000): Promise<boolean> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    if (await check()) return true;
    if (Date.now() > end) return false;
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** A running node's HTTP API, for polling and for what the CLI does not show (URL from the ready line, token from the data dir). */
export interface NodeApiClient {
  /** The status and parsed body of one request; rejects only when the node cannot be reached in time. */
  call(method: string, route: string, body?: unknown, timeoutMs?: number): Promise<{ status: number; body: unknown }>;
  /** Like `call`, rejecting on a non-2xx answer. */
  get<T = unknown>(route: string): Promise<T>;
}

export async function apiOf(node: NodeProcess): Promise<NodeApiClient> {
  const token = (await fs.readFile(path.join(node.dataDir, 'api.token'), 'utf8')).trim();
  const call = async (method: string, route: string, body?: unknown, timeoutMs = 10_000) => {
    const res = await fetch(`${node.ready.api}${route}`, {
      method,
      headers: { authorization: `Bearer ${token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      signal: AbortSignal.timeout(timeoutMs),
    });
    return { status: res.status, body: (await res.json()) as unknown };
  };
  return {
    call,
    async get<T>(route: string) {
      const r = await call('GET', route);
      if (r.status < 200 || r.status >= 300) throw new Error(`GET ${route} on ${node.dataDir} answered ${r.status}: ${JSON.stringify(r.body)}`);
      return r.body as T;
    },
  };
}

/** Each non-empty line of `stdout` parsed as JSON; throws naming the first line that is not. */
export function jsonLines<T = Record<string, unknown>>(stdout: string): T[] {
  return stdout
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => {
      try {
        return JSON.parse(l) as T;
      } catch {
        throw new Error(`not a JSON line: ${l}`);
      }
    });
}

/** Polls `probe` every `everyMs` until it returns a value other than undefined; rejects naming `what` after timeoutMs. */
export async function waitFor<T>(what: string, probe: () => Promise<T | undefined> | T | undefined, timeoutMs = 10_000, everyMs = 100): Promise<T> {
  const end = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await probe();
      if (v !== undefined) return v;
    } catch (e) {
      last = e;
    }
    if (Date.now() > end) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last ? ` (last error: ${(last as Error).message})` : ''}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

/** The pids and command lines of `pid`'s child processes (Linux /proc; empty elsewhere). */
export async function childProcesses(pid: number): Promise<{ pid: number; cmdline: string }[]> {
  const out: { pid: number; cmdline: string }[] = [];
  const entries = await fs.readdir('/proc').catch(() => [] as string[]);
  for (const e of entries) {
    if (!/^\d+$/.test(e)) continue;
    try {
      const stat = await fs.readFile(`/proc/${e}/stat`, 'utf8');
      // "pid (comm) state ppid ...": comm may hold spaces and parentheses, so read after the last ")"
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (ppid === pid) out.push({ pid: Number(e), cmdline: (await fs.readFile(`/proc/${e}/cmdline`, 'utf8')).replaceAll('\0', ' ').trim() });
    } catch {
      // it ended while we looked
    }
  }
  return out;
}

/** `info --json`, the parts the tests read. */
export interface NodeInfo {
  identity: { uuid: string; cid: string; peerId: string; did: string };
  state: string;
  capability: { registered: Capability; locked: Capability; allocated: Capability; available: Capability };
}

/** A row of `allocations --json`: the ledger's allocation, with what became of the job that ran in it. */
export interface AllocationRow {
  id: string;
  lockId: string;
  resources: { cpu: number; memory: number; disk: number };
  createdAt: number;
  /** When the ledger released it. */
  endedAt: number | null;
  state?: string;
  exitCode?: number | null;
  message?: string;
  runEndedAt?: number | null;
}

/** A row of `peers --json`, the parts the tests read. */
export interface PeerRow {
  peer: string;
  dms: boolean;
}

/** Polls a job through a node's API until `pred` holds; rejects with the last record seen. */
export async function jobUntil(api: NodeApiClient, id: string, what: string, pred: (r: JobRecord) => boolean, timeoutMs = 10_000): Promise<JobRecord> {
  let last: JobRecord | undefined;
  try {
    return await waitFor(what, async () => {
      last = await api.get<JobRecord>(`/v1/jobs/${id}`);
      return pred(last) ? last : undefined;
    }, timeoutMs);
  } catch (e) {
    throw new Error(`${(e as Error).message}\nlast record: ${JSON.stringify(last, null, 2)}`);
  }
}

/**
 * Starts `count` nodes: the first alone, the rest joining through it, `concurrency` at a time (each start
 * benchmarks the machine, so starting all at once on two cores only makes every one slower).
 */
export async function startMany(count: number, flags: readonly string[], opts: { label?: string; concurrency?: number; timeoutMs?: number } = {}): Promise<NodeProcess[]> {
  const { label = 'node', concurrency = 4, timeoutMs = 60_000 } = opts;
  const first = await startNode(await makeTempDir(`${label}0`), flags, { timeoutMs });
  const boot = ['--bootstrap', first.ready.listen[0]!];
  const nodes = [first];
  for (let i = 1; i < count; i += concurrency) {
    const batch = Array.from({ length: Math.min(concurrency, count - i) }, async (_, k) => startNode(await makeTempDir(`${label}${i + k}`), [...flags, ...boot], { timeoutMs }));
    nodes.push(...(await Promise.all(batch)));
  }
  return nodes;
}

/** `info --json`'s network part. */
export interface NetInfo {
  peers: number;
  reach: { connected: number; subscribed: number; beyond: number } | null;
  messages: { in: number; out: number; broadcastIn: number; broadcastOut: number; rejectedTotal: number; rejected: Record<string, number> } | null;
}

/**
 * Waits until every node has each of the others as a connected DMS peer subscribed to the bid topic (what a
 * broadcast needs to reach everyone in one hop); rejects naming the nodes short of it.
 */
export async function untilMeshed(apis: readonly NodeApiClient[], timeoutMs = 60_000): Promise<void> {
  const want = apis.length - 1;
  let short: string[] = [];
  try {
    await waitFor('every node to see all the others subscribed', async () => {
      const reach = await Promise.all(apis.map(async (a) => (await a.get<NetInfo>('/v1/info')).reach));
      short = reach.flatMap((r, i) => (r && r.connected >= want && r.subscribed >= want ? [] : [`#${i}: ${JSON.stringify(r)}`]));
      return short.length === 0 ? true : undefined;
    }, timeoutMs, 250);
  } catch (e) {
    throw new Error(`${(e as Error).message}; short of ${want}: ${short.join(', ')}`);
  }
}
