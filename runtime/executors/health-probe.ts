/**
 * Runs one health check of an ensemble part (the rules are machines/health.ts): an HTTP GET on loopback, or a
 * command. Each check has a timeout and never throws: whatever goes wrong is a failed check, its `output` saying
 * why. `output` starts with one line on how the check ended (`HTTP 200`, `exit 3`, `no answer within 2 s`, ...),
 * then what the part said (the body, or stdout and stderr together), bounded to HEALTH_LIMITS.outputBytes.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import http from 'node:http';
import { boundOutput, HEALTH_LIMITS, type HealthProbeTarget } from '../../machines/health.ts';
import { killGroup } from './process-group.ts';

export interface ProbeResult {
  readonly ok: boolean;
  readonly output: string;
  /** How long the check took. */
  readonly ms: number;
}

export interface ProbeOptions {
  readonly timeoutMs: number;
  /** A command check's environment (the part's, e.g. DMS_PORT_*); PATH defaults to DEFAULT_PROBE_PATH. */
  readonly env?: Readonly<Record<string, string>>;
  /** A command check's working directory; default the node's. */
  readonly cwd?: string;
}

/** Runs one check: what a part's health actor asks the runtime for. A fake can stand in for it in tests. */
export type HealthProbe = (target: HealthProbeTarget, options: ProbeOptions) => Promise<ProbeResult>;

export const DEFAULT_PROBE_PATH = '/usr/local/bin:/usr/bin:/bin';
/** After a command exits, how long a pipe held open by something it left behind may delay the result. */
const CLOSE_GRACE_MS = 200;

export const probeHealth: HealthProbe = (target, options) => {
  switch (target.type) {
    case 'http':
      return probeHttp(target.port, target.path, options.timeoutMs);
    case 'command':
      return probeCommand(target.command, options);
    default: {
      const never: never = target;
      return never;
    }
  }
};

/** Output kept while a check runs: the first `limit` bytes (a little over the bound, so a cut can be marked). */
class Capture {
  readonly #chunks: Buffer[] = [];
  #bytes = 0;
  constructor(private readonly limit = HEALTH_LIMITS.outputBytes + 4) {}

  push(d: Buffer): boolean {
    const room = this.limit - this.#bytes;
    if (room > 0) {
      const kept = d.byteLength > room ? d.subarray(0, room) : d;
      this.#chunks.push(kept);
      this.#bytes += kept.byteLength;
    }
    return this.#bytes < this.limit;
  }

  text(): string {
    return Buffer.concat(this.#chunks).toString('utf8');
  }
}

function result(ok: boolean, head: string, body: string, startedAt: number): ProbeResult {
  const text = body.length > 0 ? `${head}\n${body}` : head;
  return { ok, output: boundOutput(text), ms: Math.round(performance.now() - startedAt) };
}

/** GET http://127.0.0.1:<port><path>: any 2xx passes. The body is read only up to the output bound. */
export function probeHttp(port: number, path: string, timeoutMs: number): Promise<ProbeResult> {
  const startedAt = performance.now();
  return new Promise((resolve) => {
    const body = new Capture();
    let status: number | undefined;
    let done = false;
    const finish = (ok: boolean, head: string) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      req?.destroy();
      resolve(result(ok, head, body.text(), startedAt));
    };
    const answered = () => status !== undefined && status >= 200 && status < 300;
    const timer = setTimeout(() => {
      // a 2xx whose body is still coming has passed; no status within the timeout fails
      if (status !== undefined) finish(answered(), `HTTP ${status} (body cut off after ${timeoutMs} ms)`);
      else finish(false, `no answer from 127.0.0.1:${port}${path} within ${timeoutMs} ms`);
    }, timeoutMs);
    let req: http.ClientRequest | undefined;
    try {
      req = http.get({ host: '127.0.0.1', port, path, agent: false, headers: { 'user-agent': 'dms-health-check', connection: 'close' } }, (res) => {
        status = res.statusCode ?? 0;
        res.on('data', (d: Buffer) => {
          if (!body.push(d)) finish(answered(), `HTTP ${status}`);
        });
        res.on('end', () => finish(answered(), `HTTP ${status}`));
        res.on('error', () => finish(answered(), `HTTP ${status}`));
      });
      req.on('error', (err) => finish(false, `GET 127.0.0.1:${port}${path} failed: ${err.message}`));
    } catch (err) {
      // a bad port or path is refused before anything is sent
      finish(false, `GET 127.0.0.1:${port}${path} could not be sent: ${(err as Error).message}`);
    }
  });
}

/**
 * Runs `command` (argv: no shell unless it names one) in its own process group with stdin closed; exit 0 passes.
 * On timeout the whole group is killed; it is killed again on exit so nothing it started outlives the check.
 */
export function probeCommand(command: readonly string[], options: ProbeOptions): Promise<ProbeResult> {
  const startedAt = performance.now();
  const { timeoutMs } = options;
  const [file, ...args] = command;
  if (file === undefined || file === '') return Promise.resolve(result(false, 'the health check command is empty', '', startedAt));
  return new Promise((resolve) => {
    const output = new Capture();
    let timedOut = false;
    let settled = false;
    const env = { PATH: DEFAULT_PROBE_PATH, ...options.env };
    const settle = (ok: boolean, head: string) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      resolve(result(ok, head, output.text(), startedAt));
    };
    let timer: NodeJS.Timeout | undefined;
    let child: ChildProcess;
    try {
      child = spawn(file, args, { env, stdio: ['ignore', 'pipe', 'pipe'], detached: true, windowsHide: true, ...(options.cwd ? { cwd: options.cwd } : {}) });
    } catch (err) {
      settle(false, `could not run ${file}: ${(err as Error).message}`);
      return;
    }
    child.stdout?.on('data', (d: Buffer) => output.push(d));
    child.stderr?.on('data', (d: Buffer) => output.push(d));
    child.once('error', (err) => settle(false, `could not run ${file}: ${err.message}`));
    timer = setTimeout(() => {
      timedOut = true;
      if (child.pid !== undefined) killGroup(child.pid);
    }, timeoutMs);
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      if (child.pid !== undefined) killGroup(child.pid);
      const head = timedOut ? `timed out after ${timeoutMs} ms and was killed` : code !== null ? `exit ${code}` : `killed by ${signal}`;
      const end = () => settle(!timedOut && code === 0, head);
      // stdout and stderr may still hold the last of the output: wait for them, but not for long
      const grace = setTimeout(() => {
        child.stdout?.destroy();
        child.stderr?.destroy();
        end();
      }, CLOSE_GRACE_MS);
      child.once('close', () => {
        clearTimeout(grace);
        end();
      });
    });
  });
}
