/**
 * End to end: `node runtime/main.js config` shows what `run` would use, from flags, DMS_* variables, the data dir's
 * config.yaml and the defaults, and `run` really takes a value from the file. Real processes, the compiled JS.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { promises as fs } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { SETTINGS } from '../../runtime/config-sources.ts';
import { MAIN, ROOT, makeTempDir, removeTempDirs } from './harness.ts';

interface Report {
  file: string | null;
  settings: { name: string; value: unknown; source: string; from: string | null }[];
}

interface Result {
  code: number | null;
  stdout: string;
  stderr: string;
}

const children = new Set<ChildProcess>();

/** The environment without any DMS_* variable of the developer's, plus `extra`. */
function envWith(extra: Record<string, string>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { NO_COLOR: '1' };
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('DMS_')) env[k] = v;
  return { ...env, ...extra };
}

function start(args: readonly string[], env: Record<string, string>): ChildProcess {
  const child = spawn(process.execPath, [MAIN, ...args], { cwd: ROOT, env: envWith(env), stdio: ['ignore', 'pipe', 'pipe'] });
  children.add(child);
  child.once('exit', () => children.delete(child));
  return child;
}

/** Runs `main.js ...args` to its end (at most 15 s). */
function dms(args: readonly string[], env: Record<string, string> = {}): Promise<Result> {
  const child = start(args, env);
  let stdout = '';
  let stderr = '';
  child.stdout!.setEncoding('utf8').on('data', (d: string) => (stdout += d));
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`main.js ${args.join(' ')} did not finish in 15 s\n${stderr}`));
    }, 15_000);
    child.once('close', (code) => {
      clearTimeout(t);
      resolve({ code, stdout, stderr });
    });
  });
}

/** A loopback port free a moment ago. */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as net.AddressInfo;
      srv.close(() => resolve(port));
    });
  });
}

interface Ctx {
  dir: string;
}

const Config = suite<Ctx>('e2e: config shows the effective settings and their sources', { dir: '' });

Config.before.each(async (ctx) => {
  ctx.dir = await makeTempDir('config');
  await fs.writeFile(path.join(ctx.dir, 'config.yaml'), ['api: 127.0.0.1:3000', 'bid-window: 750ms', 'cpu: 1.5', 'listen:', '  - /ip4/127.0.0.1/tcp/0/ws', 'rebenchmark: true', ''].join('\n'));
});

Config.after(async () => {
  for (const c of children) c.kill('SIGKILL');
  await removeTempDirs();
});

Config('--json: each value with its source: flag over env over file over default', async ({ dir }) => {
  const r = await dms(['config', '--data-dir', dir, '--cpu', '2', '--json'], { DMS_API: '127.0.0.1:2000', DMS_CPU: '3', DMS_MAX_PEERS: '20' });
  assert.is(r.code, 0, r.stderr);
  const report = JSON.parse(r.stdout) as Report;
  const file = path.join(dir, 'config.yaml');
  assert.is(report.file, file);
  const by = Object.fromEntries(report.settings.map((s) => [s.name, s]));
  assert.equal(by['data-dir'], { name: 'data-dir', value: dir, source: 'flag', from: null });
  assert.equal(by.cpu, { name: 'cpu', value: '2', source: 'flag', from: null });
  assert.equal(by.api, { name: 'api', value: '127.0.0.1:2000', source: 'env', from: 'DMS_API' });
  assert.equal(by['max-peers'], { name: 'max-peers', value: '20', source: 'env', from: 'DMS_MAX_PEERS' });
  assert.equal(by['bid-window'], { name: 'bid-window', value: '750ms', source: 'file', from: file });
  assert.equal(by.listen, { name: 'listen', value: ['/ip4/127.0.0.1/tcp/0/ws'], source: 'file', from: file });
  assert.equal(by.rebenchmark, { name: 'rebenchmark', value: true, source: 'file', from: file });
  assert.equal(by['log-level'], { name: 'log-level', value: 'warn', source: 'default', from: null });
  assert.equal(by['monitor-interval'], { name: 'monitor-interval', value: '5000', source: 'default', from: null });
  assert.is(report.settings.length, SETTINGS.length, 'one row per run setting');
  assert.ok(SETTINGS.length >= 21, 'every run flag is a setting');
});

