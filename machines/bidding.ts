/**
 * Whether the Node bids on a request: the provider's side of scenarios 1-7 of dms-behaviour.md, as one pure
 * decision over the Node's state. The Node machine only wires it in (assigns what comes back, emits the intents).
 */
import type { BidRequestEvent } from './bidding.messages.ts';
import { type NumericField, type Resources, formatBytes, resourcesOf, shortfall } from './capability.ts';
import { DEAL_DEFAULTS } from './deal.constants.ts';
import { dealKey } from './deal.ids.ts';
import type { Bid, DeclineCode } from './deal.wire.ts';
import { type Ledger, availableResources, lock } from './ledger.ts';
import type { NodeIntent } from './node.messages.ts';
import type { Registration } from './onboarding.ts';
import { type Preferences, createComparator } from './preferences.ts';
import type { ProviderInput } from './provider.messages.ts';

/** Requests answered, `${requester}/${dealId}:${nonce}` -> when to forget it (ms since the epoch). */
export type Answered = Readonly<Record<string, number>>;

/** At most this many answered requests are remembered; past it, the ones due to be forgotten soonest go first. */
export const MAX_ANSWERED = 10_000;

/** What the decision reads of the Node. */
export interface BidState {
  /** The Node is in `registered`. A registration alone is not enough: an offboarded or stopped Node keeps its own. */
  readonly registered: boolean;
  readonly registration: Registration | null;
  readonly ledger: Ledger;
  readonly preferences: Preferences;
  readonly answered: Answered;
}

export interface BidDecision {
  /** The ledger holding the bid's lock; absent when nothing was locked (a decline leaves the ledger as it was). */
  readonly ledger?: Ledger;
  readonly answered: Answered;
  /** `bid.open` or `bid.decline.send`, or a debug log, or nothing. Timer intents are the wiring's job. */
  readonly intents: readonly NodeIntent[];
}

/** Per requester: another peer reusing a deal's id and nonce must not make the Node ignore the real one. */
export function answeredKey(dealId: string, nonce: number, requester: string): string {
  return `${requester}/${dealId}:${nonce}`;
}

/** The answered map without entries forgotten by `now`; the same object when none were. */
export function pruneAnswered(answered: Answered, now: number): Answered {
  const kept = Object.entries(answered).filter(([, until]) => until > now);
  return kept.length === Object.keys(answered).length ? answered : Object.fromEntries(kept);
}

function remember(answered: Answered, key: string, until: number, now: number): Answered {
  const kept = Object.entries(answered).filter(([k, t]) => t > now && k !== key);
  kept.push([key, until]);
  // Bounded so a flood of distinct requests cannot grow the Node's snapshot without end.
  if (kept.length > MAX_ANSWERED) kept.sort((a, b) => b[1] - a[1]).length = MAX_ANSWERED;
  return Object.fromEntries(kept);
}

/** Decides on one bid request: ignore it, decline it, or lock resources and open a provider negotiation. */
export function decideBid(s: BidState, e: BidRequestEvent): BidDecision {
  // The Go DMS neither bids on its own broadcast nor marks it answered (scenario 1).
  if (e.from === e.self) return { answered: s.answered, intents: [] };
  const key = answeredKey(e.dealId, e.nonce, e.from);
  const until = s.answered[key];
  // A gossiped request can arrive twice (two mesh paths, a re-broadcast): answer it once (scenario 6).
  if (until !== undefined && until > e.now) return { answered: s.answered, intents: [] };
  if (e.expiresAt <= e.now) {
    const message = `bid request ${key} from ${e.from} expired before it was read; not answered`;
    return { answered: s.answered, intents: [{ type: 'log.write', level: 'debug', message, data: { dealId: e.dealId, nonce: e.nonce, from: e.from } }] };
  }
  // Kept until the request expires (at most answeredTtlMs): after that rule 3 ignores it anyway, and a short list
  // keeps this step cheap (the map is copied on every request; at 10k entries that cost ~15 ms a request).
  const answered = remember(s.answered, key, Math.min(e.expiresAt, e.now + DEAL_DEFAULTS.answeredTtlMs), e.now);
  const r = answer(s, e);
  if (!r.ok) {
    return { answered, intents: [{ type: 'bid.decline.send', to: e.from, dealId: e.dealId, nonce: e.nonce, code: r.code, reason: r.reason }] };
  }
  return { ledger: r.ledger, answered, intents: [{ type: 'bid.open', input: r.input }] };
}

