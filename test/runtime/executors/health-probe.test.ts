// One health check for real (runtime/executors/health-probe.ts): HTTP GETs against a local server, and commands
// as child processes, each with a timeout; a failing check is a result, never a throw.
import { readFileSync } from 'node:fs';
import http from 'node:http';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { HEALTH_LIMITS } from '../../../machines/health.ts';
import { probeCommand, probeHealth, probeHttp } from '../../../runtime/executors/health-probe.ts';
import { closedPort } from '../../fixtures/ports.ts';
import { sleep, within } from '../../fixtures/waiting.ts';

const utf8 = (s: string) => Buffer.byteLength(s, 'utf8');
const TIMEOUT = 200;

/** Runs and is not a zombie. */
function running(pid: number): boolean {
  try {
    return !/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return false;
  }
}

// ---- HTTP ----

const Http = suite<{ server: http.Server; port: number; hanging: http.ServerResponse[] }>('health probe: http', {
  server: undefined as unknown as http.Server,
  port: 0,
  hanging: [],
});

Http.before(async (ctx) => {
  ctx.hanging = [];
  ctx.server = http.createServer((req, res) => {
    switch (req.url) {
      case '/health':
        res.writeHead(200, { 'content-type': 'text/plain' }).end('ok');
        return;
      case '/created':
        res.writeHead(204).end();
        return;
      case '/broken':
        res.writeHead(500).end('database unreachable');
        return;
      case '/moved':
        res.writeHead(302, { location: '/health' }).end();
        return;
      case '/big':
        res.writeHead(200).end('y'.repeat(64 * 1024));
        return;
      case '/slow-body':
        res.writeHead(200);
        res.write('partial');
        ctx.hanging.push(res);
        return;
      case '/endless':
        res.writeHead(200);
        res.write('z'.repeat(4096));
        ctx.hanging.push(res);
        return;
      case '/hang':
        ctx.hanging.push(res);
        return;
      default:
        res.writeHead(404).end('no such path');
    }
  });
  await new Promise<void>((resolve) => ctx.server.listen(0, '127.0.0.1', resolve));
  ctx.port = (ctx.server.address() as { port: number }).port;
});

Http.after(async (ctx) => {
  for (const r of ctx.hanging) r.destroy();
  ctx.server.closeAllConnections();
  await new Promise((resolve) => ctx.server.close(resolve));
});

Http('200 passes, with the status and the body as output', async ({ port }) => {
  const r = await probeHttp(port, '/health', 2000);
  assert.is(r.ok, true);
  assert.is(r.output, 'HTTP 200\nok');
  assert.ok(r.ms >= 0 && r.ms < 2000, `${r.ms} ms`);
});

Http('any 2xx passes (204, no body)', async ({ port }) => {
  const r = await probeHttp(port, '/created', 2000);
  assert.is(r.ok, true);
  assert.is(r.output, 'HTTP 204');
});

Http('500 fails, its body kept as the reason', async ({ port }) => {
  const r = await probeHttp(port, '/broken', 2000);
  assert.is(r.ok, false);
  assert.is(r.output, 'HTTP 500\ndatabase unreachable');
});

Http('3xx and 404 fail (redirects are not followed)', async ({ port }) => {
  const moved = await probeHttp(port, '/moved', 2000);
  assert.is(moved.ok, false);
  assert.is(moved.output, 'HTTP 302');
  const missing = await probeHttp(port, '/nope', 2000);
  assert.is(missing.ok, false);
  assert.is(missing.output, 'HTTP 404\nno such path');
});

Http('a path that hangs fails at the timeout, not later', async ({ port }) => {
  const r = await within('the probe', probeHttp(port, '/hang', TIMEOUT), 3000);
  assert.is(r.ok, false);
  assert.match(r.output, `no answer from 127.0.0.1:${port}/hang within ${TIMEOUT} ms`);
  assert.ok(r.ms >= TIMEOUT - 5 && r.ms < TIMEOUT + 500, `${r.ms} ms`);
});

Http('a 2xx whose body never ends has passed; what came of it is kept', async ({ port }) => {
  const r = await within('the probe', probeHttp(port, '/slow-body', TIMEOUT), 3000);
  assert.is(r.ok, true);
  assert.is(r.output, `HTTP 200 (body cut off after ${TIMEOUT} ms)\npartial`);
});

Http('a big body is read only up to 1 KiB of output', async ({ port }) => {
  const r = await probeHttp(port, '/big', 2000);
  assert.is(r.ok, true);
  assert.is(utf8(r.output), HEALTH_LIMITS.outputBytes);
  assert.ok(r.output.startsWith('HTTP 200\nyyy'));
  assert.ok(r.output.endsWith('…'));
});

Http('reading stops at 1 KiB: an endless 2xx body passes at once, not at the timeout', async ({ port }) => {
  const r = await within('the probe', probeHttp(port, '/endless', 2000), 3000);
  assert.is(r.ok, true);
  assert.ok(r.output.startsWith('HTTP 200\nzzz'), r.output.slice(0, 40));
  assert.is(utf8(r.output), HEALTH_LIMITS.outputBytes);
  assert.ok(r.ms < 1000, `${r.ms} ms`);
});

Http('a port with nothing listening fails at once with the error', async () => {
  const port = await closedPort();
  const r = await probeHttp(port, '/health', 2000);
  assert.is(r.ok, false);
  assert.match(r.output, `GET 127.0.0.1:${port}/health failed: connect ECONNREFUSED 127.0.0.1:${port}`);
  assert.ok(r.ms < 1000, `${r.ms} ms`);
});

