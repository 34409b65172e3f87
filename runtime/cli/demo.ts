/**
 * `demo`: starts a small network of three real nodes on loopback (each its own `node runtime/main.js` process with
 * a fresh data dir), deploys the sample WASM job from node A, narrates each step of the deal, shows the output
 * and the provider's resources before, during and after, and cleans up.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { formatBytes } from '../../machines/capability.ts';
import { JOB_TERMINAL } from '../../machines/deal.constants.ts';
import type { JobRecord } from '../../machines/requester.messages.ts';
import { ApiClient, TOKEN_FILE } from '../api/client.ts';
import type { EnsembleRecord } from '../../machines/ensemble.messages.ts';
import { ensembleSettled, formatEnsemble, formatJob } from './deal-commands.ts';
import { exampleModule } from '../executors/examples/examples.ts';

const MAIN = fileURLToPath(new URL('../main.js', import.meta.url));

interface DemoNode {
  readonly name: string;
  readonly child: ChildProcess;
  readonly peerId: string;
  readonly listen: string[];
  readonly api: ApiClient;
  stderr(): string;
}

export interface DemoOptions {
  readonly say: (line: string) => void;
  /** Keep the data dirs (their path is printed) instead of deleting them. */
  readonly keep: boolean;
}

async function startNode(name: string, dir: string, bootstrap: string[], extra: readonly string[] = []): Promise<DemoNode> {
  const args = [MAIN, 'run', '--data-dir', dir, '--api', '127.0.0.1:0', '--listen', '/ip4/127.0.0.1/tcp/0/ws', '--json', '--bid-window', '1s', ...bootstrap.flatMap((b) => ['--bootstrap', b]), ...extra];
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (err += d));
  const line = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`node ${name} was not ready within 60 s: ${err}`)), 60_000);
    child.stdout!.setEncoding('utf8').on('data', (d: string) => {
      out += d;
      const nl = out.indexOf('\n');
      if (nl >= 0) {
        clearTimeout(timer);
        resolve(out.slice(0, nl));
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`node ${name} exited with code ${code} before it was ready: ${err.trim().split('\n').at(-1) ?? ''}`));
    });
  });
  const ready = JSON.parse(line) as { peerId: string; listen: string[]; api: string };
  const token = (await fs.readFile(path.join(dir, TOKEN_FILE), 'utf8')).trim();
  return { name, child, peerId: ready.peerId, listen: ready.listen, api: new ApiClient(ready.api, token), stderr: () => err };
}

async function waitFor<T>(what: string, timeoutMs: number, probe: () => Promise<T | undefined>): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Follows a job on the node's event stream until `until` holds for its record; rejects after timeoutMs. */
async function follow<R>(what: string, timeoutMs: number, node: DemoNode, id: string, until: (r: R) => boolean, onRecord: (r: R) => void | Promise<void> = () => {}): Promise<R> {
  const { followJob } = await import('../api/job-follow.ts');
  return followJob<R>(node.api, id, { until, onRecord, signal: AbortSignal.timeout(timeoutMs) }).catch((e: Error) => {
    throw e?.name === 'TimeoutError' ? new Error(`timed out waiting for ${what}`) : e;
  });
}

type Cap = { cpu: number; memory: number };
async function available(n: DemoNode): Promise<Cap> {
  const info = (await n.api.request('GET', '/v1/info')) as { capability: { available: Cap } };
  return info.capability.available;
}
const showCap = (c: Cap) => `${c.cpu} cpu, ${formatBytes(c.memory)} memory free`;

