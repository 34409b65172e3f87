/**
 * Whether the Node bids on a request: the provider's side of scenarios 1-7 of dms-behaviour.md, plus what a stranger
 * may cost it (locks charged in steps, a cap per requester, locks held only as long as the bid can be taken, no new
 * work on a full disk), as one decision over the Node's state. The Node machine only wires it in (assigns what comes
 * back, emits the intents). Pure but for one thing: the answered table is changed in place (answered.ts says why).
 */
import { type Answered, answeredKey, answeredUntil, rememberAnswered } from './answered.ts';
import type { BidRequestEvent } from './bidding.messages.ts';
import { type NumericField, type Resources, formatBytes, resourcesOf, shortfall } from './capability.ts';
import { ARRAY_DEFAULTS, DEAL_DEFAULTS } from './deal.constants.ts';
import { dealKey } from './deal.ids.ts';
import type { Bid, DeclineCode } from './deal.wire.ts';
import { LOCK_STEP, type Ledger, availableResources, chargeFor, heldBy, lock, locksHeldBy } from './ledger.ts';
import type { NodeIntent } from './node.messages.ts';
import type { Registration } from './onboarding.ts';
import { DEFAULT_MAX_LOCKS_PER_REQUESTER, type Preferences, createComparator } from './preferences.ts';
import type { ProviderInput } from './provider.messages.ts';

export { type Answered, MAX_ANSWERED, answeredKey, emptyAnswered, pruneAnswered } from './answered.ts';

/** What the decision reads of the Node. */
export interface BidState {
  /** The Node is in `registered`. A registration alone is not enough: an offboarded or stopped Node keeps its own. */
  readonly registered: boolean;
  readonly registration: Registration | null;
  readonly ledger: Ledger;
  readonly preferences: Preferences;
  /** The latest version of the Node's answered table (it is changed in place: answered.ts). */
  readonly answered: Answered;
  /** Set while the node's disk is nearly full: new work is declined with `disk-full`. */
  readonly diskFull?: { readonly free: number; readonly min: number } | null;
  /**
   * This node serves only requesters that show a capability grant for `deploy` (`--require-grants`, sent with
   * `node.configure`; the preferences' `provider.requireGrants` switches it on as well).
   */
  readonly requireGrants?: boolean;
}

export interface BidDecision {
  /** The ledger holding the bid's lock; absent when nothing was locked (a decline leaves the ledger as it was). */
  readonly ledger?: Ledger;
  readonly answered: Answered;
  /** `bid.open` or `bid.decline.send`, or a debug log, or nothing. Timer intents are the wiring's job. */
  readonly intents: readonly NodeIntent[];
}

/** Decides on one bid request: ignore it, decline it, or lock resources and open a provider negotiation. */
export function decideBid(s: BidState, e: BidRequestEvent): BidDecision {
  // The Go DMS neither bids on its own broadcast nor marks it answered (scenario 1).
  if (e.from === e.self) return { answered: s.answered, intents: [] };
  const key = answeredKey(e.dealId, e.nonce, e.from);
  const until = answeredUntil(s.answered, key);
  // A gossiped request can arrive twice (two mesh paths, a re-broadcast): answer it once (scenario 6).
  if (until !== undefined && until > e.now) return { answered: s.answered, intents: [] };
  if (e.expiresAt <= e.now) {
    const message = `bid request ${key} from ${e.from} expired before it was read; not answered`;
    return { answered: s.answered, intents: [{ type: 'log.write', level: 'debug', message, data: { dealId: e.dealId, nonce: e.nonce, from: e.from } }] };
  }
  // Kept until the request expires (at most answeredTtlMs): after that it is ignored as expired anyway.
  const answered = rememberAnswered(s.answered, key, Math.min(e.expiresAt, e.now + DEAL_DEFAULTS.answeredTtlMs), e.now);
  const r = answer(s, e);
  if (!r.ok) {
    const quiet = e.relayed === true ? { quiet: true as const } : {};
    return { answered, intents: [{ type: 'bid.decline.send', to: e.from, dealId: e.dealId, nonce: e.nonce, code: r.code, reason: r.reason, ...quiet }] };
  }
  return { ledger: r.ledger, answered, intents: [{ type: 'bid.open', input: r.input }] };
}

