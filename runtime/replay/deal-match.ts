/**
 * Which actors and events belong to a deal, and which received message was which node's send (a hop).
 *
 * A deal is named by its job id J. Its actors, on every node, carry it in their ids (machines/deal.ids.ts):
 * `job/J` and `ensemble/J` on the requester (an ensemble's parts are `job/J@part`), and, keyed by the deal key
 * `J.<nonce>@<requester>`, `provider/<key>` and `allocation/<key>` on each provider. A provider's Node actor takes
 * part too (`bid.request` for J, `ledger.allocate`/`ledger.release` of a key of J): those of its events whose
 * payload names J are the deal's.
 *
 * The log keeps no envelope id: a received message is logged as its payload plus `from` (the sender's peer id, also
 * the event's origin) and `now`. What the sender logged is the event whose processing emitted the send, as an
 * intent (replay gives the intents back). So a hop is matched by the message's type and content: a received event
 * of type T from peer P, with deal id, nonce (and, for a status, its state and message), is the send of the same
 * type and content by P's actors to this node (or broadcast), the latest one not yet matched at or before it, else
 * the earliest one left (the nodes' clocks may disagree). A send repeated by the runtime alone (a status heartbeat)
 * has no intent of its own and stays unmatched: no hop rather than a wrong one.
 */
import { parseDealKey } from '../../machines/deal.ids.ts';

/** The deal id an actor id belongs to, when it is a deal actor's. */
export function dealIdOfActor(actorId: string): string | undefined {
  const slash = actorId.indexOf('/');
  if (slash < 0) return undefined;
  const [kind, rest] = [actorId.slice(0, slash), actorId.slice(slash + 1)];
  if (kind === 'job' || kind === 'ensemble') return rest;
  if (kind === 'provider' || kind === 'allocation') return parseDealKey(rest)?.dealId;
  return undefined;
}

/** Whether deal id `d` is the deal `job`'s or one of its parts' (`job@part`). */
export function inDeal(d: string | undefined, job: string): boolean {
  return d !== undefined && (d === job || d.startsWith(`${job}@`));
}

/** The job id a user typed: `J`, or an actor id of the deal (`job/J`, `ensemble/J`). */
export function jobIdOf(input: string): string {
  return dealIdOfActor(input) ?? input;
}

type Payload = Record<string, unknown> | null | undefined;
const str = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);
const obj = (v: unknown): Payload => (typeof v === 'object' && v !== null ? (v as Record<string, unknown>) : undefined);

/** The deal ids an event payload names: its deal id, its bid's, or the deal of a lock or allocation key in it. */
export function dealIdsOf(payload: unknown): string[] {
  const p = obj(payload);
  if (!p) return [];
  const out = [str(p.dealId), str(obj(p.bid)?.dealId), str(obj(p.input)?.dealId)];
  for (const k of ['allocationId', 'lockId', 'key']) {
    const key = str(p[k]);
    if (key) out.push(parseDealKey(key)?.dealId);
  }
  return out.filter((d): d is string => d !== undefined);
}

/** Whether an event of a Node actor is the deal's. */
export function nodeEventInDeal(payload: unknown, job: string): boolean {
  return dealIdsOf(payload).some((d) => inDeal(d, job));
}

/**
 * The content a message is matched by: type, deal id, nonce, and a status's state and message. A message that
 * reaches an actor keyed by its deal (`part.start` to an allocation) may be logged without its deal id and nonce:
 * then they are the receiving actor's (`actor`).
 */
export function messageKey(type: string, payload: unknown, actor?: string): string {
  const p = obj(payload) ?? {};
  const bid = obj(p.bid);
  const keyed = actor === undefined ? undefined : parseDealKey(actor.slice(actor.indexOf('/') + 1));
  const dealId = str(p.dealId) ?? str(bid?.dealId) ?? keyed?.dealId ?? '';
  const nonce = p.nonce ?? bid?.nonce ?? keyed?.nonce ?? '';
  return [type, dealId, String(nonce), str(p.allocationId) ?? '', str(p.state) ?? '', str(p.message) ?? ''].join('|');
}

/** A message an event's processing sent: its wire type, addressee (null: a broadcast) and content key. */
export interface WireSend {
  readonly type: string;
  readonly to: string | null;
  readonly key: string;
}

/** The messages a list of intents sends to other nodes (the runtime's mapping of intents to envelopes). */
export function wireSendsOf(intents: readonly unknown[]): WireSend[] {
  const out: WireSend[] = [];
  for (const raw of intents) {
    const i = obj(raw);
    const type = str(i?.type);
    if (!i || !type) continue;
    if (type === 'status.push') out.push({ type: 'allocation.status', to: str(i.to) ?? null, key: messageKey('allocation.status', i.status) });
    else if (type === 'bid.open') {
      const input = obj(i.input);
      out.push({ type: 'bid.submit', to: str(input?.requester) ?? null, key: messageKey('bid.submit', { bid: input?.bid }) });
    } else if (type.endsWith('.send') && type !== 'reply.send') {
      const wire = type.slice(0, -'.send'.length);
      out.push({ type: wire, to: str(i.to) ?? null, key: messageKey(wire, i) });
    }
  }
  return out;
}

/** Where an event is: the node (peer id), actor and seq. */
export interface EntryRef {
  readonly node: string;
  readonly actor: string;
  readonly seq: number;
}

/** An event of the deal, as the matcher needs it. */
export interface MatchEntry extends EntryRef {
  readonly at: number;
  readonly type: string;
  /** Who sent it: a peer id for a message from another node. */
  readonly origin: string;
  readonly payload: unknown;
  /** What its processing sent (empty when its actor was not replayed). */
  readonly sends: readonly WireSend[];
}

export interface Hop {
  readonly from: EntryRef;
  readonly latencyMs: number;
}

interface Sent {
  readonly entry: MatchEntry;
  readonly send: WireSend;
  /** Receivers it has been matched to. */
  readonly taken: Set<string>;
}

/**
 * Pairs every received message among `entries` with its send. Returns, for each entry index that is a received
 * message from one of `nodes` (peer ids), its hop, or null when no send of the logs given matches it.
 */
export function matchHops(entries: readonly MatchEntry[], nodes: ReadonlySet<string>): Map<number, Hop | null> {
  const sends = new Map<string, Sent[]>();
  for (const entry of [...entries].sort((a, b) => a.at - b.at)) {
    for (const send of entry.sends) {
      const k = `${entry.node}\n${send.key}`;
      const list = sends.get(k) ?? [];
      list.push({ entry, send, taken: new Set() });
      sends.set(k, list);
    }
  }
  const hops = new Map<number, Hop | null>();
  const order = entries.map((_, i) => i).sort((a, b) => entries[a]!.at - entries[b]!.at);
  for (const i of order) {
    const e = entries[i]!;
    if (e.origin === e.node || !nodes.has(e.origin)) continue;
    const free = (sends.get(`${e.origin}\n${messageKey(e.type, e.payload, e.actor)}`) ?? []).filter((s) => (s.send.to === null || s.send.to === e.node) && !s.taken.has(e.node));
    const before = free.filter((s) => s.entry.at <= e.at);
    const pick = before.at(-1) ?? free[0];
    if (!pick) {
      hops.set(i, null);
      continue;
    }
    pick.taken.add(e.node);
    hops.set(i, { from: { node: pick.entry.node, actor: pick.entry.actor, seq: pick.entry.seq }, latencyMs: e.at - pick.entry.at });
  }
  return hops;
}
