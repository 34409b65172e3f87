/**
 * Pages of a job's output log (output-log.ts), built by their encoded size: a page travels to the requester as the
 * payload of one `logs.page` envelope, and an envelope must fit one frame (MAX_FRAME_BYTES, 1 MiB). What a page
 * costs is not its share of the file: a 1-byte record is a 7-byte line but a 22-byte chunk on the wire. So each
 * chunk is measured by its DAG-CBOR encoding (encoded-size.ts), the encoding the envelope uses, and a page stops
 * before the chunk that would take it past its budget.
 */
import { promises as fs } from 'node:fs';
import { MAX_FRAME_BYTES } from '../../machines/envelope.ts';
import { encodedSize } from './encoded-size.ts';

/**
 * The most a page may take, DAG-CBOR encoded: a quarter of a frame, so the envelope around it (addresses, ids,
 * signature, a batch's Merkle path: well under 1 KiB) stays far under MAX_FRAME_BYTES.
 */
export const OUTPUT_PAGE_BYTES = MAX_FRAME_BYTES / 4;

export interface OutputChunk {
  readonly stream: 'stdout' | 'stderr';
  /** The bytes as UTF-8 text (invalid sequences replaced). */
  readonly text: string;
}

export interface OutputPage {
  readonly chunks: readonly OutputChunk[];
  /** Offset to ask for next. */
  readonly next: number;
  /** True when `next` is the end of the whole lines written so far. */
  readonly eof: boolean;
}

/** A page's own cost around its chunks: the map, `next` and `eof` at their largest, the chunk count's header at
 * its largest (5 bytes for up to 2^32 entries, 1 byte when empty). */
const PAGE_OVERHEAD = encodedSize({ chunks: [], next: Number.MAX_SAFE_INTEGER, eof: false }) + 4;
const READ_BLOCK = 64 * 1024;

/** What one chunk adds to a page's encoding. */
export const encodedChunkBytes = (chunk: OutputChunk): number => encodedSize(chunk);

/**
 * Whole lines of `file` from `offset`, as many as fit `maxBytes` encoded. The first chunk is taken whatever it
 * costs, or a reader would never get past it (the log's writer keeps every record far smaller than a page).
 */
export async function readPage(file: string, offset: number, maxBytes = OUTPUT_PAGE_BYTES): Promise<OutputPage> {
  const fh = await fs.open(file, 'r');
  try {
    const size = (await fh.stat()).size;
    const chunks: OutputChunk[] = [];
    let used = PAGE_OVERHEAD;
    let next = offset;
    // bytes read and not yet consumed, starting at file offset `next`: at most a line and a block
    let held: Buffer = Buffer.alloc(0);
    const block = Buffer.alloc(READ_BLOCK);
    for (let pos = offset; pos < size; ) {
      const { bytesRead } = await fh.read(block, 0, Math.min(block.length, size - pos), pos);
      if (bytesRead === 0) break;
      pos += bytesRead;
      held = held.length === 0 ? block.subarray(0, bytesRead) : Buffer.concat([held, block.subarray(0, bytesRead)]);
      let start = 0;
      for (let nl = held.indexOf(10); nl >= 0; nl = held.indexOf(10, start)) {
        const chunk = parseLine(held.subarray(start, nl));
        if (chunk) {
          const cost = encodedChunkBytes(chunk);
          if (chunks.length > 0 && used + cost > maxBytes) return { chunks, next, eof: false };
          chunks.push(chunk);
          used += cost;
        }
        next += nl + 1 - start;
        start = nl + 1;
      }
      held = Buffer.from(held.subarray(start)); // a copy: `block` is read into again
    }
    // what is left is a line still being written (or nothing): the end of what a reader can have now
    return { chunks, next, eof: true };
  } finally {
    await fh.close();
  }
}

/** A line without its newline: `o <base64>` or `e <base64>`; undefined for one that holds no text. */
function parseLine(line: Buffer): OutputChunk | undefined {
  if (line.length < 3) return undefined;
  const text = Buffer.from(line.toString('latin1', 2), 'base64').toString('utf8');
  return text === '' ? undefined : { stream: line[0] === 0x6f ? 'stdout' : 'stderr', text };
}
