// `npm run sim:soak`: many more seeds of every simulator scenario than `npm test` runs, on bigger networks and
// longer runs; stops at the first violation and prints how to reproduce it. Bounded by --minutes (default 20).
//   node scripts/sim-soak.mjs [--seeds N] [--from N] [--minutes M] [--scenario NAME]
// Loads the compiled JS (`npm run build` first; the npm script does).
import { parseSimFlags } from '../runtime/sim/sim-options.js';
import { SCENARIO_NAMES } from '../runtime/sim/scenarios.js';
import { SimWorld } from '../runtime/sim/world.js';
import { formatSimReport } from '../runtime/cli/sim-command.js';

const args = process.argv.slice(2);
const opt = (name, d) => (args.includes(name) ? args[args.indexOf(name) + 1] : d);
const seeds = Number(opt('--seeds', 1000));
const from = Number(opt('--from', 1));
const deadline = performance.now() + Number(opt('--minutes', 20)) * 60_000;
const scenarios = opt('--scenario', 'all') === 'all' ? SCENARIO_NAMES : [opt('--scenario')];

let runs = 0;
let events = 0;
const t0 = performance.now();
for (let s = from; s < from + seeds; s += 1) {
  for (const scenario of scenarios) {
    if (performance.now() > deadline) {
      console.log(`time is up after ${runs} runs (${events.toLocaleString('en')} events): no violation`);
      process.exit(0);
    }
    // the shape of each run varies with its seed: 8..40 nodes, 1..3 simulated minutes, tasks of 5..30 s
    const flags = { nodes: String(8 + (s % 33)), seed: `soak${s}`, duration: `${60 + (s % 3) * 60}s`, scenario, taskTime: `${5 + (s % 6) * 5}s` };
    const [o] = parseSimFlags(flags);
    const r = new SimWorld(o).run();
    runs += 1;
    events += r.events;
    if (r.violation) {
      console.log(formatSimReport(r));
      console.log(`reproduce: node runtime/main.js sim --scenario ${scenario} --nodes ${flags.nodes} --seed ${flags.seed} --duration ${flags.duration} --task-time ${flags.taskTime}`);
      process.exit(1);
    }
  }
  if (s % 25 === 0) console.log(`seed ${s}: ${runs} runs, ${events.toLocaleString('en')} events, ${Math.round((performance.now() - t0) / 1000)} s, no violation`);
}
console.log(`${runs} runs (${seeds} seeds x ${scenarios.length} scenarios), ${events.toLocaleString('en')} machine events in ${Math.round((performance.now() - t0) / 1000)} s: no violation`);
