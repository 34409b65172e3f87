/**
 * Payload schemas of the `net` inbox's events (machines/net.messages.ts), one per type.
 */
import { z } from 'zod';

const seq = z.number().int().nonnegative().max(Number.MAX_SAFE_INTEGER);
const data = z.string().max(64 * 1024).optional();

export const netPayloadSchemas: ReadonlyMap<string, z.ZodType> = new Map<string, z.ZodType>([
  ['net.ping', z.object({ seq, data }).strict()],
  ['net.pong', z.object({ seq, data }).strict()],
  ['peers.request', z.object({}).strict()],
  [
    'peers.reply',
    z
      .object({
        peers: z
          .array(z.object({ peer: z.string().min(1).max(128), addrs: z.array(z.string().max(512)).max(32), rttMs: z.number().nonnegative().nullable() }).strict())
          .max(1000),
      })
      .strict(),
  ],
  ['net.error', z.object({ code: z.string().max(64), message: z.string().max(1024) }).strict()],
]);
