// Bid decisions per second of the Node actor with 0, 10k and 100k remembered requests (issue 10: the `answered`
// table must not make each decision cost more as it grows; target: flat).
//
// Both sides run the real hosted Node actor (actors/hosted-actor.ts with the node kind: the machine, its facts for
// the indexes, its intents as JSON), in this thread, fed the same kind of events:
//   ours  the actor remembers N requests first (N bid requests from N distinct peers that it declines, remembered
//         until long after the run), then decides on fresh requests
//   raw   the same actor with nothing remembered before the run: the decision with an empty table
// Each measured request comes from a peer of its own (so no per-requester cap binds), asks for 0.01 cpu and 1 MiB,
// expires 50 ms after it arrives, and gets a bid: a lock and a provider negotiation; the lock LAG requests back is
// unlocked after it (as a requester's revert would), so the ledger stays small. Decisions/s counts the requests only,
// the unlocks' time included. Time is simulated (1 ms per request): no clock is read.
//
// Standalone: `npm run build && node test/bench/bidding.mjs [--json FILE] [--sizes 10000,100000]`; from run.mjs:
// `biddingBenches` gives [id, fn] pairs, each fn resolving to one row in run.mjs's shape.
import { writeFile } from 'node:fs/promises';
import os from 'node:os';
import { fileURLToPath } from 'node:url';
import { HostedActor } from '../../actors/hosted-actor.js';
import { nodeActorKind } from '../../actors/node.actor.js';
import { alternate, guard, loadAverage, median, note, reportHead, round, runLines, step, table } from './common.mjs';
import { T0, onboardEvent } from './fixtures.mjs';

const SELF = '12D3KooWBenchProviderAAAAAAAAAAAAAAAAAAAAAAAAAA';
const MiB = 1024 ** 2;
/** Requests per measured run, runs per side. */
const PER_RUN = 4000;
const RUNS = 5;
const LAG = 8;
/** The remembered requests stay until long after the run (the Node forgets a request 5 min after it came at most). */
const PREFILL_UNTIL = T0 + 4 * 60_000;

const requester = (tag, i) => `12D3KooWBench${tag}${String(i).padStart(8, '0')}`;

function request({ dealId, from, now, expiresAt, resources = { cpu: 0.01, memory: MiB, disk: 0, gpus: 0 }, excludePeers = [] }) {
  return {
    type: 'bid.request',
    dealId,
    nonce: 1,
    from,
    now,
    self: SELF,
    expiresAt,
    job: {
      executor: 'wasm',
      name: 'bench',
      resources,
      timeoutMs: 10_000,
      constraints: { peers: [], excludePeers },
      wasm: { module: { sha256: 'a'.repeat(64), size: 1000 }, args: [], env: {} },
    },
  };
}

/** A started, onboarded Node actor that remembers `n` declined requests. */
function nodeWith(n) {
  const actor = new HostedActor(`bench-bidding-${n}`, nodeActorKind, { input: { maxAnswered: Math.max(n + PER_RUN, 10_000) } });
  check(actor.deliver([onboardEvent()]));
  for (let i = 0; i < n; i += 1000) {
    const batch = [];
    for (let j = i; j < Math.min(n, i + 1000); j += 1) {
      // excluded: declined and remembered, nothing locked
      batch.push(request({ dealId: `pre-${j}`, from: requester('P', j), now: T0, expiresAt: PREFILL_UNTIL, excludePeers: [SELF] }));
    }
    check(actor.deliver(batch));
  }
  return { actor, now: T0 + 1, runs: 0 };
}

function check(r) {
  if (r.failure) throw new Error(`the Node actor failed: ${r.failure.name}: ${r.failure.message}`);
  return r;
}

