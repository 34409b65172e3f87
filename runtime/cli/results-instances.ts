/**
 * `results JOB` of an array job (no --index): every completed instance's files into DIR/<index>/, each instance as
 * `results JOB --index I` fetches it (results-fetch.ts: checked against its sha256, resumable), a few instances at
 * a time. Instances that have not completed are left out and counted.
 */
import { z } from 'zod';
import type { ApiClient } from '../api/client.ts';
import { type ManifestEntry, MAX_RESULTS_INDEX } from '../deals/results-manifest.ts';
import { fetchResults } from './results-fetch.ts';

/** Instances fetched at once (each one stream at a time): under the node's MAX_RESULT_TRANSFERS and a provider's streams per peer (4). */
export const INSTANCE_CONCURRENCY = 3;

const index = z.number().int().min(0).max(MAX_RESULTS_INDEX);
/** The node's answer for an array job asked without an index (results-locator.ts ArrayResultsView). */
const arrayListingSchema = z.object({ count: z.number().int().min(1).max(MAX_RESULTS_INDEX + 1), completed: z.array(index).max(MAX_RESULTS_INDEX + 1) });
export type ArrayListing = z.output<typeof arrayListingSchema>;

/** The listing in the node's answer, when it is one (an array job); undefined for a manifest. */
export function arrayListing(raw: unknown): ArrayListing | undefined {
  if (typeof raw !== 'object' || raw === null || !('completed' in raw)) return undefined;
  const r = arrayListingSchema.safeParse(raw);
  return r.success ? r.data : undefined;
}

export interface FetchedInstance {
  readonly index: number;
  readonly files: ManifestEntry[];
  readonly failed: { path: string; reason: string }[];
  /** Why the instance's files could not be listed at all (its provider unreachable, its files removed, …). */
  readonly error?: string;
}

export interface FetchedInstances {
  readonly dir: string;
  readonly count: number;
  readonly instances: FetchedInstance[];
}

/** Fetches each completed instance into `out`/<index>/, at most `concurrency` at once; never rejects for one instance. */
export async function fetchInstances(api: ApiClient, id: string, out: string, listing: ArrayListing, concurrency = INSTANCE_CONCURRENCY): Promise<FetchedInstances> {
  const instances: FetchedInstance[] = new Array(listing.completed.length);
  let next = 0;
  const worker = async () => {
    while (next < listing.completed.length) {
      const at = next++;
      const i = listing.completed[at]!;
      try {
        const r = await fetchResults(api, id, { out, index: i });
        instances[at] = { index: i, files: r.files, failed: r.failed };
      } catch (e) {
        instances[at] = { index: i, files: [], failed: [], error: (e as Error).message };
      }
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(concurrency, listing.completed.length)) }, worker));
  return { dir: out, count: listing.count, instances };
}

/** Whether any instance or file failed (the command then exits 1). */
export const anyFailed = (r: FetchedInstances) => r.instances.some((i) => i.error !== undefined || i.failed.length > 0);

/** The `--json` form: {"instances":[{"index","files":[...]}]}, with `failed` / `error` where there were some. */
export function instancesJson(r: FetchedInstances): object {
  return {
    instances: r.instances.map((i) => ({
      index: i.index,
      files: i.files,
      ...(i.failed.length > 0 ? { failed: i.failed } : {}),
      ...(i.error !== undefined ? { error: i.error } : {}),
    })),
  };
}

/** The human form: a line per instance, then a summary. */
export function formatInstances(r: FetchedInstances): string {
  const lines = r.instances.map((i) => {
    if (i.error !== undefined) return `${String(i.index).padStart(6)}  error: ${i.error}`;
    const bytes = i.files.reduce((n, f) => n + f.size, 0);
    return `${String(i.index).padStart(6)}  ${i.files.length} file${i.files.length === 1 ? '' : 's'}, ${bytes} bytes${i.failed.length > 0 ? `; ${i.failed.length} failed` : ''}`;
  });
  const files = r.instances.reduce((n, i) => n + i.files.length, 0);
  const bad = r.instances.filter((i) => i.error !== undefined || i.failed.length > 0).length;
  const pending = r.count - r.instances.length;
  lines.push(
    `${r.instances.length} of ${r.count} instances, ${files} file${files === 1 ? '' : 's'} in ${r.dir}/<index>` +
      (bad > 0 ? `; ${bad} instance${bad === 1 ? '' : 's'} failed to fetch` : '') +
      (pending > 0 ? `; ${pending} not completed (not fetched)` : ''),
  );
  return lines.join('\n');
}
