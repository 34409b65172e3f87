// Runs a share of the property suite's seeds of one scenario (sim.test.ts starts two, one per core), on the
// compiled simulator; posts the counts, or the first violation with its seed.
import { parentPort, workerData } from 'node:worker_threads';
import { parseSimFlags } from '../../../runtime/sim/sim-options.js';
import { SimWorld } from '../../../runtime/sim/world.js';

const { scenario, seeds } = workerData;
const out = { runs: 0, placed: 0, completed: 0, crashes: 0, cut: 0, lost: 0, violation: null };
for (const s of seeds) {
  // the same shapes as sim.test.ts's short runs: 6-9 nodes, 20-30 simulated seconds, 5 s tasks
  const [o] = parseSimFlags({ nodes: String(6 + (s % 4)), seed: `p${s}`, duration: `${20 + (s % 3) * 5}s`, scenario, taskTime: '5s' });
  const r = new SimWorld(o).run();
  out.runs += 1;
  if (r.violation) {
    out.violation = { seed: `p${s}`, invariant: r.violation.invariant, step: r.violation.step, message: r.violation.message, history: r.violation.history.slice(-15) };
    break;
  }
  out.placed += r.jobs.placed;
  out.completed += r.jobs.completed;
  out.crashes += r.faults.crashes;
  out.cut += r.network.partitioned;
  out.lost += r.network.dropped;
}
parentPort.postMessage(out);
