/**
 * The steps of the ensemble machine (ensemble.machine.ts), as pure functions over a draft of its context: spawn the
 * parts' negotiations, take a part's update (allocate once all are placed, start a held part once its dependencies
 * run and are healthy, count restarts and moves, note a failure), stop every part, and end.
 */
import type { PartAddress, PartMember } from './deal.wire.ts';
import type { EnsembleContext, EnsembleDraft, PartTrack } from './ensemble.context.ts';
import { ensembleTimers, freshTrack } from './ensemble.context.ts';
import { partsToRestart } from './ensemble.order.ts';
import { type EnsemblePart, partJob } from './ensemble.ts';
import { type EnsembleState, type PartState, type PartView, partDealId } from './ensemble.messages.ts';
import type { JobSpec } from './job.ts';
import type { JobState, PartUpdate } from './requester.messages.ts';

/** Job states of a part's negotiation that come after its placement (it holds or held a provider's commit). */
const PLACED: readonly JobState[] = ['placed', 'provisioning', 'running', 'completed'];
const ENDED: readonly JobState[] = ['completed', 'failed', 'cancelled'];
/** How long a stopping ensemble waits for its parts to say they ended before it ends anyway. */
export const STOP_WAIT_MS = 30_000;

/** The part as a job for its own negotiation: its executor fields, resources, timeout, constraints and role. */
export function partJobOf(c: EnsembleContext, part: EnsemblePart): JobSpec {
  const { spec, ensembleId } = c.input;
  const role = {
    ensemble: ensembleId,
    name: part.name,
    type: part.type,
    ports: part.ports,
    restart: part.restart,
    ...(part.healthcheck ? { healthcheck: part.healthcheck } : {}),
    dependsOn: part.dependsOn,
    maxRestarts: spec.maxRestarts,
  };
  return { ...partJob(spec, part), part: role };
}

export function spawnParts(d: EnsembleDraft): EnsembleDraft {
  const c = d.ctx;
  const parts = c.input.spec.parts.map((p) => ({ name: p.name, dealId: c.parts[p.name]!.dealId, job: partJobOf(c, p) }));
  d.emit({ type: 'parts.spawn', parts });
  d.schedule('placement', c.input.deadline).schedule('life', c.input.createdAt + c.input.spec.timeoutMs);
  return d.progress('requesting', `placing ${parts.length} parts: ${parts.map((p) => p.name).join(', ')}`);
}

/** A part's negotiation changed: keep it, then see what follows for the whole ensemble. */
export function takeUpdate(d: EnsembleDraft, u: PartUpdate): EnsembleDraft {
  const track = d.ctx.parts[u.part];
  // an update of a negotiation recovery replaced is stale (it still ends the old one, which is all it does)
  if (!track || track.dealId !== u.dealId) return d;
  countRestarts(d, u, track);
  const allocations = u.allocationId && !track.allocations.includes(u.allocationId) ? [...track.allocations, u.allocationId] : track.allocations;
  d.track(u.part, { update: u, allocations, restartsSeen: Math.max(track.restartsSeen, u.allocation?.restarts ?? 0) });
  if (u.state === 'failed' && d.ctx.failure === null && d.ctx.outcome === null) {
    // one that ran is started again by the ensemble's recovery; one that could never be placed fails it at once
    if (allocations.length > 0) recover(d, u.part, u.message);
    else d.set({ failure: `part ${u.part} failed: ${u.message}` });
  }
  if (d.ctx.outcome === null && d.ctx.failure === null) {
    allocateWhenAllPlaced(d);
    startReadyParts(d);
  }
  return summarise(d);
}

