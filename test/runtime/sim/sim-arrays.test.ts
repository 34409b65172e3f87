// The simulator's array jobs and ensembles: the `array` and `ensemble` scenarios hold every invariant over a few
// seeds and do the work they are for (instances completed, failed runs retried; ensembles placed, parts placed again
// after their provider crashed); the same seed gives the same digest; a batch allocation that keeps its resources
// and an ensemble that leaves its parts running are found, with the seed and the step; and the per-index
// invariants fire on a record that counts an index twice or counts one that never ran.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { parseSimFlags } from '../../../runtime/sim/sim-options.ts';
import { type SimOptions, type SimReport, SimViolation, SimWorld } from '../../../runtime/sim/world.ts';
import type { ArrayRecord } from '../../../machines/array.context.ts';

function options(scenario: 'array' | 'ensemble', seed: string, nodes: number, durationMs: number, plant?: SimOptions['plant']): SimOptions {
  const [o] = parseSimFlags({ nodes: String(nodes), seed, duration: `${durationMs / 1000}s`, scenario });
  return { ...o!, ...(plant ? { plant } : {}) };
}

const run = (o: SimOptions): SimReport => new SimWorld(o).run();

function clean(r: SimReport, what: string): void {
  const v = r.violation;
  if (v) assert.unreachable(`${what} broke ${v.invariant} at step ${v.step} (${v.atMs} ms): ${v.message}\n${v.history.slice(-15).join('\n')}`);
}

// ---------------------------------------------------------------------------------------------------------------

const Arrays = suite('sim: array jobs');

Arrays('a few seeds of the array scenario hold every invariant, complete instances and retry failed ones', () => {
  let completed = 0;
  let retried = 0;
  let runs = 0;
  let jobs = 0;
  for (const [seed, nodes, ms] of [['a1', 10, 60_000], ['a2', 12, 90_000], ['a3', 16, 60_000]] as const) {
    const r = run(options('array', seed, nodes, ms));
    clean(r, `array seed ${seed}`);
    completed += r.instances.completed;
    retried += r.instances.retried;
    runs += r.instances.runs;
    jobs += r.jobs.completed;
  }
  assert.ok(completed > 100, `${completed} instances completed`);
  // the planted failures were run again (a run that failed, then an index that completed)
  assert.ok(retried > 0, 'no failed instance was retried');
  assert.ok(runs >= completed + retried, `${runs} runs for ${completed} completed and ${retried} retried`);
  assert.ok(jobs > 0, 'no job completed');
});

Arrays('the same seed gives the same run and digest', () => {
  const strip = (r: SimReport) => JSON.stringify({ ...r, wallMs: 0, eventsPerSec: 0, memory: null });
  const a = run(options('array', 'same', 10, 45_000));
  const b = run(options('array', 'same', 10, 45_000));
  clean(a, 'array seed same');
  assert.ok(a.instances.runs > 0);
  assert.is(strip(a), strip(b));
  assert.is.not(run(options('array', 'other', 10, 45_000)).digest, a.digest);
});

Arrays('a batch allocation that keeps its resources is found (resources-returned), at the same step for the same seed', () => {
  const found = hunt('array', 'batch-keeps-resources', 'resources-returned', 120_000);
  assert.match(found.report.violation!.message, /allocation .* ended/);
});

Arrays('an index counted completed twice, or counted without a completed run, breaks the per-index invariants', () => {
  const world = new SimWorld(options('array', 'unit', 4, 10_000));
  const id = world.deployArray(0, { name: 'array-task', resources: { cpu: 0.1, memory: 2 ** 20, disk: 0, gpus: 0 }, timeoutMs: 10_000, count: 3 }, [0, 1, 2].map(() => ({ durationMs: 1000, failures: 0, hangFirst: false })))!;
  const node = world.nodes[0]!;
  const deal = { provider: 'p', nonce: 1, slots: 1, allocationId: 'x', state: 'running' as const, completed: 0, message: '' };
  const rec = (states: string, completed: number, ranOn: number[]) =>
    ({ id, count: 3, instanceStates: states, instances: { total: 3, queued: 0, running: 0, completed, failed: 0 }, ranOn, deals: [{ ...deal, completed }], startedAt: null }) as unknown as ArrayRecord;
  const violation = (f: () => void) => {
    try {
      f();
    } catch (e) {
      if (e instanceof SimViolation) return e.invariant;
      throw e;
    }
    return null;
  };
  const see = (states: string, completed: number, ranOn: number[]) => violation(() => world.observe(node, `job/${id}`, 'array', { record: rec(states, completed, ranOn) }, { type: 'batch.progress' }));
  // a run of index 1 completed: counting it is fine; its count going back (to count it again later) is not
  world.instanceEnded(node, id, 1, 'completed');
  assert.is(see('qcq', 1, [-1, 0, -1]), null);
  assert.is(see('qqq', 0, [-1, -1, -1]), 'instance-completes-once');
  // index 0 counted completed with no run of it completed anywhere
  assert.is(see('cqq', 1, [0, -1, -1]), 'instance-ran');
  // the record's count (and its deals') agrees with its per-index states
  world.instanceEnded(node, id, 0, 'completed');
  assert.is(see('ccq', 1, [0, 0, -1]), 'instance-completes-once');
});