export async function runDemo(opts: DemoOptions): Promise<number> {
  const { say } = opts;
  const root = await fs.mkdtemp(path.join(os.tmpdir(), 'dms-demo-'));
  const nodes: DemoNode[] = [];
  try {
    say(`1. Starting three nodes on loopback, each a real \`node runtime/main.js\` process with its own data dir under ${root}.`);
    say('   Each creates its identity (an ed25519 key), benchmarks the machine and registers what it offers.');
    const a = await startNode('A', path.join(root, 'A'), []);
    nodes.push(a);
    say(`   A is ready: ${a.peerId}`);
    // B and C also run process jobs (the second act's parts are small node programs)
    const rest = await Promise.all(['B', 'C'].map((n) => startNode(n, path.join(root, n), [a.listen[0]!], ['--executors', 'wasm,process'])));
    nodes.push(...rest);
    for (const n of rest) say(`   ${n.name} is ready: ${n.peerId} (joined through A)`);
    await waitFor('A to see B and C', 30_000, async () => {
      const peers = (await a.api.request('GET', '/v1/peers')) as { peer: string; dms: boolean }[];
      return peers.filter((p) => p.dms).length >= 2 ? true : undefined;
    });
    say('2. A is connected to B and C over libp2p (noise-encrypted, yamux-multiplexed websockets); every message is a signed envelope.');

    const dir = path.join(root, 'job');
    await fs.mkdir(dir);
    await fs.writeFile(path.join(dir, 'hello.wasm'), await exampleModule('hello'));
    const job = { name: 'hello', executor: 'wasm', wasm: { module: './hello.wasm', args: ['from', 'the', 'demo'], env: { GREETING: 'hi' } }, resources: { cpu: 0.5, memory: '64MiB' }, timeout: '30s' };
    await fs.writeFile(path.join(dir, 'job.json'), JSON.stringify(job, null, 2));
    const before = new Map(await Promise.all(rest.map(async (n) => [n.name, await available(n)] as const)));
    for (const n of rest) say(`   ${n.name} offers ${showCap(before.get(n.name)!)}`);

    say('3. Deploying a WASM job (hello.wasm, compiled from WAT in the repo) from A: `deploy job.json --wait`.');
    const { loadJobFile } = await import('./job-file.ts');
    const loaded = await loadJobFile(path.join(dir, 'job.json'));
    const rec = (await a.api.request('POST', '/v1/deploy', { job: loaded.job, module: Buffer.from(loaded.module!).toString('base64') })) as JobRecord;
    let seen = 0;
    let duringShown = false;
    const end = await follow<JobRecord>('the job to end', 60_000, a, rec.id, (r) => JOB_TERMINAL.includes(r.state), async (r) => {
      for (const h of r.history.slice(seen)) say(`   ${h.state.padEnd(12)} ${h.message}`);
      seen = r.history.length;
      if (!duringShown && r.provider && (r.state === 'running' || r.state === 'provisioning')) {
        const p = nodes.find((n) => n.peerId === r.provider);
        if (p) {
          duringShown = true;
          say(`   (${p.name} while the job holds its resources: ${showCap(await available(p))})`);
        }
      }
    });
    const provider = nodes.find((n) => n.peerId === end.provider);
    say(`4. The job ${end.state}${end.exitCode === null ? '' : ` with exit code ${end.exitCode}`} on ${provider?.name ?? end.provider}. Its status, as \`status ${end.id}\` shows it:`);
    for (const l of formatJob(end).split('\n')) say(`   ${l}`);
    const page = (await a.api.request('GET', `/v1/logs/${end.id}?offset=0`)) as { chunks: { stream: string; text: string }[] };
    say(`5. Its output, fetched from ${provider?.name ?? 'the provider'} with \`logs ${end.id}\`:`);
    for (const c of page.chunks) for (const l of c.text.trimEnd().split('\n')) say(`   [${c.stream}] ${l}`);
    if (provider) {
      const after = await waitFor('the resources to come back', 10_000, async () => {
        const c = await available(provider);
        const b = before.get(provider.name)!;
        return c.cpu === b.cpu && c.memory === b.memory ? c : undefined;
      });
      say(`6. ${provider.name} released the job's resources: ${showCap(after)}, exactly as before.`);
    }
    say(`   Everything each actor received is in its node's event log: \`replay --deal ${end.id} --data-dir ${path.join(root, 'A')} --data-dir ${path.join(root, 'B')} --data-dir ${path.join(root, 'C')}\` follows the deal across the three (run with --keep to keep them).`);
    const second = await secondAct(opts, root, a, rest[0]!, rest[1]!);
    return end.state === 'completed' && second ? 0 : 1;
  } finally {
    say('12. Stopping the nodes.');
    await Promise.all(
      nodes.map(
        (n) =>
          new Promise<void>((resolve) => {
            if (n.child.exitCode !== null) return resolve();
            const t = setTimeout(() => n.child.kill('SIGKILL'), 5000);
            n.child.once('exit', () => {
              clearTimeout(t);
              resolve();
            });
            n.child.kill('SIGTERM');
          }),
      ),
    );
    if (opts.keep) say(`   The data dirs stay in ${root}.`);
    else await fs.rm(root, { recursive: true, force: true });
  }
}

