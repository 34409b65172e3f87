/**
 * The router: an address is {peer, inbox}. Local inboxes are registered here; envelopes for other peers are
 * signed and handed to the transport (the per-peer actor channel), broadcasts go to gossipsub. Arriving
 * envelopes pass every check of the edge (the sender's budgets, shape, sender, addressee, time, replay,
 * signature, event type and payload) before an inbox sees them; each refusal is counted by reason and logged.
 * Outgoing envelopes are checked for size before they are sealed. Request/reply: a request names a one-shot
 * reply inbox in `replyTo` and carries its deadline in `exp`.
 */
import { randomBytes } from 'node:crypto';
import type { ZodType } from 'zod';
import { type Address, BROADCAST_PEER, DEFAULT_TTL_MS, ENVELOPE_VERSION, MAX_FRAME_BYTES, MAX_TTL_MS, type UnsignedEnvelope, checkArrival, replyExpiry } from '../../machines/envelope.ts';
import { type Clock, type Timer, realClock } from '../clock.ts';
import type { EdgeRejectReason } from './edge-reasons.ts';
import { MAX_BODY_BYTES, decodeBody, encodeBody, sealOne, splitSigned } from './wire/envelope-codec.ts';
import { type PayloadSchemas, parseEnvelope, parsePayload } from './wire/envelope-schema.ts';
import type { EnvelopeSigner, EnvelopeVerifier } from './wire/envelope-signer.ts';
import type { NetCounters } from './net-counters.ts';
import { OutboundBatcher } from './channel/outbound-batcher.ts';
import { PeerBudgets } from './peer-budgets.ts';
import { ReplayCache } from './replay-cache.ts';

/** What carries sealed envelopes: the per-peer channels and the broadcast topic. */
export interface FrameTransport {
  /** Queues frames, in order, on the peer's channel (opening it when needed); waits while it is full. */
  sendFrames(peer: string, frames: readonly Uint8Array[], deadline: number): Promise<void>;
  /** True when the peer's channel is open and `n` more frames fit in it now. */
  ready(peer: string, n: number): boolean;
  publish(data: Uint8Array): Promise<void>;
}


/** An envelope that passed every check, as an inbox sees it. */
export interface Inbound<P = unknown> {
  readonly envelope: UnsignedEnvelope<string, P>;
  readonly broadcast: boolean;
}

export interface InboxSpec {
  readonly name: string;
  /** Event types this inbox takes; any other is refused as not-accepted. */
  readonly accepts: readonly string[];
  handle(msg: Inbound): void;
}

export interface RouterLog {
  debug(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
}

export interface RouterDeps {
  readonly signer: EnvelopeSigner;
  readonly verifier: EnvelopeVerifier;
  readonly transport: FrameTransport;
  readonly counters: NetCounters;
  readonly log: RouterLog;
  /** Time for envelopes' stamps and deadlines, arrival checks and request timeouts (default: the real clock). */
  readonly clock?: Clock;
  /** Per-sender budgets and refusals (default: EDGE_BUDGETS on `clock`, nobody told of a refusal). */
  readonly budgets?: PeerBudgets;
  /** Envelope ids seen (default: a cache with REPLAY_CACHE_DEFAULTS). */
  readonly replay?: ReplayCache;
}

export interface SendOptions {
  /** The sending inbox (default `net`). */
  readonly from?: string;
  readonly ttlMs?: number;
  readonly replyTo?: string;
}

export class RequestTimeoutError extends Error {
  override name = 'RequestTimeoutError';
}

/** An envelope whose encoding is over what a peer takes (MAX_BODY_BYTES): nothing was sent. */
export class EnvelopeTooLargeError extends Error {
  override name = 'EnvelopeTooLargeError';
  constructor(readonly type: string, readonly bytes: number) {
    super(`a ${type} message of ${kib(bytes)} is over the ${kib(MAX_BODY_BYTES)} one envelope may carry, so it was not sent; send less at once (split or page it)`);
  }
}

const kib = (n: number): string => `${(n / 1024).toFixed(1)} KiB`;

/** The remote side answered a request with `net.error`. */
export class RemoteError extends Error {
  override name = 'RemoteError';
  constructor(readonly code: string, message: string) {
    super(message);
  }
}

interface PendingReply {
  readonly resolve: (m: Inbound) => void;
  readonly reject: (e: Error) => void;
  readonly timer: Timer;
  readonly peer: string;
}

const WARN_EVERY_MS = 10_000;

export class MessageRouter {
  readonly #inboxes = new Map<string, InboxSpec>();
  readonly #schemas = new Map<string, ZodType>();
  readonly #pending = new Map<string, PendingReply>();
  readonly #replay: ReplayCache;
  readonly #budgets: PeerBudgets;
  readonly #lastWarn = new Map<string, number>();
  readonly #bootId = randomBytes(9).toString('base64url');
  readonly #clock: Clock;
  readonly #sweep: Timer;
  readonly #batcher: OutboundBatcher;
  #seq = 0;

