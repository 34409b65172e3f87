// The deterministic simulator (issue 15).
//   sim-events        (and sim-events-mesh: 50 nodes, every one a provider) simulated machine events per second of the whole simulator (every node's machines, the network,
//                     the clock, the invariants), storm scenario, vs raw XState on the same event mix: the same actors
//                     created with the same inputs and sent the same events (recorded from the run), nothing else.
//                     Target: ratio >= 0.5x.
//   sim-memory-1k     heap per simulated node, 1,000 idle nodes (booted and onboarded, no work), vs a raw XState Node
//   sim-memory-10k    actor onboarded alike; the same at 10,000 nodes. Target: <= 200 KB a node.
//   sim-storm-1k      `node runtime/main.js sim --nodes 1000 --duration 10m --scenario storm`, spawn to exit, vs
//                     `node -e 0`. Target: under 60 s.
// Standalone: `npm run build && node test/bench/sim.mjs [--json FILE] [--nodes N]`; from run.mjs:
// `simBenches` gives [id, fn] pairs. Loads the compiled JS.
import v8 from 'node:v8';
import vm from 'node:vm';
import { createActor } from 'xstate';
import { ACTOR_KINDS } from '../../actors/kinds.js';
import { nodeMachine } from '../../machines/node.machine.js';
import { LAN_MODEL } from '../../runtime/sim/network.js';
import { NO_FAULTS, scenarioNamed } from '../../runtime/sim/scenarios.js';
import { parseSimFlags } from '../../runtime/sim/sim-options.js';
import { SimWorld } from '../../runtime/sim/world.js';
import { MAIN_JS, exited, isMain, note, round, runStandalone, spawnTracked, withTimeout } from './common.mjs';

const args = process.argv.slice(2);
const opt = (name) => (args.includes(name) ? args[args.indexOf(name) + 1] : undefined);
const EVENT_NODES = Number(opt('--nodes') ?? 300);
const STORM_TARGET_MS = 60_000;
const KB = 1024;

/** A world that also keeps, per actor, its kind, input and every event it took (the raw side replays them). */
class RecordingWorld extends SimWorld {
  recorded = new Map();
  spawned(node, actorId, kind, input) {
    this.recorded.set(`${node.index}/${actorId}`, { kind, input, events: [] });
    super.spawned(node, actorId, kind, input);
  }
  observe(node, actorId, kind, context, event) {
    this.recorded.get(`${node.index}/${actorId}`)?.events.push(event);
    super.observe(node, actorId, kind, context, event);
  }
}

function stormOptions(nodes, durationMs) {
  const scenario = scenarioNamed('storm', nodes, { hang: 0, cancel: 0 });
  return { nodes, seed: 'bench', durationMs, scenario, network: LAN_MODEL, eventCostMs: 0.2 };
}

function meshOptions(nodes, durationMs) {
  const [o] = parseSimFlags({ nodes: String(nodes), seed: 'bench', duration: `${durationMs / 1000}s`, scenario: 'mesh' });
  return o;
}

/** The recorded actors through plain XState: create each with its input, send it its events; events per second. */
function rawReplay(recorded) {
  let events = 0;
  const t0 = performance.now();
  for (const { kind, input, events: list } of recorded.values()) {
    const actor = createActor(ACTOR_KINDS.get(kind).logic, { input });
    actor.subscribe({ error: () => {} });
    actor.start();
    for (const e of list) actor.send(e);
    events += list.length;
    actor.stop();
  }
  return { events, ms: performance.now() - t0 };
}

async function benchEvents(which = 'storm') {
  const oursRuns = [];
  const rawRuns = [];
  let last;
  for (let k = 0; k < 3; k += 1) {
    const world = new RecordingWorld(which === 'storm' ? stormOptions(EVENT_NODES, 120_000) : meshOptions(50, 300_000));
    const t0 = performance.now();
    const report = world.run();
    const ms = performance.now() - t0;
    if (report.violation) throw new Error(`the storm broke ${report.violation.invariant}: ${report.violation.message}`);
    const raw = rawReplay(world.recorded);
    if (raw.events !== report.events) throw new Error(`the raw replay sent ${raw.events} events, the run took ${report.events}`);
    oursRuns.push(round(report.events / (ms / 1000)));
    rawRuns.push(round(raw.events / (raw.ms / 1000)));
    last = report;
  }
  const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
  const ours = median(oursRuns);
  const raw = median(rawRuns);
  return {
    id: which === 'storm' ? 'sim-events' : 'sim-events-mesh',
    name: which === 'storm' ? `simulated machine events/s, storm, ${EVENT_NODES} nodes (a tenth of them providers: most deliveries end at a closed gate, work raw XState does not do), 2 simulated minutes` : `simulated machine events/s, mesh, 50 nodes, every one a provider, 5 simulated minutes`,
    unit: 'events/s',
    ours,
    raw,
    ratio: round(ours / raw, 2),
    targets: [{ kind: 'ratio', min: 0.5 }],
    detail: { oursRuns, rawRuns },
    notes: [`${last.events.toLocaleString('en')} machine events and ${last.jobs.placed} deals a run; raw: the same actors created with the same inputs and sent the same events`],
  };
}

const idleScenario = (offer) => ({ name: 'idle', summary: 'booted, no work', workload: null, faults: NO_FAULTS, offer: () => offer, start: () => {} });