type Answer = { readonly ok: true; readonly ledger: Ledger; readonly input: ProviderInput } | { readonly ok: false; readonly code: DeclineCode; readonly reason: string };

function answer(s: BidState, e: BidRequestEvent): Answer {
  // what the lock takes: the job's resources in whole steps (a tiny request must not fit without end)
  const one = chargeFor(e.job.resources, resourcesOf(s.ledger.registered));
  const refused = refusal(s, e, one);
  if (refused) return refused;
  // an array job: as many instances as fit at once, locked together
  const slots = e.job.count === undefined ? undefined : slotsFor(s, e, one);
  const need = slots === undefined ? one : times(one, slots);
  const key = dealKey(e.dealId, e.nonce, e.from);
  // held only as long as the bid can be taken: the request's expiry plus the time to commit and allocate
  const expiresAt = Math.min(e.expiresAt + DEAL_DEFAULTS.bidGraceMs, e.now + DEAL_DEFAULTS.bidHoldMs);
  // a part of an ensemble gets a port from the ledger for each of its named ports
  const portCount = e.job.part?.ports.length ?? 0;
  const r = lock(s.ledger, { id: key, resources: need, expiresAt, now: e.now, holder: e.from, ...(portCount > 0 ? { ports: { dynamic: portCount } } : {}) });
  if (!r.ok) {
    // 'duplicate': the lock or an allocation of this deal still exists after its answered entry was forgotten.
    const code: DeclineCode = r.code === 'insufficient' || r.code === 'duplicate' ? r.code : r.code === 'ports-exhausted' ? 'insufficient' : 'invalid';
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
    resources: need,
    expiresAt: r.ledger.locks[key]!.expiresAt,
    ...(slots !== undefined ? { slots } : {}),
  };
  const ports = r.ledger.locks[key]!.ports;
  // the deal's later messages are taken only while the grant it was bid under holds (the runtime checks)
  const grant = requiresGrant(s) && e.grant?.ok ? { grant: { ids: e.grant.ids, expiresAt: e.grant.expiresAt } } : {};
  return { ok: true, ledger: r.ledger, input: { key, bid, requester: e.from, job: e.job, lockId: key, ...(ports.length > 0 ? { ports } : {}), ...grant } };
}

/** How many instances of an array job fit now: at least one (refusal() checked that one fits), at most what is asked. */
function slotsFor(s: BidState, e: BidRequestEvent, one: Resources): number {
  const free = availableResources(s.ledger);
  const reg = resourcesOf(s.ledger.registered);
  const share = s.preferences.provider.maxShare ?? 1;
  const held = heldBy(s.ledger, e.from);
  let n = Math.min(e.count ?? e.job.count ?? 1, e.job.count ?? 1, ARRAY_DEFAULTS.maxSlotsPerBid);
  for (const f of ['cpu', 'memory', 'disk', 'gpus'] as const) {
    if (one[f] <= 0) continue;
    const room = share < 1 && (f === 'cpu' || f === 'memory') ? Math.min(free[f], share * reg[f] - held[f]) : free[f];
    n = Math.min(n, Math.floor(room / one[f] + 1e-9));
  }
  return Math.max(1, n);
}

function times(r: Resources, n: number): Resources {
  return { ...r, cpu: Math.round(r.cpu * n * 1e6) / 1e6, memory: r.memory * n, disk: r.disk * n, gpus: r.gpus * n };
}

