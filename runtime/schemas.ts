/**
 * Schemas for data that arrives from outside (API requests, files in the data dir), checked at the edge.
 */
import { z } from 'zod';
import { KNOWN_EXECUTORS } from '../machines/onboarding.ts';
import { parseSize } from './units.ts';

export const sizeSchema = z.union([z.number(), z.string()]).transform((v, ctx) => {
  const n = parseSize(v);
  if (n === undefined) {
    ctx.addIssue({ code: 'custom', message: `"${v}" is not a size; use bytes or a unit such as 512MiB or 2GB` });
    return z.NEVER;
  }
  return n;
});

export const executorsSchema = z.array(z.enum(KNOWN_EXECUTORS));

export const offerSchema = z
  .object({
    cpu: z.number().positive().optional(),
    memory: sizeSchema.optional(),
    disk: sizeSchema.optional(),
    executors: executorsSchema.optional(),
  })
  .strict();

const peerList = z.array(z.string().min(1)).max(10_000);

export const preferencesSchema = z
  .object({
    provider: z
      .object({
        minPrice: z.number().nonnegative(),
        acceptRequesters: peerList,
        refuseRequesters: peerList,
        keepFree: z.number().min(0).max(0.9),
      })
      .strict(),
    requester: z
      .object({
        weights: z.object({ price: z.number().nonnegative(), score: z.number().nonnegative(), rtt: z.number().nonnegative() }).strict(),
      })
      .strict(),
  })
  .strict();

/** POST /v1/ping: a peer id and how many round trips. */
export const pingSchema = z.object({ peer: z.string().regex(/^[1-9A-HJ-NP-Za-km-z]{32,128}$/, 'not a peer id'), count: z.number().int().min(1).max(1000) }).strict();

/** A readable one-line account of what is wrong, naming each field. */
export function describeIssues(err: z.ZodError): string {
  return err.issues.map((i) => `${i.path.length ? i.path.join('.') : '(top level)'}: ${i.message}`).join('; ');
}
