/**
 * End to end: ensembles between real `node runtime/main.js` processes on loopback, through the CLI as a user would.
 *   A  the requester
 *   B, C  providers that run process jobs (`--executors wasm,process`)
 * The kv + client ensemble: a small HTTP key-value service on B (health-checked on its named port) and a task on C
 * that reads it through the tunnel the nodes open between them (`DMS_ADDR_KV_HTTP`). Then cancel (nothing left
 * running, every ledger as it was), all-or-nothing placement, and bad files.
 */
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import type { EnsembleRecord } from '../../machines/ensemble.messages.ts';
import { exampleModule } from '../../runtime/executors/examples/examples.ts';
import { type NodeApiClient, type NodeProcess, apiOf, cli, cliJson, killAll, makeTempDir, removeTempDirs, startNode, waitFor, type PeerRow } from './harness.ts';

interface Ctx {
  A: NodeProcess;
  B: NodeProcess;
  C: NodeProcess;
  apis: { A: NodeApiClient; B: NodeApiClient; C: NodeApiClient };
  dir: string;
  kv?: EnsembleRecord;
}

const E = suite<Ctx>('e2e: ensembles across real nodes', {} as Ctx);

E.before(async (ctx) => {
  try {
    const flags = ['--bid-window', '500ms'];
    ctx.A = await startNode(await makeTempDir('ens-a'), flags, { timeoutMs: 40_000 });
    const boot = ['--bootstrap', ctx.A.ready.listen[0]!];
    const prov = [...flags, ...boot, '--cpu', '1', '--executors', 'wasm,process'];
    [ctx.B, ctx.C] = await Promise.all([startNode(await makeTempDir('ens-b'), prov, { timeoutMs: 40_000 }), startNode(await makeTempDir('ens-c'), prov, { timeoutMs: 40_000 })]);
    ctx.apis = { A: await apiOf(ctx.A), B: await apiOf(ctx.B), C: await apiOf(ctx.C) };
    await waitFor('A to see B and C as DMS peers', async () => {
      const dms = new Set((await ctx.apis.A.get<PeerRow[]>('/v1/peers')).filter((p) => p.dms).map((p) => p.peer));
      return dms.has(ctx.B.ready.peerId) && dms.has(ctx.C.ready.peerId) ? true : undefined;
    }, 30_000, 200);
    ctx.dir = await makeTempDir('ens-files');
  } catch (e) {
    process.stderr.write(`e2e ensembles: the network did not come up: ${(e as Error).stack ?? String(e)}\n`);
    throw e;
  }
});

E.after(async () => {
  await killAll();
  await removeTempDirs();
});

const NODE = JSON.stringify(process.execPath);
/** The kv service: GET /health answers ok, GET /get the value (after a short warm-up, so the health check matters). */
const KV_JS = `const http=require('http');const t0=Date.now();http.createServer((q,s)=>{if(q.url==='/health'){s.statusCode=Date.now()-t0>300?200:503;return s.end('ok')}s.end('value-42')}).listen(+process.env.DMS_PORT_HTTP,'127.0.0.1')`;
/** The client: reads kv through the address its provider gives it, prints what it got (node:http; fetch needs more memory than a 64 MiB job has, for its WASM parser). */
const CLIENT_JS = "const [h,p]=process.env.DMS_ADDR_KV_HTTP.split(':');require('http').get({host:h,port:+p,path:'/get'},r=>{let t='';r.on('data',d=>t+=d);r.on('end',()=>console.log('client got '+t))}).on('error',e=>{console.error(String(e));process.exit(3)})";

function kvDemo(ctx: Ctx, over: { clientCpu?: number; clientPeers?: string[] } = {}): string {
  return `name: kv-demo
timeout: 2m
recovery: one_for_one
allocations:
  kv:
    type: service
    executor: process
    process: { command: ${NODE}, args: [-e, ${JSON.stringify(KV_JS)}] }
    resources: { cpu: 0.2, memory: 64MiB }
    ports: [http]
    healthcheck: { http: { port: http, path: /health }, interval: 200ms, retries: 3 }
    restart: on-failure
    constraints: { peers: [${ctx.B.ready.peerId}] }
  client:
    executor: process
    process: { command: ${NODE}, args: [-e, ${JSON.stringify(CLIENT_JS)}] }
    resources: { cpu: ${over.clientCpu ?? 0.2}, memory: 64MiB }
    dependsOn: [kv]
    constraints: { peers: [${(over.clientPeers ?? [ctx.C.ready.peerId]).join(', ')}] }
`;
}

