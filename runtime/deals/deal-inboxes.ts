/**
 * The router inboxes deal messages arrive at, each handing a checked message to the actor it is for:
 * `node` (bid requests, to the Node actor, which decides whether to bid), `requester` (bids, declines and the
 * provider's answers, to the job's negotiation) and `provider` (the requester's commit, allocate, revert and
 * cancel, to the deal's provider negotiation; and requests for a job's output). Payloads were checked against
 * their schemas by the router; the runtime stamps `from` (the authenticated sender) and `now`.
 */
import {
  NODE_INBOX,
  PROVIDER_INBOX,
  REQUESTER_INBOX,
  allocationActorId,
  dealKey,
  providerActorId,
  requesterActorId,
} from '../../machines/deal.ids.ts';
import type { DealGrant } from '../../machines/deal.events.ts';
import { requirementsMismatch } from '../../machines/job.ts';
import type { NodeEvent } from '../../machines/node.messages.ts';
import type { ProviderEvent } from '../../machines/provider.messages.ts';
import type { RequesterEvent } from '../../machines/requester.messages.ts';
import type { InboxSpec, Inbound, MessageRouter } from '../net/message-router.ts';
import type { ActorRef } from '../supervisor/supervisor.ts';
import type { AllocationQueryPayload, InboundPayloads, LogsRequestPayload } from './deal-schemas.ts';
import type { DealService } from './deal-service.ts';
import { openPartAddrs, partsOf } from './part-registry.ts';

export const NODE_ACCEPTS = ['bid.request'] as const;
/** A bid request with less time than this left when it arrives cannot be answered in time: it is dropped unlogged. */
export const MIN_ANSWER_MS = 50;
/**
 * Most events the Node actor may have waiting before bid requests from outside are dropped unlogged: at ~17k
 * decisions/s a tenth of a second of work. Local commands (the API, the ledger) are not bounded by it.
 */
export const MAX_NODE_BACKLOG = 2000;
export const REQUESTER_ACCEPTS = ['bid.submit', 'bid.decline', 'deal.committed', 'deal.allocated', 'deal.refused', 'allocation.status', 'batch.progress'] as const;
export const PROVIDER_ACCEPTS = ['deal.commit', 'deal.allocate', 'deal.revert', 'deal.cancel', 'part.start', 'batch.assign', 'batch.release', 'logs.request', 'allocation.query'] as const;

type InboundType = keyof InboundPayloads;

/** A message at a deal inbox: its type, the payload its schema parsed, the authenticated sender. */
export type InboundDeal<T extends InboundType = InboundType> = {
  [K in T]: { readonly type: K; readonly payload: InboundPayloads[K]; readonly from: string };
}[T];

type ToRequester = InboundDeal<(typeof REQUESTER_ACCEPTS)[number]>;
type ToProvider = InboundDeal<'deal.commit' | 'deal.allocate' | 'deal.revert' | 'deal.cancel'>;

/**
 * The message an inbox got, typed. The router parses each payload with the schema of its type (the deal
 * schemas, given to it with addSchemas) and hands an inbox only the types it accepts, so the parsed type is the
 * one the schema declares; this is the one place that says so.
 */
export function inboundDeal<T extends InboundType>(msg: Inbound, accepts: readonly T[]): InboundDeal<T> {
  const { type, payload, from } = msg.envelope;
  if (!(accepts as readonly string[]).includes(type)) throw new Error(`a deal inbox was handed ${type}, which it does not accept`);
  return { type, payload, from: from.peer } as InboundDeal<T>;
}

