// What `--require-grants` costs a deal: two clusters in the same run, each a requester A and a provider B started by
// deals.mjs's startCluster (`--bid-window 500ms`, the tiny example WASM job): one plain, one whose nodes run with
// `--require-grants` and whose A holds B's grant for deploy (made with B's API, added with A's), so each of its bid
// requests carries the token, B checks it (verified once, then from its cache) and hands the Node the result, and
// every later message of the deal checks that the grant still holds.
//   grants-deal-latency-p50  deploy (POST /v1/deploy sent) -> the requester's history entry `running` (its `at`),
//                            deals one at a time, alternating between the clusters (GRANTS_BENCH_N each, at most
//                            GRANTS_BENCH_SECONDS in all); ours: with grants required, raw: without. Target: within
//                            10% (ratio <= 1.10).
//   grants-deal-latency-p99  the same deals, nearest rank (reported, no target).
// Standalone: `npm run build && node test/bench/grants.mjs [--json FILE]`; from run.mjs: `grantsBenches` gives
// [id, fn] pairs, each fn resolving to an array of rows in run.mjs's shape.
import { isMain, msRow, note, round, runStandalone, step } from './common.mjs';
import { helloJob, startCluster, stepsOf, stopNodes, untilEnded, warmUp } from './deals.mjs';

const env = (name, dflt) => (process.env[name] === undefined ? dflt : Number(process.env[name]));
const N = env('GRANTS_BENCH_N', 30);
const BUDGET_MS = env('GRANTS_BENCH_SECONDS', 40) * 1000;

const pct = (xs, p) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.max(0, Math.ceil(p * s.length) - 1)];
};
const stats = (xs) => (xs.length ? { p50: round(pct(xs, 0.5), 1), p99: round(pct(xs, 0.99), 1), max: round(Math.max(...xs), 1), n: xs.length } : { n: 0 });

/** One deal on a cluster, deploy -> running ms (and its rounds), or why it failed. */
async function deal(a, body) {
  const sent = Date.now();
  const rec = await a.api('POST', '/v1/deploy', body);
  const end = await untilEnded(a, rec.id, 50, 50, 30_000);
  if (end.state !== 'completed') return { failed: `${end.id} ${end.state}: ${end.message}` };
  const s = stepsOf(end, sent);
  return s.running === undefined ? { failed: `${end.id} has no running step` } : { ms: s.running - sent, rounds: s.rounds };
}

async function benchGrantLatency() {
  const { body } = await helloJob();
  let plain;
  let granted;
  try {
    const t0 = performance.now();
    [plain, granted] = await Promise.all([startCluster('grants-off', 1), startCluster('grants-on', 1, [], ['--require-grants'])]);
    const a = granted.a;
    const b = granted.providers[0];
    // B grants A deploy; A keeps it, and its bid requests carry it from now on
    const g = await b.api('POST', '/v1/cap/grant', { audience: a.ready.did, actions: ['deploy'] });
    await a.api('POST', '/v1/cap/add', { token: g.token });
    note(`grants: 2 clusters of 2 nodes up in ${round((performance.now() - t0) / 1000, 1)} s; token ${g.token.length} characters, ${g.links.length} link`);
    const warm = [(await warmUp(plain.a, body)).deals, (await warmUp(a, body)).deals];
    const off = [];
    const on = [];
    const rounds = { off: {}, on: {} };
    const failed = [];
    const began = performance.now();
    for (let i = 0; i < N && performance.now() - began < BUDGET_MS; i += 1) {
      // alternate which side goes first, so drift in the machine's load falls on both
      const order = i % 2 ? [['on', a, on], ['off', plain.a, off]] : [['off', plain.a, off], ['on', a, on]];
      for (const [side, node, out] of order) {
        const r = await deal(node, body);
        if (r.failed) failed.push(`${side}: ${r.failed}`);
        else {
          out.push(r.ms);
          rounds[side][r.rounds] = (rounds[side][r.rounds] ?? 0) + 1;
        }
      }
    }
    if (on.length === 0 || off.length === 0) throw new Error(`no deal reached running on one side: ${failed.slice(0, 3).join('; ')}`);
    const info = await b.api('GET', '/v1/info');
    const cap = await b.api('GET', '/v1/cap');
    const o = stats(on);
    const r = stats(off);
    const detail = { deals: { on: on.length, off: off.length }, warmUpDeals: warm, onMs: o, offMs: r, rounds, failed, tokenChars: g.token.length, providerDeclines: info.bidDeclines ?? {}, verifierCache: cap.cache ?? null };
    const notes = [
      `${on.length} deals with grants required and ${off.length} without, one at a time, alternating (warm-up ${warm.join(' and ')} deals); rounds with: ${JSON.stringify(rounds.on)}, without: ${JSON.stringify(rounds.off)}${failed.length ? `; FAILED ${failed.length}: ${failed[0]}` : ''}`,
      `deploy -> running ms: with grants p50 ${o.p50}, p99 ${o.p99}, max ${o.max}; without p50 ${r.p50}, p99 ${r.p99}, max ${r.max}`,
      `the token A's bid requests carry: ${g.token.length} characters; B's verifier: ${JSON.stringify(cap.cache ?? {})}; B's declines: ${JSON.stringify(info.bidDeclines ?? {})}`,
    ];
    return [
      { ...msRow('grants-deal-latency-p50', 'deal latency p50 with --require-grants (A holds B\'s grant; every bid request carries it, B checks it) vs without, 2 nodes each, tiny WASM job, deploy -> running, one at a time', o.p50, r.p50, [{ kind: 'ratio', max: 1.1 }], detail), notes },
      { ...msRow('grants-deal-latency-p99', `deal latency p99 (nearest rank) with vs without --require-grants, the same deals`, o.p99, r.p99, [], { onMs: o, offMs: r }), notes: [`max ${o.max} ms with, ${r.max} ms without`] },
    ];
  } finally {
    await Promise.all([plain ? stopNodes(plain.all) : null, granted ? stopNodes(granted.all) : null]);
  }
}

/** [id, fn] pairs for run.mjs; each fn resolves to an array of rows. */
export const grantsBenches = [['grants-deal-latency', benchGrantLatency]];


// ---------------------------------------------------------------------------------------------- standalone

if (isMain(import.meta.url)) await runStandalone('grants', grantsBenches, { watchdogMs: 240_000 });
