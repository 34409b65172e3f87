// What 10,000 deals leave on a provider: its RSS and data dir after 100 deals and after N (default 10,000), target
// within 50 MB (issue 10: memory and disk bounded by design, not by luck). Outside `npm run bench` (it takes
// ~15-25 min on 2 cores): `npm run build && node test/bench/many-deals.mjs [--deals N] [--json FILE]`.
//
// Two real nodes (`node runtime/main.js`, loopback): A deploys hello.wasm (0.1 cpu) through its API, WINDOW deals in
// flight, and polls each to its end; B, the only provider, runs them. B lets A hold WINDOW bids at once (its
// preferences; a stranger gets 8). Both run with `--retain-history 64MiB`, the least history cap, so the journal's
// history (kept for `replay`) is bounded within the run, and the default `--retain 7d` (every deal's record stays:
// they are what grows). At each checkpoint (100, 1,000, then every 1,000) B's RSS and data dir are sampled: the
// whole dir (each inode once), its journal, and the journal's history (test/bench/common.mjs dirBytes).
import { writeFile } from 'node:fs/promises';
import os from 'node:os';
import { parseArgs } from 'node:util';
import { cleanup, dirBytes, guard, note, round, rssOf } from './common.mjs';
import { helloJob, startCluster, stopNodes } from './deals.mjs';

const { values: args } = parseArgs({ options: { deals: { type: 'string', default: '10000' }, json: { type: 'string' } } });
const N = Number(args.deals);
if (!Number.isInteger(N) || N < 100) throw new Error(`--deals ${args.deals}: give a whole number of at least 100`);
const WINDOW = 16;
const TERMINAL = ['completed', 'failed', 'cancelled'];
/** The whole run is bounded: ~8 deals/s is expected here; stop deploying after this and report what there is. */
const BUDGET_MS = Math.max(120_000, N * 250);
const MB = 1e6;
const MiB = 1024 ** 2;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const watchdog = guard(BUDGET_MS + 300_000, 'many-deals');

let cl;
let exitCode = 1;
try {
  const load0 = os.loadavg()[0];
  cl = await startCluster('many', 1, [], ['--retain-history', '64MiB']);
  const [b] = cl.providers;
  const prefs = await b.api('GET', '/v1/preferences');
  await b.api('PUT', '/v1/preferences', { ...prefs, provider: { ...prefs.provider, maxLocksPerRequester: WINDOW } });
  const { body } = await helloJob(0.1);
  const checkpoints = [100, ...Array.from({ length: Math.floor(N / 1000) }, (_, i) => (i + 1) * 1000)].filter((c) => c <= N);
  if (checkpoints.at(-1) !== N) checkpoints.push(N);
  const samples = [];
  let next = 0;
  let ended = 0;
  let sampling = Promise.resolve();
  const outcomes = {};
  const t0 = performance.now();
  const sample = (at) => {
    sampling = sampling.then(async () => {
      const [mem, disk] = await Promise.all([rssOf(b.child.pid), dirBytes(b.dir)]);
      const s = { deals: at, s: round((performance.now() - t0) / 1000, 1), rssMiB: round(mem.rss / MiB, 1), dataDirMB: round(disk.total / MB, 1), journalMB: round(disk.journal / MB, 1), historyMB: round(disk.history / MB, 1), withoutHistoryMB: round((disk.total - disk.history) / MB, 1) };
      samples.push(s);
      note(`many-deals: ${at} deals in ${s.s} s: B RSS ${s.rssMiB} MiB, data dir ${s.dataDirMB} MB (journal ${s.journalMB}, of it history ${s.historyMB}; without history ${s.withoutHistoryMB})`);
    });
  };
  const worker = async () => {
    while (next < N && performance.now() - t0 < BUDGET_MS) {
      next += 1;
      let state = 'error';
      try {
        const { id } = await cl.a.api('POST', '/v1/deploy', body);
        await sleep(150);
        for (;;) {
          const r = await cl.a.api('GET', `/v1/jobs/${id}`);
          if (TERMINAL.includes(r.state)) {
            state = r.state;
            break;
          }
          await sleep(100);
        }
      } catch (e) {
        state = `error: ${e.message.slice(0, 80)}`;
      }
      outcomes[state] = (outcomes[state] ?? 0) + 1;
      ended += 1;
      if (checkpoints.includes(ended)) sample(ended);
    }
  };
  await Promise.all(Array.from({ length: WINDOW }, worker));
  await sampling;
  const wallS = (performance.now() - t0) / 1000;
  const first = samples[0];
  const last = samples.at(-1);
  const rssGrowthMB = last && first ? round(((last.rssMiB - first.rssMiB) * MiB) / MB, 1) : null;
  const dirGrowthMB = last && first ? round(last.dataDirMB - first.dataDirMB, 1) : null;
  const report = {
    when: new Date().toISOString(),
    machine: `${os.cpus().length} cores, ${round(os.totalmem() / 1024 ** 3)} GiB, Node ${process.version}`,
    load: { before: round(load0, 2), after: round(os.loadavg()[0], 2) },
    deals: ended,
    outcomes,
    dealsPerSecond: round(ended / wallS, 1),
    samples,
    target: 'B\'s RSS and data dir after N deals within 50 MB of after 100',
    rssGrowthMB,
    dataDirGrowthMB: dirGrowthMB,
    ok: ended === N && rssGrowthMB !== null && rssGrowthMB <= 50 && dirGrowthMB <= 50,
  };
  const stops = await stopNodes(cl.all);
  report.stops = stops.map((s) => `${s.name} ${s.code ?? s.signal}`);
  note(`many-deals: ${ended} deals in ${round(wallS)} s (${report.dealsPerSecond}/s): ${JSON.stringify(outcomes)}; B RSS ${first?.rssMiB} -> ${last?.rssMiB} MiB (${rssGrowthMB} MB), data dir ${first?.dataDirMB} -> ${last?.dataDirMB} MB (${dirGrowthMB} MB) => ${report.ok ? 'PASS' : 'MISSED'}`);
  if (args.json) await writeFile(args.json, JSON.stringify(report, null, 2));
  exitCode = report.ok ? 0 : 1;
} catch (e) {
  note(`many-deals failed: ${e.stack ?? e.message}`);
} finally {
  clearTimeout(watchdog);
  await cleanup();
  process.exit(exitCode);
}
