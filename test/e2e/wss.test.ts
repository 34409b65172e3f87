/**
 * /wss: a node given a certificate listens on secure websockets, and a node that trusts the certificate joins
 * through that address. The certificate is a fresh self-signed one for 127.0.0.1 (made with openssl).
 */
import { spawn, spawnSync } from 'node:child_process';
import path from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { MAIN, ROOT, type NodeProcess, cli, cliJson, eventually, killAll, makeTempDir, removeTempDirs, startNode } from './harness.ts';

/** The secure one of a node's listen addresses (the harness adds a plain /ws one too). */
const secure = (listen: readonly string[]) => listen.find((a) => /\/(tls\/ws|wss)\//.test(a));

interface Ctx {
  dir: string;
  a: NodeProcess;
  b: { child: ReturnType<typeof spawn>; ready: { peerId: string }; dataDir: string };
}

const Wss = suite<Ctx>('secure websockets with a certificate');

Wss.before(async (ctx) => {
  ctx.dir = await makeTempDir('wss-cert');
  const cert = path.join(ctx.dir, 'cert.pem');
  const key = path.join(ctx.dir, 'key.pem');
  const made = spawnSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', key, '-out', cert, '-days', '1', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1']);
  assert.is(made.status, 0, `openssl could not make a test certificate: ${String(made.stderr)}`);
  ctx.a = await startNode(await makeTempDir('wss-a'), ['--listen', '/ip4/127.0.0.1/tcp/0/wss', '--tls-cert', cert, '--tls-key', key], { timeoutMs: 60_000 });
  // B trusts the certificate through NODE_EXTRA_CA_CERTS, so it is started here rather than by the harness
  const dataDir = await makeTempDir('wss-b');
  const child = spawn(process.execPath, [MAIN, 'run', '--data-dir', dataDir, '--api', '127.0.0.1:0', '--listen', '/ip4/127.0.0.1/tcp/0/ws', '--bootstrap', secure(ctx.a.ready.listen)!, '--json'], {
    cwd: ROOT,
    env: { ...process.env, NODE_EXTRA_CA_CERTS: cert, DMS_HOME: '' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const ready = await new Promise<{ peerId: string }>((resolve, reject) => {
    let out = '';
    let err = '';
    const t = setTimeout(() => reject(new Error(`B printed no ready line within 60 s: ${err}`)), 60_000);
    child.stderr!.on('data', (d: Buffer) => (err += d));
    child.stdout!.on('data', (d: Buffer) => {
      out += d;
      if (out.includes('\n')) {
        clearTimeout(t);
        resolve(JSON.parse(out.split('\n')[0]!) as { peerId: string });
      }
    });
    child.once('exit', (code) => reject(new Error(`B exited with ${code}: ${err}`)));
  });
  ctx.b = { child, ready, dataDir };
});

Wss.after(async (ctx) => {
  if (ctx.b && ctx.b.child.exitCode === null) {
    const gone = new Promise((r) => ctx.b.child.once('exit', r));
    ctx.b.child.kill('SIGTERM');
    await Promise.race([gone, new Promise((r) => setTimeout(r, 5000))]);
    ctx.b.child.kill('SIGKILL');
  }
  await ctx.a?.stop().catch(() => {});
  await killAll();
  await removeTempDirs();
});

Wss('the ready line shows the secure address with /p2p/<peerId>', ({ a }) => {
  assert.match(secure(a.ready.listen) ?? JSON.stringify(a.ready.listen), new RegExp(`^/ip4/127\\.0\\.0\\.1/tcp/\\d+/(tls/ws|wss)/p2p/${a.ready.peerId}$`));
});

Wss('a node that trusts the certificate joins through /wss, and both list each other', async ({ a, b }) => {
  const lists = async (dir: string, peer: string) => (await cliJson<{ peer: string; dms: boolean }[]>(['peers', '--data-dir', dir])).some((p) => p.peer === peer && p.dms);
  assert.ok(await eventually(() => lists(b.dataDir, a.ready.peerId), 20_000), 'B does not list A');
  const seen = (await cliJson<{ peer: string; remoteAddr: string }[]>(['peers', '--data-dir', b.dataDir])).find((p) => p.peer === a.ready.peerId)!;
  assert.match(seen.remoteAddr, /\/(tls\/ws|wss)\//);
  assert.ok(await eventually(() => lists(a.dataDir, b.ready.peerId), 20_000), 'A does not list B');
  const ping = await cli(['ping', a.ready.peerId, '--count', '3', '--data-dir', b.dataDir]);
  assert.is(ping.code, 0, ping.stderr);
});

Wss('a /wss listen address without a certificate is refused as bad usage', async () => {
  const r = await cli(['run', '--data-dir', await makeTempDir('wss-c'), '--api', 'off', '--listen', '/ip4/127.0.0.1/tcp/0/wss']);
  assert.is(r.code, 2);
  assert.match(r.stderr, /--tls-cert/);
});

Wss.run();
