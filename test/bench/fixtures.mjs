// Fixed inputs for the benchmarks: a benchmark object (so onboarding never measures the machine), an offer,
// and a realistic mixed event list for a registered Node: ledger.lock / ledger.unlock pairs with unique ids
// (about LAG locks outstanding at any time, each asking for one dynamic port) and monitor.sample events. Time is fixed: the machine never reads a clock.

const GiB = 1024 ** 3;
const MiB = 1024 ** 2;
export const T0 = 1_700_000_000_000;

/** A 2-core machine with 10 GiB of RAM and 200 GiB of free disk. */
export const BENCHMARK = Object.freeze({
  cores: 2,
  cpuOpsPerSecPerCore: 1_000_000,
  cpuOpsPerSecTotal: 1_900_000,
  memoryTotal: 10 * GiB,
  diskTotal: 500 * GiB,
  diskFree: 200 * GiB,
  diskWriteBytesPerSec: 200 * MiB,
  gpus: [],
  arch: 'x64',
  cpuModel: 'Bench CPU',
  measuredAt: '2024-01-01T00:00:00.000Z',
  durationMs: 1234,
});

export const OFFER = Object.freeze({ cpu: 2, memory: 4 * GiB, disk: 50 * GiB, executors: ['wasm', 'process'] });
export const HOST = Object.freeze({ dataDir: '/var/lib/dms', dataDirWritable: true });
/** The Node actor's input (default preferences, no stored registration). */
export const INPUT = Object.freeze({});

/** Onboards with the fixed benchmark: offboarded -> validating -> registered in one event. */
export function onboardEvent(replyTo) {
  return { type: 'node.onboard', offer: OFFER, host: HOST, benchmark: BENCHMARK, ...(replyTo ? { replyTo } : {}) };
}

const LAG = 8;

/**
 * `n` events for a registered Node: lock i, unlock i - LAG, and a sample every other lock;
 * every lock taken is released by the end, so the list can be delivered again and again. Ratio of
 * lock : unlock : sample is 2 : 2 : 1. `prefix` makes the lock ids unique per list.
 */
export function mixedEvents(n, prefix, { replyTo = false } = {}) {
  const out = [];
  const lock = (i) => ({
    type: 'ledger.lock',
    id: `${prefix}-${i}`,
    resources: { cpu: 0.01, memory: MiB, disk: MiB, gpus: 0 },
    ports: { dynamic: 1 },
    expiresAt: T0 + 60_000 + i,
    now: T0,
    holder: 'bench-requester',
    ...(replyTo ? { replyTo: `bench#l${prefix}-${i}` } : {}),
  });
  const unlock = (i) => ({ type: 'ledger.unlock', id: `${prefix}-${i}`, ...(replyTo ? { replyTo: `bench#u${prefix}-${i}` } : {}) });
  const sample = (i) => ({
    type: 'monitor.sample',
    sample: { at: T0 + i, load1: 0.25 + (i % 7) / 100, memoryTotal: 10 * GiB, memoryAvailable: 8 * GiB - (i % 13) * MiB, diskFree: 200 * GiB },
  });
  const open = [];
  let i = 0;
  // open locks while there is room left to close every outstanding one
  while (out.length + open.length + 1 < n) {
    out.push(lock(i));
    open.push(i);
    if (open.length > LAG && out.length + open.length < n) out.push(unlock(open.shift()));
    if (i % 2 === 0 && out.length + open.length < n) out.push(sample(i));
    i += 1;
  }
  while (open.length > 0) out.push(unlock(open.shift()));
  while (out.length < n) out.push(sample(i++));
  return out;
}

/** One batch for ActorRef.measure / the raw loop: onboard first (a re-onboard on later rounds), then mixed events. */
export function measureBatch(size, prefix, opts) {
  return [onboardEvent(), ...mixedEvents(size - 1, prefix, opts)];
}
