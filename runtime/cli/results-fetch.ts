/**
 * What `results` does: reads a job's manifest from the node's API, then fetches each file into DIR through the
 * API, hashing the bytes as they are written. Each file is written to DIR/.dms-partial/<sha256> first, checked
 * against its sha256, and only then renamed into place: a file whose hash does not match is deleted, never kept.
 * A transfer that breaks off resumes from the bytes it has (also in a later run: the partial file stays).
 */
import { createHash, type Hash } from 'node:crypto';
import { createReadStream, promises as fs } from 'node:fs';
import path from 'node:path';
import type { ApiClient } from '../api/client.ts';
import { RequestFailedError } from '../errors.ts';
import { type ManifestEntry, manifestSchema } from '../deals/results-manifest.ts';

/** Fresh requests one file may take when its transfer keeps breaking off. */
export const MAX_ATTEMPTS = 5;
export const PARTIAL_DIR = '.dms-partial';

export interface FetchResultsOptions {
  /** The directory to fill (made if missing). */
  readonly out: string;
  readonly index?: number;
  /** Per request, until the response starts. */
  readonly timeoutMs?: number;
}

export interface FetchedResults {
  readonly dir: string;
  readonly files: ManifestEntry[];
  readonly failed: { path: string; reason: string }[];
}

/** A failure of `results` itself (the node refused, or the job has none): exit code 1. */
export class ResultsFailedError extends Error {
  override name = 'ResultsFailedError';
  readonly exitCode = 1;
}

export async function fetchResults(api: ApiClient, id: string, opts: FetchResultsOptions): Promise<FetchedResults> {
  return fetchListed(api, id, opts, await requestResults(api, id, opts.index));
}

/**
 * What the node answers for the job's results (of instance `index`): a manifest, or, for an array job asked
 * without an index, its completed instances (results-locator.ts ArrayResultsView). Not checked yet.
 */
export async function requestResults(api: ApiClient, id: string, index?: number): Promise<unknown> {
  const q = index === undefined ? '' : `?index=${index}`;
  try {
    return await api.request('GET', `/v1/jobs/${encodeURIComponent(id)}/results${q}`);
  } catch (e) {
    if (e instanceof RequestFailedError && e.status !== 400) throw new ResultsFailedError(e.message);
    throw e;
  }
}

/** Fetches the files `raw` (requestResults' answer) lists into opts.out (DIR/<index> for an instance). */
export async function fetchListed(api: ApiClient, id: string, opts: FetchResultsOptions, raw: unknown): Promise<FetchedResults> {
  const q = opts.index === undefined ? '' : `?index=${opts.index}`;
  const parsed = manifestSchema.safeParse((raw as { files?: unknown })?.files);
  if (!parsed.success) throw new ResultsFailedError(`the node sent a manifest that is not one: ${parsed.error.issues[0]?.message ?? ''}`);
  const dir = path.resolve(opts.out, ...(opts.index === undefined ? [] : [String(opts.index)]));
  const partial = path.join(dir, PARTIAL_DIR);
  await fs.mkdir(partial, { recursive: true, mode: 0o700 });
  const out: FetchedResults = { dir, files: [], failed: [] };
  for (const entry of parsed.data) {
    const dest = path.join(dir, ...entry.path.split('/'));
    if (!dest.startsWith(dir + path.sep) || entry.path.split('/')[0] === PARTIAL_DIR) {
      out.failed.push({ path: entry.path, reason: 'is not a path this command writes' });
      continue;
    }
    const reason = await fetchOne(api, id, q, entry, dest, path.join(partial, entry.sha256));
    if (reason) out.failed.push({ path: entry.path, reason });
    else out.files.push(entry);
  }
  await fs.rmdir(partial).catch(() => {}); // kept while a partial file waits to be resumed
  return out;
}

