/**
 * Revocations travel like other signed messages: `cap revoke` of a link this node issued is broadcast as
 * `trust.revoke` (the token up to that link, and its id) on the gossip topic, and every node that hears it records the
 * revocation when the envelope's verified author issued that link (TrustService.revoked). Budgeted per author
 * (peer-budgets.ts); a notice whose author did not issue the link is logged and dropped.
 */
import { z } from 'zod';
import type { Inbound, InboxSpec } from '../net/message-router.ts';
import { MAX_TOKEN_CHARS } from './capability.ts';
import type { RevocationNotice, TrustService } from './trust-service.ts';

export const TRUST_INBOX = 'trust';

export const trustPayloadSchemas: ReadonlyMap<string, z.ZodType> = new Map<string, z.ZodType>([
  ['trust.revoke', z.strictObject({ token: z.string().min(1).max(MAX_TOKEN_CHARS), id: z.string().regex(/^[A-Za-z0-9_-]{43}$/, 'is not a token id') })],
]);

export interface TrustInboxLog {
  info(obj: object, msg?: string): void;
  debug(obj: object, msg?: string): void;
}

export function trustInbox(trust: TrustService, log: TrustInboxLog): InboxSpec {
  return {
    name: TRUST_INBOX,
    accepts: ['trust.revoke'],
    handle(msg: Inbound) {
      const notice = msg.envelope.payload as RevocationNotice;
      const from = msg.envelope.from.did;
      void trust.revoked(from, notice).then(
        (r) => (r.taken ? log.info({ id: notice.id, by: from }, `token ${notice.id} revoked by ${from}`) : log.debug({ id: notice.id, by: from, why: r.why }, 'a revocation was not taken')),
        (e: Error) => log.debug({ id: notice.id, err: e.message }, 'a revocation could not be recorded'),
      );
    },
  };
}