/** One measured run on `side`: PER_RUN fresh requests (each one a bid) with the unlocks behind them. */
function measure(side) {
  const tag = `R${side.runs++}x`;
  const events = [];
  const keys = [];
  for (let i = 0; i < PER_RUN; i += 1) {
    const now = side.now++;
    const from = requester(tag, i);
    const dealId = `m-${tag}-${i}`;
    events.push(request({ dealId, from, now, expiresAt: now + 50 }));
    keys.push(`${dealId}.1@${from}`);
    if (i >= LAG) events.push({ type: 'ledger.unlock', id: keys[i - LAG] });
  }
  for (let i = Math.max(0, PER_RUN - LAG); i < PER_RUN; i += 1) events.push({ type: 'ledger.unlock', id: keys[i] });
  const t0 = performance.now();
  const c0 = process.cpuUsage();
  const r = check(side.actor.deliver(events));
  const ms = performance.now() - t0;
  const c = process.cpuUsage(c0);
  const bids = (r.intents.match(/"type":"bid\.open"/g) ?? []).length;
  if (bids !== PER_RUN) throw new Error(`${bids} of ${PER_RUN} requests got a bid: the benchmark's events are wrong (${r.intents.slice(0, 300)})`);
  return { rate: PER_RUN / (ms / 1000), cpuRate: PER_RUN / ((c.user + c.system) / 1e6) };
}

async function benchBidding(n) {
  const t0 = performance.now();
  const ours = nodeWith(n);
  const raw = nodeWith(0);
  note(`bid-decisions-${n / 1000}k: ${n.toLocaleString('en')} requests remembered in ${round((performance.now() - t0) / 1000, 1)} s`);
  // warm-up: until V8 has optimised both sides, the first runs say more about the JIT than about the table
  for (let w = 0; w < 4; w += 1) {
    measure(ours);
    measure(raw);
  }
  const o = [];
  const b = [];
  for (let k = 0; k < RUNS; k += 1) {
    const [x, y] = await alternate(k, async () => measure(ours), async () => measure(raw));
    o.push(x);
    b.push(y);
  }
  ours.actor.stop();
  raw.actor.stop();
  const om = median(o.map((x) => x.rate));
  const bm = median(b.map((x) => x.rate));
  const oc = median(o.map((x) => x.cpuRate));
  const bc = median(b.map((x) => x.cpuRate));
  return {
    id: `bid-decisions-${n / 1000}k`,
    name: `Node actor bid decisions/s (HostedActor.deliver in one thread, each request a bid, unlocks behind them) with ${n.toLocaleString('en')} requests remembered vs with none`,
    unit: 'decisions/s',
    ours: round(om),
    raw: round(bm),
    ratio: round(om / bm, 3),
    targets: [{ kind: 'ratio', min: 0.8 }],
    detail: {
      remembered: n,
      requestsPerRun: PER_RUN,
      runs: RUNS,
      oursRuns: o.map((x) => round(x.rate)),
      rawRuns: b.map((x) => round(x.rate)),
      perCpuSecond: { ours: round(oc), raw: round(bc), ratio: round(oc / bc, 3) },
    },
  };
}

const SIZES = [10_000, 100_000];

/** [id, fn] pairs for run.mjs; each fn resolves to one row. */
export const biddingBenches = SIZES.map((n) => [`bid-decisions-${n / 1000}k`, () => benchBidding(n)]);

// ---------------------------------------------------------------------------------------------- standalone

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const args = process.argv.slice(2);
  const jsonFile = args.includes('--json') ? args[args.indexOf('--json') + 1] : undefined;
  const sizes = args.includes('--sizes') ? args[args.indexOf('--sizes') + 1].split(',').map(Number) : SIZES;
  const watchdog = guard(300_000, 'bidding bench');
  const started = performance.now();
  const loadBefore = os.loadavg()[0];
  const results = [];
  for (const n of sizes) await step(results, 'bench', `bid-decisions-${n / 1000}k`, () => benchBidding(n));
  const report = { ...reportHead('dms-runtime bidding bench', started), loadAverage1m: loadAverage(loadBefore), ok: results.every((r) => !r.error && r.pass !== false), results };
  process.stdout.write(`\n${table(results, (r) => (r.error ? [] : runLines(r, (v, u) => `${round(v).toLocaleString('en')} ${u === 'decisions/s' ? '/s' : u}`)))}\n\nraw: the same actor with no request remembered before the run\ntotal ${report.totalSeconds} s on ${report.cpus} cores, Node ${report.node}; 1-minute load average ${report.loadAverage1m.before} before, ${report.loadAverage1m.after} after\n`);
  if (jsonFile) await writeFile(jsonFile, `${JSON.stringify(report, null, 2)}\n`);
  process.stdout.write(`${JSON.stringify(report)}\n`);
  clearTimeout(watchdog);
  process.exit(results.some((r) => r.error) ? 1 : 0);
}
