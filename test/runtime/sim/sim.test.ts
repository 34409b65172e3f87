// The deterministic simulator (issue 15): the same seed gives the same run; the scenarios hold their invariants
// over many short seeds (a property test: the simulator's own seeds); planted bugs are found, with the seed and the
// step; the invariants fire on a broken ledger; the network model's loss, duplication and partitions; and `sim`'s
// flags are checked before anything runs.
import { Worker } from 'node:worker_threads';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { EventQueue } from '../../../runtime/sim/event-queue.ts';
import { LAN_MODEL, SimNetwork } from '../../../runtime/sim/network.ts';
import { Random } from '../../../runtime/sim/random.ts';
import { parseFaults, parseSimFlags } from '../../../runtime/sim/sim-options.ts';
import { SCENARIO_NAMES, scenarioNamed } from '../../../runtime/sim/scenarios.ts';
import { type SimOptions, type SimReport, SimWorld } from '../../../runtime/sim/world.ts';
import { UsageError } from '../../../runtime/errors.ts';

/** Seeds per scenario in `npm test`; `npm run sim:soak` runs many more (SIM_SEEDS). */
const SEEDS = Number(process.env.SIM_SEEDS ?? 150);

/** Short runs: small networks of short tasks (5 s on average), so every seed places, completes and fails deals. */
function options(scenario: string, seed: string, over: Partial<SimOptions> & { faults?: string; taskTime?: string } = {}): SimOptions {
  const { faults, taskTime, ...rest } = over;
  const [o] = parseSimFlags({ nodes: String(over.nodes ?? 8), seed, duration: '40s', scenario, taskTime: taskTime ?? '5s', ...(faults ? { faults } : {}) });
  return { ...o!, ...rest };
}

function run(o: SimOptions): SimReport {
  return new SimWorld(o).run();
}

// ---------------------------------------------------------------------------------------------------------------

const Determinism = suite('sim: one seed, one run');

Determinism('the same seed and options give the same report and digest, byte for byte', () => {
  for (const scenario of SCENARIO_NAMES) {
    const o = options(scenario, 'same', { nodes: 12, durationMs: 60_000 });
    const a = run(o);
    const b = run(o);
    const strip = (r: SimReport) => JSON.stringify({ ...r, wallMs: 0, eventsPerSec: 0, memory: null });
    assert.is(a.violation, null, `${scenario}: ${a.violation?.message}`);
    assert.ok(a.events > 100, `${scenario} took ${a.events} events`);
    assert.is(strip(a), strip(b), scenario);
    assert.match(a.digest, /^[0-9a-f]{64}$/);
  }
});

Determinism('another seed gives another run', () => {
  const a = run(options('storm', 'one', { nodes: 12, durationMs: 60_000 }));
  const b = run(options('storm', 'two', { nodes: 12, durationMs: 60_000 }));
  assert.is.not(a.digest, b.digest);
});

Determinism.run();

// ---------------------------------------------------------------------------------------------------------------

const Properties = suite(`sim: ${SEEDS} short seeds of each scenario hold every invariant`);

type SeedCounts = { runs: number; placed: number; completed: number; crashes: number; cut: number; lost: number; violation: null | { seed: string; invariant: string; step: number; message: string; history: string[] } };

/** The seeds 1..SEEDS of `scenario`, shared between two worker threads (one per core), their counts summed. */
async function seedsInWorkers(scenario: string): Promise<SeedCounts> {
  const all = Array.from({ length: SEEDS }, (_, i) => i + 1);
  const shares = [all.filter((s) => s % 2 === 1), all.filter((s) => s % 2 === 0)];
  const results = await Promise.all(
    shares.map(
      (seeds) =>
        new Promise<SeedCounts>((resolve, reject) => {
          const w = new Worker(new URL('./seeds.worker.mjs', import.meta.url), { workerData: { scenario, seeds } });
          w.once('message', (m: SeedCounts) => resolve(m));
          w.once('error', reject);
          w.once('exit', (code) => (code === 0 ? undefined : reject(new Error(`a seeds worker exited ${code}`))));
        }),
    ),
  );
  const sum: SeedCounts = { runs: 0, placed: 0, completed: 0, crashes: 0, cut: 0, lost: 0, violation: null };
  for (const r of results) {
    for (const k of ['runs', 'placed', 'completed', 'crashes', 'cut', 'lost'] as const) sum[k] += r[k];
    sum.violation ??= r.violation;
  }
  return sum;
}

