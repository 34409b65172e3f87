// Retention of result files: `<data-dir>/outputs/<allocation id>/` (an array allocation's instances in it) goes
// once it is older than --retain and its allocation is not live; a younger one, or one with a young instance or
// manifest in it, stays (runtime/deals/retention.ts), on a real store and real files.
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { resultsLayout, resultsRoot } from '../../../runtime/deals/results-manifest.ts';
import { sweepRetention } from '../../../runtime/deals/retention.ts';
import { DexieEventLog } from '../../../runtime/store/dexie-event-log.ts';

const DAY = 24 * 3_600_000;
const NOW = Date.UTC(2026, 11, 3);

async function age(p: string, days: number): Promise<void> {
  const t = new Date(NOW - days * DAY);
  await fs.utimes(p, t, t);
}

/** Result files of `allocationId` (instance `index`): a file and a manifest, everything `days` old. */
async function results(dataDir: string, allocationId: string, days: number, index?: number): Promise<void> {
  const l = resultsLayout(dataDir, allocationId, index);
  await fs.mkdir(l.files, { recursive: true });
  await fs.writeFile(path.join(l.files, 'a.txt'), 'x');
  await fs.writeFile(l.manifest, '[]');
  for (const p of [path.join(l.files, 'a.txt'), l.files, l.manifest, l.dir]) await age(p, days);
  if (index !== undefined) await age(path.dirname(l.dir), days);
}

test('result files of ended allocations older than the window go; young ones, and those of live allocations, stay', async () => {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'dms-results-retention-'));
  const { store } = await DexieEventLog.open({ dataDir: dir, compactBytes: 64 << 20 });
  try {
    const deps = { store, modulesDir: path.join(dir, 'modules'), outputDir: path.join(dir, 'allocations'), resultsDir: resultsRoot(dir), now: () => NOW };
    await store.register({ id: 'allocation/live', kind: 'allocation', input: { allocationId: 'live', job: { executor: 'process' } }, createdAt: 0 });
    await results(dir, 'old', 10);
    await results(dir, 'a/odd id', 10);
    await results(dir, 'young', 1);
    await results(dir, 'live', 30);
    // an array allocation: instances ended 10 days ago, the last one 2 days ago (its directory made then)
    for (const i of [0, 1, 2]) await results(dir, 'array-old', 10, i);
    for (const i of [0, 1]) await results(dir, 'array-young', 10, i);
    await results(dir, 'array-young', 2, 7);
    await age(path.join(resultsRoot(dir), 'array-young'), 10); // the allocation's own dir says old; its instance does not

    const report = await sweepRetention(deps, 7 * DAY);

    assert.is(report.outputs, 3, 'old, a/odd id and array-old');
    assert.equal((await fs.readdir(resultsRoot(dir))).sort(), ['array-young', 'live', 'young']);
    assert.equal((await fs.readdir(path.join(resultsRoot(dir), 'array-young'))).sort(), ['0', '1', '7']);
    assert.is((await sweepRetention(deps, 7 * DAY)).outputs, 0, 'a second sweep finds nothing more');
    assert.is((await sweepRetention({ ...deps, now: () => NOW + 7 * DAY }, 7 * DAY)).outputs, 2, 'young and array-young, once old');
    assert.equal(await fs.readdir(resultsRoot(dir)), ['live']);
  } finally {
    await store.close();
    await fs.rm(dir, { recursive: true, force: true });
  }
});

test('no outputs directory is not an error', async () => {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'dms-results-retention-'));
  const { store } = await DexieEventLog.open({ dataDir: dir, compactBytes: 64 << 20 });
  try {
    const r = await sweepRetention({ store, modulesDir: path.join(dir, 'm'), outputDir: path.join(dir, 'o'), resultsDir: resultsRoot(dir), now: () => NOW }, DAY);
    assert.equal(r, { records: 0, modules: 0, outputs: 0 });
  } finally {
    await store.close();
    await fs.rm(dir, { recursive: true, force: true });
  }
});

test.run();