Arrays.run();

// ---------------------------------------------------------------------------------------------------------------

const Ensembles = suite('sim: ensembles');

Ensembles('a few seeds of the ensemble scenario hold every invariant, place ensembles and place parts again after crashes', () => {
  let placed = 0;
  let completed = 0;
  let recovered = 0;
  let crashes = 0;
  let restarts = 0;
  for (const [seed, nodes, ms] of [['e1', 10, 90_000], ['e2', 12, 120_000], ['e3', 16, 90_000]] as const) {
    const r = run(options('ensemble', seed, nodes, ms));
    clean(r, `ensemble seed ${seed}`);
    placed += r.ensembles.placed;
    completed += r.ensembles.completed;
    recovered += r.ensembles.recovered;
    crashes += r.faults.crashes;
    restarts += r.ensembles.restarts;
  }
  assert.ok(placed > 5, `${placed} ensembles placed`);
  assert.ok(completed > 0, 'no ensemble completed');
  assert.ok(crashes > 0, 'no provider crashed');
  // a part whose provider crashed runs again on a new allocation
  assert.ok(recovered > 0, `no part was placed again after ${crashes} crashes`);
  assert.ok(restarts > 0, 'no part restarted or moved');
});

Ensembles('the same seed gives the same run and digest', () => {
  const strip = (r: SimReport) => JSON.stringify({ ...r, wallMs: 0, eventsPerSec: 0, memory: null });
  const a = run(options('ensemble', 'same', 10, 60_000));
  const b = run(options('ensemble', 'same', 10, 60_000));
  clean(a, 'ensemble seed same');
  assert.ok(a.ensembles.submitted > 0);
  assert.is(strip(a), strip(b));
});

Ensembles('an ensemble that ends without stopping its parts is found (ensemble-stops), at the same step for the same seed', () => {
  // seen once an ensemble stops early (cancelled, or a part failed for good): at its life's end its parts stop anyway
  const found = hunt('ensemble', 'ensemble-leaves-parts', 'ensemble-stops', 180_000);
  assert.match(found.report.violation!.message, /^ensemble-stops: ensemble \S+ ended \w+ 25 s ago and (an allocation of \S+ still runs on n\d+|the negotiation of its part \S+ is still live on its requester)$/);
});

Ensembles.run();

// ---------------------------------------------------------------------------------------------------------------

/**
 * Runs seeds h1, h2, ... with `plant` until one breaks an invariant, which must be `invariant`; the same seed must
 * break it at the same step again, and be clean without the plant.
 */
function hunt(scenario: 'array' | 'ensemble', plant: NonNullable<SimOptions['plant']>, invariant: string, durationMs: number): { seed: string; report: SimReport } {
  for (let s = 1; s <= 6; s += 1) {
    const seed = `h${s}`;
    const o = options(scenario, seed, 10, durationMs);
    const report = run({ ...o, plant });
    if (!report.violation) continue;
    assert.is(report.violation.invariant, invariant, report.violation.message);
    console.log(`  ${plant}: found at seed ${seed} (10 nodes, ${durationMs / 1000} s), step ${report.violation.step}, ${Math.round(report.violation.atMs)} ms simulated`);
    assert.is(run({ ...o, plant }).violation?.step, report.violation.step);
    clean(run(o), `${scenario} seed ${seed} without the plant`);
    return { seed, report };
  }
  assert.unreachable(`${plant} was not found in 6 seeds`);
  throw new Error('unreachable');
}