/** A small key-value service (GET /health, GET /get) on its named port, and a client that reads it. */
const KV_JS = "require('http').createServer((q,s)=>s.end(q.url==='/health'?'ok':'value-42')).listen(+process.env.DMS_PORT_HTTP,'127.0.0.1')";
const CLIENT_JS = "const [h,p]=process.env.DMS_ADDR_KV_HTTP.split(':');require('http').get({host:h,port:+p,path:'/get'},r=>{let t='';r.on('data',d=>t+=d);r.on('end',()=>console.log('the client read '+t+' from kv at '+process.env.DMS_ADDR_KV_HTTP))}).on('error',e=>{console.error(String(e));process.exit(3)})";

/** The second act: a two-part ensemble, a service on B and a task on C that calls it through the nodes' tunnel. */
async function secondAct(opts: DemoOptions, root: string, a: DemoNode, b: DemoNode, c: DemoNode): Promise<boolean> {
  const { say } = opts;
  const dir = path.join(root, 'ensemble');
  await fs.mkdir(dir);
  const file = path.join(dir, 'kv-demo.yaml');
  const yaml = [
    'name: kv-demo',
    'timeout: 2m',
    'allocations:',
    '  kv:',
    '    type: service',
    '    executor: process',
    `    process: { command: ${JSON.stringify(process.execPath)}, args: [-e, ${JSON.stringify(KV_JS)}] }`,
    '    resources: { cpu: 0.2, memory: 64MiB }',
    '    ports: [http]',
    '    healthcheck: { http: { port: http, path: /health }, interval: 500ms, retries: 3 }',
    `    constraints: { peers: [${b.peerId}] }`,
    '  client:',
    '    executor: process',
    `    process: { command: ${JSON.stringify(process.execPath)}, args: [-e, ${JSON.stringify(CLIENT_JS)}] }`,
    '    resources: { cpu: 0.2, memory: 64MiB }',
    '    dependsOn: [kv]',
    `    constraints: { peers: [${c.peerId}] }`,
    '',
  ].join('\n');
  await fs.writeFile(file, yaml);
  say(`8. Second act: an ensemble of two parts (${file}): \`kv\`, a service with a named port and a health check, pinned`);
  say('   to B; `client`, a task on C that depends on kv. Both are placed before either is allocated; the client starts');
  say('   once kv runs and passes its health check, and reaches it at DMS_ADDR_KV_HTTP: a local port on C that C tunnels');
  say("   over the nodes' own libp2p connection to kv's port on B (no public address, no VPN).");
  const { loadEnsembleFile } = await import('./ensemble-file.ts');
  const loaded = await loadEnsembleFile(file);
  const rec = (await a.api.request('POST', '/v1/deploy', { ensemble: loaded.ensemble, modules: {} })) as EnsembleRecord;
  let seen = 0;
  const up = await follow<EnsembleRecord>('the ensemble to be up', 60_000, a, rec.id, (r) => r.endedAt !== null || ensembleSettled(r), (r) => {
    for (const h of r.history.slice(seen)) say(`   ${h.state.padEnd(12)} ${h.message}`);
    seen = r.history.length;
  });
  say(`9. The ensemble is ${up.state}; \`status ${up.id}\` shows its parts:`);
  const text = formatEnsemble(up);
  // its history was shown as it happened
  for (const l of text.slice(0, text.indexOf('\nhistory') >>> 0).split('\n')) say(`   ${l}`);
  const page = (await a.api.request('GET', `/v1/logs/${up.id}?offset=0&part=client`)) as { chunks: { stream: string; text: string }[] };
  say(`10. The client's output, fetched from C with \`logs ${up.id} --part client\`:`);
  for (const ch of page.chunks) for (const l of ch.text.trimEnd().split('\n')) say(`   [${ch.stream}] ${l}`);
  const client = up.parts.find((p) => p.name === 'client');
  const ok = up.endedAt === null && client?.state === 'completed' && client.exitCode === 0;
  await a.api.request('POST', `/v1/jobs/${up.id}/cancel`);
  const ended = await follow<EnsembleRecord>('the ensemble to stop', 30_000, a, up.id, (r) => r.endedAt !== null);
  const held = await Promise.all([b, c].map(async (n) => ((await n.api.request('GET', '/v1/info')) as { allocations: unknown[] }).allocations.length));
  say(`11. \`cancel ${up.id}\`: the ensemble is ${ended.state}; kv was stopped on B, and B and C hold ${held[0]! + held[1]! === 0 ? 'nothing for it any more' : `${held.join(' and ')} allocations still`}.`);
  return ok;
}