/** A rise in the restarts its provider reports, or a new allocation after the first (a move), counts. */
function countRestarts(d: EnsembleDraft, u: PartUpdate, track: PartTrack): void {
  const rise = Math.max(0, (u.allocation?.restarts ?? 0) - track.restartsSeen);
  const moved = u.allocationId !== null && track.allocations.length > 0 && !track.allocations.includes(u.allocationId) ? 1 : 0;
  if (rise + moved === 0) return;
  const { count, withinMs } = d.ctx.input.spec.maxRestarts;
  const times = [...d.ctx.restartTimes, ...Array<number>(rise + moved).fill(d.now)].filter((t) => t > d.now - withinMs);
  d.set({ restartTimes: times });
  d.record({ restarts: d.ctx.record.restarts + rise + moved });
  if (moved) d.progress(d.ctx.record.state, `part ${u.part} moved to ${u.provider} (${u.allocationId})`);
  if (times.length > count && d.ctx.failure === null) d.set({ failure: `more than ${count} restarts within ${withinMs / 1000} s (maxRestarts); the last: part ${u.part}` });
}

/**
 * A part that ran failed for good: the ensemble's `recovery` says which parts start again (one_for_one: it;
 * one_for_all: every part; rest_for_one: it and every part started after it), each as a new negotiation (the old
 * one is cancelled where it still runs), each counted against `maxRestarts`.
 */
function recover(d: EnsembleDraft, failed: string, why: string): void {
  const c = d.ctx;
  const again = partsToRestart(c.input.spec, failed);
  const { count, withinMs } = c.input.spec.maxRestarts;
  const times = [...c.restartTimes, ...Array<number>(again.length).fill(d.now)].filter((t) => t > d.now - withinMs);
  d.set({ restartTimes: times }).record({ restarts: c.record.restarts + again.length });
  if (times.length > count) {
    d.set({ failure: `part ${failed} failed (${why}) and starting it again would pass maxRestarts (${count} within ${withinMs / 1000} s)` });
    return;
  }
  const spawn: { name: string; dealId: string; job: JobSpec }[] = [];
  for (const name of again) {
    const t = d.ctx.parts[name]!;
    // its negotiation is stopped unless it said it ended: one started again moments ago may not have said anything
    // yet (its track has no update), and left running it would go on placing a part nobody waits for
    if (t.update === null || !ENDED.includes(t.update.state)) d.emit({ type: 'part.cancel', dealId: t.dealId });
    const gen = t.gen + 1;
    const dealId = partDealId(c.input.ensembleId, name, gen);
    const before = t.restartsBefore + (t.update?.allocation?.restarts ?? 0) + Math.max(0, t.allocations.length - 1) + 1;
    d.track(name, freshTrack(dealId, gen, before));
    spawn.push({ name, dealId, job: partJobOf(c, c.input.spec.parts.find((p) => p.name === name)!) });
  }
  d.emit({ type: 'parts.spawn', parts: spawn });
  d.progress(d.ctx.record.state === 'requesting' ? 'requesting' : 'starting', `part ${failed} failed (${why}); starting ${again.join(', ')} again (recovery ${c.input.spec.recovery})`);
}

function members(c: EnsembleContext): PartMember[] {
  const out: PartMember[] = [];
  for (const p of c.input.spec.parts) {
    const provider = c.parts[p.name]?.update?.provider;
    if (provider) out.push({ part: p.name, provider });
  }
  return out;
}

/** All or nothing: no part is allocated before every part holds a provider's commit. */
function allocateWhenAllPlaced(d: EnsembleDraft): void {
  const c = d.ctx;
  const all = c.input.spec.parts.every((p) => PLACED.includes(c.parts[p.name]?.update?.state ?? 'requesting'));
  if (!all) return;
  if (c.timers.placement !== undefined) d.cancel('placement');
  const m = members(c);
  for (const p of c.input.spec.parts) {
    const u = c.parts[p.name]!.update!;
    const key = `${u.provider}#${u.nonce}`;
    if (u.state !== 'placed' || c.parts[p.name]!.allocateSent === key) continue;
    d.emit({ type: 'part.allocate', dealId: c.parts[p.name]!.dealId, members: m });
    d.track(p.name, { allocateSent: key });
  }
}

