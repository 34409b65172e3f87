/**
 * Schemas for what arrives from the network, checked at the edge: the unsigned envelope, and one payload
 * schema per event type. A type without a schema is unknown and refused.
 */
import { z } from 'zod';
import type { UnsignedEnvelope } from '../../../machines/envelope.ts';

const peer = z.string().min(1).max(128).regex(/^[1-9A-HJ-NP-Za-km-z*]+$/, 'not a base58 peer id');
const inbox = z.string().regex(/^[A-Za-z0-9._:#/-]{1,128}$/, 'not an inbox name');
const time = z.number().int().nonnegative().max(Number.MAX_SAFE_INTEGER);

export const envelopeSchema = z
  .object({
    v: z.number().int(),
    id: z.string().regex(/^[A-Za-z0-9_.-]{8,128}$/, 'not an envelope id'),
    from: z.object({ peer, did: z.string().regex(/^did:key:z[1-9A-HJ-NP-Za-km-z]{10,100}$/, 'not a did:key'), inbox }).strict(),
    to: z.object({ peer, inbox }).strict(),
    type: z.string().regex(/^[a-z][a-z0-9]*(\.[a-z0-9-]+)+$/, 'not an event type (noun.verb)').max(64),
    payload: z.unknown(),
    ts: time,
    exp: time,
    replyTo: inbox.optional(),
  })
  .strict();

/** One schema per event type: the payload is the event without `type`. */
export type PayloadSchemas = ReadonlyMap<string, z.ZodType>;

export type EnvelopeCheck =
  | { readonly ok: true; readonly envelope: UnsignedEnvelope }
  | { readonly ok: false; readonly reason: 'malformed'; readonly detail: string };

export function parseEnvelope(data: unknown): EnvelopeCheck {
  const r = envelopeSchema.safeParse(data);
  if (!r.success) return { ok: false, reason: 'malformed', detail: r.error.issues.map((i) => `${i.path.join('.') || '(top)'}: ${i.message}`).join('; ') };
  return { ok: true, envelope: r.data as UnsignedEnvelope };
}

export type PayloadCheck =
  | { readonly ok: true; readonly payload: unknown }
  | { readonly ok: false; readonly reason: 'unknown-type' | 'invalid-payload'; readonly detail: string };

export function parsePayload(schemas: PayloadSchemas, type: string, payload: unknown): PayloadCheck {
  const schema = schemas.get(type);
  if (!schema) return { ok: false, reason: 'unknown-type', detail: `no event type ${type}` };
  const r = schema.safeParse(payload);
  if (!r.success) return { ok: false, reason: 'invalid-payload', detail: r.error.issues.map((i) => `${i.path.join('.') || '(payload)'}: ${i.message}`).join('; ') };
  return { ok: true, payload: r.data };
}
