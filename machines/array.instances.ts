/**
 * Handing out an array job's instances (array.rules.ts): the queue (indexes never handed out, then those handed
 * back), which deal holds which, feeding the deals under way and releasing those with nothing left, and the
 * per-index states, changed in batches.
 */
import { type ArrayContext, type ArrayDeal, type ArrayDealView, type ArrayDraft, dealKeyOf, liveDeals, queuedCount, total } from './array.context.ts';
import { ARRAY_DEFAULTS } from './deal.constants.ts';

/** Changes of instance states of one step, applied to the record at once (the states are one string). */
export class StateEdits {
  readonly #edits = new Map<number, string>();
  set(i: number, s: 'q' | 'r' | 'c' | 'f'): void {
    this.#edits.set(i, s);
  }
  get(c: ArrayContext, i: number): string {
    return this.#edits.get(i) ?? c.record.instanceStates[i]!;
  }
  apply(d: ArrayDraft): void {
    if (this.#edits.size === 0) return;
    const { instanceStates, instances } = d.ctx.record;
    const chars = instanceStates.split('');
    const n = { q: instances.queued, r: instances.running, c: instances.completed, f: instances.failed };
    for (const [i, s] of this.#edits) {
      n[chars[i] as keyof typeof n] -= 1;
      n[s as keyof typeof n] += 1;
      chars[i] = s;
    }
    this.#edits.clear();
    d.record({ instanceStates: chars.join(''), instances: { total: chars.length, queued: n.q, running: n.r, completed: n.c, failed: n.f } });
  }
}

/** Takes up to `n` queued indexes for `provider`, those that did not fail there first. */
export function takeQueued(d: ArrayDraft, edits: StateEdits, provider: string, n: number, dealN: number): number[] {
  if (n <= 0) return [];
  const out: number[] = [];
  const requeued = [...d.ctx.requeued];
  // handed-back indexes first, skipping ones that failed on this provider while another provider runs deals
  const others = liveDeals(d.ctx).some((x) => x.provider !== provider);
  for (let i = 0; i < requeued.length && out.length < n; ) {
    const idx = requeued[i]!;
    if (edits.get(d.ctx, idx) !== 'q') {
      requeued.splice(i, 1); // completed meanwhile by a provider it was taken from
      continue;
    }
    if (others && d.ctx.avoid[idx] === provider) {
      i++;
      continue;
    }
    out.push(idx);
    requeued.splice(i, 1);
  }
  let cursor = d.ctx.cursor;
  while (out.length < n && cursor < total(d.ctx)) out.push(cursor++);
  d.set({ requeued, cursor });
  for (const i of out) edits.set(i, 'r');
  if (out.length > 0) {
    const handedTo = d.ctx.handedTo ? [...d.ctx.handedTo] : new Array<number>(total(d.ctx)).fill(-1);
    for (const i of out) handedTo[i] = dealN;
    d.set({ handedTo });
  }
  return out;
}

export function giveBack(d: ArrayDraft, edits: StateEdits, indexes: readonly number[]): void {
  const back = indexes.filter((i) => edits.get(d.ctx, i) === 'r');
  for (const i of back) edits.set(i, 'q');
  if (back.length > 0) d.set({ requeued: [...back, ...d.ctx.requeued] });
}

export function putDeal(d: ArrayDraft, deal: ArrayDeal): void {
  d.set({ deals: { ...d.ctx.deals, [dealKeyOf(deal.provider, deal.nonce)]: deal } });
}

export function viewPatch(d: ArrayDraft, n: number, patch: Partial<ArrayDealView>): void {
  const deals = d.ctx.record.deals.map((v, i) => (i === n ? { ...v, ...patch } : v));
  d.record({ deals });
}

/** A deal is over (released, lost, refused, cancelled): what it still held goes back to the queue. */
export function dropDeal(d: ArrayDraft, edits: StateEdits, deal: ArrayDeal, state: ArrayDealView['state'], message: string): void {
  const { [dealKeyOf(deal.provider, deal.nonce)]: _gone, ...rest } = d.ctx.deals;
  d.set({ deals: rest });
  giveBack(d, edits, deal.inflight);
  viewPatch(d, deal.n, { state, message });
}

/** Hands queued instances to a running (or allocating) deal until it holds its slots and a few more. */
export function feed(d: ArrayDraft, edits: StateEdits, deal: ArrayDeal): ArrayDeal {
  const want = deal.slots * (1 + ARRAY_DEFAULTS.prefetchPerSlot) - deal.inflight.length;
  const more = takeQueued(d, edits, deal.provider, want, deal.n);
  if (more.length === 0) return deal;
  const fed = { ...deal, inflight: [...deal.inflight, ...more] };
  putDeal(d, fed);
  d.emit({ type: 'batch.assign.send', to: deal.provider, dealId: d.ctx.input.dealId, nonce: deal.nonce, indexes: more });
  return fed;
}

/** Every deal under way gets queued instances up to its slots and a few more (instances handed back go on at once). */
export function feedAll(d: ArrayDraft, edits: StateEdits): void {
  for (const key of Object.keys(d.ctx.deals)) {
    const deal = d.ctx.deals[key];
    if (deal && deal.phase !== 'committing') feed(d, edits, deal);
  }
}

/** A deal with nothing to run and nothing left to give it is released: its provider frees the resources. */
export function releaseIfIdle(d: ArrayDraft, edits: StateEdits, deal: ArrayDeal): void {
  if (deal.phase !== 'running' || deal.inflight.length > 0 || queuedCount(d.ctx) > 0) return;
  d.emit({ type: 'batch.release.send', to: deal.provider, dealId: d.ctx.input.dealId, nonce: deal.nonce });
  dropDeal(d, edits, deal, 'released', 'released: nothing left to run');
}

/** Whether `index` was last handed to the deal `n` (its report of it may count). */
export function handedHere(c: ArrayContext, index: number, n: number): boolean {
  return Number.isInteger(index) && index >= 0 && index < total(c) && (c.handedTo?.[index] ?? -1) === n;
}

