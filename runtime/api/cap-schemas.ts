/** The bodies of the `cap` routes (POST /v1/cap/...), checked at the API's edge; the trust service checks the rest. */
import { z } from 'zod';

const MAX_TOKEN = 8 * 1024;
const did = z.string().min(8).max(120);
const actions = z.array(z.string().min(1).max(32)).min(1).max(8);
/** A grant's life in ms: 1 s to 366 days. */
const durationMs = z.number().int().min(1000).max(366 * 24 * 3_600_000);
const depth = z.number().int().min(0).max(7);

export const capGrantSchema = z.strictObject({ audience: did, actions, durationMs: durationMs.optional(), depth: depth.optional() });
export const capDelegateSchema = z.strictObject({ token: z.string().min(1).max(MAX_TOKEN), audience: did, actions, durationMs: durationMs.optional(), depth: depth.optional() });
export const capAnchorSchema = z.strictObject({ did, remove: z.boolean().optional() });
export const capAddSchema = z.strictObject({ token: z.string().min(1).max(MAX_TOKEN) });
export const capRevokeSchema = z.strictObject({ id: z.string().min(1).max(64) });
