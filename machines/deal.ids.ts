/**
 * Names in a deal: the inboxes deal messages go to, the key of one provider's part in a deal, and actor ids.
 *
 * A deal is named by its `dealId` (the job id, chosen by the requester). One ask for bids is one `nonce`; a
 * provider's part of a deal is keyed `${dealId}.${nonce}@${requester}` (its lock, its provider actor and its
 * allocation share it).
 */

/** Inboxes deal messages are sent to on a peer. */
export const NODE_INBOX = 'node';
export const REQUESTER_INBOX = 'requester';
export const PROVIDER_INBOX = 'provider';

/**
 * The key of one provider's part in one deal: lock id, allocation id, and the suffix of its actor ids. It names
 * the requester too: deal ids are public (bid requests are broadcast), so without it another peer could reuse a
 * deal's id and nonce to take over its key (its lock, its provider negotiation, its output).
 */
export function dealKey(dealId: string, nonce: number, requester: string): string {
  return `${dealId}.${nonce}@${requester}`;
}

/** The parts of a deal key, as `dealKey` took them. */
export interface DealKeyParts {
  readonly dealId: string;
  readonly nonce: number;
  readonly requester: string;
}

/**
 * The inverse of `dealKey`: the parts, when `key` is one; undefined otherwise. The requester (a peer id) holds no
 * `@` and the nonce is a whole number, so both are read from the end and the deal id keeps whatever is left.
 */
export function parseDealKey(key: string): DealKeyParts | undefined {
  const at = key.lastIndexOf('@');
  if (at < 0) return undefined;
  const requester = key.slice(at + 1);
  const dot = key.lastIndexOf('.', at - 1);
  if (dot <= 0 || requester === '') return undefined;
  const digits = key.slice(dot + 1, at);
  if (!/^(0|[1-9][0-9]*)$/.test(digits)) return undefined;
  const nonce = Number(digits);
  if (!Number.isSafeInteger(nonce)) return undefined;
  return { dealId: key.slice(0, dot), nonce, requester };
}

/** Actor ids by kind. */
export const requesterActorId = (dealId: string) => `job/${dealId}`;
export const providerActorId = (key: string) => `provider/${key}`;
export const allocationActorId = (allocationId: string) => `allocation/${allocationId}`;
