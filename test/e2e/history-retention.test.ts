// End to end: retention of the journal's history. A node's history spread over three segments (each cut by a
// compaction made between runs); the first two aged past --retain. At start the node removes them (and says so in
// its log), never the one recovery needs; `replay` then says what history is gone and rebuilds the Node from its
// snapshot in the checkpoint where segment 3 begins, to the state the live node had; `--summary` and `--to` too.
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { JOURNAL_DIR } from '../../runtime/store/constants.ts';
import { DexieEventLog } from '../../runtime/store/dexie-event-log.ts';
import { listSegments, segmentName } from '../../runtime/store/journal.ts';
import { type NodeProcess, apiOf, cli, cliJson, jsonLines, killAll, makeTempDir, removeTempDirs, startNode, waitFor } from './harness.ts';

interface Info {
  state: string;
  locks: { id: string }[];
  allocations: { id: string }[];
}
interface FinalLine {
  event: 'final';
  events: number;
  lastSeq: number;
  state: unknown;
  context: { locks: Record<string, unknown>; allocations: Record<string, unknown> };
  history: { note: string; removedThrough: number; before: number | null; fromSegment: number; fromSeq: number } | null;
}

const FLAGS = ['--monitor-interval', '60000'];
const ids = (o: Record<string, unknown> | readonly { id: string }[]) => (Array.isArray(o) ? o.map((x: { id: string }) => x.id) : Object.keys(o)).sort();
const info = (dir: string) => cliJson<Info>(['info', '--data-dir', dir]);

async function ledger(node: NodeProcess, route: string, body: unknown): Promise<void> {
  const { call } = await apiOf(node);
  const r = await call('POST', `/v1/ledger/${route}`, body);
  assert.ok(r.status >= 200 && r.status < 300, `${route} ${JSON.stringify(body)}: ${r.status} ${JSON.stringify(r.body)}`);
}
const lock = (node: NodeProcess, id: string) => ledger(node, 'lock', { id, resources: { cpu: 0.1, memory: '16MiB', disk: '16MiB' }, ttl: '1h' });

/** Runs the node once, does `work`, stops it cleanly; then (node down) cuts a new segment with a compaction. */
async function run(dir: string, work: (node: NodeProcess) => Promise<void>, compact: boolean): Promise<void> {
  const node = await startNode(dir, [...FLAGS, '--retain', '0']);
  await work(node);
  assert.is((await node.stop('SIGTERM')).code, 0);
  if (!compact) return;
  const { store } = await DexieEventLog.open({ dataDir: dir, compactBytes: 64 * 1024 * 1024 });
  await store.compact();
  await store.close();
}

const HistoryRetention = suite<{ dir: string; full?: FinalLine; live?: Info }>('e2e: --retain removes old journal segments; replay says what is gone', { dir: '' });

HistoryRetention.before(async (ctx) => {
  ctx.dir = await makeTempDir('history-retain');
  await run(ctx.dir, async (n) => {
    await lock(n, 'k1');
    await lock(n, 'k2');
    await ledger(n, 'allocate', { allocationId: 'b1', lockId: 'k1' });
  }, true);
  await run(ctx.dir, async (n) => {
    await ledger(n, 'unlock', { id: 'k2' });
    await lock(n, 'k3');
    await ledger(n, 'allocate', { allocationId: 'b2', lockId: 'k3' });
  }, true);
  await run(ctx.dir, async (n) => {
    await ledger(n, 'release', { allocationId: 'b1' });
    await lock(n, 'k4');
  }, false);
  const dir = path.join(ctx.dir, JOURNAL_DIR);
  assert.equal(await listSegments(dir), [1, 2, 3]);
  const r = await cli(['replay', '--data-dir', ctx.dir, '--summary', '--json']);
  assert.is(r.code, 0, r.stderr);
  ctx.full = jsonLines<FinalLine>(r.stdout).at(-1)!;
  assert.is(ctx.full.history, null, 'nothing is gone yet');
  const old = new Date(Date.now() - 3 * 24 * 3_600_000);
  for (const s of [1, 2]) await fs.utimes(path.join(dir, segmentName(s)), old, old);
});

HistoryRetention.after(async () => {
  await killAll();
  await removeTempDirs();
});

HistoryRetention('a node started with --retain 1d removes segments 1-2 (3 days old), keeps 3 (recovery starts there)', async (ctx) => {
  const node = await startNode(ctx.dir, [...FLAGS, '--retain', '1d', '--log-level', 'info']);
  try {
    const dir = path.join(ctx.dir, JOURNAL_DIR);
    await waitFor('segments 1-2 to go', async () => ((await listSegments(dir))[0] === 3 ? true : undefined), 10_000);
    assert.equal(await listSegments(dir), [3]);
    await waitFor('the log line', () => (/retention: removed journal segments 1-2 .*replay starts at segment 3/.test(node.stderr()) ? true : undefined), 5000);
    ctx.live = await info(ctx.dir);
  } finally {
    assert.is((await node.stop('SIGTERM')).code, 0);
  }
  assert.equal(ids(ctx.live.locks), ['k4'], 'the node recovered its ledger as before');
  assert.equal(ids(ctx.live.allocations), ['b2']);
});

HistoryRetention('replay says what history is gone and rebuilds the Node to the state the live node had', async ({ dir, full, live }) => {
  const r = await cli(['replay', '--data-dir', dir, '--json']);
  assert.is(r.code, 0, r.stderr);
  assert.match(r.stderr, /^replay: history before \d{4}-\d\d-\d\dT\S+Z \(segments 1-2\) was removed by retention; replaying from segment 3$/m);
  const lines = jsonLines<{ seq: number }>(r.stdout);
  const final = lines.at(-1) as unknown as FinalLine;
  assert.ok(final.history, 'the final line says the history is partial');
  assert.is(final.history.removedThrough, 2);
  assert.is(final.history.fromSegment, 3);
  assert.ok(final.history.fromSeq > 0, 'it starts from the Node\'s snapshot in the checkpoint');
  assert.ok(lines[0]!.seq > final.history.fromSeq, 'the timeline starts after that snapshot');
  assert.ok(final.lastSeq >= full!.lastSeq);
  assert.is(final.state, live!.state);
  assert.equal(ids(final.context.locks), ids(live!.locks));
  assert.equal(ids(final.context.allocations), ids(live!.allocations));
  assert.equal(ids(final.context.locks), ids(full!.context.locks), 'the same ledger as the full history gave');
  assert.equal(ids(final.context.allocations), ids(full!.context.allocations));
});

HistoryRetention('replay --summary still works and says so; --to before the kept history is refused plainly', async ({ dir }) => {
  const short = await cli(['replay', '--data-dir', dir, '--summary']);
  assert.is(short.code, 0, short.stderr);
  assert.match(short.stdout, /^history before \S+ \(segments 1-2\) was removed by retention; replaying from segment 3 \(node from its snapshot at seq \d+\)$/m);
  assert.match(short.stdout, /^replayed \d+ events of node up to seq \d+/m);
  assert.not.match(short.stdout, /^\s*\d+\s+\d{4}-\d\d-\d\dT\S+\s+\S+/m, 'no timeline');

  const early = await cli(['replay', '--data-dir', dir, '--to', '1']);
  assert.is(early.code, 2, early.stderr);
  assert.match(early.stderr, /--to 1 is before what is kept of node's history: history before \S+ \(segments 1-2\) was removed by retention; replaying from segment 3, from its snapshot at seq \d+$/m);
  assert.is(early.stderr.trim().split('\n').length, 1, early.stderr);
});

HistoryRetention.run();
