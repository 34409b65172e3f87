import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { combine, compareCapability } from '../../machines/capability.ts';

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

test.run();
