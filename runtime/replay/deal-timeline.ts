/**
 * One deal's story across the requester's and its providers' data dirs: each dir read once (deal-scan.ts), its
 * deal actors replayed from their start and its Node rebuilt at each of the deal's events from its nearest snapshot
 * (effects off, as `replay` always does), the events merged in time order, and each message one node received
 * from another paired with the event that sent it (deal-match.ts).
 */
import type { InspectionRecord } from '../../actors/actor.protocol.ts';
import { parseIntents } from '../../actors/actor.protocol.ts';
import type { ActorRecord, LoggedEvent } from '../../actors/event-log.ts';
import type { HostedActor } from '../../actors/hosted-actor.ts';
import type { ScanStop } from '../store/journal-scan.ts';
import { describeRemoved } from '../store/history-reader.ts';
import { hostActor, tailEvents } from './actor-tail.ts';
import { type Diff, diffValues } from './context-diff.ts';
import { type Hop, type MatchEntry, type WireSend, matchHops, wireSendsOf } from './deal-match.ts';
import { type DealActorHistory, type DirDeal, NODE_ACTOR, scanDirForDeal } from './deal-scan.ts';
import { dirLabels, peerIdFromKeyFile } from './node-identity.ts';

export interface DealNode {
  readonly dir: string;
  readonly label: string;
  /** Its peer id (`dir:<path>` when neither its log nor its key file says). */
  readonly peerId: string;
  /** Events of the deal found in it. */
  readonly events: number;
  readonly stop: ScanStop | null;
  /** Set when retention removed the oldest history. */
  readonly removed: string | null;
}

export interface DealEvent extends MatchEntry {
  readonly label: string;
  /** The actor's state after it (null when it could not be replayed: `problem` says why). */
  readonly state: unknown;
  readonly problem?: string;
  /** What it changed (with `diff`). */
  readonly diff?: Diff;
  /** Inspection records of its delivery (with `inspect`), the actor's announcement before its first event. */
  readonly inspections?: readonly InspectionRecord[];
  /** For a message from another node of the deal: its send, or null when none of the logs given has it. */
  hop?: Hop | null;
}

export interface DealTimeline {
  readonly job: string;
  readonly name: string | null;
  readonly nodes: readonly DealNode[];
  readonly events: readonly DealEvent[];
}

export interface DealOptions {
  readonly diff: boolean;
  readonly inspect: boolean;
  readonly progress?: (line: string) => void;
}

interface NodeCtx {
  readonly peerId: string;
  readonly label: string;
  readonly opts: DealOptions;
}

/** The state and context of a hosted actor (the raw context, not the view clients get). */
function viewOf(hosted: HostedActor): { state: unknown; context: unknown } {
  const s = hosted.persisted(0).snapshot as { value?: unknown; context?: unknown };
  return { state: s.value, context: s.context };
}

