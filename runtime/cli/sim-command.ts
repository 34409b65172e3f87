/**
 * `sim`: a network of N nodes' real machines in one process, on a simulated clock and network, with the faults of a
 * scenario; invariants checked after every event. Same options and seed, same run: the digest says so. Exits 1 at a
 * violation (printing the seed and the events that led to it), 2 on bad flags.
 */
import type { Command } from 'commander';
import type { SimReport } from '../sim/world.ts';

interface SimCliFlags {
  nodes?: string;
  seed?: string;
  duration?: string;
  faults?: string;
  scenario?: string;
  eventCost?: string;
  plant?: string;
  taskTime?: string;
  json?: boolean;
}

export function addSimCommand(program: Command): void {
  program
    .command('sim')
    .description('simulate N nodes (their real machines) on a simulated clock and network with faults; check invariants after every event; reproducible from --seed')
    .option('--nodes <n>', 'how many nodes (2..100000)', '100')
    .option('--seed <seed>', 'the run\'s seed: the same seed and options give the same run and digest', '1')
    .option('--duration <time>', 'simulated time to run (e.g. 90s, 10m)', '10m')
    .option('--scenario <name>', 'storm, churn, partition, crash, array (array jobs), ensemble (ensembles, their providers crashing), or all', 'storm')
    .option('--faults <spec>', 'none, or key=value,...: loss, dup, reorder, mid-effect, fail, hang, cancel (0..1), crashes (per minute), down (time), partition=START+LENGTH|off')
    .option('--task-time <time>', 'mean task duration (default: the scenario\'s, 30-60 s); shorter tasks arrive more often at the same load')
    .option('--event-cost <ms>', 'simulated CPU per machine event on its node', undefined)
    .option('--plant <bug>', 'run with a planted bug (forget-unlock-on-revert, ignore-cancel, batch-keeps-resources, ensemble-leaves-parts) to see the invariants catch it')
    .option('--json', 'print the reports as JSON')
    .action(async (flags: SimCliFlags) => {
      const { parseSimFlags } = await import('../sim/sim-options.ts');
      const { SimWorld } = await import('../sim/world.ts');
      const runs = parseSimFlags(flags);
      const reports: SimReport[] = [];
      for (const opts of runs) {
        const report = new SimWorld(opts).run();
        reports.push(report);
        if (!flags.json) process.stdout.write(`${formatSimReport(report)}\n`);
        if (report.violation) break;
      }
      if (flags.json) process.stdout.write(`${JSON.stringify(reports.length === 1 ? reports[0] : reports, null, 2)}\n`);
      if (reports.some((r) => r.violation)) process.exitCode = 1;
    });
}

const s = (ms: number | null) => (ms === null ? '-' : ms < 1000 ? `${Math.round(ms)} ms` : `${(ms / 1000).toFixed(2)} s`);

export function formatSimReport(r: SimReport): string {
  const lines = [
    `scenario ${r.scenario}, ${r.nodes} nodes, seed ${r.seed}: ${s(r.simulatedMs)} simulated in ${s(r.wallMs)} (${r.events.toLocaleString('en')} machine events, ${r.eventsPerSec.toLocaleString('en')}/s)`,
    `  jobs: ${r.jobs.submitted} submitted, ${r.jobs.placed} placed, ${r.jobs.completed} completed, ${r.jobs.failed} failed, ${r.jobs.cancelled} cancelled, ${r.jobs.open} still open`,
    `  placement (deploy -> running, simulated): p50 ${s(r.placementMs.p50)}, p99 ${s(r.placementMs.p99)}, max ${s(r.placementMs.max)}`,
    `  ${r.dealsPerSimSec} deals per simulated second, ${r.messagesPerDeal ?? '-'} messages per deal, ${r.roundsPerDeal ?? '-'} rounds per deal, ${(r.capacityUsed * 100).toFixed(1)}% of capacity used`,
    `  network: ${r.network.direct.toLocaleString('en')} direct messages, ${r.network.broadcasts.toLocaleString('en')} broadcasts (${r.network.broadcastHops.toLocaleString('en')} hops), ${r.network.dropped} lost, ${r.network.duplicated} duplicated, ${r.network.partitioned} cut off`,
    `  faults: ${r.faults.crashes} crashes, ${r.faults.restarts} restarts, ${r.faults.partitions} partitions; ${r.reruns} tasks ran to completion more than once`,
    ...(r.instances.runs > 0 ? [`  array instances: ${r.instances.completed} completed, ${r.instances.failed} failed for good, ${r.instances.retried} failed runs retried, ${r.instances.duplicates} repeated reports ignored; ${r.instances.runs} runs (${r.instances.timedOut} timed out, ${r.instances.lost} stopped)`] : []),
    ...(r.ensembles.submitted > 0 ? [`  ensembles: ${r.ensembles.submitted} submitted, ${r.ensembles.placed} placed, ${r.ensembles.completed} completed, ${r.ensembles.failed} failed, ${r.ensembles.cancelled} cancelled; ${r.ensembles.restarts} part restarts and moves, ${r.ensembles.recovered} parts placed again after their provider crashed`] : []),
    `  memory: ${(r.memory.heapUsedBytes / 2 ** 20).toFixed(0)} MiB heap, ${(r.memory.perNodeBytes / 1024).toFixed(0)} KiB per node`,
    `  digest ${r.digest}`,
  ];
  const v = r.violation;
  if (v) {
    lines.push(`VIOLATION of ${v.invariant} at ${s(v.atMs)} (step ${v.step}) on n${v.node}: ${v.message}`);
    lines.push(`  reproduce: node runtime/main.js sim --scenario ${r.scenario} --nodes ${r.nodes} --seed ${r.seed} (with the same --duration, --faults and --plant)`);
    lines.push('  the events that led there, oldest first:');
    for (const h of v.history.slice(-40)) lines.push(`    ${h}`);
  } else lines.push('  invariants held after every event');
  return lines.join('\n');
}
