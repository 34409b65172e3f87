import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import type { Capability } from '../../machines/capability.ts';
import { type OnboardingProblem, resolveOffer, validateOffer } from '../../machines/onboarding.ts';
// bench: a 2-core machine with 10 GiB of RAM (so 10% and 90% are whole GiB) and 200 GiB free disk.
import { BENCH as bench, GiB, HOST as host } from '../fixtures/node-fixtures.ts';

function offer(c: Partial<Capability>): Capability {
  return { cpu: 1, memory: 4 * GiB, disk: 50 * GiB, gpus: [], executors: ['wasm'], ...c };
}

function only(problems: OnboardingProblem[], field: OnboardingProblem['field']): OnboardingProblem {
  assert.equal(
    problems.map((p) => p.field),
    [field],
    `expected exactly one ${field} problem, got ${JSON.stringify(problems)}`,
  );
  return problems[0]!;
}

const Cores = suite('onboarding: cores within 1..machine cores (scenario 12)');

Cores('a valid offer has no problems', () => {
  assert.equal(validateOffer(offer({}), bench, host), []);
});

Cores('cpu below 1 or above the machine cores is rejected and names --cpu', () => {
  for (const cpu of [0, 0.5, -1, 3, 2.5, Number.NaN, Number.POSITIVE_INFINITY]) {
    const p = only(validateOffer(offer({ cpu }), bench, host), 'cpu');
    assert.match(p.message, /1\.\.2/, `cpu ${cpu}`);
    assert.match(p.message, /--cpu between 1 and 2/, `cpu ${cpu}`);
  }
});

Cores('cpu exactly 1, a fraction in range, and exactly the machine cores are accepted', () => {
  for (const cpu of [1, 1.5, 2]) assert.equal(validateOffer(offer({ cpu }), bench, host), [], `cpu ${cpu}`);
});

Cores.run();

const Memory = suite('onboarding: memory within 10-90% of the machine (scenario 12)');

Memory('memory below 10% is rejected and names the allowed range', () => {
  const p = only(validateOffer(offer({ memory: 1 * GiB - 1 }), bench, host), 'memory');
  assert.match(p.message, /outside 10-90% of this machine's 10\.0 GiB/);
  assert.match(p.message, /--memory between 1\.0 GiB and 9\.0 GiB/);
});

Memory('memory above 90% is rejected', () => {
  const p = only(validateOffer(offer({ memory: 9 * GiB + 1 }), bench, host), 'memory');
  assert.match(p.message, /--memory/);
  only(validateOffer(offer({ memory: 10 * GiB }), bench, host), 'memory');
  only(validateOffer(offer({ memory: 0 }), bench, host), 'memory');
  only(validateOffer(offer({ memory: Number.NaN }), bench, host), 'memory');
});

Memory('memory exactly at 10% and exactly at 90% is accepted', () => {
  assert.equal(validateOffer(offer({ memory: 1 * GiB }), bench, host), []);
  assert.equal(validateOffer(offer({ memory: 9 * GiB }), bench, host), []);
});

Memory('boundaries hold on a machine whose memory is not a multiple of 10', () => {
  const odd = { ...bench, memoryTotal: 1_000_000_007 };
  // 10% = 100000000.7 -> smallest allowed whole byte is 100000001; 90% = 900000006.3 -> largest is 900000006.
  assert.equal(validateOffer(offer({ memory: 100_000_001 }), odd, host), []);
  only(validateOffer(offer({ memory: 100_000_000 }), odd, host), 'memory');
  assert.equal(validateOffer(offer({ memory: 900_000_006 }), odd, host), []);
  only(validateOffer(offer({ memory: 900_000_007 }), odd, host), 'memory');
});

Memory.run();

const DataDir = suite('onboarding: the data dir must exist and be writable (scenario 12)');

DataDir('a missing or non-writable data dir is rejected and names the dir and --data-dir', () => {
  const p = only(validateOffer(offer({}), bench, { dataDir: '/nope/dms', dataDirWritable: false }), 'dataDir');
  assert.match(p.message, /\/nope\/dms/);
  assert.match(p.message, /missing or not writable/);
  assert.match(p.message, /--data-dir/);
});

DataDir.run();

const Other = suite('onboarding: disk, executors and several problems at once');

Other('disk of zero or above the free space is rejected and names --disk', () => {
  only(validateOffer(offer({ disk: 0 }), bench, host), 'disk');
  const p = only(validateOffer(offer({ disk: 200 * GiB + 1 }), bench, host), 'disk');
  assert.match(p.message, /200 GiB free/);
  assert.match(p.message, /--disk/);
  assert.equal(validateOffer(offer({ disk: 200 * GiB }), bench, host), []);
});

Other('an unknown executor is rejected, naming it and the choices', () => {
  const p = only(validateOffer(offer({ executors: ['wasm', 'docker'] }), bench, host), 'executors');
  assert.match(p.message, /unknown executor docker/);
  assert.not.match(p.message, /executor wasm/);
  assert.match(p.message, /choose from wasm, process/);
  assert.equal(validateOffer(offer({ executors: ['process', 'wasm'] }), bench, host), []);
});

Other('every problem is reported, not just the first', () => {
  const problems = validateOffer(offer({ cpu: 8, memory: 1, disk: 0, executors: ['gpu-magic'] }), bench, { dataDir: '/x', dataDirWritable: false });
  assert.equal(
    problems.map((p) => p.field),
    ['cpu', 'memory', 'disk', 'executors', 'dataDir'],
  );
});

Other.run();

const Defaults = suite('onboarding: resolveOffer defaults');

Defaults('on a 2-core machine the defaults are 1 core, half the memory, half the free disk, wasm', () => {
  const c = resolveOffer({}, bench);
  assert.equal(c, { cpu: 1, memory: 5 * GiB, disk: 100 * GiB, gpus: [], executors: ['wasm'] });
  assert.equal(validateOffer(c, bench, host), []);
});

Defaults('on a 1-core machine the default is still 1 core; on 8 cores it is 6', () => {
  assert.is(resolveOffer({}, { ...bench, cores: 1 }).cpu, 1);
  assert.is(resolveOffer({}, { ...bench, cores: 8 }).cpu, 6);
  assert.is(resolveOffer({}, { ...bench, cores: 3 }).cpu, 2);
});

Defaults('memory and disk defaults are whole bytes', () => {
  const c = resolveOffer({}, { ...bench, memoryTotal: 1001, diskFree: 999 });
  assert.is(c.memory, 500);
  assert.is(c.disk, 499);
});

Defaults('explicit fields win, gpus come from the benchmark, an empty executor list means the default', () => {
  const gpus = [{ vendor: 'amd', model: 'MI50', vram: 16 * GiB }];
  const c = resolveOffer({ cpu: 2, memory: 3 * GiB, disk: 7 * GiB, executors: [] }, { ...bench, gpus });
  assert.equal(c, { cpu: 2, memory: 3 * GiB, disk: 7 * GiB, gpus, executors: ['wasm'] });
  assert.equal(resolveOffer({ executors: ['process'] }, bench).executors, ['process']);
});

Defaults('an offer that resolves outside the rules is caught by validateOffer', () => {
  const c = resolveOffer({ cpu: 4 }, bench);
  only(validateOffer(c, bench, host), 'cpu');
});

Defaults.run();