async function write(ctx: Ctx, name: string, text: string): Promise<string> {
  const f = path.join(ctx.dir, name);
  await fs.writeFile(f, text);
  return f;
}

const dataDir = (n: NodeProcess) => ['--data-dir', n.dataDir];
const part = (r: EnsembleRecord, name: string) => r.parts.find((p) => p.name === name)!;

E('deploy --wait: kv runs healthy on B, the client on C reads it through the tunnel and completes', async (ctx) => {
  const f = await write(ctx, 'kv-demo.yaml', kvDemo(ctx));
  const r = await cli(['deploy', f, '--wait', ...dataDir(ctx.A)], { timeoutMs: 90_000 });
  if (r.code !== 0) {
    const id = /^ensemble (\S+)/.exec(r.stdout)?.[1] ?? '';
    const out = await Promise.all(['kv', 'client'].map((p) => cli(['logs', id, '--part', p, ...dataDir(ctx.A)])));
    assert.unreachable(`deploy --wait exited ${r.code}: ${r.stdout}\n${r.stderr}\nkv: ${out[0]!.stdout}${out[0]!.stderr}\nclient: ${out[1]!.stdout}${out[1]!.stderr}\nA: ${ctx.A.stderr().slice(-2000)}\nB: ${ctx.B.stderr().slice(-2000)}\nC: ${ctx.C.stderr().slice(-2000)}`);
  }
  assert.match(r.stdout, /^ensemble \S+ \(kv-demo\)/);
  assert.match(r.stdout, /kv running, client completed \(exit 0\)/);
  const id = /^ensemble (\S+)/.exec(r.stdout)![1]!;
  const rec = await cliJson<EnsembleRecord>(['status', id, '--json', ...dataDir(ctx.A)]);
  ctx.kv = rec;
  assert.is(rec.kind, 'ensemble');
  assert.is(part(rec, 'kv').provider, ctx.B.ready.peerId);
  assert.is(part(rec, 'kv').state, 'running');
  assert.is(part(rec, 'kv').healthy, true);
  assert.is(part(rec, 'client').provider, ctx.C.ready.peerId);
  assert.is(part(rec, 'client').state, 'completed');
  assert.is(part(rec, 'client').exitCode, 0);
  const logs = await cli(['logs', id, '--part', 'client', ...dataDir(ctx.A)]);
  assert.is(logs.code, 0, logs.stderr);
  assert.is(logs.stdout, 'client got value-42\n', 'the client read the service on another node');
  // `jobs` lists the ensemble, not its parts' own negotiations
  const jobs = await cliJson<{ id: string }[]>(['jobs', '--json', ...dataDir(ctx.A)]);
  assert.equal(jobs.filter((j) => j.id.startsWith(id)).map((j) => j.id), [id]);
});

E('cancel stops the service everywhere and every provider holds nothing for it', async (ctx) => {
  const id = ctx.kv?.id;
  assert.ok(id, 'the first test deployed the ensemble');
  const r = await cli(['cancel', id!, '--json', ...dataDir(ctx.A)]);
  assert.is(r.code, 0, r.stderr);
  const ended = await waitFor('the ensemble to end', async () => {
    const rec = await cliJson<EnsembleRecord>(['status', id!, '--json', ...dataDir(ctx.A)]);
    return rec.endedAt !== null ? rec : undefined;
  }, 20_000, 200);
  assert.is(ended.state, 'cancelled');
  assert.is(part(ended, 'kv').state, 'terminated');
  for (const [name, api] of [['B', ctx.apis.B], ['C', ctx.apis.C]] as const) {
    await waitFor(`${name} to hold no lock or allocation`, async () => {
      const info = await api.get<{ locks: unknown[]; allocations: unknown[] }>('/v1/info');
      return info.locks.length === 0 && info.allocations.length === 0 ? true : undefined;
    }, 15_000, 200);
  }
});