export function dealInboxes(svc: DealService, node: ActorRef<NodeEvent>, router: MessageRouter): InboxSpec[] {
  const { log } = svc.deps;
  const nodeInbox: InboxSpec = {
    name: NODE_INBOX,
    accepts: NODE_ACCEPTS,
    handle(msg) {
      const { payload, from } = inboundDeal(msg, NODE_ACCEPTS);
      // a bounded queue: past it a request is dropped before it is logged (the requester's round goes on without us)
      if (node.backlog >= MAX_NODE_BACKLOG) return router.reject(from, 'node-busy', `the Node actor has ${node.backlog} events waiting; bid request dropped`);
      // the tokens stay here: the Node gets what they prove (deal-grants.ts), not 32 KiB to log per request
      const { replyAddrs, grants, ...request } = payload;
      if (replyAddrs && msg.broadcast) svc.replyAddrs.note(from, replyAddrs);
      // what the Node would only decline again is declined here, unlogged (bid-gate.ts)
      const now = svc.now();
      // admission: a request that expires before a bid could be decided and reach its requester is not logged
      // (late under load; the Node would only note it expired, or lock for a bid the closed window ignores)
      if (from !== svc.deps.self && request.expiresAt - now < MIN_ANSWER_MS) {
        svc.gate.tooLate += 1;
        return;
      }
      // relayed through the mesh from a requester this node is not connected to: this node is none of its round's
      // candidates, so it answers with a bid or not at all (a broadcast in a big network would bring the requester
      // a decline from nearly every node)
      const relayed = msg.broadcast && from !== svc.deps.self && !(svc.deps.net()?.dmsPeers().includes(from) ?? false);
      const gated = from === svc.deps.self ? null : svc.gate.check(from, now);
      if (gated) return relayed ? undefined : void svc.sendTo(from, REQUESTER_INBOX, 'bid.decline', { dealId: request.dealId, nonce: request.nonce, ...gated });
      const grant = from === svc.deps.self ? undefined : svc.grants.check(grants, msg.envelope.from.did);
      svc.whenRecovered(() => node.send({ ...request, ...(grant ? { grant } : {}), ...(relayed ? { relayed } : {}), type: 'bid.request', from, now: svc.now(), self: svc.deps.self }, from));
    },
  };
  const requesterInbox: InboxSpec = {
    name: REQUESTER_INBOX,
    accepts: REQUESTER_ACCEPTS,
    handle(msg) {
      const m = inboundDeal(msg, REQUESTER_ACCEPTS);
      svc.whenRecovered(() => toRequester(svc, m));
    },
  };
  const providerInbox: InboxSpec = {
    name: PROVIDER_INBOX,
    accepts: PROVIDER_ACCEPTS,
    handle(msg) {
      const m = inboundDeal(msg, PROVIDER_ACCEPTS);
      if (m.type === 'logs.request') return void answerLogs(svc, router, msg, m.payload).catch((e: Error) => log.warn({ err: e.message }, 'could not answer a logs.request'));
      if (m.type === 'allocation.query') return svc.whenRecovered(() => void answerQuery(svc, m.from, m.payload).catch((e: Error) => log.warn({ err: e.message }, 'could not answer an allocation.query')));
      if (m.type === 'part.start') return svc.whenRecovered(() => void startPart(svc, m).catch((e: Error) => log.warn({ type: m.type, err: e.message }, 'a part.start could not be handled')));
      if (m.type === 'batch.assign' || m.type === 'batch.release') return svc.whenRecovered(() => toBatch(svc, m));
      svc.whenRecovered(() => void toProvider(svc, m).catch((e: Error) => log.warn({ type: m.type, err: e.message }, 'a deal message could not be handled')));
    },
  };
  return [nodeInbox, requesterInbox, providerInbox];
}

function toRequester(svc: DealService, m: ToRequester): void {
  const dealId = m.type === 'bid.submit' ? m.payload.bid.dealId : m.payload.dealId;
  // only peers the job asked may answer it: anything else would only fill the job's log
  if (!svc.requests.mayAnswer(dealId, m.from, m.type)) {
    svc.deps.log.debug({ type: m.type, from: m.from, job: dealId }, 'a deal message from a peer this node did not ask, or for no job here, was dropped');
    // a bid for a job that ended or never was: let the provider go at once instead of when its lock expires
    if (m.type === 'bid.submit') {
      const { bid } = m.payload;
      void svc.sendTo(m.from, PROVIDER_INBOX, 'deal.revert', { dealId: bid.dealId, nonce: bid.nonce, reason: 'no such job on the requester (it ended), or it did not ask this peer' });
    }
    return;
  }
  svc.deliver(requesterActorId(dealId), requesterEvent(svc, m), m.from);
}

/** The requester machine's event for a message, stamped with its sender and the time. */
function requesterEvent(svc: DealService, m: ToRequester): RequesterEvent {
  const stamp = { from: m.from, now: svc.now() };
  switch (m.type) {
    case 'bid.submit':
      return { ...m.payload, rttMs: svc.deps.net()?.rtt(m.from) ?? 0, type: m.type, ...stamp };
    case 'bid.decline':
      return { ...m.payload, type: m.type, ...stamp };
    case 'deal.committed':
      return { ...m.payload, type: m.type, ...stamp };
    case 'deal.allocated':
      return { ...m.payload, type: m.type, ...stamp };
    case 'deal.refused':
      return { ...m.payload, type: m.type, ...stamp };
    case 'allocation.status':
      return { ...m.payload, type: m.type, ...stamp };
    case 'batch.progress':
      return { ...m.payload, type: m.type, ...stamp } as unknown as RequesterEvent;
    default: {
      const never: never = m;
      throw new Error(`no requester event for ${JSON.stringify(never)}`);
    }
  }
}

