/**
 * Who may use this node, and what this node may show others: capability tokens (capability.ts) issued, delegated,
 * added and revoked here, the anchors root grants are accepted from, and the check the deal path asks.
 *
 * Everything kept goes through the `trust` actor (machines/trust.machine.ts), so it is durable before the command
 * that made it is answered and `replay --actor trust` shows it; this service keeps a mirror for the deal path,
 * which must not wait on an actor per message. Verification goes through a GrantVerifier: a chain is verified once
 * per requester and action, then answered from its cache until the chain's earliest expiry or a revocation.
 */
import type { TokenEntry, TrustContext, TrustEvent } from '../../machines/trust.machine.ts';
import type { Clock } from '../clock.ts';
import type { ActorRef, OmitFrom } from '../supervisor/supervisor.ts';
import { ACTIONS, type Action, type RefusalReason, type SigningKey, decodeToken, delegate, issueGrant, linkIds, tokenId, verifyChain } from './capability.ts';
import { CapabilityGrantError, CapabilityTokenError } from './capability-errors.ts';
import { DID_KEY_PATTERN, didOfKey, publicKeyOf } from './did-key.ts';
import { GrantVerifier } from './verifier-cache.ts';

/** A deal carries at most this many of its requester's tokens (the newest that grant the action). */
export const MAX_GRANTS_PER_REQUEST = 4;
/** `cap grant` without --duration: a day. */
export const DEFAULT_GRANT_MS = 24 * 3_600_000;

export class TrustUsageError extends Error {
  override name = 'TrustUsageError';
  readonly exitCode = 2;
}

/** A check's answer: the grant that holds (its links and end), or why none does. */
export type Authorization =
  | { readonly ok: true; readonly ids: readonly string[]; readonly expiresAt: number; readonly root: string }
  | { readonly ok: false; readonly reason: RefusalReason | 'no-grant'; readonly detail: string };

export interface TrustDeps {
  readonly actor: ActorRef<TrustEvent>;
  readonly key: SigningKey;
  readonly clock: Clock;
  /** Whether this node, as a provider, serves only requesters that show a grant (`--require-grants` or preferences). */
  readonly requireGrants: () => Promise<boolean>;
}

export interface RevocationNotice {
  /** The token whose link `id` is revoked (its chain up to that link), so a receiver can check who may revoke it. */
  readonly token: string;
  readonly id: string;
}

const summary = (t: TokenEntry) => ({ id: t.id, kind: t.kind, root: t.root, audience: t.audience, actions: t.actions, expiresAt: t.expiresAt, links: t.links, addedAt: t.addedAt });

export class TrustService {
  readonly did: string;
  #state: TrustContext = { anchors: {}, tokens: {}, revoked: {} };
  readonly #verifier: GrantVerifier;

  constructor(private readonly deps: TrustDeps) {
    this.did = didOfKey(deps.key);
    this.#verifier = new GrantVerifier({ anchors: [this.did], revoked: (id) => this.isRevoked(id) });
  }

  /** Loads what the actor kept (after a restart: recovered from its log). */
  async start(): Promise<void> {
    this.#state = (await this.deps.actor.view()).context as TrustContext;
    this.#verifier.setAnchors(this.anchors());
  }

  /** Whether grants are required of requesters (the Node machine decides each bid by the same rule). */
  requireGrants(): Promise<boolean> {
    return this.deps.requireGrants();
  }

