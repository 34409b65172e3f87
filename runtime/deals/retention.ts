/**
 * Retention: what outlives a deal is deleted once it is older than `--retain` (default 7 days): the ended deal
 * actors' records (what `status` and `jobs` show of old jobs), the WASM modules no live deal uses, and the job
 * output files and result files (`<data-dir>/outputs/<allocation id>/`, an array allocation's instances in it) of
 * allocations that ended. Their history stays in the journal until its segments pass the same
 * window (runtime/store/history-retention.ts), so `replay` still tells their story until then. A sweep runs once
 * the node has recovered its deals, then every hour.
 *
 * Age: a record by its `endedAt` (else `updatedAt`); a module or an output file by its mtime (a module is touched
 * when a deal stores it again); an allocation's result files by the newest mtime of its directory and what is
 * directly in it (a manifest is written, or an instance's directory made, when an execution ends or starts). Anything a live deal actor names is kept whatever its age.
 */
import { INSTANCES_SUFFIX } from './instance-output.ts';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import type { JobSpec } from '../../machines/job.ts';
import type { DexieEventLog } from '../store/dexie-event-log.ts';

export const DEFAULT_RETAIN_MS = 7 * 24 * 3_600_000;
export const SWEEP_EVERY_MS = 3_600_000;
/** The meta key prefixes under which ended deal actors' records are saved (by actor id). */
export const RECORD_PREFIXES = ['job/', 'provider/', 'allocation/'] as const;

export interface RetentionDeps {
  readonly store: DexieEventLog;
  readonly modulesDir: string;
  readonly outputDir: string;
  /** `<data-dir>/outputs`: a directory of result files per allocation (results-manifest.ts); none: not swept. */
  readonly resultsDir?: string;
  readonly now: () => number;
}

export interface SweepReport {
  readonly records: number;
  readonly modules: number;
  /** Output logs removed, and allocations whose result files were removed. */
  readonly outputs: number;
}

interface Live {
  readonly modules: Set<string>;
  readonly allocations: Set<string>;
}

/** What the deal actors still in the live store (not ended) name: modules and allocations. */
async function liveRefs(store: DexieEventLog): Promise<Live> {
  const live: Live = { modules: new Set(), allocations: new Set() };
  for (const a of await store.actors()) {
    const input = a.input as { job?: JobSpec; allocationId?: string } | null;
    if (input?.job?.executor === 'wasm') live.modules.add(input.job.wasm.module.sha256);
    if (typeof input?.allocationId === 'string') live.allocations.add(input.allocationId);
  }
  return live;
}

async function oldFiles(dir: string, cutoff: number): Promise<string[]> {
  let names: string[];
  try {
    names = await fs.readdir(dir);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw e;
  }
  const old: string[] = [];
  for (const name of names) {
    const st = await fs.stat(path.join(dir, name)).catch(() => undefined);
    if (st?.isFile() && st.mtimeMs < cutoff) old.push(name);
  }
  return old;
}

/** Deletes what ended more than `retainMs` ago and nothing live names; says how much of each went. */
export async function sweepRetention(deps: RetentionDeps, retainMs: number): Promise<SweepReport> {
  const cutoff = deps.now() - retainMs;
  const { store } = deps;
  const expired: string[] = [];
  for (const prefix of RECORD_PREFIXES) {
    for (const { key, value } of await store.metaWithPrefix<{ endedAt?: number | null; updatedAt?: number }>(prefix)) {
      const at = value?.endedAt ?? value?.updatedAt;
      if (typeof at === 'number' && at < cutoff) expired.push(key);
    }
  }
  for (const key of expired) await store.forget(key); // rows a crash left behind, before its record goes
  await store.deleteMeta(expired);
  const live = await liveRefs(store);
  let modules = 0;
  for (const name of await oldFiles(deps.modulesDir, cutoff)) {
    const sha = name.endsWith('.wasm') ? name.slice(0, -'.wasm'.length) : '';
    if (!/^[0-9a-f]{64}$/.test(sha) || live.modules.has(sha)) continue;
    await fs.rm(path.join(deps.modulesDir, name), { force: true });
    modules += 1;
  }
  let outputs = 0;
  for (const name of await oldFiles(deps.outputDir, cutoff)) {
    if (!name.endsWith('.log')) continue;
    // an array job's instances share one file per allocation
    const suffix = name.endsWith(INSTANCES_SUFFIX) ? INSTANCES_SUFFIX : '.log';
    const id = decodeURIComponent(name.slice(0, -suffix.length));
    if (live.allocations.has(id)) continue;
    await fs.rm(path.join(deps.outputDir, name), { force: true });
    outputs += 1;
  }
  if (deps.resultsDir !== undefined) outputs += await sweepResults(deps.resultsDir, cutoff, live);
  return { records: expired.length, modules, outputs };
}

/** Removes the result files of every allocation that is not live and has not changed since `cutoff`. */
async function sweepResults(dir: string, cutoff: number, live: Live): Promise<number> {
  let names: string[];
  try {
    names = await fs.readdir(dir);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return 0;
    throw e;
  }
  let removed = 0;
  for (const name of names) {
    const id = safeDecode(name);
    if (id === undefined || live.allocations.has(id)) continue;
    const at = path.join(dir, name);
    if (!(await olderThan(at, cutoff))) continue;
    await fs.rm(at, { recursive: true, force: true });
    removed += 1;
  }
  return removed;
}

/** Whether the directory `dir` and everything directly in it were last changed before `cutoff`. */
async function olderThan(dir: string, cutoff: number): Promise<boolean> {
  const st = await fs.lstat(dir).catch(() => undefined);
  if (!st?.isDirectory() || st.mtimeMs >= cutoff) return false;
  for (const name of await fs.readdir(dir).catch(() => [])) {
    const child = await fs.lstat(path.join(dir, name)).catch(() => undefined);
    if (child && child.mtimeMs >= cutoff) return false;
  }
  return true;
}

function safeDecode(name: string): string | undefined {
  try {
    return decodeURIComponent(name);
  } catch {
    return undefined;
  }
}