const sendsOf = (intents: string): WireSend[] => (/\.send"|"status\.push"|"bid\.open"/.test(intents) ? wireSendsOf(parseIntents({ intents, processed: 0 })) : []);

function entry(ctx: NodeCtx, actor: string, e: LoggedEvent, rest: Partial<DealEvent> & { state: unknown }): DealEvent {
  return { node: ctx.peerId, label: ctx.label, actor, seq: e.seq, at: e.ts, type: e.type, origin: e.origin, payload: e.payload, sends: [], ...rest };
}

/** Every event of one deal actor, replayed from its start (or its checkpoint snapshot). */
function replayDealActor(ctx: NodeCtx, a: DealActorHistory): DealEvent[] {
  const events = a.events.filter((e) => !a.baseSnapshot || e.seq > a.baseSnapshot.seq);
  let hosted: HostedActor;
  try {
    if (!a.record) throw new Error('its registry record is not in the history kept');
    hosted = hostActor(a.id, a.record, a.baseSnapshot, ctx.opts.inspect);
  } catch (err) {
    return events.map((e) => entry(ctx, a.id, e, { state: null, problem: (err as Error).message }));
  }
  const out: DealEvent[] = [];
  let intro: InspectionRecord[] = hosted.takeInspections();
  let failed: string | null = null;
  let before = ctx.opts.diff ? viewOf(hosted) : undefined;
  for (const e of events) {
    if (failed || a.dropped.has(e.seq)) {
      out.push(entry(ctx, a.id, e, { state: failed ? null : hosted.value, problem: failed ?? 'the actor failed on it and the node dropped it; not replayed' }));
      continue;
    }
    const r = hosted.deliver([e.payload]);
    const after = ctx.opts.diff ? viewOf(hosted) : undefined;
    const inspections = ctx.opts.inspect ? [...intro, ...(r.inspections ?? [])] : undefined;
    intro = [];
    if (r.failure) failed = `the actor failed here when replayed: ${r.failure.message}`;
    out.push(entry(ctx, a.id, e, { state: hosted.value, sends: sendsOf(r.intents), ...(after ? { diff: diffValues(before, after) } : {}), ...(inspections ? { inspections } : {}), ...(failed ? { problem: failed } : {}) }));
    before = after;
  }
  hosted.stop();
  return out;
}

/**
 * The Node at each of its events of the deal: rebuilt from the snapshot that precedes the first of them, then
 * carried on (a later event with a newer snapshot and a long way to go starts again from that snapshot).
 */
async function replayNodeHits(ctx: NodeCtx, dataDir: string, d: DirDeal): Promise<DealEvent[]> {
  const out: DealEvent[] = [];
  const record: ActorRecord = d.node.record ?? { id: NODE_ACTOR, kind: 'node', input: {}, createdAt: 0 };
  let hosted: HostedActor | null = null;
  let upTo = 0;
  for (const { event, mark } of [...d.hits].sort((a, b) => a.event.seq - b.event.seq)) {
    try {
      const from = mark.snapshot?.seq ?? 0;
      if (!mark.snapshot && (mark.pages[0]?.first ?? 1) > 1) throw new Error('the Node\'s history before this event is gone and no snapshot covers it');
      let intro: InspectionRecord[] = [];
      if (!hosted || from > upTo) {
        hosted?.stop();
        hosted = hostActor(NODE_ACTOR, record, mark.snapshot, ctx.opts.inspect);
        intro = hosted.takeInspections();
        upTo = from;
      }
      let before: unknown;
      let last: ReturnType<HostedActor['deliver']> | null = null;
      for await (const e of tailEvents(dataDir, NODE_ACTOR, mark, d.node.dropped, event.seq)) {
        if (e.seq <= upTo) continue;
        if (e.seq === event.seq && ctx.opts.diff) before = viewOf(hosted);
        const r = hosted.deliver([e.payload]);
        upTo = e.seq;
        if (r.failure) throw new Error(`the Node failed at seq ${e.seq} when replayed: ${r.failure.message}`);
        if (e.seq === event.seq) last = r;
      }
      const inspections = ctx.opts.inspect ? [...intro, ...(last?.inspections ?? [])] : undefined;
      out.push(entry(ctx, NODE_ACTOR, event, { state: hosted.value, sends: sendsOf(last?.intents ?? '[]'), ...(ctx.opts.diff ? { diff: diffValues(before, viewOf(hosted)) } : {}), ...(inspections ? { inspections } : {}) }));
    } catch (err) {
      hosted?.stop();
      hosted = null;
      out.push(entry(ctx, NODE_ACTOR, event, { state: null, problem: (err as Error).message }));
    }
  }
  hosted?.stop();
  return out;
}

function jobName(dirs: readonly DirDeal[], job: string): string | null {
  for (const d of dirs) {
    for (const id of [`job/${job}`, `ensemble/${job}`]) {
      const input = d.actors.get(id)?.record?.input as { job?: { name?: unknown }; spec?: { name?: unknown } } | undefined;
      const name = input?.job?.name ?? input?.spec?.name;
      if (typeof name === 'string') return name;
    }
  }
  return null;
}

/** The deal `job` across the data dirs, in time order, its hops matched. */
export async function dealTimeline(dirs: readonly string[], job: string, opts: DealOptions): Promise<DealTimeline> {
  const labels = dirLabels(dirs);
  const scans: DirDeal[] = [];
  const nodes: DealNode[] = [];
  const events: DealEvent[] = [];
  for (const [i, dir] of dirs.entries()) {
    let lastProgress = performance.now();
    const d = await scanDirForDeal(dir, job, (read, total) => {
      if (performance.now() - lastProgress < 1000) return;
      lastProgress = performance.now();
      opts.progress?.(`replay: ${labels[i]}: ${Math.round((read / Math.max(1, total)) * 100)}% of ${(total / 1e6).toFixed(1)} MB read`);
    });
    const peerId = d.peerId ?? (await peerIdFromKeyFile(dir)) ?? `dir:${dir}`;
    const ctx: NodeCtx = { peerId, label: labels[i]!, opts };
    const mine = [...[...d.actors.values()].flatMap((a) => replayDealActor(ctx, a)), ...(await replayNodeHits(ctx, dir, d))];
    scans.push(d);
    events.push(...mine);
    nodes.push({ dir, label: labels[i]!, peerId, events: mine.length, stop: d.report.stop, removed: describeRemoved(d.report.start) });
  }
  const hops = matchHops(events, new Set(nodes.map((n) => n.peerId)));
  for (const [i, hop] of hops) events[i]!.hop = hop;
  const index = new Map(nodes.map((n, i) => [n.peerId, i]));
  events.sort((a, b) => a.at - b.at || (a.hop ? 1 : 0) - (b.hop ? 1 : 0) || index.get(a.node)! - index.get(b.node)! || a.actor.localeCompare(b.actor) || a.seq - b.seq);
  return { job, name: jobName(scans, job), nodes, events };
}
