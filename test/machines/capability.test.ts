import { test } from 'uvu';
import * as assert from 'uvu/assert';
import {
  type Capability,
  addResources,
  capabilityOf,
  combine,
  compareCapability,
  compareNumber,
  compareSets,
  formatBytes,
  shortfall,
  subtractResources,
  sumResources,
  tidy,
} from '../../machines/capability.ts';

const GiB = 1024 ** 3;

test('Worse anywhere dominates the combined comparison', () => {
  assert.is(combine(['Better', 'Worse', 'Equal']), 'Worse');
  assert.is(combine(['Better', 'Equal']), 'Better');
  assert.is(combine(['None', 'Equal']), 'Equal');
  assert.is(combine([]), 'None');
});

test('compareCapability flags a missing executor as Worse', () => {
  const r = compareCapability({ cpu: 2, memory: 10, disk: 10, gpus: 0, executors: ['wasm'] }, { cpu: 1, executors: ['process'] });
  assert.is(r.fields.executors, 'Worse');
  assert.is(r.overall, 'Worse');
});

test('compareNumber: Better, Worse, Equal, and None when either side is missing', () => {
  assert.is(compareNumber(2, 1), 'Better');
  assert.is(compareNumber(1, 2), 'Worse');
  assert.is(compareNumber(2, 2), 'Equal');
  assert.is(compareNumber(undefined, 2), 'None');
  assert.is(compareNumber(2, undefined), 'None');
  // Without a tolerance, float dust counts; with one it does not.
  assert.is(compareNumber(0.3, 0.1 + 0.2), 'Worse');
  assert.is(compareNumber(0.3, 0.1 + 0.2, 1e-9), 'Equal');
  assert.is(compareNumber(0.3, 0.31, 1e-9), 'Worse');
});

test('compareSets: missing any is Worse, a superset is Better, the same set Equal, nothing asked None', () => {
  assert.is(compareSets(['wasm'], ['wasm', 'process']), 'Worse');
  assert.is(compareSets(['wasm', 'process'], ['wasm']), 'Better');
  assert.is(compareSets(['process', 'wasm'], ['wasm', 'process']), 'Equal');
  assert.is(compareSets(['wasm'], []), 'None');
});

test('compareCapability: fields not asked for are None; overall follows the asked ones', () => {
  const offered = { cpu: 2, memory: 4 * GiB, disk: 10 * GiB, gpus: 1, executors: ['wasm'] };
  const r = compareCapability(offered, { cpu: 2, memory: GiB });
  assert.equal(r.fields, { cpu: 'Equal', memory: 'Better', disk: 'None', gpus: 'None', executors: 'None' });
  assert.is(r.overall, 'Better');
  assert.is(compareCapability(offered, { cpu: 2 }).overall, 'Equal');
  assert.is(compareCapability(offered, {}).overall, 'None');
  assert.is(compareCapability(offered, { gpus: 2 }).overall, 'Worse');
  // cpu float dust is not a shortfall, as in the ledger.
  assert.is(compareCapability({ ...offered, cpu: 0.3 }, { cpu: 0.1 + 0.2 }).fields.cpu, 'Equal');
});

test('compareCapability score: mean log2 headroom over the asked numeric fields', () => {
  const offered = { cpu: 4, memory: 2 * GiB, disk: 0, gpus: 0 };
  assert.is(compareCapability(offered, { cpu: 1 }).score, 2);
  assert.is(compareCapability(offered, { cpu: 1, memory: 4 * GiB }).score, 0.5);
  assert.is(compareCapability(offered, {}).score, 0);
});

test('resource arithmetic: tidy sums, clamp subtraction at zero', () => {
  assert.is(tidy(0.1 + 0.2), 0.3);
  assert.equal(addResources({ cpu: 0.1, memory: 1, disk: 2, gpus: 0 }, { cpu: 0.2, memory: 3, disk: 4, gpus: 1 }), { cpu: 0.3, memory: 4, disk: 6, gpus: 1 });
  assert.equal(subtractResources({ cpu: 1, memory: 5, disk: 5, gpus: 1 }, { cpu: 0.9, memory: 7, disk: 5, gpus: 2 }), { cpu: 0.1, memory: 0, disk: 0, gpus: 0 });
  assert.is(sumResources(Array.from({ length: 10 }, () => ({ cpu: 0.1, memory: 0, disk: 0, gpus: 0 }))).cpu, 1);
  assert.equal(sumResources([]), { cpu: 0, memory: 0, disk: 0, gpus: 0 });
});

test('shortfall names exactly the fields that do not fit', () => {
  const have = { cpu: 1, memory: 10, disk: 10, gpus: 0 };
  assert.equal(shortfall(have, { cpu: 1, memory: 10, disk: 10, gpus: 0 }), []);
  assert.equal(shortfall(have, { cpu: 1.5, memory: 11, disk: 1, gpus: 1 }), ['cpu', 'memory', 'gpus']);
  assert.equal(shortfall({ ...have, cpu: 0.3 }, { ...have, cpu: 0.1 + 0.2 }), []);
});

test('capabilityOf takes the first n gpus and the executors of the source', () => {
  const from: Capability = {
    cpu: 8,
    memory: GiB,
    disk: GiB,
    gpus: [
      { vendor: 'nvidia', model: 'A', vram: 1 },
      { vendor: 'nvidia', model: 'B', vram: 2 },
    ],
    executors: ['wasm'],
  };
  const c = capabilityOf({ cpu: 1, memory: 2, disk: 3, gpus: 1 }, from);
  assert.equal(c, { cpu: 1, memory: 2, disk: 3, gpus: [{ vendor: 'nvidia', model: 'A', vram: 1 }], executors: ['wasm'] });
});

test('formatBytes uses binary units', () => {
  assert.is(formatBytes(512), '512 B');
  assert.is(formatBytes(1536), '1.5 KiB');
  assert.is(formatBytes(1.5 * GiB), '1.5 GiB');
  assert.is(formatBytes(200 * GiB), '200 GiB');
  assert.is(formatBytes(2048 * 1024 ** 4), '2048 TiB');
});

test.run();