/** Fetches one file into `dest` through `tmp`; undefined when it is there and verified, else why not. */
async function fetchOne(api: ApiClient, id: string, q: string, entry: ManifestEntry, dest: string, tmp: string): Promise<string | undefined> {
  if ((await sizeOf(dest)) === entry.size && (await hashOf(dest)) === entry.sha256) return undefined;
  let have = await sizeOf(tmp);
  if (have === null || have > entry.size) {
    await fs.writeFile(tmp, '', { mode: 0o600 });
    have = 0;
  }
  const hash = createHash('sha256');
  if (have > 0) await feed(hash, tmp);
  let lastError = '';
  for (let attempt = 0; have < entry.size && attempt < MAX_ATTEMPTS; attempt += 1) {
    const r = await fetchFrom(api, id, q, entry, tmp, have, hash).catch((e: Error) => ({ got: 0, error: e.message, fatal: false }));
    have += r.got;
    lastError = r.error;
    if (r.fatal) break;
  }
  if (have < entry.size) return `fetched ${have} of ${entry.size} bytes: ${lastError || 'the transfer kept breaking off'}; run results again to resume`;
  const sha = hash.digest('hex');
  if (sha !== entry.sha256) {
    await fs.rm(tmp, { force: true });
    return `sha256 is ${sha}, not the ${entry.sha256} the provider listed when the job ended; the file was not kept`;
  }
  await fs.mkdir(path.dirname(dest), { recursive: true });
  await fs.rename(tmp, dest);
  return undefined;
}

/** One request from `offset`: appends what arrives to `tmp` and `hash`; says how much came and why it stopped. */
async function fetchFrom(api: ApiClient, id: string, q: string, entry: ManifestEntry, tmp: string, offset: number, hash: Hash): Promise<{ got: number; error: string; fatal: boolean }> {
  const sep = q ? '&' : '?';
  const route = `/v1/jobs/${encodeURIComponent(id)}/results/file${q}${sep}path=${encodeURIComponent(entry.path)}&offset=${offset}`;
  const res = await api.open('GET', route);
  if (res.statusCode !== 200) {
    let text = '';
    for await (const c of res) text += String(c);
    let message = `HTTP ${res.statusCode}`;
    try {
      message = (JSON.parse(text) as { error?: string }).error ?? message;
    } catch {
      // not JSON: the status says it
    }
    // a node or provider that is busy or unreachable may answer next time; a refusal will not change
    return { got: 0, error: message, fatal: res.statusCode !== 503 && res.statusCode !== 502 };
  }
  if (res.headers['x-dms-sha256'] !== entry.sha256) {
    res.destroy();
    return { got: 0, error: `the provider now lists sha256 ${String(res.headers['x-dms-sha256'])} for it, not ${entry.sha256}`, fatal: true };
  }
  const fh = await fs.open(tmp, 'a');
  let got = 0;
  try {
    for await (const chunk of res) {
      const buf = chunk as Buffer;
      if (offset + got + buf.length > entry.size) return { got, error: 'the node sent more bytes than the file has', fatal: true };
      await fh.write(buf);
      hash.update(buf);
      got += buf.length;
    }
  } catch (e) {
    return { got, error: `the transfer broke off: ${(e as Error).message}`, fatal: false };
  } finally {
    await fh.close();
  }
  return { got, error: offset + got < entry.size ? 'the transfer broke off' : '', fatal: false };
}

async function sizeOf(file: string): Promise<number | null> {
  const st = await fs.lstat(file).catch(() => null);
  return st?.isFile() ? st.size : null;
}

async function feed(hash: Hash, file: string): Promise<void> {
  for await (const chunk of createReadStream(file, { highWaterMark: 64 * 1024 })) hash.update(chunk as Buffer);
}

async function hashOf(file: string): Promise<string> {
  const h = createHash('sha256');
  await feed(h, file);
  return h.digest('hex');
}

/** The human form: a line per file, then where they are. */
export function formatResults(r: FetchedResults): string {
  const lines = r.files.map((f) => `${f.sha256.slice(0, 16)}…  ${String(f.size).padStart(12)}  ${f.path}`);
  lines.push(`${r.files.length} file${r.files.length === 1 ? '' : 's'} in ${r.dir}${r.failed.length > 0 ? `; ${r.failed.length} failed` : ''}`);
  return lines.join('\n');
}