type Answer = { readonly ok: true; readonly ledger: Ledger; readonly input: ProviderInput } | { readonly ok: false; readonly code: DeclineCode; readonly reason: string };

function answer(s: BidState, e: BidRequestEvent): Answer {
  const refused = refusal(s, e);
  if (refused) return refused;
  const key = dealKey(e.dealId, e.nonce, e.from);
  const r = lock(s.ledger, { id: key, resources: e.job.resources, expiresAt: e.now + DEAL_DEFAULTS.bidHoldMs, now: e.now, holder: e.from });
  if (!r.ok) {
    // 'duplicate': the lock or an allocation of this deal still exists after its answered entry was forgotten.
    const code: DeclineCode = r.code === 'insufficient' || r.code === 'duplicate' ? r.code : 'invalid';
    return { ok: false, code, reason: r.message };
  }
  const registration = s.registration!;
  const score = registration.benchmark.cpuOpsPerSecPerCore;
  const bid: Bid = {
    dealId: e.dealId,
    nonce: e.nonce,
    provider: e.self,
    price: s.preferences.provider.minPrice,
    score: Number.isFinite(score) ? score : 0,
    resources: e.job.resources,
    expiresAt: r.ledger.locks[key]!.expiresAt,
  };
  return { ok: true, ledger: r.ledger, input: { key, bid, requester: e.from, job: e.job, lockId: key } };
}

/** The first rule the request breaks (checked in the Go DMS's order), or null when the Node may bid. */
function refusal(s: BidState, e: BidRequestEvent): (Answer & { ok: false }) | null {
  const no = (code: DeclineCode, reason: string) => ({ ok: false as const, code, reason });
  const { job } = e;
  if (!s.registered || !s.registration) return no('not-onboarded', 'this node is not onboarded, so it offers no resources now');
  if (job.constraints.excludePeers.includes(e.self)) return no('excluded', "the job's excludePeers names this node");
  if (job.constraints.peers.length > 0 && !job.constraints.peers.includes(e.self)) return no('not-chosen', "the job's peers list does not name this node");
  const executors = s.registration.capability.executors;
  if (!executors.includes(job.executor)) {
    // Process jobs run unsandboxed: this node treats them as privileged execution, which its owner must allow.
    if (job.executor === 'process') return no('privileged', 'process jobs run unsandboxed and this node does not allow them (its owner can, with --executors wasm,process)');
    return no('executor', `executor "${job.executor}" is not offered here; this node offers ${executors.join(', ') || 'none'}`);
  }
  // More than the node has at all: asking again will not help, and the requester can give up at once.
  const registered = resourcesOf(s.ledger.registered);
  const never = shortfall(registered, job.resources);
  if (never.length > 0) return no('too-large', describeShortage(never, registered, job.resources).replace(' free,', ' in all,'));
  // Checked before the preferences so a plain shortage is called 'insufficient', not a preference.
  const free = availableResources(s.ledger);
  const short = shortfall(free, job.resources);
  if (short.length > 0) return no('insufficient', describeShortage(short, free, job.resources));
  const prefs = s.preferences;
  const verdict = createComparator(prefs).accepts({ requester: e.from, price: prefs.provider.minPrice, resources: job.resources }, free, resourcesOf(s.ledger.registered));
  if (!verdict.ok) return no('preferences', verdict.reason);
  return null;
}

/** "this node offers 1 cpu free, the job asks for 2 cpu" (every short field, in one sentence). */
function describeShortage(fields: readonly NumericField[], free: Resources, need: Resources): string {
  const amount = (f: NumericField, r: Resources) => {
    if (f === 'memory' || f === 'disk') return `${formatBytes(r[f])} ${f}`;
    return f === 'gpus' ? `${r[f]} GPUs` : `${r[f]} cpu`;
  };
  const list = (r: Resources) => fields.map((f) => amount(f, r)).join(' and ');
  return `this node offers ${list(free)} free, the job asks for ${list(need)}`;
}
