// Retention: ended deals' records, unused modules and ended allocations' output go once older than --retain;
// anything a live deal names stays (runtime/deals/retention.ts), on a real store and real files.
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { sweepRetention } from '../../../runtime/deals/retention.ts';
import { DexieEventLog } from '../../../runtime/store/dexie-event-log.ts';

const DAY = 24 * 3_600_000;
const NOW = Date.UTC(2026, 11, 3);
const sha = (c: string) => c.repeat(64);
const wasmJob = (s: string) => ({ executor: 'wasm', wasm: { module: { sha256: s, size: 10 } } });

async function setup() {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'dms-retention-'));
  const { store } = await DexieEventLog.open({ dataDir: dir, compactBytes: 64 << 20 });
  const modulesDir = path.join(dir, 'modules');
  const outputDir = path.join(dir, 'allocations');
  await fs.mkdir(modulesDir);
  await fs.mkdir(outputDir);
  const file = async (p: string, ageDays: number) => {
    await fs.writeFile(p, 'x');
    const t = new Date(NOW - ageDays * DAY);
    await fs.utimes(p, t, t);
  };
  return { dir, store, modulesDir, outputDir, file, deps: { store, modulesDir, outputDir, now: () => NOW } };
}

test('records, modules and outputs older than the window go; younger ones and anything live stay', async () => {
  const { dir, store, modulesDir, outputDir, file, deps } = await setup();
  try {
    await store.putMeta('job/old', { endedAt: NOW - 8 * DAY, state: 'completed' });
    await store.putMeta('job/young', { endedAt: NOW - 1 * DAY, state: 'completed' });
    await store.putMeta('provider/old', { updatedAt: NOW - 9 * DAY });
    await store.putMeta('allocation/old', { endedAt: NOW - 30 * DAY });
    await store.putMeta('identity', { peerId: 'p' }); // not a deal record: never touched
    // an old deal actor whose rows a crash left behind (its record says it ended)
    await store.register({ id: 'allocation/old', kind: 'allocation', input: { allocationId: 'a-old', job: wasmJob(sha('c')) }, createdAt: 0 });
    // a live allocation naming an old module and an old output file
    await store.register({ id: 'allocation/live', kind: 'allocation', input: { allocationId: 'a-live', job: wasmJob(sha('a')) }, createdAt: 0 });
    await file(path.join(modulesDir, `${sha('a')}.wasm`), 20); // old but live
    await file(path.join(modulesDir, `${sha('b')}.wasm`), 20); // old, unused
    await file(path.join(modulesDir, `${sha('d')}.wasm`), 2); // young
    await file(path.join(modulesDir, 'not-a-module.txt'), 20); // not ours to judge
    await file(path.join(outputDir, 'a-live.log'), 20);
    await file(path.join(outputDir, 'a-old.log'), 20);
    await file(path.join(outputDir, `${encodeURIComponent('a/odd id')}.log`), 20);
    await file(path.join(outputDir, 'a-young.log'), 1);

    const report = await sweepRetention(deps, 7 * DAY);

    assert.equal(report, { records: 3, modules: 1, outputs: 2 });
    assert.equal((await store.metaKeysWithPrefix('job/')).sort(), ['job/young']);
    assert.equal(await store.metaKeysWithPrefix('provider/'), []);
    assert.equal(await store.metaKeysWithPrefix('allocation/'), []);
    assert.equal(await store.getMeta('identity'), { peerId: 'p' });
    assert.equal((await store.actors()).map((a) => a.id), ['allocation/live']);
    assert.equal((await fs.readdir(modulesDir)).sort(), [`${sha('a')}.wasm`, `${sha('d')}.wasm`, 'not-a-module.txt'].sort());
    assert.equal((await fs.readdir(outputDir)).sort(), ['a-live.log', 'a-young.log']);

    // a second sweep finds nothing more; the store reopens with the same state
    assert.equal(await sweepRetention(deps, 7 * DAY), { records: 0, modules: 0, outputs: 0 });
    await store.close();
    const { store: again } = await DexieEventLog.open({ dataDir: dir, compactBytes: 64 << 20 });
    assert.equal((await again.metaKeysWithPrefix('job/')).sort(), ['job/young']);
    await again.close();
  } finally {
    await fs.rm(dir, { recursive: true, force: true });
  }
});

test('a missing modules or output dir is not an error', async () => {
  const { dir, store, deps } = await setup();
  try {
    await fs.rm(deps.modulesDir, { recursive: true });
    await fs.rm(deps.outputDir, { recursive: true });
    assert.equal(await sweepRetention(deps, DAY), { records: 0, modules: 0, outputs: 0 });
  } finally {
    await store.close();
    await fs.rm(dir, { recursive: true, force: true });
  }
});

test.run();