async function toProvider(svc: DealService, m: ToProvider): Promise<void> {
  const { dealId, nonce } = m.payload;
  // keyed by the sender: a peer that is not the deal's requester finds no deal
  const key = dealKey(dealId, nonce, m.from);
  const id = providerActorId(key);
  const now = svc.now();
  if (!svc.registry.has(id)) {
    svc.deps.log.debug({ type: m.type, from: m.from, key }, 'a deal message for no deal of this node was dropped');
    if (m.type === 'deal.commit' || m.type === 'deal.allocate') {
      void svc.sendTo(m.from, REQUESTER_INBOX, 'deal.refused', { dealId, nonce, step: m.type === 'deal.commit' ? 'commit' : 'allocate', reason: 'this node holds nothing for that deal (its bid expired or was released)' });
    }
    return;
  }
  // taking the bid goes on only while the grant it was made under holds (a revert or cancel only lets go: it passes)
  if (m.type === 'deal.commit' || m.type === 'deal.allocate') {
    const lapsed = svc.grants.lapsed(svc.provisions.get(key)?.grant, m.type);
    if (lapsed) {
      svc.deps.log.info({ type: m.type, from: m.from, key }, `${m.type} refused (unauthorized): ${lapsed}`);
      return void svc.sendTo(m.from, REQUESTER_INBOX, 'deal.refused', { dealId, nonce, step: m.type === 'deal.commit' ? 'commit' : 'allocate', reason: `unauthorized: ${lapsed}` });
    }
  }
  // delivered at once, in arrival order; an allocate once its module is stored
  if (m.type === 'deal.allocate') return deliverAllocate(svc, id, key, m, now);
  svc.deliver(id, providerEvent(m, now), m.from);
}

/** More instances for an array job's allocation, or the word that no more will come; only its requester can name it. */
function toBatch(svc: DealService, m: InboundDeal<'batch.assign' | 'batch.release'>): void {
  const key = dealKey(m.payload.dealId, m.payload.nonce, m.from);
  const id = allocationActorId(key);
  const now = svc.now();
  // more work only while the deal's grant holds; a release only lets go
  const lapsed = m.type === 'batch.assign' ? svc.grants.lapsed(svc.provisions.get(key)?.grant, m.type) : null;
  if (lapsed) return void svc.deps.log.debug({ type: m.type, from: m.from, key }, `${m.type} refused (unauthorized): ${lapsed}`);
  const event = m.type === 'batch.assign' ? { type: m.type, indexes: m.payload.indexes, from: m.from, now } : { type: m.type, from: m.from, now };
  if (!svc.registry.deliver(id, event as never, m.from)) svc.deps.log.debug({ type: m.type, from: m.from, key }, 'a batch message for no allocation of this node was dropped');
}

/** The provider machine's event for a message other than the allocate, stamped with its sender and the time. */
function providerEvent(m: Exclude<ToProvider, { type: 'deal.allocate' }>, now: number): ProviderEvent {
  const stamp = { from: m.from, now };
  switch (m.type) {
    case 'deal.commit':
      return { ...m.payload, type: m.type, ...stamp };
    case 'deal.revert':
      return { ...m.payload, type: m.type, ...stamp };
    case 'deal.cancel':
      return { ...m.payload, type: m.type, ...stamp };
    default: {
      const never: never = m;
      throw new Error(`no provider event for ${JSON.stringify(never)}`);
    }
  }
}

/** The module is checked and stored before the provider machine hears of the allocate. */
async function deliverAllocate(svc: DealService, id: string, key: string, m: InboundDeal<'deal.allocate'>, now: number): Promise<void> {
  const { module, ...p } = m.payload;
  const deal = svc.provisions.get(key);
  const job = deal?.job;
  let moduleReady = true;
  let moduleProblem: string | undefined;
  if (job?.executor === 'wasm' && m.from === deal?.requester) {
    try {
      if (!module) {
        if (!(await svc.modules.has(job.wasm.module.sha256))) throw new Error('the allocate carried no module');
      } else await svc.modules.put(job.wasm.module.sha256, module);
    } catch (err) {
      moduleReady = false;
      moduleProblem = `the job's module was refused: ${(err as Error).message}`;
    }
  }
  // the whole job (args and env) may come only now: it must be the job bid on
  const { job: whole, ...rest } = p;
  const mismatch = whole && job ? requirementsMismatch(job, whole) : null;
  if (mismatch) {
    moduleReady = false;
    moduleProblem = mismatch;
  }
  const withJob = whole && !mismatch ? { job: whole } : {};
  // a part's ensemble members: the peers that may open tunnels to it once it runs
  const role = (whole ?? job)?.part;
  if (role && p.members && m.from === deal?.requester) partsOf(svc).noteMembers(key, role, m.from, p.members);
  svc.deliver(id, { ...rest, ...withJob, type: m.type, from: m.from, now, moduleReady, ...(moduleProblem ? { moduleProblem } : {}) }, m.from);
}