for (const scenario of SCENARIO_NAMES) {
  Properties(`${scenario}: no violation in ${SEEDS} seeds, and the seeds do work (deals placed, completed, faults injected)`, async () => {
    const r = await seedsInWorkers(scenario);
    const v = r.violation;
    if (v) assert.unreachable(`seed ${v.seed} of ${scenario} broke ${v.invariant} at step ${v.step}: ${v.message}\n${v.history.join('\n')}`);
    assert.is(r.runs, SEEDS);
    assert.ok(r.placed > SEEDS, `${scenario}: ${r.placed} deals placed over ${SEEDS} seeds`);
    assert.ok(r.completed > 0, `${scenario}: nothing completed`);
    if (scenario === 'churn' || scenario === 'crash') assert.ok(r.crashes > SEEDS / 4, `${scenario}: only ${r.crashes} crashes`);
    if (scenario === 'partition') {
      assert.ok(r.cut > 0, 'the partition cut nothing off');
      assert.ok(r.lost > 0, 'no message was lost');
    }
  });
}

Properties.run();

// ---------------------------------------------------------------------------------------------------------------

const Planted = suite('sim: planted bugs are found within the seeds npm test runs');

/** The first seed (of SEEDS) at which a planted bug breaks an invariant. */
function hunt(scenario: string, plant: SimOptions['plant'], invariant: string, over: Partial<SimOptions> & { faults?: string; taskTime?: string } = {}): { seed: string; report: SimReport } {
  for (let s = 1; s <= SEEDS; s += 1) {
    const seed = `p${s}`;
    const report = run({ ...options(scenario, seed, { nodes: 6 + (s % 4), durationMs: 20_000 + (s % 3) * 5_000, ...over }), plant });
    if (report.violation) {
      assert.is(report.violation.invariant, invariant, report.violation.message);
      return { seed, report };
    }
  }
  assert.unreachable(`${plant} was not found in ${SEEDS} seeds of ${scenario}`);
  throw new Error('unreachable');
}

Planted('a provider that forgets to release its lock on a revert breaks lock-released', () => {
  const { seed, report } = hunt('storm', 'forget-unlock-on-revert', 'lock-released');
  const v = report.violation!;
  assert.match(v.message, /ended released but its lock is still held/);
  assert.ok(v.history.some((h) => h.includes('deal.revert')), 'the history shows the revert');
  console.log(`  forget-unlock-on-revert: found at seed ${seed}, step ${v.step}, ${v.atMs} ms simulated`);
  // reproducible: the same seed finds it at the same step
  const s = Number(seed.slice(1));
  const same = { nodes: 6 + (s % 4), durationMs: 20_000 + (s % 3) * 5_000 };
  const again = run({ ...options('storm', seed, same), plant: 'forget-unlock-on-revert' });
  assert.is(again.violation?.step, v.step);
  // and without the bug the same seed is clean
  const clean = run(options('storm', seed, same));
  assert.is(clean.violation, null);
});

Planted('an allocation that ignores its cancel breaks cancel-stops', () => {
  const { seed, report } = hunt('storm', 'ignore-cancel', 'cancel-stops', { faults: 'cancel=0.5,fail=0,hang=0', taskTime: '60s', durationMs: 120_000 });
  console.log(`  ignore-cancel: found at seed ${seed}, step ${report.violation!.step}`);
});

Planted.run();

// ---------------------------------------------------------------------------------------------------------------

const Parts = suite('sim: its parts');

Parts('the random streams: the same seed gives the same numbers, a fork does not move its parent', () => {
  const a = new Random('x');
  const b = new Random('x');
  const xs = Array.from({ length: 50 }, () => a.uint32());
  assert.equal(Array.from({ length: 50 }, () => b.uint32()), xs);
  const c = new Random('x');
  c.fork('other').uint32();
  assert.is(c.uint32(), xs[0]);
  const r = new Random(7);
  for (let i = 0; i < 1000; i += 1) {
    const v = r.int(3, 5);
    assert.ok(v >= 3 && v <= 5 && Number.isInteger(v));
    assert.ok(r.float() < 1);
  }
});

Parts('the event queue runs jobs by time, then in the order they were scheduled', () => {
  const q = new EventQueue(100);
  const seen: string[] = [];
  q.at(130, () => seen.push('c'));
  q.at(110, () => seen.push('a1'));
  q.at(110, () => seen.push('a2'));
  q.at(50, () => seen.push('past')); // never before now: runs at 100
  q.at(120, () => seen.push('b'));
  while (q.size > 0) q.pop()!();
  assert.equal(seen, ['past', 'a1', 'a2', 'b', 'c']);
  assert.is(q.now, 130);
});

Parts('the network: a partition cuts messages between sides, and a broadcast reaches only its own side, nearest first', () => {
  const q = new EventQueue(0);
  const net = new SimNetwork(40, LAN_MODEL, q, new Random(1));
  const got: number[] = [];
  net.partition((i) => (i < 20 ? 0 : 1));
  net.send(0, 30, 100, () => got.push(30));
  net.send(0, 10, 100, () => got.push(10));
  const reached = net.broadcast(0, (b) => got.push(1000 + b));
  while (q.size > 0) q.pop()!();
  assert.ok(got.includes(10));
  assert.not.ok(got.includes(30));
  assert.ok(reached > 0 && reached < 20, `reached ${reached}`);
  assert.ok(got.filter((g) => g >= 1000).every((g) => g - 1000 < 20));
  net.heal();
  const all: number[] = [];
  assert.is(net.broadcast(0, (b) => all.push(b)), 39);
  while (q.size > 0) q.pop()!();
  assert.is(all.length, 39);
});