/** A part runs, and passes its health check where it has one. */
function ready(c: EnsembleContext, name: string): boolean {
  const part = c.input.spec.parts.find((p) => p.name === name);
  const u = c.parts[name]?.update;
  if (!part || !u || u.state !== 'running' || u.allocation?.state !== 'running') return false;
  return part.healthcheck === undefined || u.allocation.healthy === true;
}

/** A part held for its dependencies starts once they are all ready, told where their ports are. */
function startReadyParts(d: EnsembleDraft): void {
  const c = d.ctx;
  for (const p of c.input.spec.parts) {
    if (p.dependsOn.length === 0) continue;
    const u = c.parts[p.name]!.update;
    if (!u || !u.provider || !u.allocationId || !['provisioning', 'running'].includes(u.state)) continue;
    if (!p.dependsOn.every((dep) => ready(c, dep))) continue;
    const addrs: PartAddress[] = p.dependsOn.flatMap((dep) => {
      const depSpec = c.input.spec.parts.find((x) => x.name === dep)!;
      const provider = c.parts[dep]!.update!.provider!;
      return depSpec.ports.map((port) => ({ part: dep, port, provider }));
    });
    // sent again when a dependency moved: its provider re-points the tunnels
    const key = `${u.provider}#${u.nonce}|${addrs.map((a) => `${a.part}.${a.port}@${a.provider}`).join(',')}`;
    if (c.parts[p.name]!.startSent === key) continue;
    d.emit({ type: 'part.start.send', to: u.provider, dealId: c.parts[p.name]!.dealId, nonce: u.nonce, addrs, members: members(c) });
    d.track(p.name, { startSent: key });
    d.progress(d.ctx.record.state, `starting part ${p.name}: ${p.dependsOn.join(', ')} ${p.dependsOn.length === 1 ? 'runs' : 'run'}`);
  }
}

function viewOf(part: EnsemblePart, t: PartTrack): PartView {
  const u = t.update;
  const moves = Math.max(0, t.allocations.length - 1);
  const base = { name: part.name, type: part.type, provider: u?.provider ?? null, allocationId: u?.allocationId ?? null, exitCode: u?.exitCode ?? null, message: u?.message ?? 'not placed yet', dealId: t.dealId };
  if (!u) return { ...base, state: t.gen > 0 ? 'restarting' : 'pending', restarts: t.restartsBefore, healthy: part.healthcheck ? false : null };
  const a = u.allocation;
  const restarts = t.restartsBefore + (a?.restarts ?? 0) + moves;
  const again = restarts > 0;
  let state: PartState;
  switch (u.state) {
    case 'completed':
      state = 'completed';
      break;
    case 'failed':
      state = 'failed';
      break;
    case 'cancelled':
      state = 'terminated';
      break;
    case 'running':
      // the allocation's own end arrives before the negotiation's
      state = a?.state === 'running' ? 'running' : a?.state === 'completed' ? 'completed' : a?.state === 'failed' ? 'failed' : a?.state === 'terminated' ? 'terminated' : again ? 'restarting' : 'starting';
      break;
    case 'provisioning':
      state = again ? 'restarting' : 'starting';
      break;
    default:
      state = t.allocations.length > 0 ? 'restarting' : 'pending';
  }
  // a part with a check is not healthy until a check passed (null: it has none)
  return { ...base, state, restarts, healthy: part.healthcheck ? (a?.healthy ?? false) : null };
}