/** The first rule the request breaks (checked in the Go DMS's order), or null when the Node may bid. */
function refusal(s: BidState, e: BidRequestEvent, need: Resources): (Answer & { ok: false }) | null {
  const no = (code: DeclineCode, reason: string) => ({ ok: false as const, code, reason });
  const { job } = e;
  // who asks before what is asked: a requester this node does not serve learns nothing of its state
  const unauthorized = grantRefusal(s, e);
  if (unauthorized) return no('unauthorized', unauthorized);
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
  const never = shortfall(registered, need);
  if (never.length > 0) return no('too-large', describeShortage(never, registered, need, job.resources).replace(' free,', ' in all,'));
  // Checked after the declines that never change, so a requester that can never run here still learns so.
  if (s.diskFull) {
    const { free, min } = s.diskFull;
    return no('disk-full', `this node's disk is nearly full (${formatBytes(free)} free, under its minimum of ${formatBytes(min)}): it takes no new work until space returns`);
  }
  const max = s.preferences.provider.maxLocksPerRequester ?? DEFAULT_MAX_LOCKS_PER_REQUESTER;
  if (locksHeldBy(s.ledger, e.from) >= max) {
    return no('lock-limit', `this node already holds ${max} unanswered bids for this requester, the most it holds for one (provider.maxLocksPerRequester); ask again once one is taken or let go`);
  }
  const share = s.preferences.provider.maxShare ?? 1;
  if (share < 1) {
    const held = heldBy(s.ledger, e.from);
    const reg = resourcesOf(s.ledger.registered);
    const over = (['cpu', 'memory'] as const).find((f) => held[f] + need[f] > share * reg[f] + 1e-9);
    if (over) {
      const amount = (f: 'cpu' | 'memory', v: number) => (f === 'memory' ? formatBytes(v) : `${Number(v.toFixed(4))} cpu`);
      return no('lock-limit', `this requester holds ${amount(over, held[over])} of this node's ${amount(over, reg[over])} and asks for ${amount(over, need[over])} more; one requester may hold at most ${share * 100}% (provider.maxShare)`);
    }
  }
  // Checked before the preferences so a plain shortage is called 'insufficient', not a preference.
  const free = availableResources(s.ledger);
  const short = shortfall(free, need);
  if (short.length > 0) return no('insufficient', describeShortage(short, free, need, job.resources));
  const prefs = s.preferences;
  const verdict = createComparator(prefs).accepts({ requester: e.from, price: prefs.provider.minPrice, resources: need }, free, resourcesOf(s.ledger.registered));
  if (!verdict.ok) return no('preferences', verdict.reason);
  return null;
}

/** Whether this node serves only requesters with a grant: its run setting or its preferences. */
export function requiresGrant(s: Pick<BidState, 'requireGrants' | 'preferences'>): boolean {
  return s.requireGrants === true || s.preferences.provider.requireGrants === true;
}

/** Why the requester may not be served here ("unauthorized: expired (link 0 expired at ...)"), or null when it may. */
function grantRefusal(s: BidState, e: BidRequestEvent): string | null {
  if (!requiresGrant(s)) return null;
  const g = e.grant;
  if (g?.ok && g.expiresAt > e.now) return null;
  const why = !g ? 'no-grant (the request carried no capability token)' : g.ok ? `expired (the grant ended at ${new Date(g.expiresAt).toISOString()}, before the request was decided)` : `${g.reason} (${g.detail})`;
  return `unauthorized: ${why}; this node serves only requesters granted deploy by one of its anchors (cap grant on this node, cap add on the requester)`;
}

/**
 * "this node offers 1 cpu free, the job asks for 2 cpu" (every short field, in one sentence); when the lock's
 * steps charge more than the job asked, it says so.
 */
function describeShortage(fields: readonly NumericField[], free: Resources, need: Resources, asked: Resources): string {
  const amount = (f: NumericField, r: Resources) => {
    if (f === 'memory' || f === 'disk') return `${formatBytes(r[f])} ${f}`;
    return f === 'gpus' ? `${r[f]} GPUs` : `${r[f]} cpu`;
  };
  const list = (r: Resources) => fields.map((f) => amount(f, r)).join(' and ');
  const stepped = fields.some((f) => need[f] !== asked[f]);
  const steps = `cpu in steps of ${LOCK_STEP.cpu}, memory and disk in steps of ${formatBytes(LOCK_STEP.memory)}, at least ${LOCK_STEP.cpu} cpu and ${formatBytes(LOCK_STEP.memory)} memory`;
  return `this node offers ${list(free)} free, the job asks for ${list(need)}${stepped ? ` (it asked for ${list(asked)}; this node charges ${steps})` : ''}`;
}
