/**
 * Onboarding rules: what a machine measured, what its owner offers, and whether that offer is allowed
 * (the Go DMS's rules: cores within 1..machine cores, memory within 10-90% of the machine, a writable data dir).
 */
import { type Capability, type Gpu, formatBytes } from './capability.ts';

/** What benchmarking measured on this machine. */
export interface Benchmark {
  /** Logical cores the OS reports. */
  readonly cores: number;
  /** Work units per second on one core (median over cores, measured in worker threads). */
  readonly cpuOpsPerSecPerCore: number;
  /** Work units per second with every core busy. */
  readonly cpuOpsPerSecTotal: number;
  readonly memoryTotal: number;
  readonly diskTotal: number;
  readonly diskFree: number;
  /** Sequential write with fsync, bytes per second. */
  readonly diskWriteBytesPerSec: number;
  readonly gpus: readonly Gpu[];
  readonly arch: string;
  readonly cpuModel: string;
  /** ISO time the benchmark was taken. */
  readonly measuredAt: string;
  readonly durationMs: number;
}

/** Facts checked at onboarding time that the benchmark does not carry. */
export interface HostFacts {
  readonly dataDirWritable: boolean;
  readonly dataDir: string;
}

/** What the owner asks to offer; unset fields take a safe default share of the machine. */
export interface Offer {
  readonly cpu?: number;
  readonly memory?: number;
  readonly disk?: number;
  readonly executors?: readonly string[];
}

export const KNOWN_EXECUTORS = ['wasm', 'process'] as const;
export const DEFAULT_EXECUTORS: readonly string[] = ['wasm'];

/** A registered capability: what the node offers plus the benchmark it was measured with. */
export interface Registration {
  readonly capability: Capability;
  readonly benchmark: Benchmark;
  readonly offer: Offer;
}

export interface OnboardingProblem {
  readonly field: 'cpu' | 'memory' | 'disk' | 'executors' | 'dataDir';
  readonly message: string;
}

/** The offer with defaults applied: a safe share of the machine (3/4 of the cores, half the memory and free disk). */
export function resolveOffer(offer: Offer, b: Benchmark): Capability {
  return {
    cpu: offer.cpu ?? Math.max(1, Math.floor(b.cores * 0.75)),
    memory: offer.memory ?? Math.floor(b.memoryTotal * 0.5),
    disk: offer.disk ?? Math.floor(b.diskFree * 0.5),
    gpus: b.gpus,
    executors: offer.executors && offer.executors.length > 0 ? [...offer.executors] : [...DEFAULT_EXECUTORS],
  };
}

/** Every reason the offer cannot be registered on this machine; empty when it can. */
export function validateOffer(c: Capability, b: Benchmark, host: HostFacts): OnboardingProblem[] {
  const problems: OnboardingProblem[] = [];
  if (!Number.isFinite(c.cpu) || c.cpu < 1 || c.cpu > b.cores) {
    problems.push({ field: 'cpu', message: `cpu ${c.cpu} is outside 1..${b.cores} (this machine's cores); pass --cpu between 1 and ${b.cores}` });
  }
  const lo = Math.ceil(b.memoryTotal * 0.1);
  const hi = Math.floor(b.memoryTotal * 0.9);
  if (!Number.isFinite(c.memory) || c.memory < lo || c.memory > hi) {
    problems.push({
      field: 'memory',
      message: `memory ${formatBytes(c.memory)} is outside 10-90% of this machine's ${formatBytes(b.memoryTotal)}; pass --memory between ${formatBytes(lo)} and ${formatBytes(hi)}`,
    });
  }
  if (!Number.isFinite(c.disk) || c.disk <= 0 || c.disk > b.diskFree) {
    problems.push({ field: 'disk', message: `disk ${formatBytes(c.disk)} must be above 0 and at most the ${formatBytes(b.diskFree)} free in the data dir; pass a smaller --disk` });
  }
  const unknown = c.executors.filter((e) => !(KNOWN_EXECUTORS as readonly string[]).includes(e));
  if (unknown.length > 0) {
    problems.push({ field: 'executors', message: `unknown executor ${unknown.join(', ')}; choose from ${KNOWN_EXECUTORS.join(', ')}` });
  }
  if (!host.dataDirWritable) {
    problems.push({ field: 'dataDir', message: `data dir ${host.dataDir} is missing or not writable; create it or pass another --data-dir` });
  }
  return problems;
}