  /** The DIDs root grants are accepted from: this node's own, and those `cap anchor` added. */
  anchors(): string[] {
    return [this.did, ...Object.keys(this.#state.anchors)];
  }

  isRevoked(id: string): boolean {
    return this.#state.revoked[id] !== undefined;
  }

  // ---- the deal path

  /** The tokens this node holds that grant `action` now: what its deals carry to providers. */
  grantsFor(action: Action): string[] {
    const now = this.deps.clock.now();
    return Object.values(this.#state.tokens)
      .filter((t) => t.kind === 'held' && t.audience === this.did && t.actions.includes(action) && t.expiresAt > now && !t.links.some((id) => this.isRevoked(id)))
      .sort((a, b) => b.addedAt - a.addedAt)
      .slice(0, MAX_GRANTS_PER_REQUEST)
      .map((t) => t.token);
  }

  /** Whether one of `tokens` grants `action` to `requesterDid` from one of this node's anchors, now. */
  authorize(tokens: readonly string[] | undefined, requesterDid: string, action: Action): Authorization {
    if (requesterDid === this.did) return { ok: true, ids: [], expiresAt: Number.MAX_SAFE_INTEGER, root: this.did };
    const now = this.deps.clock.now();
    let last: Authorization = { ok: false, reason: 'no-grant', detail: `${requesterDid} showed no capability token granting ${action}` };
    for (const token of (tokens ?? []).slice(0, MAX_GRANTS_PER_REQUEST)) {
      const r = this.#verifier.verify(token, { audienceDid: requesterDid, action, now });
      if (r.ok) return { ok: true, ids: r.ids, expiresAt: r.expiresAt, root: r.issuerRoot };
      last = { ok: false, reason: r.reason, detail: r.detail };
    }
    return last;
  }

  /** Whether a grant found before still holds (not expired, no link of it revoked since). */
  stillHolds(grant: { readonly ids: readonly string[]; readonly expiresAt: number }): boolean {
    return grant.expiresAt > this.deps.clock.now() && !grant.ids.some((id) => this.isRevoked(id));
  }

  stats() {
    return this.#verifier.stats();
  }

  // ---- commands (`cap ...`)

  /** A root grant from this node to `audience`. */
  async grant(audience: string, actions: readonly string[], durationMs = DEFAULT_GRANT_MS, depth = 0): Promise<ReturnType<typeof summary> & { token: string }> {
    checkDid(audience, 'the audience');
    const now = this.deps.clock.now();
    const token = wrap(() => issueGrant({ issuerKey: this.deps.key, audienceDid: audience, actions: checkActions(actions), expiresAt: now + checkDuration(durationMs), depth, now }));
    return this.#keep(token, 'issued');
  }

  /** Re-grants a token this node holds to `audience`, never wider; without a duration, until the token's own end. */
  async delegate(token: string, audience: string, actions: readonly string[], durationMs?: number, depth = 0): Promise<ReturnType<typeof summary> & { token: string }> {
    checkDid(audience, 'the audience');
    const now = this.deps.clock.now();
    const leaf = wrap(() => decodeToken(token)).links.at(-1)!.payload;
    const expiresAt = durationMs === undefined ? leaf.exp : now + checkDuration(durationMs);
    const next = wrap(() => delegate({ token, holderKey: this.deps.key, audienceDid: audience, actions: checkActions(actions), expiresAt, depth, now }));
    return this.#keep(next, 'issued');
  }

  /** Accepts root grants from `did` from now on (or no longer, with `remove`). */
  async anchor(did: string, remove = false): Promise<{ anchors: string[] }> {
    checkDid(did, 'the anchor');
    if (did === this.did) throw new TrustUsageError('this node\'s own DID is always an anchor');
    await this.#record({ type: 'trust.anchor', did, remove, now: this.deps.clock.now() });
    this.#verifier.setAnchors(this.anchors());
    return { anchors: this.anchors() };
  }

  /** Keeps a token given to this node: its deals carry it from now on. */
  async add(token: string): Promise<ReturnType<typeof summary> & { token: string }> {
    const t = wrap(() => decodeToken(token));
    const leaf = t.links.at(-1)!.payload;
    if (leaf.aud !== this.did) throw new TrustUsageError(`this token grants to ${leaf.aud}, not to this node (${this.did}): add it on that node`);
    // whole and well signed, and each link no wider than the one before (whether a provider accepts its root is
    // the provider's business: checked against the root itself here)
    const r = verifyChain(t, { audienceDid: this.did, action: leaf.act[0]!, anchors: new Set([t.links[0]!.payload.iss]), revoked: (id) => this.isRevoked(id), now: this.deps.clock.now() });
    if (!r.ok) throw new TrustUsageError(`the token is not usable: ${r.reason} (${r.detail})`);
    return this.#keep(token, 'held');
  }

  async list() {
    return {
      did: this.did,
      requireGrants: await this.requireGrants(),
      anchors: this.anchors(),
      tokens: Object.values(this.#state.tokens).sort((a, b) => a.addedAt - b.addedAt).map((t) => ({ ...summary(t), token: t.token, revoked: t.links.some((id) => this.isRevoked(id)) })),
      revoked: Object.entries(this.#state.revoked).map(([id, r]) => ({ id, ...r })),
      cache: this.stats(),
    };
  }

  /**
   * Revokes a link id (a token's own id, or any link of one). Answers the notice to tell peers when this node knows
   * a token holding that link and is its issuer (only a link's issuer may revoke it elsewhere).
   */
  async revoke(id: string): Promise<{ id: string; notice: RevocationNotice | null }> {
    if (!/^[A-Za-z0-9_-]{43}$/.test(id)) throw new TrustUsageError(`"${id}" is not a token id (43 base64url characters, as \`cap list\` shows)`);
    const known = Object.values(this.#state.tokens).find((t) => t.links.includes(id));
    const link = known ? decodeToken(known.token).links.find((l) => l.id === id) : undefined;
    // kept until the revoked link's own end (a token past it is refused anyway)
    await this.#record({ type: 'trust.revoke', id, by: 'self', until: link?.payload.exp ?? null, now: this.deps.clock.now() });
    this.#verifier.revoke(id);
    return { id, notice: known && link?.payload.iss === this.did ? { token: known.token, id } : null };
  }

  /**
   * A revocation another node sent: taken when its sender issued the revoked link of the token it names (checked
   * against the token's own signatures). Answers whether it was taken, and why not.
   */
  async revoked(from: string, notice: RevocationNotice): Promise<{ taken: boolean; why?: string }> {
    let t;
    try {
      t = decodeToken(notice.token);
    } catch (e) {
      return { taken: false, why: `malformed token: ${(e as Error).message}` };
    }
    const at = t.links.findIndex((l) => l.id === notice.id);
    if (at < 0) return { taken: false, why: `the token has no link ${notice.id}` };
    const link = t.links[at]!;
    if (link.payload.iss !== from) return { taken: false, why: `${from} did not issue link ${notice.id} (its issuer is ${link.payload.iss})` };
    // only what could matter here is kept: a chain rooted at one of this node's anchors, or a token it keeps (anyone
    // can mint chains of their own and revoke them, which must not cost this node its memory of real revocations)
    const relevant = this.anchors().includes(t.links[0]!.payload.iss) || Object.values(this.#state.tokens).some((k) => k.links.includes(notice.id));
    if (!relevant) return { taken: false, why: `link ${notice.id} is of a chain rooted at ${t.links[0]!.payload.iss}, not one of this node's anchors, and of no token it keeps` };
    // the chain up to that link must be whole and signed (not whether this node would accept it)
    const upTo = { links: t.links.slice(0, at + 1) };
    const r = verifyChain(upTo, { audienceDid: link.payload.aud, action: link.payload.act[0]!, anchors: new Set([t.links[0]!.payload.iss]), revoked: () => false, now: Math.min(this.deps.clock.now(), link.payload.exp - 1) });
    if (!r.ok && r.reason !== 'not-yet-valid') return { taken: false, why: `${r.reason}: ${r.detail}` };
    if (this.isRevoked(notice.id)) return { taken: true };
    await this.#record({ type: 'trust.revoke', id: notice.id, by: from, until: link.payload.exp, now: this.deps.clock.now() });
    this.#verifier.revoke(notice.id);
    return { taken: true };
  }

  async #keep(token: string, kind: TokenEntry['kind']): Promise<ReturnType<typeof summary> & { token: string }> {
    const t = decodeToken(token);
    const leaf = t.links.at(-1)!.payload;
    const entry: TokenEntry = { id: tokenId(t), token, kind, root: t.links[0]!.payload.iss, audience: leaf.aud, actions: [...leaf.act], expiresAt: leaf.exp, links: linkIds(t), addedAt: this.deps.clock.now() };
    await this.#record({ type: 'trust.token', entry });
    return { ...summary(entry), token };
  }

  /** Sends an event to the trust actor and waits until it is logged and applied; then mirrors it. */
  async #record(e: OmitFrom<TrustEvent, 'replyTo'>): Promise<void> {
    const r = await this.deps.actor.ask(e as OmitFrom<TrustEvent, 'replyTo'>, undefined, 'api');
    if (!r.ok) throw new Error(`the trust actor refused ${e.type}: ${r.message}`);
    this.#state = (await this.deps.actor.view()).context as TrustContext;
  }
}

function checkDid(did: string, what: string): void {
  if (!DID_KEY_PATTERN.test(did) || !publicKeyOf(did)) throw new TrustUsageError(`${what} "${did}" is not an ed25519 did:key (did:key:z6Mk..., as \`info\` shows a node's did)`);
}

function checkActions(actions: readonly string[]): Action[] {
  const unknown = actions.filter((a) => !(ACTIONS as readonly string[]).includes(a));
  if (actions.length === 0 || unknown.length > 0) throw new TrustUsageError(`${unknown.length ? `unknown action ${unknown.join(', ')}` : 'no action given'}; actions: ${ACTIONS.join(', ')} (--action A, repeatable)`);
  return [...new Set(actions)] as Action[];
}

function checkDuration(ms: number): number {
  if (!Number.isFinite(ms) || ms < 1000 || ms > 366 * 24 * 3_600_000) throw new TrustUsageError(`a duration of ${ms} ms is out of range: from 1s to 366d`);
  return ms;
}

/** Token errors of the codec and the rules are the user's input: usage errors (exit 2) with their message. */
function wrap<T>(f: () => T): T {
  try {
    return f();
  } catch (e) {
    if (e instanceof CapabilityGrantError || e instanceof CapabilityTokenError || (e as Error).name === 'CapabilityWideningError') throw new TrustUsageError((e as Error).message);
    throw e;
  }
}