Parts('the network: loss drops about its share, duplication delivers twice, a node that is down hears nothing', () => {
  const q = new EventQueue(0);
  const net = new SimNetwork(4, { ...LAN_MODEL, loss: 0.3, duplicate: 0.2 }, q, new Random(2));
  let n = 0;
  for (let i = 0; i < 2000; i += 1) net.send(0, 1, 100, () => (n += 1));
  while (q.size > 0) q.pop()!();
  // 70% arrive, and a fifth of those twice: about 1,680
  assert.ok(n > 1500 && n < 1860, `delivered ${n}`);
  net.setUp(2, false);
  let m = 0;
  net.send(0, 2, 100, () => (m += 1));
  while (q.size > 0) q.pop()!();
  assert.is(m, 0);
});

Parts('a crash loses what was not durable; the node comes back from its log with its ledger intact', () => {
  const o = options('churn', 'crash-check', { nodes: 10, durationMs: 90_000, faults: 'crashes=20,mid-effect=0.5' });
  const r = run(o);
  assert.is(r.violation, null, r.violation?.message);
  assert.ok(r.faults.crashes >= 5 && r.faults.restarts >= 5, JSON.stringify(r.faults));
});

Parts('the ledger invariant fires on a node that promised more than it has', () => {
  const o = options('storm', 'ledger', { nodes: 6, durationMs: 20_000 });
  const world = new SimWorld(o);
  const report = world.run();
  assert.is(report.violation, null);
  // doctor a provider's ledger: one lock for more than it registered, as a broken machine would make it
  const provider = world.nodes.find((n) => world.isProvider(n.index))!;
  const ctx = provider.nodeContext();
  const huge = { id: 'forged', resources: { cpu: 999, memory: 0, disk: 0, gpus: 0 }, ports: [], expiresAt: Number.MAX_SAFE_INTEGER };
  assert.throws(() => world.observe(provider, 'node', 'node', { ...ctx, ledger: { ...ctx.ledger, locks: { ...ctx.ledger.locks, forged: huge } } }, { type: 'ledger.lock' }), /no-overbooking: node n\d+ has locked \+ allocated more than it registered: cpu \d+ > 2/);
});

Parts.run();

// ---------------------------------------------------------------------------------------------------------------

const Flags = suite('sim: flags are checked before anything runs');

Flags('bad values are named with what they should be', () => {
  const bad: [Parameters<typeof parseSimFlags>[0], RegExp][] = [
    [{ nodes: '1' }, /--nodes must be a whole number from 2/],
    [{ nodes: 'many' }, /--nodes must be a whole number/],
    [{ duration: '0s' }, /--duration must be a simulated time/],
    [{ duration: 'soon' }, /--duration/],
    [{ scenario: 'hurricane' }, /--scenario must be one of storm, churn/],
    [{ eventCost: '-1' }, /--event-cost/],
    [{ plant: 'nope' }, /--plant must be one of forget-unlock-on-revert/],
    [{ seed: '' }, /--seed must be 1 to 128/],
    [{ faults: 'loss=2' }, /--faults loss must be a number from 0 to 1/],
    [{ faults: 'gremlins=1' }, /unknown key "gremlins"/],
    [{ faults: 'partition=soon' }, /partition must be START\+LENGTH/],
    [{ faults: 'down=x' }, /down must be a duration/],
  ];
  for (const [flags, re] of bad) {
    assert.throws(() => parseSimFlags(flags), (e: Error) => e instanceof UsageError && re.test(e.message), JSON.stringify(flags));
  }
});

Flags('--faults sets what it names over the scenario, and none clears every fault', () => {
  assert.equal(parseFaults('loss=0.01,dup=0.02,crashes=3,down=10s,partition=1m+2m'), { loss: 0.01, duplicate: 0.02, crashesPerMin: 3, downMs: 10_000, partitionAt: 60_000, partitionMs: 120_000 });
  const [o] = parseSimFlags({ scenario: 'partition', faults: 'none', nodes: '10' });
  assert.is(o!.scenario.faults.partitionMs, 0);
  assert.is(o!.network.loss, 0);
  assert.is(parseSimFlags({ scenario: 'all' }).length, SCENARIO_NAMES.length);
  assert.ok(scenarioNamed('churn', 1000)!.faults.crashesPerMin >= 10);
});

Flags.run();