  constructor(readonly deps: RouterDeps) {
    this.#clock = deps.clock ?? realClock;
    this.#replay = deps.replay ?? new ReplayCache();
    this.#budgets = deps.budgets ?? new PeerBudgets(undefined, this.#clock);
    this.#batcher = new OutboundBatcher({
      transport: deps.transport,
      sign: deps.signer.sign,
      onSent: (n) => (deps.counters.out += n),
      onFailed: (peer, n, e) => deps.log.debug({ peer, dropped: n, err: e.message }, `could not send ${n} messages to ${peer}`),
    });
    this.#sweep = this.#clock.every(10_000, () => {
      this.#replay.sweep(this.#now());
      this.#budgets.sweep(this.#now());
    });
  }

  get peer(): string {
    return this.deps.signer.peer;
  }

  /** Adds payload schemas, one per event type. Only types with a schema can arrive from the network. */
  addSchemas(schemas: PayloadSchemas): void {
    for (const [type, schema] of schemas) this.#schemas.set(type, schema);
  }

  /** Registers a local inbox; returns a function that removes it. */
  register(spec: InboxSpec): () => void {
    if (this.#inboxes.has(spec.name)) throw new Error(`inbox ${spec.name} is already registered`);
    this.#inboxes.set(spec.name, spec);
    return () => this.#inboxes.delete(spec.name);
  }

  /** Sends one event to an address; resolves with the envelope id once it is queued on the peer's channel. */
  async send(to: Address, type: string, payload: unknown, opts: SendOptions = {}): Promise<string> {
    const env = this.#envelope(to, type, payload, opts, this.#now() + Math.min(opts.ttlMs ?? DEFAULT_TTL_MS, MAX_TTL_MS));
    await this.#dispatchOut(env);
    return env.id;
  }

  /** Sends a request and waits for the one reply to it, until the deadline. */
  request<P = unknown>(to: Address, type: string, payload: unknown, opts: { from?: string; timeoutMs?: number } = {}): Promise<Inbound<P>> {
    const timeoutMs = Math.min(opts.timeoutMs ?? DEFAULT_TTL_MS, MAX_TTL_MS);
    const env = this.#envelope(to, type, payload, { from: opts.from ?? 'net' }, this.#now() + timeoutMs);
    const replyInbox = `reply/${env.id}`;
    const withReply = { ...env, replyTo: replyInbox };
    return new Promise<Inbound<P>>((resolve, reject) => {
      const timer = this.#clock.after(
        timeoutMs,
        () => {
          this.#pending.delete(replyInbox);
          reject(new RequestTimeoutError(`no answer to ${type} from ${to.peer} within ${timeoutMs} ms`));
        },
        { keepAlive: true },
      );
      this.#pending.set(replyInbox, { resolve: resolve as (m: Inbound) => void, reject, timer, peer: to.peer });
      this.#dispatchOut(withReply).catch((e: Error) => {
        timer.clear();
        this.#pending.delete(replyInbox);
        reject(e);
      });
    });
  }

  /**
   * Answers a request; the reply carries the request's deadline. Does nothing when no answer was asked for. A
   * reply too large to send is answered instead with `net.error` code `too-large`, so the caller learns why.
   */
  async reply(req: Inbound, type: string, payload: unknown): Promise<void> {
    const r = req.envelope;
    if (!r.replyTo) return;
    const to = { peer: r.from.peer, inbox: r.replyTo };
    const exp = replyExpiry(r, this.#now());
    try {
      await this.#dispatchOut(this.#envelope(to, type, payload, { from: r.to.inbox }, exp));
    } catch (e) {
      if ((e as Error).name !== 'EnvelopeTooLargeError') throw e;
      this.deps.log.warn({ peer: to.peer, type, err: (e as Error).message }, `a ${type} reply to ${to.peer} was too large to send; answered with net.error too-large`);
      await this.#dispatchOut(this.#envelope(to, 'net.error', { code: 'too-large', message: `the ${type} reply was too large to send: ${(e as Error).message}` }, { from: r.to.inbox }, exp));
    }
  }

  /** Broadcasts one event to `inbox` on every peer subscribed to the topic. */
  async broadcast(inbox: string, type: string, payload: unknown, opts: SendOptions = {}): Promise<string> {
    const env = this.#envelope({ peer: BROADCAST_PEER, inbox }, type, payload, opts, this.#now() + Math.min(opts.ttlMs ?? DEFAULT_TTL_MS, MAX_TTL_MS));
    await this.deps.transport.publish(sealOne(this.#encode(env), this.deps.signer.sign).data);
    this.deps.counters.broadcastOut += 1;
    return env.id;
  }

  /**
   * One envelope frame body from `peer` (the authenticated remote peer, or the gossip author). Runs every
   * check of the edge, cheapest first (the sender's refusal and gossip budgets before decoding, its per-type
   * budget and the replay check before the signature), then hands the envelope to its reply waiter or inbox.
   * The id is remembered only once the envelope passed every check. Never throws. Null when it was taken,
   * else why it was refused.
   */
  receive(peer: string, kind: number, frameBody: Uint8Array, broadcast: boolean): EdgeRejectReason | null {
    const now = this.#now();
    const refused = this.#budgets.refusal(peer, now);
    if (refused) return this.#refuse(peer, 'peer-refused', `refused until ${new Date(refused.until).toISOString()} (over its ${refused.budget} budget)`);
    if (broadcast) {
      if (frameBody.length + 1 > MAX_FRAME_BYTES) return this.#refuse(peer, 'oversized', `broadcast of ${frameBody.length + 1} bytes`);
      const over = this.#budgets.gossip(peer, frameBody.length + 1, now);
      if (over) return this.#refuse(peer, 'rate-limited', `over its ${over} budget`);
    }
    const signed = splitSigned(kind, frameBody);
    if (!signed) return this.#refuse(peer, 'malformed', 'frame too short for its signature or batch path');
    let raw: unknown;
    try {
      raw = decodeBody(signed.body);
    } catch (e) {
      return this.#refuse(peer, 'malformed', `not DAG-CBOR: ${(e as Error).message}`);
    }
    const parsed = parseEnvelope(raw);
    if (!parsed.ok) return this.#refuse(peer, parsed.reason, parsed.detail);
    const env = parsed.envelope;
    const rule = checkArrival(env, { now, localPeer: this.peer, remotePeer: peer, broadcast });
    if (rule) return this.#refuse(peer, rule, `${env.type} ${env.id}`);
    if (this.deps.verifier.didOf(env.from.peer) !== env.from.did) return this.#refuse(peer, 'did-mismatch', `${env.from.did} is not the key of ${env.from.peer}`);
    const over = this.#budgets.typed(env.from.peer, env.type, now);
    if (over) return this.#refuse(peer, 'rate-limited', `${env.type} ${env.id}: over its ${over} budget`);
    if (this.#replay.has(env.from.peer, env.id, now)) return this.#refuse(peer, 'replayed', `id ${env.id} seen before`);
    if (!this.deps.verifier.verify(env.from.peer, signed)) return this.#refuse(peer, 'bad-signature', `${env.type} ${env.id}`);
    const payload = parsePayload(this.#schemas, env.type, env.payload);
    if (!payload.ok) {
      this.#answerError({ envelope: env, broadcast }, payload.reason, payload.detail);
      return this.#refuse(peer, payload.reason, payload.detail);
    }
    const fresh = this.#replay.admit(env.from.peer, env.id, env.exp, now);
    if (fresh !== 'fresh') return this.#refuse(peer, fresh === 'full' ? 'replay-cache-full' : 'replayed', fresh === 'full' ? `${env.type} ${env.id}: no room to remember its id until it expires` : `id ${env.id} seen before`);
    const msg: Inbound = { envelope: { ...env, payload: payload.payload }, broadcast };
    if (broadcast) this.deps.counters.broadcastIn += 1;
    else this.deps.counters.in += 1;
    this.#deliver(msg, peer);
    return null;
  }

  #refuse(peer: string, reason: EdgeRejectReason, detail: string): EdgeRejectReason {
    this.reject(peer, reason, detail);
    return reason;
  }

  /** Counts and logs a refusal: the first per peer and reason in a while at warn, the rest at debug. */
  reject(peer: string, reason: EdgeRejectReason, detail: string): void {
    this.deps.counters.reject(reason);
    const key = `${peer}|${reason}`;
    const now = this.#now();
    const last = this.#lastWarn.get(key);
    if (last === undefined || now - last > WARN_EVERY_MS) {
      if (this.#lastWarn.size > 10_000) this.#lastWarn.clear();
      this.#lastWarn.set(key, now);
      this.deps.log.warn({ peer, reason, detail }, `rejected a message from ${peer}: ${reason} (more from this peer for this reason within ${WARN_EVERY_MS / 1000} s are logged at debug)`);
    } else {
      this.deps.log.debug({ peer, reason, detail }, `rejected a message: ${reason}`);
    }
  }

  /** Fails every waiting request, e.g. when the node stops. */
  stop(): void {
    this.#sweep.clear();
    for (const [k, p] of this.#pending) {
      p.timer.clear();
      p.reject(new RequestTimeoutError('the network stopped before the answer arrived'));
      this.#pending.delete(k);
    }
  }

  #now(): number {
    return this.#clock.now();
  }

  #envelope(to: Address, type: string, payload: unknown, opts: SendOptions, exp: number): UnsignedEnvelope {
    this.#seq += 1;
    const env: UnsignedEnvelope = {
      v: ENVELOPE_VERSION,
      id: `${this.#bootId}.${this.#seq.toString(36)}`,
      from: { peer: this.peer, did: this.deps.signer.did, inbox: opts.from ?? 'net' },
      to,
      type,
      payload,
      ts: this.#now(),
      exp,
    };
    return opts.replyTo === undefined ? env : { ...env, replyTo: opts.replyTo };
  }

  /** Queues an envelope for its peer (or delivers it here); rejects, and never throws, when it cannot go. */
  #dispatchOut(env: UnsignedEnvelope): Promise<void> {
    if (env.to.peer === this.peer) {
      queueMicrotask(() => this.#deliver({ envelope: env, broadcast: false }, this.peer));
      return Promise.resolve();
    }
    try {
      return this.#batcher.add(env.to.peer, this.#encode(env), env.exp);
    } catch (e) {
      return Promise.reject(e as Error);
    }
  }

  /** The envelope's body, when it is small enough for any peer to take once sealed. */
  #encode(env: UnsignedEnvelope): Uint8Array {
    const body = encodeBody(env);
    if (body.length > MAX_BODY_BYTES) {
      this.deps.counters.tooLargeOut += 1;
      throw new EnvelopeTooLargeError(env.type, body.length);
    }
    return body;
  }

  #deliver(msg: Inbound, peer: string): void {
    const env = msg.envelope;
    const waiter = this.#pending.get(env.to.inbox);
    if (waiter) {
      if (waiter.peer !== env.from.peer) return this.reject(peer, 'misaddressed', `reply for ${env.to.inbox} from the wrong peer`);
      this.#pending.delete(env.to.inbox);
      waiter.timer.clear();
      if (env.type === 'net.error') {
        const p = env.payload as { code: string; message: string };
        waiter.reject(new RemoteError(p.code, `${env.from.peer} refused the request: ${p.code}: ${p.message}`));
      } else waiter.resolve(msg);
      return;
    }
    const inbox = this.#inboxes.get(env.to.inbox);
    if (!inbox) {
      if (!env.to.inbox.startsWith('reply/')) this.#answerError(msg, 'no-inbox', `no inbox ${env.to.inbox}`);
      return this.reject(peer, 'no-inbox', `${env.to.inbox} (${env.type})`);
    }
    if (!inbox.accepts.includes(env.type)) {
      this.#answerError(msg, 'not-accepted', `inbox ${inbox.name} does not take ${env.type}`);
      return this.reject(peer, 'not-accepted', `${env.type} to ${inbox.name}`);
    }
    try {
      inbox.handle(msg);
    } catch (e) {
      this.deps.log.warn({ inbox: inbox.name, type: env.type, err: (e as Error).message }, `inbox ${inbox.name} failed on ${env.type}`);
    }
  }

  #answerError(req: Inbound, code: string, message: string): void {
    if (!req.envelope.replyTo || req.broadcast) return;
    this.reply(req, 'net.error', { code, message }).catch(() => {});
  }
}
