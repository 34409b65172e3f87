/**
 * The router inboxes deal messages arrive at, each handing a checked message to the actor it is for:
 * `node` (bid requests, to the Node actor, which decides whether to bid), `requester` (bids, declines and the
 * provider's answers, to the job's negotiation) and `provider` (the requester's commit, allocate, revert and
 * cancel, to the deal's provider negotiation; and requests for a job's output). Payloads were checked against
 * their schemas by the router; the runtime stamps `from` (the authenticated sender) and `now`.
 */
import type { BidRequestPayload } from './deal-schemas.ts';
import type { AllocationRecordView } from '../../machines/allocation.messages.ts';
import {
  NODE_INBOX,
  PROVIDER_INBOX,
  REQUESTER_INBOX,
  allocationActorId,
  dealKey,
  providerActorId,
  requesterActorId,
} from '../../machines/deal.ids.ts';
import type { NodeEvent } from '../../machines/node.messages.ts';
import type { InboxSpec, Inbound, MessageRouter } from '../net/message-router.ts';
import type { ActorRef } from '../supervisor/supervisor.ts';
import { type DealService, MAX_ANSWERERS } from './deal-service.ts';

export const REQUESTER_ACCEPTS = ['bid.submit', 'bid.decline', 'deal.committed', 'deal.allocated', 'deal.refused', 'allocation.status'] as const;
export const PROVIDER_ACCEPTS = ['deal.commit', 'deal.allocate', 'deal.revert', 'deal.cancel', 'logs.request', 'allocation.query'] as const;


function dealIdOf(payload: Record<string, unknown>): string {
  const bid = payload.bid as { dealId?: string } | undefined;
  return String(bid?.dealId ?? payload.dealId);
}

export function dealInboxes(svc: DealService, node: ActorRef<NodeEvent>, router: MessageRouter): InboxSpec[] {
  const { log } = svc.deps;
  const nodeInbox: InboxSpec = {
    name: NODE_INBOX,
    accepts: ['bid.request'],
    handle(msg) {
      const e = msg.envelope;
      const { replyAddrs, ...p } = e.payload as BidRequestPayload;
      if (replyAddrs && msg.broadcast) svc.replyAddrs.note(e.from.peer, replyAddrs);
      svc.whenRecovered(() => node.send({ ...p, type: 'bid.request', from: e.from.peer, now: svc.now(), self: svc.deps.self } as NodeEvent, e.from.peer));
    },
  };
  const requesterInbox: InboxSpec = {
    name: REQUESTER_INBOX,
    accepts: REQUESTER_ACCEPTS,
    handle: (msg) => svc.whenRecovered(() => toRequester(svc, msg)),
  };
  const providerInbox: InboxSpec = {
    name: PROVIDER_INBOX,
    accepts: PROVIDER_ACCEPTS,
    handle(msg) {
      if (msg.envelope.type === 'logs.request') return void answerLogs(svc, router, msg).catch((e: Error) => log.warn({ err: e.message }, 'could not answer a logs.request'));
      if (msg.envelope.type === 'allocation.query') return svc.whenRecovered(() => void answerQuery(svc, msg).catch((e: Error) => log.warn({ err: e.message }, 'could not answer an allocation.query')));
      svc.whenRecovered(() => void toProvider(svc, msg).catch((e: Error) => log.warn({ type: msg.envelope.type, err: e.message }, 'a deal message could not be handled')));
    },
  };
  return [nodeInbox, requesterInbox, providerInbox];
}

/** Whether a deal message from `peer` may reach the job: a peer it asked, or any answer to an open round. */
function mayAnswer(svc: DealService, dealId: string, peer: string, type: string): boolean {
  const asked = svc.asked.get(dealId);
  if (!asked) return false;
  if (asked.peers.has(peer)) return true;
  if (!asked.open || (type !== 'bid.submit' && type !== 'bid.decline') || asked.peers.size >= MAX_ANSWERERS) return false;
  asked.peers.add(peer);
  return true;
}