Http('a bad port or path is a failed check, not a throw', async () => {
  const badPort = await probeHttp(70000, '/health', 500);
  assert.is(badPort.ok, false);
  assert.match(badPort.output, /could not be sent/);
  const badPath = await probeHttp(1, '/a b', 500);
  assert.is(badPath.ok, false);
  assert.match(badPath.output, /could not be sent/);
});

Http('probeHealth runs an http target', async ({ port }) => {
  const r = await probeHealth({ type: 'http', port, path: '/broken' }, { timeoutMs: 2000 });
  assert.equal([r.ok, r.output], [false, 'HTTP 500\ndatabase unreachable']);
});

Http.run();

// ---- commands ----

const Command = suite('health probe: command');

Command('true passes, false fails', async () => {
  const t = await probeCommand(['true'], { timeoutMs: 2000 });
  assert.equal([t.ok, t.output], [true, 'exit 0']);
  const f = await probeCommand(['false'], { timeoutMs: 2000 });
  assert.equal([f.ok, f.output], [false, 'exit 1']);
});

Command('the exit code and stdout+stderr are the output', async () => {
  const r = await probeCommand(['sh', '-c', 'echo x; echo y >&2; exit 3'], { timeoutMs: 2000 });
  assert.is(r.ok, false);
  assert.is(r.output, 'exit 3\nx\ny\n');
});

Command('the argv is not given to a shell', async () => {
  const r = await probeCommand(['echo', '$HOME;', 'exit', '1'], { timeoutMs: 2000 });
  assert.equal([r.ok, r.output], [true, 'exit 0\n$HOME; exit 1\n']);
});

Command('a command past its timeout is killed, and fails at the timeout', async () => {
  const r = await within('the probe', probeCommand(['sleep', '5'], { timeoutMs: TIMEOUT }), 3000);
  assert.is(r.ok, false);
  assert.is(r.output, `timed out after ${TIMEOUT} ms and was killed`);
  assert.ok(r.ms >= TIMEOUT - 5 && r.ms < TIMEOUT + 800, `${r.ms} ms`);
});

Command('on timeout the whole process group dies, grandchildren too, and output so far is kept', async () => {
  const r = await within('the probe', probeCommand(['sh', '-c', 'sleep 30 & echo $!; wait'], { timeoutMs: TIMEOUT }), 3000);
  assert.is(r.ok, false);
  const [head, pidLine] = r.output.split('\n');
  assert.is(head, `timed out after ${TIMEOUT} ms and was killed`);
  const pid = Number(pidLine);
  assert.ok(pid > 0, `the grandchild's pid: ${pidLine}`);
  await sleep(50);
  assert.not.ok(running(pid), `sleep ${pid} still runs`);
});

Command('something left running in the background does not outlive a passing check', async () => {
  const r = await within('the probe', probeCommand(['sh', '-c', 'sleep 30 & echo $!; exit 0'], { timeoutMs: 2000 }), 3000);
  assert.is(r.ok, true);
  const pid = Number(r.output.split('\n')[1]);
  assert.ok(pid > 0);
  assert.ok(r.ms < 1000, `${r.ms} ms: did not wait for the background sleep`);
  await sleep(50);
  assert.not.ok(running(pid), `sleep ${pid} still runs`);
});

Command('output over 1 KiB is cut to 1 KiB', async () => {
  const r = await probeCommand(['sh', '-c', 'i=0; while [ $i -lt 400 ]; do echo "line $i"; i=$((i+1)); done; exit 2'], { timeoutMs: 5000 });
  assert.is(r.ok, false);
  assert.is(utf8(r.output), HEALTH_LIMITS.outputBytes);
  assert.ok(r.output.startsWith('exit 2\nline 0\nline 1\n'));
  assert.ok(r.output.endsWith('…'));
});

Command('the command gets the env and cwd it is given, and a default PATH', async () => {
  const r = await probeCommand(['sh', '-c', 'echo "$DMS_PORT_HTTP $(pwd) $PATH"'], { timeoutMs: 2000, env: { DMS_PORT_HTTP: '41234' }, cwd: '/tmp' });
  assert.is(r.output, 'exit 0\n41234 /tmp /usr/local/bin:/usr/bin:/bin\n');
});

Command('a command that cannot run is a failed check, not a throw', async () => {
  const missing = await probeCommand(['no-such-command-dms'], { timeoutMs: 2000 });
  assert.is(missing.ok, false);
  assert.match(missing.output, /could not run no-such-command-dms: .*ENOENT/);
  const nul = await probeCommand(['sh', 'a\0b'], { timeoutMs: 2000 });
  assert.is(nul.ok, false);
  assert.match(nul.output, /could not run sh/);
  const empty = await probeCommand([], { timeoutMs: 2000 });
  assert.equal([empty.ok, empty.output], [false, 'the health check command is empty']);
  const badCwd = await probeCommand(['true'], { timeoutMs: 2000, cwd: '/no/such/dir' });
  assert.is(badCwd.ok, false);
});

Command('killed by a signal fails, naming it', async () => {
  const r = await probeCommand(['sh', '-c', 'kill -TERM $$'], { timeoutMs: 2000 });
  assert.equal([r.ok, r.output], [false, 'killed by SIGTERM']);
});

Command('probeHealth runs a command target', async () => {
  const r = await probeHealth({ type: 'command', command: ['sh', '-c', 'echo x; exit 3'] }, { timeoutMs: 2000 });
  assert.equal([r.ok, r.output], [false, 'exit 3\nx\n']);
});

Command.run();
