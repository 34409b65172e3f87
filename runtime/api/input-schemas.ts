/**
 * Schemas for data that arrives from outside (API requests, files in the data dir), checked at the edge.
 */
import { z } from 'zod';
import { PEER_ID_PATTERN } from '../../machines/job.ts';
import { KNOWN_EXECUTORS } from '../../machines/onboarding.ts';
import { parseDuration, parseSize } from '../units.ts';

export const sizeSchema = z.union([z.number(), z.string()]).transform((v, ctx) => {
  const n = parseSize(v);
  if (n === undefined) {
    ctx.addIssue({ code: 'custom', message: `"${v}" is not a size; use bytes or a unit such as 512MiB or 2GB` });
    return z.NEVER;
  }
  return n;
});

export const durationSchema = z.union([z.number(), z.string()]).transform((v, ctx) => {
  const n = parseDuration(v);
  if (n === undefined) {
    ctx.addIssue({ code: 'custom', message: `"${v}" is not a duration; use milliseconds or a unit such as 30s or 5m` });
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
        /** Absent: the default (machines/preferences.ts DEFAULT_MAX_LOCKS_PER_REQUESTER). */
        maxLocksPerRequester: z.number().int().min(1).max(10_000).optional(),
        /** Absent: 1, no cap (machines/preferences.ts). */
        maxShare: z.number().gt(0).max(1).optional(),
        /** Absent: false; true serves only requesters with a capability grant, as `--require-grants` (machines/preferences.ts). */
        requireGrants: z.boolean().optional(),
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
export const pingSchema = z.object({ peer: z.string().regex(PEER_ID_PATTERN, 'not a peer id'), count: z.number().int().min(1).max(1000) }).strict();

const ledgerId = z.string().min(1).max(200).regex(/^[\w.:@-]+$/, 'letters, digits and . _ : @ - only');

/** A manual lock: resources held for `ttl` (a duration), e.g. reserved for local use. */
export const lockSchema = z
  .object({
    id: ledgerId,
    resources: z.object({ cpu: z.number().nonnegative(), memory: sizeSchema, disk: sizeSchema, gpus: z.number().int().nonnegative().default(0) }).strict(),
    ports: z.object({ static: z.array(z.number().int().min(1).max(65535)).max(1000).optional(), dynamic: z.number().int().min(0).max(1000).optional() }).strict().optional(),
    ttl: durationSchema,
  })
  .strict();
export const unlockSchema = z.object({ id: ledgerId }).strict();
export const allocateSchema = z.object({ allocationId: ledgerId, lockId: ledgerId }).strict();
export const releaseSchema = z.object({ allocationId: ledgerId }).strict();

/** A readable one-line account of what is wrong, naming each field. */
export function describeIssues(err: z.ZodError): string {
  return err.issues.map((i) => `${i.path.length ? i.path.join('.') : '(top level)'}: ${i.message}`).join('; ');
}