Config('the human table: one aligned row per setting, naming the file and each source', async ({ dir }) => {
  const r = await dms(['config', '--data-dir', dir], { DMS_API: '127.0.0.1:2000' });
  assert.is(r.code, 0, r.stderr);
  const lines = r.stdout.trimEnd().split('\n');
  assert.is(lines[0], `config file  ${path.join(dir, 'config.yaml')} (in the data dir)`);
  assert.match(lines[1]!, /^setting\s+value\s+source$/);
  assert.match(r.stdout, /^api\s+127\.0\.0\.1:2000\s+env DMS_API$/m);
  assert.match(r.stdout, new RegExp(`^bid-window\\s+750ms\\s+file ${path.join(dir, 'config.yaml').replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}$`, 'm'));
  assert.match(r.stdout, /^log-level\s+warn\s+default$/m);
  const rows = lines.slice(1);
  assert.is(rows.length, SETTINGS.length + 1, 'a header and one row per setting');
  const sourceAt = (l: string) => l.search(/ (source|flag|env \S+|file \S+|default)$/);
  assert.is(new Set(rows.map(sourceAt)).size, 1, `the source column lines up:\n${r.stdout}`);
});

Config('a bad environment value: exit 2, one line naming the variable', async ({ dir }) => {
  const r = await dms(['config', '--data-dir', dir, '--cpu', '2'], { DMS_CPU: 'abc' });
  assert.is(r.code, 2, r.stderr);
  assert.is(r.stdout, '');
  assert.is(r.stderr, 'error: DMS_CPU="abc" (environment): --cpu "abc" is not a number of cores; use e.g. --cpu 2 or --cpu 1.5\n');
});

Config('a bad file value: exit 2 naming the file and the key, for config and run alike', async ({ dir }) => {
  await fs.appendFile(path.join(dir, 'config.yaml'), 'retain: 5m\n');
  for (const cmd of ['config', 'run']) {
    const r = await dms([cmd, '--data-dir', dir, '--retain', '2d']);
    assert.is(r.code, 2, `${cmd}: ${r.stderr}`);
    assert.is(r.stderr, `error: ${path.join(dir, 'config.yaml')}: retain: --retain "5m" is not a duration of at least 1h; use e.g. --retain 7d, 36h, or 0 to keep everything\n`, cmd);
  }
});

Config('run takes its API address from the data dir\'s config.yaml', async ({ dir }) => {
  const port = await freePort();
  await fs.writeFile(path.join(dir, 'config.yaml'), `api: 127.0.0.1:${port}\nbid-window: 500ms\n`);
  const node = start(['run', '--data-dir', dir, '--listen', '/ip4/127.0.0.1/tcp/0/ws', '--json'], {});
  let out = '';
  let err = '';
  node.stderr!.setEncoding('utf8').on('data', (d: string) => (err += d));
  const ready = await new Promise<{ api: string }>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`no ready line in 30 s: ${err}`)), 30_000);
    node.stdout!.setEncoding('utf8').on('data', (d: string) => {
      out += d;
      if (out.includes('\n')) {
        clearTimeout(t);
        resolve(JSON.parse(out.split('\n')[0]!) as { api: string });
      }
    });
    node.once('exit', (code) => reject(new Error(`run exited (${String(code)}) before it was ready: ${err}`)));
  });
  const exited = new Promise<number | null>((resolve) => node.once('exit', (code) => resolve(code)));
  node.kill('SIGTERM');
  assert.is(ready.api, `http://127.0.0.1:${port}`);
  assert.is(await exited, 0, err);
});

Config.run();
