/**
 * Three real nodes on loopback: A; B joins through A; C joins through B and learns of A by peer exchange.
 * Everything is checked through the CLI, as a user would.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { type NodeProcess, cli, cliJson, eventually, killAll, makeTempDir, removeTempDirs, startNode } from './harness.ts';
import { apiGet } from './net-api.ts';

interface PeerRow {
  peer: string;
  rttMs: number | null;
  dms: boolean;
}

interface Ctx {
  a: NodeProcess;
  b: NodeProcess;
  c: NodeProcess;
}

const peersOf = (n: NodeProcess) => apiGet<PeerRow[]>(n, '/v1/peers');
const knows = async (n: NodeProcess, others: NodeProcess[]) => {
  const peers = await peersOf(n);
  return others.every((o) => peers.some((p) => p.peer === o.ready.peerId && p.dms && typeof p.rttMs === 'number'));
};

const Net = suite<Ctx>('three nodes find each other and talk');

Net.before(async (ctx) => {
  ctx.a = await startNode(await makeTempDir('net-a'), [], { timeoutMs: 60_000 });
  ctx.b = await startNode(await makeTempDir('net-b'), ['--bootstrap', ctx.a.ready.listen[0]!], { timeoutMs: 60_000 });
  ctx.c = await startNode(await makeTempDir('net-c'), ['--bootstrap', ctx.b.ready.listen[0]!], { timeoutMs: 60_000 });
});

Net.after(async (ctx) => {
  for (const n of [ctx.c, ctx.b, ctx.a]) await n?.stop().catch(() => {});
  await killAll();
  await removeTempDirs();
});

Net('--listen with port 0: the ready line shows the real port and /p2p/<peerId>', ({ a }) => {
  assert.is(a.ready.listen.length, 1);
  const m = /^\/ip4\/127\.0\.0\.1\/tcp\/(\d+)\/ws\/p2p\/(\w+)$/.exec(a.ready.listen[0]!);
  assert.ok(m, a.ready.listen[0]);
  assert.ok(Number(m![1]) > 0);
  assert.is(m![2], a.ready.peerId);
});

Net('A and B list each other with a round-trip time within seconds', async ({ a, b }) => {
  assert.ok(await eventually(() => knows(a, [b]), 15_000), 'A does not list B');
  assert.ok(await eventually(() => knows(b, [a]), 15_000), 'B does not list A');
  const rtt = (await peersOf(a)).find((p) => p.peer === b.ready.peerId)!.rttMs!;
  assert.ok(rtt > 0 && rtt < 1000, `rtt ${rtt}`);
});

Net('C, bootstrapped from B, learns of A too, and A of C', async ({ a, b, c }) => {
  assert.ok(await eventually(() => knows(c, [a, b]), 20_000), `C lists ${JSON.stringify(await peersOf(c))}`);
  assert.ok(await eventually(() => knows(a, [b, c]), 20_000), 'A does not list C');
});

Net('`peers` prints a table with the peers and their RTT; `peers --json` lists them', async ({ a, b }) => {
  const list = await cliJson<PeerRow[]>(['peers', '--data-dir', a.dataDir]);
  assert.ok(list.some((p) => p.peer === b.ready.peerId && typeof p.rttMs === 'number'));
  const r = await cli(['peers', '--data-dir', a.dataDir]);
  assert.is(r.code, 0, r.stderr);
  assert.match(r.stdout, b.ready.peerId);
  assert.match(r.stdout, / ms /);
});

Net('`ping` makes signed round trips through the router', async ({ a, c }) => {
  const r = await cliJson<{ count: number; rttMs: number[]; p50Ms: number }>(['ping', c.ready.peerId, '--count', '10', '--data-dir', a.dataDir]);
  assert.is(r.count, 10);
  assert.is(r.rttMs.length, 10);
  assert.ok(r.p50Ms > 0 && r.p50Ms < 1000);
  const human = await cli(['ping', c.ready.peerId, '--count', '2', '--data-dir', a.dataDir]);
  assert.match(human.stdout, /2 signed round trips/);
});

Net('`info` shows the peer count and messages in, out and rejected', async ({ a, b }) => {
  const info = await cliJson<{ peers: number; listen: string[]; messages: { in: number; out: number; rejected: object; rejectedTotal: number } }>(['info', '--data-dir', a.dataDir]);
  assert.is(info.peers, 2);
  assert.equal(info.listen, a.ready.listen);
  assert.ok(info.messages.in > 0 && info.messages.out > 0, JSON.stringify(info.messages));
  assert.is(info.messages.rejectedTotal, 0);
  const human = await cli(['info', '--data-dir', b.dataDir]);
  assert.match(human.stdout, /messages in \d+, out \d+, broadcast in \d+, out \d+, rejected 0/);
});

Net('`topology` exports the graph of all three as JSON and as DOT', async ({ a, b, c }) => {
  const t = await cliJson<{ vertex: { peer: string }; vertices: string[]; edges: { from: string; to: string; rttMs: number | null }[] }>(['topology', '--data-dir', c.dataDir]);
  assert.is(t.vertex.peer, c.ready.peerId);
  assert.equal([...t.vertices].sort(), [a, b, c].map((n) => n.ready.peerId).sort());
  assert.is(t.edges.length, 3);
  const dot = await cli(['topology', '--dot', '--data-dir', c.dataDir]);
  assert.is(dot.code, 0);
  assert.match(dot.stdout, /^graph dms \{/);
  assert.is((dot.stdout.match(/ -- /g) ?? []).length, 3);
});

Net('a --listen address already in use: exit 2, naming the address', async ({ a }) => {
  const port = /\/tcp\/(\d+)\//.exec(a.ready.listen[0]!)![1];
  const r = await cli(['run', '--data-dir', await makeTempDir('net-busy'), '--api', 'off', '--listen', `/ip4/127.0.0.1/tcp/${port}/ws`], { timeoutMs: 60_000 });
  assert.is(r.code, 2, r.stderr);
  assert.match(r.stderr, new RegExp(`in use \\(address already in use 127\\.0\\.0\\.1:${port}\\)`));
});

Net('a stopped node leaves its peers\' lists; the others stay connected', async ({ a, b, c }) => {
  const r = await c.stop('SIGTERM');
  assert.is(r.code, 0);
  assert.ok(await eventually(async () => !(await peersOf(a)).some((p) => p.peer === c.ready.peerId), 10_000), 'A still lists C');
  assert.ok(await knows(a, [b]));
});

Net.run();
