import type { OutputChunk, OutputListener } from '../../actors/executor.ts';

/**
 * A job's output: keeps chunks until `limitBytes` (both streams together) and drops the rest while counting it,
 * hands kept chunks to an optional listener at once, and buffers them for one async-iterating reader.
 */
export class OutputQueue implements AsyncIterable<OutputChunk> {
  #kept = 0;
  #seen = 0;
  #ended = false;
  #iterated = false;
  readonly #buffer: OutputChunk[] = [];
  #wake: (() => void) | undefined;

  constructor(
    private readonly limitBytes: number,
    private readonly listener?: OutputListener,
  ) {}

  /** Output bytes written by the job, kept or not. */
  get bytes(): number {
    return this.#seen;
  }

  get truncated(): boolean {
    return this.#seen > this.#kept;
  }

  push(stream: OutputChunk['stream'], data: Uint8Array): void {
    if (this.#ended) return;
    this.#seen += data.byteLength;
    const room = this.limitBytes - this.#kept;
    if (room <= 0) return;
    const kept = data.byteLength > room ? data.subarray(0, room) : data;
    this.#kept += kept.byteLength;
    const chunk: OutputChunk = { stream, data: kept };
    this.listener?.(chunk);
    this.#buffer.push(chunk);
    this.#wake?.();
  }

  end(): void {
    this.#ended = true;
    this.#wake?.();
  }

  async *[Symbol.asyncIterator](): AsyncIterator<OutputChunk> {
    if (this.#iterated) throw new Error('a job\'s output can be iterated only once; keep the chunks if you need them twice');
    this.#iterated = true;
    for (;;) {
      const chunk = this.#buffer.shift();
      if (chunk) {
        yield chunk;
        continue;
      }
      if (this.#ended) return;
      await new Promise<void>((resolve) => (this.#wake = resolve));
      this.#wake = undefined;
    }
  }
}
