/**
 * `--scenario mesh`: what `npm run sim:real` (scripts/real-mesh.mjs) does with real processes, in the simulator:
 * every node linked to every other on loopback, every node a provider, three requesters deploying 40 tiny WASM
 * tasks, four in flight at a time. Run beside the real figures, it shows what the network model gets right (reach,
 * bids, rounds, messages) and what a CPU-starved box adds (README "Simulation").
 */
import type { Random } from './random.ts';
import { NO_FAULTS, type Scenario } from './scenarios.ts';
import type { SimWorld } from './world.ts';

const GiB = 2 ** 30;
export const MESH_JOBS = 40;
export const MESH_IN_FLIGHT = 4;
export const MESH_REQUESTERS = 3;
/** hello.wasm's run on a warm runner. */
const TASK_MS = 50;

export function meshScenario(): Scenario {
  return {
    name: 'mesh',
    summary: `the real 50-process run's shape: a full mesh on loopback, every node a provider, ${MESH_REQUESTERS} requesters deploying ${MESH_JOBS} tiny tasks, ${MESH_IN_FLIGHT} in flight`,
    workload: { requesterShare: 0, maxRequesters: MESH_REQUESTERS, providerShare: 1, load: 0, maxJobsPerSec: 0, cpu: 0.1, memory: 32 * 2 ** 20, meanDurationMs: TASK_MS, timeoutMs: 60_000, offerCpu: 2, offerMemory: 8 * GiB },
    faults: NO_FAULTS,
    offer: () => ({ cpu: 2, memory: 8 * GiB, disk: 100 * GiB }),
    start: (world: SimWorld, _work: Random) => {
      let deployed = 0;
      const tick = () => {
        // a job ended: the next one goes (the real script keeps four in flight)
        while (deployed < MESH_JOBS && deployed - (deployedEnded(world, deployed)) < MESH_IN_FLIGHT) {
          world.deploy(deployed % MESH_REQUESTERS, { name: 'hello', resources: { cpu: 0.1, memory: 32 * 2 ** 20, disk: 0, gpus: 0 }, timeoutMs: 60_000 }, { durationMs: TASK_MS, fails: false, hangs: false });
          deployed += 1;
        }
        if (deployed < MESH_JOBS) world.queue.after(10, tick);
      };
      // the real script deploys once every node has meshed: a second in, here
      world.queue.at(world.now() + 1000, tick);
    },
  };
}

/** How many of the first `deployed` jobs have ended. */
function deployedEnded(world: SimWorld, deployed: number): number {
  return deployed - world.openJobs;
}
