/**
 * Result files of a job with `wasm.outputs`: where they live on the provider, and the manifest that lists them.
 *
 *   <data-dir>/outputs/<allocation id>/files/...        the module's /out
 *   <data-dir>/outputs/<allocation id>/manifest.json    [{path,size,sha256}], written when the execution ends
 *   <data-dir>/outputs/<allocation id>/<index>/...      the same for instance <index> of an array job
 *
 * A manifest's paths are relative, `/`-separated, without `.`, `..` or empty components: safe to join under a
 * directory on either side. Both sides check them (the provider when it lists, the requester when it writes).
 */
import path from 'node:path';
import { z } from 'zod';
import { MAX_OUTPUT_ENTRIES, MAX_OUTPUT_PATH_BYTES } from '../executors/wasm-outputs.ts';

export const RESULTS_DIR = 'outputs';
export const MANIFEST_FILE = 'manifest.json';
/** Highest instance index of an array job (count is at most 100,000). */
export const MAX_RESULTS_INDEX = 99_999;
/** Largest manifest: MAX_OUTPUT_ENTRIES entries of the longest path. */
export const MAX_MANIFEST_BYTES = 4 * 1024 * 1024;

/** One result file. */
export interface ManifestEntry {
  readonly path: string;
  readonly size: number;
  readonly sha256: string;
}
export type Manifest = readonly ManifestEntry[];

/** Where one execution's results are (`index` for an instance of an array job). */
export interface ResultsLayout {
  readonly dir: string;
  readonly files: string;
  readonly manifest: string;
}

/** Whether `p` is a path a manifest may name. */
export function isResultPath(p: string): boolean {
  if (p === '' || p.includes('\0') || p.startsWith('/') || Buffer.byteLength(p) > MAX_OUTPUT_PATH_BYTES) return false;
  return p.split('/').every((c) => c !== '' && c !== '.' && c !== '..');
}

export const resultIndexSchema = z.coerce.number().int().min(0).max(MAX_RESULTS_INDEX);

export const manifestSchema = z
  .array(
    z.strictObject({
      path: z.string().refine(isResultPath, 'is not a relative path inside /out'),
      size: z.number().int().nonnegative().max(Number.MAX_SAFE_INTEGER),
      sha256: z.string().regex(/^[0-9a-f]{64}$/, 'is not a sha256'),
    }),
  )
  .max(MAX_OUTPUT_ENTRIES);

/** The directory of every allocation's results under `dataDir` (what retention sweeps). */
export const resultsRoot = (dataDir: string) => path.join(dataDir, RESULTS_DIR);

/** The results of `allocationId` (and instance `index`) under `dataDir`. */
export function resultsLayout(dataDir: string, allocationId: string, index?: number): ResultsLayout {
  const name = encodeURIComponent(allocationId);
  if (name === '' || name === '.' || name === '..') throw new RangeError(`"${allocationId}" cannot name a results directory`);
  if (index !== undefined && !(Number.isInteger(index) && index >= 0 && index <= MAX_RESULTS_INDEX)) throw new RangeError(`index ${index} is not an instance index`);
  const dir = path.join(dataDir, RESULTS_DIR, name, ...(index === undefined ? [] : [String(index)]));
  return { dir, files: path.join(dir, 'files'), manifest: path.join(dir, MANIFEST_FILE) };
}
