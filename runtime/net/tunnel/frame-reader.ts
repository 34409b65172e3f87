/**
 * Reads the one frame that opens each direction of a tunnel stream (the header, or the status byte), bounded in
 * bytes and time, and hands any bytes that arrived behind it back to the stream for the pipe to deliver.
 */
import type { Stream, StreamMessageEvent } from '@libp2p/interface';
import { TunnelHeaderError } from './tunnel-errors.ts';
import type { PrefixRead } from './tunnel.protocol.ts';

/**
 * The body of the first frame on `stream`, as `parse` finds it. Rejects with a TunnelHeaderError when `parse`
 * calls it bad, when the stream ends or closes first, or after `timeoutMs`.
 */
export function readFrame(stream: Stream, parse: (buf: Uint8Array) => PrefixRead, timeoutMs: number, what: string): Promise<Uint8Array> {
  return new Promise<Uint8Array>((resolve, reject) => {
    let buf: Uint8Array = new Uint8Array(0);
    const done = (err: TunnelHeaderError | null, body?: Uint8Array, rest?: Uint8Array): void => {
      clearTimeout(timer);
      stream.removeEventListener('message', onMessage);
      stream.removeEventListener('end', onEnd);
      stream.removeEventListener('close', onEnd);
      if (err) return reject(err);
      // bytes behind the frame go back first in line, for whoever listens next
      if (rest && rest.length > 0 && stream.readStatus !== 'closed' && stream.readStatus !== 'closing') stream.unshift(rest);
      resolve(body!);
    };
    const onMessage = (e: StreamMessageEvent): void => {
      const chunk = e.data.subarray();
      buf = buf.length === 0 ? chunk : concat(buf, chunk);
      const r = parse(buf);
      if (r.kind === 'bad') done(new TunnelHeaderError(`bad ${what}: ${r.why}`));
      else if (r.kind === 'done') done(null, r.body.slice(), buf.subarray(r.used));
      else if (noMore()) onEnd();
    };
    // 'end' may have passed already, with bytes behind it: protocol negotiation reads ahead, sees the remote's
    // close, and pushes back what it read (see MessageStream.readableEnded)
    const noMore = (): boolean => stream.readableEnded && stream.readBufferLength === 0;
    const onEnd = (): void => done(new TunnelHeaderError(`the stream ended before its ${what} (${buf.length} bytes of it came)`));
    const timer = setTimeout(() => done(new TunnelHeaderError(`no ${what} within ${timeoutMs} ms (${buf.length} bytes of it came)`)), timeoutMs);
    if (noMore() || stream.status !== 'open') return onEnd();
    stream.addEventListener('message', onMessage);
    stream.addEventListener('end', onEnd);
    stream.addEventListener('close', onEnd);
  });
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.length + b.length);
  out.set(a, 0);
  out.set(b, a.length);
  return out;
}
