/**
 * The simulator's options as users write them (`sim --nodes 1000 --seed 7 --duration 10m --faults loss=0.01,...`),
 * checked: a bad value is named with what it should be, and nothing runs.
 */
import { UsageError } from '../errors.ts';
import { parseDuration } from '../units.ts';
import { LAN_MODEL, LOOPBACK_MODEL } from './network.ts';
import { meshScenario } from './mesh-scenario.ts';
import { type Faults, NO_FAULTS, SCENARIO_NAMES, scenarioNamed } from './scenarios.ts';
import { PLANTS, type Plant, type SimOptions } from './world.ts';

export const MAX_NODES = 100_000;
export const MAX_DURATION_MS = 24 * 3600_000;

export interface SimFlags {
  readonly nodes?: string;
  readonly seed?: string;
  readonly duration?: string;
  readonly faults?: string;
  readonly scenario?: string;
  readonly eventCost?: string;
  readonly plant?: string;
  readonly taskTime?: string;
}

/** The default simulated CPU per machine event: what one event of the deal path costs a real node's main thread. */
export const DEFAULT_EVENT_COST_MS = 0.2;

/** The options of one run per scenario named (`all`: every scenario). */
export function parseSimFlags(f: SimFlags): SimOptions[] {
  const nodes = wholeNumber('--nodes', f.nodes ?? '100', 2, MAX_NODES);
  const seed = (f.seed ?? '1').trim();
  if (seed === '' || seed.length > 128) throw new UsageError(`--seed must be 1 to 128 characters, not "${f.seed}"`);
  const durationMs = parseDuration(f.duration ?? '10m');
  if (durationMs === undefined || durationMs < 1000 || durationMs > MAX_DURATION_MS) throw new UsageError(`--duration must be a simulated time from 1s to 24h (e.g. 90s, 10m), not "${f.duration}"`);
  const eventCostMs = f.eventCost === undefined ? DEFAULT_EVENT_COST_MS : Number(f.eventCost);
  if (!Number.isFinite(eventCostMs) || eventCostMs < 0 || eventCostMs > 1000) throw new UsageError(`--event-cost must be milliseconds from 0 to 1000, not "${f.eventCost}"`);
  let plant: Plant | undefined;
  if (f.plant !== undefined) {
    if (!(PLANTS as readonly string[]).includes(f.plant)) throw new UsageError(`--plant must be one of ${PLANTS.join(', ')}, not "${f.plant}"`);
    plant = f.plant as Plant;
  }
  const faults = f.faults === undefined ? {} : parseFaults(f.faults);
  const taskMs = f.taskTime === undefined ? undefined : parseDuration(f.taskTime);
  if (f.taskTime !== undefined && (taskMs === undefined || taskMs < 100 || taskMs > MAX_DURATION_MS)) throw new UsageError(`--task-time must be a mean task duration from 100ms to 24h (e.g. 5s), not "${f.taskTime}"`);
  // shorter tasks: more of them arrive (the load stays), and they time out in proportion
  const workload = taskMs === undefined ? {} : { meanDurationMs: taskMs, timeoutMs: Math.max(10_000, taskMs * 5) };
  const name = f.scenario ?? 'storm';
  const names = name === 'all' ? SCENARIO_NAMES : [name];
  if (name === 'mesh') return [{ nodes, seed, durationMs: Math.round(durationMs), scenario: meshScenario(), network: LOOPBACK_MODEL, eventCostMs, ...(plant ? { plant } : {}) }];
  return names.map((n) => {
    const scenario = scenarioNamed(n, nodes, faults, workload);
    if (!scenario) throw new UsageError(`--scenario must be one of ${SCENARIO_NAMES.join(', ')}, mesh or all, not "${name}"`);
    const fx = scenario.faults;
    return {
      nodes,
      seed,
      durationMs: Math.round(durationMs),
      scenario,
      network: { ...LAN_MODEL, loss: fx.loss, duplicate: fx.duplicate, reorder: fx.reorder },
      eventCostMs,
      ...(plant ? { plant } : {}),
    };
  });
}

const FAULT_KEYS: Record<string, { key: keyof Faults; kind: 'share' | 'duration' | 'rate' }> = {
  loss: { key: 'loss', kind: 'share' },
  dup: { key: 'duplicate', kind: 'share' },
  reorder: { key: 'reorder', kind: 'share' },
  crashes: { key: 'crashesPerMin', kind: 'rate' },
  down: { key: 'downMs', kind: 'duration' },
  'mid-effect': { key: 'midEffect', kind: 'share' },
  fail: { key: 'fail', kind: 'share' },
  hang: { key: 'hang', kind: 'share' },
  cancel: { key: 'cancel', kind: 'share' },
};

/**
 * `--faults none` or a comma list of key=value: loss, dup, reorder, mid-effect, fail, hang, cancel (shares 0..1),
 * crashes (per simulated minute), down (mean downtime), partition=START+LENGTH (or off).
 */
export function parseFaults(spec: string): Partial<Faults> {
  const text = spec.trim();
  if (text === 'none') return { ...NO_FAULTS };
  if (text === '') throw new UsageError('--faults is empty; give none, or key=value pairs such as loss=0.01,crashes=5');
  const out: Record<string, number> = {};
  for (const item of text.split(',')) {
    const eq = item.indexOf('=');
    const k = (eq < 0 ? item : item.slice(0, eq)).trim();
    const v = eq < 0 ? '' : item.slice(eq + 1).trim();
    if (k === 'partition') {
      if (v === 'off') {
        out.partitionAt = 0;
        out.partitionMs = 0;
        continue;
      }
      const [start, length] = v.split('+');
      const a = start === '0' ? 0 : parseDuration(start);
      const b = parseDuration(length);
      if (a === undefined || b === undefined) throw new UsageError(`--faults partition must be START+LENGTH (e.g. 2m+3m) or off, not "${v}"`);
      out.partitionAt = a;
      out.partitionMs = b;
      continue;
    }
    const def = FAULT_KEYS[k];
    if (!def) throw new UsageError(`--faults has an unknown key "${k}"; known: ${[...Object.keys(FAULT_KEYS), 'partition'].join(', ')}`);
    if (v === '') throw new UsageError(`--faults ${k} needs a value (${k}=...)`);
    if (def.kind === 'duration') {
      const d = parseDuration(v);
      if (d === undefined) throw new UsageError(`--faults ${k} must be a duration (e.g. 30s), not "${v}"`);
      out[def.key] = d;
    } else {
      const n = Number(v);
      const max = def.kind === 'share' ? 1 : 1e6;
      if (!Number.isFinite(n) || n < 0 || n > max) throw new UsageError(`--faults ${k} must be a number from 0 to ${max}${def.kind === 'share' ? ' (a share)' : ' (per simulated minute)'}, not "${v}"`);
      out[def.key] = n;
    }
  }
  return out as Partial<Faults>;
}

function wholeNumber(flag: string, value: string, min: number, max: number): number {
  const n = /^\d+$/.test(value.trim()) ? Number(value.trim()) : NaN;
  if (!Number.isSafeInteger(n) || n < min || n > max) throw new UsageError(`${flag} must be a whole number from ${min} to ${max}, not "${value}"`);
  return n;
}