E('all or nothing: a part no provider can take fails the ensemble at once, and no provider keeps a lock', async (ctx) => {
  // the client asks for more cpu than C has at all: C declines too-large, so the whole ensemble fails
  const f = await write(ctx, 'too-big.yaml', kvDemo(ctx, { clientCpu: 64 }));
  const r = await cli(['deploy', f, '--wait', '--json', ...dataDir(ctx.A)], { timeoutMs: 60_000 });
  assert.is(r.code, 1, r.stdout);
  const end = JSON.parse(r.stdout.trim().split('\n').at(-1)!) as EnsembleRecord & { event: string };
  assert.is(end.state, 'failed');
  assert.match(end.message, /part client failed: no provider can take this job/);
  for (const [name, api] of [['B', ctx.apis.B], ['C', ctx.apis.C]] as const) {
    await waitFor(`${name} to hold no lock`, async () => ((await api.get<{ locks: unknown[] }>('/v1/info')).locks.length === 0 ? true : undefined), 15_000, 200);
  }
});

E('twelve parts (more than the 8 bids a provider holds for one requester) are all placed and complete', async (ctx) => {
  await fs.writeFile(path.join(ctx.dir, 'hello.wasm'), await exampleModule('hello'));
  const parts = Array.from({ length: 12 }, (_, i) => `  p${i}:\n    executor: wasm\n    wasm: { module: ./hello.wasm }\n    resources: { cpu: 0.01, memory: 32MiB }\n`).join('');
  const f = await write(ctx, 'twelve.yaml', `name: twelve\ntimeout: 2m\nallocations:\n${parts}`);
  const r = await cli(['deploy', f, '--wait', '--json', ...dataDir(ctx.A)], { timeoutMs: 90_000 });
  assert.is(r.code, 0, r.stdout.slice(-3000) + r.stderr);
  const end = JSON.parse(r.stdout.trim().split('\n').at(-1)!) as EnsembleRecord;
  assert.is(end.parts.length, 12);
  assert.ok(end.parts.every((p) => p.state === 'completed' && p.exitCode === 0), JSON.stringify(end.parts.map((p) => [p.name, p.state])));
});

E('recovery: a service that fails for good (restart: never) is started again by the ensemble, and then runs', async (ctx) => {
  // its first run leaves a marker and exits 1; the run the ensemble starts again finds it and serves
  const marker = path.join(os.tmpdir(), `dms-flaky-${process.pid}-${Date.now()}`);
  const js = `const fs=require('fs');const m=${JSON.stringify(marker)};if(!fs.existsSync(m)){fs.writeFileSync(m,'1');setTimeout(()=>process.exit(1),300)}else{require('http').createServer((q,s)=>s.end('ok')).listen(+process.env.DMS_PORT_HTTP,'127.0.0.1')}`;
  const f = await write(ctx, 'flaky.yaml', `name: flaky
timeout: 2m
allocations:
  web:
    type: service
    executor: process
    process: { command: ${NODE}, args: [-e, ${JSON.stringify(js)}] }
    resources: { cpu: 0.2, memory: 64MiB }
    ports: [http]
    healthcheck: { http: { port: http, path: /health }, interval: 200ms, retries: 2 }
    restart: never
`);
  try {
    const r = await cli(['deploy', f, '--wait', '--json', ...dataDir(ctx.A)], { timeoutMs: 60_000 });
    assert.is(r.code, 0, r.stdout.slice(-3000) + r.stderr);
    const up = JSON.parse(r.stdout.trim().split('\n').at(-1)!) as EnsembleRecord;
    const web = part(up, 'web');
    assert.is(web.state, 'running');
    assert.is(web.healthy, true);
    assert.ok(web.restarts >= 1, `restarts ${web.restarts}`);
    assert.match(JSON.stringify(up.history), /part web failed \(.*\); starting web again \(recovery one_for_one\)/);
    assert.is(web.dealId, `${up.id}@web.1`, 'the part runs under its new negotiation');
    const c = await cli(['cancel', up.id, ...dataDir(ctx.A)]);
    assert.is(c.code, 0, c.stderr);
  } finally {
    await fs.rm(marker, { force: true });
  }
});

E('bad ensemble files exit 2 naming the field, before anything is sent', async (ctx) => {
  const cycle = await write(ctx, 'cycle.yaml', kvDemo(ctx).replace('    restart: on-failure\n', '    restart: on-failure\n    dependsOn: [client]\n'));
  const r = await cli(['deploy', cycle, ...dataDir(ctx.A)]);
  assert.is(r.code, 2, r.stderr);
  assert.match(r.stderr, /kv -> client -> kv|client -> kv -> client/);
  const unknownDep = await write(ctx, 'unknown.yaml', kvDemo(ctx).replace('dependsOn: [kv]', 'dependsOn: [db]'));
  const u = await cli(['deploy', unknownDep, ...dataDir(ctx.A)]);
  assert.is(u.code, 2);
  assert.match(u.stderr, /allocations\.client\.dependsOn/);
  assert.match(u.stderr, /db/);
});

