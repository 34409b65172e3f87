/**
 * A node's preferences, and the comparator built from them (the seed's CapabilityComparator).
 * As a provider: which requests it is willing to serve. As a requester: how it ranks the bids it receives.
 */
import { type Comparison, type Resources, compareCapability, subtractResources } from './capability.ts';

export interface ProviderPreferences {
  /** Lowest price per job this node bids for. */
  readonly minPrice: number;
  /** Requesters (peer ids or DIDs) served; empty means everyone not refused. */
  readonly acceptRequesters: readonly string[];
  readonly refuseRequesters: readonly string[];
  /** Share of the registered capability kept free, 0..0.9. */
  readonly keepFree: number;
  /**
   * Most unanswered locks (bid, not yet allocated) one requester may hold here; past it, its requests are declined
   * with `lock-limit` until one is answered. Absent: DEFAULT_MAX_LOCKS_PER_REQUESTER.
   */
  readonly maxLocksPerRequester?: number;
  /**
   * Most of this node's registered cpu and memory one requester may hold at once (locked and allocated), 0..1; past
   * it its requests are declined with `lock-limit` until some of it is let go. Absent: 1 (no cap): one requester
   * using the whole machine is the common case; an operator who serves strangers sets less.
   */
  readonly maxShare?: number;
  /**
   * Serve only requesters whose capability tokens grant `deploy` from one of this node's anchors (as `--require-grants`
   * does; either one switches it on); anything else is declined with `unauthorized`. Absent: false.
   */
  readonly requireGrants?: boolean;
}

export const DEFAULT_MAX_LOCKS_PER_REQUESTER = 8;

export interface RankingWeights {
  /** Weight of a lower price. */
  readonly price: number;
  /** Weight of a higher benchmark score. */
  readonly score: number;
  /** Weight of a lower round-trip time. */
  readonly rtt: number;
}

export interface Preferences {
  readonly provider: ProviderPreferences;
  readonly requester: { readonly weights: RankingWeights };
}

export const DEFAULT_PREFERENCES: Preferences = Object.freeze({
  provider: { minPrice: 0, acceptRequesters: [], refuseRequesters: [], keepFree: 0, maxLocksPerRequester: DEFAULT_MAX_LOCKS_PER_REQUESTER },
  requester: { weights: { price: 1, score: 1, rtt: 0.5 } },
});

/** A bid (or any offer) as the requester's comparator sees it. */
export interface Candidate {
  readonly id: string;
  readonly price: number;
  /** Benchmark score of the provider (higher is faster). */
  readonly score: number;
  readonly rttMs: number;
}

export interface Ranked<C extends Candidate> {
  readonly candidate: C;
  readonly rank: number;
  /** Utility in 0..(sum of weights); higher is preferred. */
  readonly utility: number;
}

export interface CapabilityComparator {
  /** Better when `a` is preferred to `b`; Worse when `b` is; Equal on a tie. */
  compare(a: Candidate, b: Candidate, among?: readonly Candidate[]): Comparison;
  /** Orders candidates best first, with a numeric utility each (ties keep input order). */
  rank<C extends Candidate>(candidates: readonly C[]): Ranked<C>[];
  /** Whether this node, as a provider, would serve `requester` at `price` with `free` resources. */
  accepts(req: { requester: string; price: number; resources: Resources }, free: Resources, registered: Resources): { ok: true } | { ok: false; reason: string };
}

function normaliser(values: readonly number[]): (v: number) => number {
  const lo = Math.min(...values);
  const hi = Math.max(...values);
  return (v) => (hi === lo ? 1 : (v - lo) / (hi - lo));
}

function utilities(candidates: readonly Candidate[], w: RankingWeights): number[] {
  if (candidates.length === 0) return [];
  const price = normaliser(candidates.map((c) => c.price));
  const score = normaliser(candidates.map((c) => c.score));
  const rtt = normaliser(candidates.map((c) => c.rttMs));
  return candidates.map((c) => w.price * (1 - price(c.price)) + w.score * score(c.score) + w.rtt * (1 - rtt(c.rttMs)));
}

export function createComparator(prefs: Preferences): CapabilityComparator {
  const w = prefs.requester.weights;
  const p = prefs.provider;
  return {
    compare(a, b, among = [a, b]) {
      const u = utilities([a, b, ...among], w);
      const [ua = 0, ub = 0] = u;
      if (Math.abs(ua - ub) < 1e-12) return 'Equal';
      return ua > ub ? 'Better' : 'Worse';
    },
    rank(candidates) {
      const u = utilities(candidates, w);
      return candidates
        .map((candidate, i) => ({ candidate, utility: u[i] ?? 0, i }))
        .sort((x, y) => y.utility - x.utility || x.i - y.i)
        .map(({ candidate, utility }, rank) => ({ candidate, utility, rank: rank + 1 }));
    },
    accepts(req, free, registered) {
      if (p.refuseRequesters.includes(req.requester)) return { ok: false, reason: `requester ${req.requester} is refused by preference` };
      if (p.acceptRequesters.length > 0 && !p.acceptRequesters.includes(req.requester)) {
        return { ok: false, reason: `requester ${req.requester} is not in the accepted list` };
      }
      if (req.price < p.minPrice) return { ok: false, reason: `price ${req.price} is below the minimum ${p.minPrice}` };
      const reserve = { cpu: registered.cpu * p.keepFree, memory: Math.floor(registered.memory * p.keepFree), disk: Math.floor(registered.disk * p.keepFree), gpus: 0 };
      const offerable = subtractResources(free, reserve);
      const cmp = compareCapability(offerable, req.resources);
      if (cmp.overall === 'Worse') {
        const short = Object.entries(cmp.fields).filter(([, v]) => v === 'Worse').map(([k]) => k);
        return { ok: false, reason: `not enough free ${short.join(', ')} after keeping ${p.keepFree * 100}% free` };
      }
      return { ok: true };
    },
  };
}