v8.setFlagsFromString('--expose-gc');
const gc = vm.runInNewContext('gc');

function heapAfterGc() {
  gc();
  gc();
  return process.memoryUsage().heapUsed;
}

async function settledHeap() {
  for (let i = 0; i < 4; i += 1) {
    gc();
    await new Promise((r) => setImmediate(r));
  }
  return process.memoryUsage().heapUsed;
}

async function benchMemory(nodes) {
  const offer = { cpu: 2, memory: 8 * 2 ** 30, disk: 100 * 2 ** 30 };
  // raw first, on a settled heap: the same number of plain Node actors, onboarded alike
  const base = await settledHeap();
  let actors = [];
  for (let i = 0; i < nodes; i += 1) {
    const a = createActor(nodeMachine, { input: {} });
    a.start();
    a.send({ type: 'node.configure', minFreeDisk: 0 });
    a.send({ type: 'node.onboard', offer: { ...offer, executors: ['wasm'] }, host: { dataDirWritable: true, dataDir: `/raw/${i}` }, benchmark: { cores: 8, cpuOpsPerSecPerCore: 1e8, cpuOpsPerSecTotal: 8e8, memoryTotal: 64 * 2 ** 30, diskTotal: 2 ** 40, diskFree: 2 ** 39, diskWriteBytesPerSec: 5e8, gpus: [], arch: 'x64', cpuModel: 'raw', measuredAt: new Date(0).toISOString(), durationMs: 1 } });
    actors.push(a);
  }
  if (actors.some((a) => a.getSnapshot().context.registration === null)) throw new Error('a raw Node actor did not onboard');
  const raw = ((await settledHeap()) - base) / nodes;
  actors = null;
  const before = await settledHeap();
  const world = new SimWorld({ nodes, seed: 'memory', durationMs: 5_000, scenario: idleScenario(offer), network: LAN_MODEL, eventCostMs: 0.2 });
  const report = world.run();
  if (report.violation) throw new Error(report.violation.message);
  const onboarded = world.nodes.filter((n) => n.nodeContext().registration !== null).length;
  if (onboarded !== nodes) throw new Error(`${onboarded} of ${nodes} nodes onboarded`);
  const ours = ((await settledHeap()) - before) / nodes;
  if (world.nodes.length !== nodes) throw new Error('the world let go of its nodes');
  return {
    id: `sim-memory-${nodes >= 1000 ? `${nodes / 1000}k` : nodes}`,
    name: `heap per idle simulated node at ${nodes.toLocaleString('en')} nodes (Node actor, its log, network, queues) vs a raw onboarded Node actor`,
    unit: 'KB',
    lowerIsBetter: true,
    ours: round(ours / KB, 1),
    raw: round(raw / KB, 1),
    ratio: round(ours / raw, 2),
    targets: [{ kind: 'ours', max: 200 }],
    detail: {},
  };
}

async function benchStorm() {
  const t0 = performance.now();
  const child = spawnTracked([MAIN_JS, 'sim', '--nodes', '1000', '--duration', '10m', '--scenario', 'storm', '--json']);
  let out = '';
  child.stdout.setEncoding('utf8').on('data', (d) => (out += d));
  child.stderr.resume();
  const r = await withTimeout(exited(child), 900_000, 'sim --nodes 1000');
  const ms = performance.now() - t0;
  if (r.code !== 0) throw new Error(`sim exited ${r.code ?? r.signal}: ${out.slice(-400)}`);
  const report = JSON.parse(out);
  const t1 = performance.now();
  const e0 = spawnTracked(['-e', '0']);
  await exited(e0);
  const raw = performance.now() - t1;
  note(`sim-storm-1k: ${report.events.toLocaleString('en')} events, ${report.jobs.placed} deals, placement p50 ${report.placementMs.p50} ms p99 ${report.placementMs.p99} ms, ${report.messagesPerDeal} messages/deal, digest ${report.digest.slice(0, 16)}`);
  return {
    id: 'sim-storm-1k',
    name: '`sim --nodes 1000 --duration 10m --scenario storm`, spawn to exit, vs `node -e 0`',
    unit: 'ms',
    lowerIsBetter: true,
    ours: round(ms),
    raw: round(raw),
    ratio: round(ms / raw, 1),
    targets: [{ kind: 'ours', max: STORM_TARGET_MS }],
    detail: { events: report.events, deals: report.jobs.placed, placementMs: report.placementMs, messagesPerDeal: report.messagesPerDeal, roundsPerDeal: report.roundsPerDeal, capacityUsed: report.capacityUsed, digest: report.digest },
    notes: [`${report.events.toLocaleString('en')} machine events, ${report.jobs.placed} deals, p50/p99 placement ${report.placementMs.p50}/${report.placementMs.p99} ms simulated, ${report.messagesPerDeal} messages and ${report.roundsPerDeal} rounds per deal, ${round(report.capacityUsed * 100, 1)}% of capacity used`],
  };
}

export const simBenches = [
  ['sim-events', () => benchEvents('storm')],
  ['sim-events-mesh', () => benchEvents('mesh')],
  ['sim-memory-1k', () => benchMemory(1_000)],
  ['sim-memory-10k', () => benchMemory(10_000)],
  ['sim-storm-1k', benchStorm],
];

if (isMain(import.meta.url)) await runStandalone('sim', simBenches, { watchdogMs: 1_200_000 });