E('the requester SIGKILLed and started again: the ensemble comes back from its log, still running, and cancel still works', async (ctx) => {
  const text = kvDemo(ctx).replace(/\n {2}client:[\s\S]*$/, '\n');
  const f = await write(ctx, 'kv-only.yaml', text);
  const r = await cli(['deploy', f, '--wait', '--json', ...dataDir(ctx.A)], { timeoutMs: 60_000 });
  assert.is(r.code, 0, r.stdout + r.stderr);
  const up = JSON.parse(r.stdout.trim().split('\n').at(-1)!) as EnsembleRecord;
  assert.is(part(up, 'kv').state, 'running');
  const gone = await ctx.A.stop('SIGKILL');
  assert.is(gone.signal, 'SIGKILL');
  // a new address: A dials its providers this time
  ctx.A = await startNode(ctx.A.dataDir, ['--bid-window', '500ms', '--bootstrap', ctx.B.ready.listen[0]!, '--bootstrap', ctx.C.ready.listen[0]!], { timeoutMs: 40_000 });
  ctx.apis.A = await apiOf(ctx.A);
  const back = await waitFor('the ensemble to be running again on A, kv healthy on B', async () => {
    const rec = await cliJson<EnsembleRecord>(['status', up.id, '--json', ...dataDir(ctx.A)]);
    const kv = part(rec, 'kv');
    return rec.state === 'running' && kv.state === 'running' && kv.healthy === true ? rec : undefined;
  }, 30_000, 250);
  assert.is(part(back, 'kv').provider, ctx.B.ready.peerId, 'not moved: B was there all along');
  assert.is(part(back, 'kv').restarts, 0);
  const c = await cli(['cancel', up.id, ...dataDir(ctx.A)]);
  assert.is(c.code, 0, c.stderr);
  await waitFor('B to hold nothing', async () => ((await ctx.apis.B.get<{ allocations: unknown[] }>('/v1/info')).allocations.length === 0 ? true : undefined), 20_000, 200);
  const ended = await cliJson<EnsembleRecord>(['status', up.id, '--json', ...dataDir(ctx.A)]);
  assert.is(ended.state, 'cancelled');
});

E('failover: the provider of a service is SIGKILLed; the service is placed again on the other provider', async (ctx) => {
  // kv alone, allowed on B or C; lost after 6 s of silence (the requester's lostAfterMs), then placed again
  const text = kvDemo(ctx).replace(/\n {2}client:[\s\S]*$/, '\n').replace(`constraints: { peers: [${ctx.B.ready.peerId}] }`, `constraints: { peers: [${ctx.B.ready.peerId}, ${ctx.C.ready.peerId}] }`);
  const f = await write(ctx, 'kv-alone.yaml', text);
  const r = await cli(['deploy', f, '--wait', '--json', ...dataDir(ctx.A)], { timeoutMs: 60_000 });
  assert.is(r.code, 0, r.stdout + r.stderr);
  const up = JSON.parse(r.stdout.trim().split('\n').at(-1)!) as EnsembleRecord;
  const first = part(up, 'kv').provider!;
  const [victim, survivor] = first === ctx.B.ready.peerId ? [ctx.B, ctx.C] : [ctx.C, ctx.B];
  const killedAt = Date.now();
  await victim.kill();
  const moved = await waitFor('kv to run healthy on the other provider', async () => {
    const rec = await cliJson<EnsembleRecord>(['status', up.id, '--json', ...dataDir(ctx.A)]);
    const kv = part(rec, 'kv');
    return kv.provider === survivor.ready.peerId && kv.state === 'running' && kv.healthy === true ? rec : undefined;
  }, 40_000, 250);
  const tookMs = Date.now() - killedAt;
  assert.ok(part(moved, 'kv').restarts >= 1, 'the move counts as a restart');
  assert.match(JSON.stringify(moved.history), /part kv moved to/);
  assert.ok(tookMs < 30_000, `the move took ${tookMs} ms`);
  const c = await cli(['cancel', up.id, ...dataDir(ctx.A)]);
  assert.is(c.code, 0, c.stderr);
});

E.run();