function toRequester(svc: DealService, msg: Inbound): void {
  const e = msg.envelope;
  const p = e.payload as Record<string, unknown>;
  const dealId = dealIdOf(p);
  // only peers the job asked may answer it: anything else would only fill the job's log
  if (!mayAnswer(svc, dealId, e.from.peer, e.type)) {
    svc.deps.log.debug({ type: e.type, from: e.from.peer, job: dealId }, 'a deal message from a peer this node did not ask, or for no job here, was dropped');
    // a bid for a job that ended or never was: let the provider go at once instead of when its lock expires
    const bid = p.bid as { dealId: string; nonce: number } | undefined;
    if (bid) void svc.sendTo(e.from.peer, PROVIDER_INBOX, 'deal.revert', { dealId: bid.dealId, nonce: bid.nonce, reason: 'no such job on the requester (it ended), or it did not ask this peer' });
    return;
  }
  const extra = e.type === 'bid.submit' ? { rttMs: svc.deps.net()?.rtt(e.from.peer) ?? 0 } : {};
  svc.deliver(requesterActorId(dealId), { ...p, ...extra, type: e.type, from: e.from.peer, now: svc.now() }, e.from.peer);
}

async function toProvider(svc: DealService, msg: Inbound): Promise<void> {
  const e = msg.envelope;
  const { module, ...p } = e.payload as { dealId: string; nonce: number; module?: Uint8Array };
  // keyed by the sender: a peer that is not the deal's requester finds no deal
  const key = dealKey(p.dealId, p.nonce, e.from.peer);
  const id = providerActorId(key);
  const now = svc.now();
  if (!svc.refs.has(id)) {
    svc.deps.log.debug({ type: e.type, from: e.from.peer, key }, 'a deal message for no deal of this node was dropped');
    if (e.type === 'deal.commit' || e.type === 'deal.allocate') {
      void svc.sendTo(e.from.peer, REQUESTER_INBOX, 'deal.refused', { ...p, step: e.type === 'deal.commit' ? 'commit' : 'allocate', reason: 'this node holds nothing for that deal (its bid expired or was released)' });
    }
    return;
  }
  if (e.type !== 'deal.allocate') {
    svc.deliver(id, { ...p, type: e.type, from: e.from.peer, now }, e.from.peer);
    return;
  }
  // the module is checked and stored before the provider machine hears of the allocate
  const job = svc.providerJobs.get(key)?.job;
  let moduleReady = true;
  let moduleProblem: string | undefined;
  if (job?.executor === 'wasm' && e.from.peer === svc.providerJobs.get(key)?.requester) {
    try {
      if (!module) {
        if (!(await svc.modules.has(job.wasm.module.sha256))) throw new Error('the allocate carried no module');
      } else await svc.modules.put(job.wasm.module.sha256, module);
    } catch (err) {
      moduleReady = false;
      moduleProblem = `the job's module was refused: ${(err as Error).message}`;
    }
  }
  svc.deliver(id, { ...p, type: e.type, from: e.from.peer, now, moduleReady, ...(moduleProblem ? { moduleProblem } : {}) }, e.from.peer);
}

async function answerLogs(svc: DealService, router: MessageRouter, msg: Inbound): Promise<void> {
  const { allocationId, offset } = msg.envelope.payload as { allocationId: string; offset: number };
  const input = svc.providerJobs.get(allocationId);
  const rec = input ? null : await svc.deps.store.getMeta<{ requester: string }>(`allocation/${allocationId}`);
  const requester = input?.requester ?? rec?.requester;
  if (requester !== msg.envelope.from.peer || !(await svc.output.exists(allocationId))) {
    await router.reply(msg, 'net.error', { code: 'not-found', message: `no allocation ${allocationId} of yours on this node` }).catch(() => {});
    return;
  }
  const page = await svc.output.read(allocationId, offset);
  await router.reply(msg, 'logs.page', page).catch(() => {});
}

/** Tells a requester the state of its allocation here (live, or as it ended), so a restarted requester catches up. */
async function answerQuery(svc: DealService, msg: Inbound): Promise<void> {
  const e = msg.envelope;
  const { dealId, nonce, allocationId } = e.payload as { dealId: string; nonce: number; allocationId: string };
  // only the deal's requester can name this key
  if (allocationId !== dealKey(dealId, nonce, e.from.peer)) return;
  const live = await svc.refs.get(allocationActorId(allocationId));
  const rec = ((await live?.view().catch(() => undefined))?.context ?? (await svc.deps.store.getMeta(allocationActorId(allocationId)))) as AllocationRecordView | undefined;
  if (!rec) return;
  await svc.sendTo(e.from.peer, REQUESTER_INBOX, 'allocation.status', { dealId, nonce, allocationId, state: rec.state, exitCode: rec.exitCode, message: rec.message });
}
