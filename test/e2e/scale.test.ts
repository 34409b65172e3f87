/**
 * End to end: bid requests reach every node of a network larger than a dozen, and nodes that are not neighbours
 * of the requester (reached only through the gossip mesh). Real `node runtime/main.js` processes on loopback.
 *
 *   Fifteen  15 nodes joined through the first (every node shares 127.0.0.1: gossipsub's IP-colocation penalty
 *            once graylisted them all from the 14th peer on); a hello job deployed from the last node.
 *   Relay    a chain A - B - C (`--max-peers 1`: nobody dials past its first peer); A deploys a job that excludes
 *            B, its only neighbour, so only C can take it: B relays the request, C answers A directly.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import type { JobRecord } from '../../machines/requester.messages.ts';
import { exampleModule } from '../../runtime/executors/examples/examples.ts';
import { type NetInfo, type NodeApiClient, type NodeProcess, type PeerRow, apiOf, cli, jobUntil, killAll, makeTempDir, removeTempDirs, startMany, startNode, untilMeshed, waitFor } from './harness.ts';

const TERMINAL = ['completed', 'failed', 'cancelled'];

/** A hello.wasm job file in a fresh directory; `constraints` as the job file has them. */
async function helloJob(constraints: Record<string, string[]> = {}): Promise<string> {
  const dir = await makeTempDir('scale-job');
  await fs.writeFile(path.join(dir, 'hello.wasm'), await exampleModule('hello'));
  const file = path.join(dir, 'job.json');
  await fs.writeFile(file, JSON.stringify({ name: 'hello', executor: 'wasm', wasm: { module: './hello.wasm', args: ['far'] }, resources: { cpu: 0.5, memory: '64MiB' }, timeout: '30s', constraints }));
  return file;
}

/** Deploys from `node` and waits for the end through the API; the job's final record. */
async function deployAndWait(node: NodeProcess, api: NodeApiClient, file: string): Promise<JobRecord> {
  const r = await cli(['deploy', file, '--data-dir', node.dataDir, '--json']);
  assert.is(r.code, 0, `deploy exited ${String(r.code)}: ${r.stderr}`);
  const { id } = JSON.parse(r.stdout) as { id: string };
  return jobUntil(api, id, 'the job to end', (j) => TERMINAL.includes(j.state), 30_000);
}

// ---------------------------------------------------------------------------------------------------------------

interface FifteenCtx {
  nodes: NodeProcess[];
  apis: NodeApiClient[];
}

const Fifteen = suite<FifteenCtx>('e2e: fifteen nodes, a bid request reaches every one', {} as FifteenCtx);

Fifteen.before(async (ctx) => {
  try {
    ctx.nodes = await startMany(15, ['--cpu', '1', '--bid-window', '2s'], { label: 'fifteen' });
    ctx.apis = await Promise.all(ctx.nodes.map(apiOf));
    await untilMeshed(ctx.apis);
  } catch (e) {
    process.stderr.write(`e2e scale: the 15 nodes did not come up: ${(e as Error).stack ?? String(e)}\n`);
    throw e;
  }
});

Fifteen.after(async () => {
  await killAll();
  await removeTempDirs();
});

Fifteen('a job deployed from a node that is not the bootstrap completes, and all 14 others heard its request', async ({ nodes, apis }) => {
  const before = await Promise.all(apis.map(async (a) => (await a.get<NetInfo>('/v1/info')).messages!.broadcastIn));
  const requester = nodes.length - 1;
  const job = await deployAndWait(nodes[requester]!, apis[requester]!, await helloJob());
  assert.is(job.state, 'completed', job.message);
  assert.is(job.exitCode, 0);
  assert.ok(job.provider && job.provider !== nodes[requester]!.ready.peerId);
  assert.is(job.rounds, 1, `placed in round ${job.rounds}: ${JSON.stringify(job.history)}`);
  const after = await Promise.all(apis.map(async (a) => (await a.get<NetInfo>('/v1/info')).messages!.broadcastIn));
  const deaf = nodes.flatMap((n, i) => (i !== requester && after[i]! <= before[i]! ? [`#${i} ${n.ready.peerId}`] : []));
  assert.equal(deaf, [], `nodes the bid request never reached: ${deaf.join(', ')}`);
});

Fifteen('the network is one hop wide: every node reports all 14 others subscribed and none beyond', async ({ apis }) => {
  const reach = await Promise.all(apis.map(async (a) => (await a.get<NetInfo>('/v1/info')).reach));
  for (const r of reach) assert.equal(r, { connected: 14, subscribed: 14, beyond: 0 });
});

Fifteen.run();

// ---------------------------------------------------------------------------------------------------------------

interface RelayCtx {
  a: NodeProcess;
  b: NodeProcess;
  c: NodeProcess;
  A: NodeApiClient;
  C: NodeApiClient;
}

const Relay = suite<RelayCtx>('e2e: a bid request relayed through the gossip mesh', {} as RelayCtx);

Relay.before(async (ctx) => {
  try {
    const flags = ['--cpu', '1', '--max-peers', '1'];
    ctx.a = await startNode(await makeTempDir('relay-a'), flags);
    ctx.b = await startNode(await makeTempDir('relay-b'), [...flags, '--bootstrap', ctx.a.ready.listen[0]!]);
    ctx.c = await startNode(await makeTempDir('relay-c'), [...flags, '--bootstrap', ctx.b.ready.listen[0]!]);
    ctx.A = await apiOf(ctx.a);
    ctx.C = await apiOf(ctx.c);
  } catch (e) {
    process.stderr.write(`e2e relay: the chain did not come up: ${(e as Error).stack ?? String(e)}\n`);
    throw e;
  }
});

Relay.after(async () => {
  await killAll();
  await removeTempDirs();
});

Relay('A learns through B that a node lies beyond its neighbours, and is not connected to it', async ({ a, b, c, A, C }) => {
  // peer exchange asks B again within its 10 s round, after C joined B
  const reach = await waitFor('A to see a node beyond B', async () => {
    const r = (await A.get<NetInfo>('/v1/info')).reach;
    return r && r.beyond >= 1 ? r : undefined;
  }, 30_000, 250);
  assert.equal(reach, { connected: 1, subscribed: 1, beyond: 1 });
  const cPeers = (await C.get<PeerRow[]>('/v1/peers')).map((p) => p.peer);
  assert.equal(cPeers, [b.ready.peerId], 'C keeps to its one peer');
  assert.not.ok(cPeers.includes(a.ready.peerId));
  void c;
});

Relay('a job that excludes A\'s only neighbour is placed on the node behind it, which answered directly', async ({ a, b, c, A }) => {
  const job = await deployAndWait(a, A, await helloJob({ excludePeers: [b.ready.peerId] }));
  assert.is(job.state, 'completed', `${job.message}\n${JSON.stringify(job.history, null, 1)}`);
  assert.is(job.provider, c.ready.peerId);
  assert.is(job.rounds, 1);
  // the job's output came back from C
  const logs = await cli(['logs', job.id, '--data-dir', a.dataDir]);
  assert.is(logs.code, 0, logs.stderr);
  assert.match(logs.stdout, /far/);
});

Relay.run();
