/** Defaults and checks shared by the executors. */
import { InvalidJobError, type ExecutionSpec } from '../../actors/executor.ts';

/** Largest module the WASM executor runs (a module from a local job file; one that travels with a deal is held to MAX_DEAL_MODULE_BYTES, 900 KiB). */
export const MAX_RUNNABLE_MODULE_BYTES = 16 * 2 ** 20;
/**
 * Virtual memory the WASM runner (Node itself, V8's code space, thread stacks, the shim) maps on top of the job's
 * linear memory. Measured here: the runner maps ~0.8 GiB of address space before the module's memory.
 */
export const RUNNER_ADDRESS_SPACE_BYTES = 2 ** 30;
/** JS heap of the WASM runner: the shim's buffers and the module's compiled code metadata. */
export const RUNNER_HEAP_MIB = 128;
/** How often a process job's group is measured for its memory limit. */
export const RSS_SAMPLE_MS = 100;
/** Address space each process of a process job may map on top of its memory limit (RLIMIT_AS is virtual). */
export const PROCESS_ADDRESS_SPACE_SLACK_BYTES = 2 ** 30;

/** Refuses limits that cannot be right, naming the field. */
export function checkLimits(spec: ExecutionSpec): void {
  const { memoryBytes, timeoutMs, cpu } = spec.limits;
  const bad = (field: string, value: number, want: string) =>
    new InvalidJobError(`limits.${field} is ${value}; it must be ${want}`);
  if (!Number.isFinite(memoryBytes) || memoryBytes <= 0) throw bad('memoryBytes', memoryBytes, 'a positive number of bytes');
  if (!Number.isFinite(timeoutMs) || timeoutMs <= 0) throw bad('timeoutMs', timeoutMs, 'a positive number of milliseconds');
  if (!Number.isFinite(cpu) || cpu <= 0) throw bad('cpu', cpu, 'a positive number of cores');
  if (!Number.isInteger(spec.logLimitBytes) || spec.logLimitBytes < 0) {
    throw new InvalidJobError(`logLimitBytes is ${spec.logLimitBytes}; it must be a whole number of bytes, 0 or more`);
  }
}

/** "1.5 s", "64 MiB": for messages. */
export const formatMs = (ms: number) => (ms >= 1000 ? `${(ms / 1000).toFixed(1)} s` : `${Math.round(ms)} ms`);
export const formatBytes = (n: number) => (n >= 2 ** 20 ? `${(n / 2 ** 20).toFixed(n % 2 ** 20 ? 1 : 0)} MiB` : `${(n / 1024).toFixed(0)} KiB`);