/** The record's parts and the ensemble's state from them. */
function summarise(d: EnsembleDraft): EnsembleDraft {
  const c = d.ctx;
  const parts = c.input.spec.parts.map((p) => viewOf(p, c.parts[p.name]!));
  d.record({ parts });
  if (c.outcome !== null) return d;
  const placed = c.input.spec.parts.every((p) => PLACED.includes(c.parts[p.name]?.update?.state ?? 'requesting'));
  const up = parts.every((p) => p.state === 'completed' || (p.state === 'running' && (p.healthy ?? true)));
  const state: EnsembleState = !placed && c.record.startedAt === null ? 'requesting' : up ? 'running' : 'starting';
  if (state === 'running' && c.record.startedAt === null) d.record({ startedAt: d.now });
  const message = state === 'requesting' ? `placed ${parts.filter((p) => p.provider).length} of ${parts.length} parts` : state === 'starting' ? `starting: ${parts.filter((p) => p.state !== 'running' && p.state !== 'completed').map((p) => `${p.name} ${p.state}`).join(', ')}` : `every part is up: ${parts.map((p) => `${p.name} ${p.state}`).join(', ')}`;
  return d.progress(state, message);
}

/** Every part ended (or never started): a stopping ensemble can end. */
export function allEnded(c: EnsembleContext): boolean {
  return c.input.spec.parts.every((p) => {
    const u = c.parts[p.name]?.update;
    return u === null || u === undefined || ENDED.includes(u.state);
  });
}

/** Only tasks, and every one completed: nothing left to run. */
export function allTasksDoneNoService(c: EnsembleContext): boolean {
  return c.input.spec.parts.every((p) => p.type === 'task' && c.parts[p.name]?.update?.state === 'completed');
}

/** Cancel, timeout or placement deadline: how the ensemble will end, and a reply to give then. */
export function stopAll(d: EnsembleDraft, state: EnsembleState, why: string | null, replyTo: string | undefined): EnsembleDraft {
  const outcome = state === 'cancelled' || state === 'failed' || state === 'completed' ? state : 'failed';
  if (d.ctx.outcome === null) d.set({ outcome });
  if (outcome === 'failed' && why && d.ctx.failure === null) d.set({ failure: why });
  if (why && outcome !== 'failed') d.progress('stopping', why);
  return replyTo ? d.set({ pendingReply: replyTo }) : d;
}

/** Stopping: every part still live is cancelled once; ends when all of them said they ended (at most STOP_WAIT_MS). */
export function enterStopping(d: EnsembleDraft): EnsembleDraft {
  const c = d.ctx;
  const outcome = c.outcome ?? (c.failure !== null ? 'failed' : 'completed');
  d.set({ outcome });
  d.cancel('placement').cancel('life').schedule('stop', d.now + STOP_WAIT_MS);
  cancelLiveParts(d);
  const message = outcome === 'failed' ? (c.failure ?? 'failed') : outcome === 'cancelled' ? 'cancelled: stopping every part' : c.record.message;
  return summarise(d).progress('stopping', message);
}

/** Every part whose negotiation has not said it ended is told to stop (again: a repeat is harmless). */
function cancelLiveParts(d: EnsembleDraft): EnsembleDraft {
  const c = d.ctx;
  for (const p of c.input.spec.parts) {
    const u = c.parts[p.name]?.update;
    if (u && ENDED.includes(u.state)) continue;
    d.emit({ type: 'part.cancel', dealId: c.parts[p.name]!.dealId });
  }
  return d;
}

/**
 * Recovered while stopping: the parts' cancels went out as events on this node, which died with it (found by the
 * simulator: a part went on running after its ensemble ended). They are sent again, with the timers.
 */
export function recoverStopping(d: EnsembleDraft): EnsembleDraft {
  d.emit(...ensembleTimers.rearm(d.ctx.timers));
  return cancelLiveParts(d);
}

export function end(d: EnsembleDraft, state: EnsembleState): EnsembleDraft {
  d.timers({ timers: {}, intents: ensembleTimers.cancelAll(d.ctx.timers).intents });
  const c = d.ctx;
  const message = state === 'failed' ? (c.failure ?? 'failed') : state === 'cancelled' ? 'cancelled: every part was stopped' : allTasksDoneNoService(c) ? 'every part completed' : c.record.message.replace(/^every part is up: .*/, 'completed');
  summarise(d).record({ endedAt: d.now }).progress(state, message);
  return d.emit({ type: 'ensemble.ended', record: d.ctx.record }).reply();
}
