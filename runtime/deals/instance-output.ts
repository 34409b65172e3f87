/**
 * The output of an array job's instances on the provider: one file per allocation (`<allocationId>.instances.log`
 * beside the jobs' output logs), not one per instance. Each instance's output is held in memory while it runs (at
 * most INSTANCE_OUTPUT_BYTES; the rest is counted and dropped) and written when it ends, as JSON lines tagged with
 * its index, every instance that ended in a turn in one append. `logs --index` reads one instance's lines back.
 * A file per instance cost an open, a write and a close each: most of what a tiny instance costs the node.
 */
import { createReadStream, promises as fs } from 'node:fs';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { StringDecoder } from 'node:string_decoder';
import { OUTPUT_PAGE_BYTES, encodedChunkBytes, type OutputChunk, type OutputPage } from './output-page.ts';

/** Output kept per instance; the rest is counted and dropped. */
export const INSTANCE_OUTPUT_BYTES = 256 * 1024;
export const INSTANCES_SUFFIX = '.instances.log';

interface Held {
  chunks: OutputChunk[];
  bytes: number;
  dropped: number;
  readonly decoders: { stdout: StringDecoder; stderr: StringDecoder };
}

export class InstanceOutput {
  readonly #held = new Map<string, Held>();
  /** Lines waiting for the next append, by allocation. */
  readonly #pending = new Map<string, string[]>();
  /** The append under way per allocation, so appends keep their order. */
  readonly #tail = new Map<string, Promise<void>>();
  #scheduled = false;

  constructor(
    readonly dir: string,
    readonly onError: (allocationId: string, e: Error) => void = () => {},
  ) {}

  file(allocationId: string): string {
    return path.join(this.dir, `${encodeURIComponent(allocationId)}${INSTANCES_SUFFIX}`);
  }

  /** A chunk of instance `index`'s output. */
  append(allocationId: string, index: number, stream: 'stdout' | 'stderr', data: Uint8Array): void {
    const key = `${allocationId}\n${index}`;
    let h = this.#held.get(key);
    if (!h) this.#held.set(key, (h = { chunks: [], bytes: 0, dropped: 0, decoders: { stdout: new StringDecoder('utf8'), stderr: new StringDecoder('utf8') } }));
    const room = INSTANCE_OUTPUT_BYTES - h.bytes;
    const take = Math.max(0, Math.min(room, data.byteLength));
    h.dropped += data.byteLength - take;
    if (take === 0) return;
    h.bytes += take;
    const text = h.decoders[stream].write(Buffer.from(data.buffer, data.byteOffset, take));
    if (text !== '') h.chunks.push({ stream, text });
  }

  /** Instance `index` ended: its output goes to the allocation's file with the next append (resolves once written). */
  end(allocationId: string, index: number): Promise<void> {
    const key = `${allocationId}\n${index}`;
    const h = this.#held.get(key);
    this.#held.delete(key);
    if (!h) return this.#tail.get(allocationId) ?? Promise.resolve();
    const lines = this.#pending.get(allocationId) ?? [];
    for (const stream of ['stdout', 'stderr'] as const) {
      const rest = h.decoders[stream].end();
      if (rest !== '') h.chunks.push({ stream, text: rest });
    }
    if (h.dropped > 0) h.chunks.push({ stream: 'stderr', text: `[dms: ${h.dropped} more bytes of output were dropped; an instance keeps ${INSTANCE_OUTPUT_BYTES} bytes]\n` });
    for (const c of h.chunks) lines.push(JSON.stringify({ i: index, s: c.stream === 'stdout' ? 'o' : 'e', t: c.text }));
    this.#pending.set(allocationId, lines);
    return this.#schedule(allocationId);
  }

  #schedule(allocationId: string): Promise<void> {
    if (!this.#scheduled) {
      this.#scheduled = true;
      setImmediate(() => this.#flushAll());
    }
    return new Promise<void>((resolve) => setImmediate(() => void (this.#tail.get(allocationId) ?? Promise.resolve()).then(resolve)));
  }

  #flushAll(): void {
    this.#scheduled = false;
    for (const [allocationId, lines] of this.#pending) {
      if (lines.length === 0) continue;
      const text = `${lines.join('\n')}\n`;
      const prev = this.#tail.get(allocationId) ?? fs.mkdir(this.dir, { recursive: true, mode: 0o700 }).then(() => {});
      const next = prev.then(() => fs.appendFile(this.file(allocationId), text, { mode: 0o600 })).catch((e: Error) => this.onError(allocationId, e));
      this.#tail.set(allocationId, next);
      void next.then(() => {
        if (this.#tail.get(allocationId) === next) this.#tail.delete(allocationId);
      });
    }
    this.#pending.clear();
  }

  /** Instance `index`'s output, from its `offset`-th chunk, as much as one page takes. */
  async read(allocationId: string, index: number, offset = 0): Promise<OutputPage> {
    const chunks: OutputChunk[] = [];
    let seen = 0;
    let bytes = 0;
    let full = false;
    try {
      await fs.access(this.file(allocationId));
    } catch {
      return { chunks, next: offset, eof: true };
    }
    const lines = createInterface({ input: createReadStream(this.file(allocationId), { encoding: 'utf8' }), crlfDelay: Infinity });
    const tag = `{"i":${index},`;
    for await (const line of lines) {
      if (!line.startsWith(tag)) continue;
      let rec: { s: string; t: string };
      try {
        rec = JSON.parse(line) as { s: string; t: string };
      } catch {
        continue; // a line cut short by a crash
      }
      if (seen++ < offset) continue;
      const chunk: OutputChunk = { stream: rec.s === 'e' ? 'stderr' : 'stdout', text: rec.t };
      const cost = encodedChunkBytes(chunk);
      if (chunks.length > 0 && bytes + cost > OUTPUT_PAGE_BYTES * 0.9) {
        full = true;
        break;
      }
      bytes += cost;
      chunks.push(chunk);
    }
    lines.close();
    return { chunks, next: offset + chunks.length, eof: !full };
  }

  /** Forgets what running instances held (a stopping node). */
  clear(): void {
    this.#held.clear();
  }
}
