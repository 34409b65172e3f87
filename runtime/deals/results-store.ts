/**
 * The provider's side of result files on disk: an empty /out before an execution starts, the manifest when it
 * ends (every file hashed, streamed), and reading both back for the results protocol.
 */
import { createHash } from 'node:crypto';
import { constants as fsConstants, createReadStream, promises as fs } from 'node:fs';
import path from 'node:path';
import { MAX_OUTPUT_ENTRIES } from '../executors/wasm-outputs.ts';
import { type Manifest, type ManifestEntry, MAX_MANIFEST_BYTES, type ResultsLayout, isResultPath, manifestSchema } from './results-manifest.ts';

/** Makes `layout.files` an empty directory (what an earlier attempt of the same execution left is removed). */
export async function prepareResults(layout: ResultsLayout): Promise<void> {
  await fs.rm(layout.dir, { recursive: true, force: true });
  await fs.mkdir(layout.files, { recursive: true, mode: 0o700 });
}

/** sha256 of a file, read in 64 KiB blocks. */
export async function hashFile(file: string): Promise<string> {
  const h = createHash('sha256');
  for await (const chunk of createReadStream(file, { highWaterMark: 64 * 1024 })) h.update(chunk as Buffer);
  return h.digest('hex');
}

/**
 * Lists and hashes every regular file under `layout.files` (symbolic links and other kinds are left out, as are
 * entries past MAX_OUTPUT_ENTRIES) and writes the manifest beside it, atomically. Resolves with the manifest.
 */
export async function sealResults(layout: ResultsLayout): Promise<Manifest> {
  const entries: ManifestEntry[] = [];
  const walk = async (rel: string): Promise<void> => {
    const names = (await fs.readdir(path.join(layout.files, rel))).sort();
    for (const name of names) {
      if (entries.length >= MAX_OUTPUT_ENTRIES) return;
      const r = rel === '' ? name : `${rel}/${name}`;
      const abs = path.join(layout.files, r);
      const st = await fs.lstat(abs);
      if (st.isDirectory()) await walk(r);
      else if (st.isFile() && isResultPath(r)) entries.push({ path: r, size: st.size, sha256: await hashFile(abs) });
    }
  };
  await walk('');
  const tmp = `${layout.manifest}.tmp`;
  await fs.writeFile(tmp, JSON.stringify(entries), { mode: 0o600 });
  await fs.rename(tmp, layout.manifest);
  return entries;
}

/** The manifest of an execution that ended; undefined when there is none (no outputs, or it has not ended). */
export async function readManifest(layout: ResultsLayout): Promise<Manifest | undefined> {
  let text: string;
  try {
    const fh = await fs.open(layout.manifest, 'r');
    try {
      const { size } = await fh.stat();
      if (size > MAX_MANIFEST_BYTES) throw new Error(`the manifest ${layout.manifest} is ${size} bytes, over ${MAX_MANIFEST_BYTES}`);
      text = await fh.readFile('utf8');
    } finally {
      await fh.close();
    }
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw e;
  }
  return manifestSchema.parse(JSON.parse(text));
}

/** Bytes one read of a range takes (and one stream message carries). */
export const RANGE_CHUNK_BYTES = 64 * 1024;

/** An open range of a listed file: what to say about it, and its bytes in chunks (the file closes at the end). */
export interface OpenRange {
  readonly size: number;
  readonly sha256: string;
  readonly offset: number;
  readonly length: number;
  /** The bytes, RANGE_CHUNK_BYTES at a time, each chunk a fresh buffer; iterate once, or call close(). */
  readonly chunks: AsyncIterable<Uint8Array>;
  close(): Promise<void>;
}

/** Why a range cannot be read: the refusal code of the results protocol and a message. */
export class ResultsRefusedError extends Error {
  override name = 'ResultsRefusedError';
  constructor(readonly code: 'bad-request' | 'not-found' | 'not-ready' | 'changed' | 'unauthorized', message: string) {
    super(message);
  }
}

/** The manifest of `layout`, or a refusal saying whether the job had no outputs or has not ended. */
export async function manifestOrRefuse(layout: ResultsLayout, what: string): Promise<Manifest> {
  const m = await readManifest(layout);
  if (m) return m;
  const started = await fs.access(layout.files).then(() => true, () => false);
  if (started) throw new ResultsRefusedError('not-ready', `${what} is still running: its result files are listed when it ends`);
  throw new ResultsRefusedError('not-found', `${what} has no result files here (its job did not set wasm.outputs: true, or they were removed)`);
}

/**
 * Opens `rel` (a file the manifest lists) from `offset`, at most `maxLength` bytes. A file whose size is not the
 * manifest's was changed after the job ended: refused `changed` (the requester could never verify it).
 */
export async function openRange(layout: ResultsLayout, manifest: Manifest, rel: string, offset: number, maxLength: number): Promise<OpenRange> {
  const entry = manifest.find((e) => e.path === rel);
  if (!entry) throw new ResultsRefusedError('not-found', `no result file ${rel}; the manifest lists ${manifest.length} files`);
  if (offset > entry.size) throw new ResultsRefusedError('bad-request', `offset ${offset} is past the end of ${rel} (${entry.size} bytes)`);
  let fh: fs.FileHandle;
  try {
    fh = await fs.open(path.join(layout.files, ...rel.split('/')), fsConstants.O_RDONLY | fsConstants.O_NOFOLLOW);
  } catch (e) {
    throw new ResultsRefusedError('changed', `${rel} is listed but cannot be opened on the provider (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
  const st = await fh.stat();
  if (!st.isFile() || st.size !== entry.size) {
    await fh.close();
    throw new ResultsRefusedError('changed', `${rel} is ${st.size} bytes on the provider, not the ${entry.size} its manifest lists: it changed after the job ended`);
  }
  const length = Math.min(entry.size - offset, maxLength);
  let closed = false;
  const close = async () => {
    if (closed) return;
    closed = true;
    await fh.close();
  };
  async function* chunks(): AsyncGenerator<Uint8Array> {
    try {
      for (let at = offset; at < offset + length; ) {
        const buf = Buffer.allocUnsafe(Math.min(RANGE_CHUNK_BYTES, offset + length - at));
        const { bytesRead } = await fh.read(buf, 0, buf.length, at);
        if (bytesRead === 0) throw new ResultsRefusedError('changed', `${rel} ended at ${at} bytes on the provider, before the ${entry!.size} its manifest lists`);
        at += bytesRead;
        yield bytesRead === buf.length ? buf : buf.subarray(0, bytesRead);
      }
    } finally {
      await close();
    }
  }
  return { size: entry.size, sha256: entry.sha256, offset, length, chunks: chunks(), close };
}