/**
 * The requester starts a part held for its dependencies: the members are noted, a tunnel listener is opened for
 * each dependency's port (or its own port used, when it runs here), and the allocation gets the addresses.
 */
async function startPart(svc: DealService, m: InboundDeal<'part.start'>): Promise<void> {
  const { dealId, nonce, addrs, members } = m.payload;
  // keyed by the sender: only the deal's requester can name its allocation
  const key = dealKey(dealId, nonce, m.from);
  const id = allocationActorId(key);
  const parts = partsOf(svc);
  const role = svc.provisions.get(key)?.job.part;
  const ensemble = role?.ensemble ?? parts.get(key)?.ensemble;
  if (!svc.registry.has(id) || ensemble === undefined) {
    svc.deps.log.debug({ type: m.type, from: m.from, key }, 'a part.start for no part of this node was dropped');
    return;
  }
  const lapsed = svc.grants.lapsed(svc.provisions.get(key)?.grant, m.type);
  if (lapsed) return void svc.deps.log.info({ type: m.type, from: m.from, key }, `part.start refused (unauthorized): ${lapsed}`);
  if (role) parts.noteMembers(key, role, m.from, members);
  // sent again after a dependency moved: the listeners the part has keep their addresses, pointed at the new place
  const have = parts.get(key)?.listeners ?? [];
  // a listener only for a port of a part this one depends on, once each: the message cannot make more
  const deps = new Set(role?.dependsOn ?? []);
  const seen = new Set<string>();
  const wanted = addrs.filter((a) => deps.has(a.part) && !seen.has(`${a.part}/${a.port}`) && Boolean(seen.add(`${a.part}/${a.port}`)));
  const { addrsEnv, listeners } = await openPartAddrs({ parts, self: svc.deps.self, host: svc.deps.net()?.libp2p, log: svc.deps.log }, ensemble, m.from, wanted, have);
  await parts.keepListeners(key, listeners);
  // the allocation may have ended while the listeners opened: then they close at once
  if (!svc.registry.has(id)) return parts.end(key);
  svc.deliver(id, { type: 'part.start', addrsEnv, now: svc.now() }, m.from);
}

async function answerLogs(svc: DealService, router: MessageRouter, msg: Inbound, { allocationId, offset }: LogsRequestPayload): Promise<void> {
  // an array instance's output is `<allocationId>:<index>`: its allocation says whose it is
  const base = /:\d+$/.test(allocationId) ? allocationId.slice(0, allocationId.lastIndexOf(':')) : allocationId;
  const input = svc.provisions.get(base);
  const rec = input ? null : await svc.deps.store.getMeta<{ requester: string; grant?: DealGrant }>(`allocation/${base}`);
  const requester = input?.requester ?? rec?.requester;
  const instance = base === allocationId ? null : Number(allocationId.slice(base.length + 1));
  if (requester !== msg.envelope.from.peer || (instance === null && !(await svc.output.exists(allocationId)))) {
    await router.reply(msg, 'net.error', { code: 'not-found', message: `no allocation ${allocationId} of yours on this node` }).catch(() => {});
    return;
  }
  const lapsed = svc.grants.lapsed((input ?? rec)?.grant, 'logs.request');
  if (lapsed) return void (await router.reply(msg, 'net.error', { code: 'unauthorized', message: lapsed }).catch(() => {}));
  // an instance's output is in its allocation's instances file (offset: its chunks so far)
  const page = instance === null ? await svc.output.read(allocationId, offset) : await svc.instanceOutput.read(base, instance, offset);
  await router.reply(msg, 'logs.page', page).catch(() => {});
}

/** Tells a requester the state of its allocation here (live, or as it ended), so a restarted requester catches up. */
async function answerQuery(svc: DealService, from: string, { dealId, nonce, allocationId }: AllocationQueryPayload): Promise<void> {
  // only the deal's requester can name this key
  if (allocationId !== dealKey(dealId, nonce, from)) return;
  const rec = await svc.queries.allocation(allocationId);
  if (!rec) return;
  const lapsed = svc.grants.lapsed(svc.provisions.get(allocationId)?.grant ?? rec.grant, 'allocation.query');
  if (lapsed) return void svc.deps.log.debug({ from, allocationId }, `allocation.query refused (unauthorized): ${lapsed}`);
  await svc.sendTo(from, REQUESTER_INBOX, 'allocation.status', { dealId, nonce, allocationId, state: rec.state, exitCode: rec.exitCode, message: rec.message });
}
