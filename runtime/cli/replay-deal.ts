/**
 * `replay --deal JOB --data-dir A --data-dir B ...`: one timeline of a deal across the requester's and its
 * providers' data dirs (runtime/replay/deal-timeline.ts), each line naming its node and actor, a message from one
 * node to another shown as a hop with its latency; `--diff`, `--type`, `--from`, `--to` as for one actor;
 * `--inspect` streams the deal's actors of every node to the Stately inspector, `--speed X` at X times the pace.
 */
import { UsageError } from '../errors.ts';
import type { InspectorBridge } from '../inspector/inspector.ts';
import { catalogActors } from '../replay/actor-catalog.ts';
import { closestIds } from '../replay/closest-ids.ts';
import { jobIdOf } from '../replay/deal-match.ts';
import { type DealEvent, type DealTimeline, dealTimeline } from '../replay/deal-timeline.ts';
import { type ReplayWindow, pastEnd, shown } from '../replay/replay-window.ts';
import { Pacer, onNode } from './replay-inspect.ts';
import { dealActorName, dealHeader, dealJson, dealLine, diffLines } from './replay-format.ts';
import { needLog } from './replay-list.ts';

export interface DealReplayOptions {
  readonly dirs: readonly string[];
  readonly job: string;
  readonly window: ReplayWindow;
  readonly json: boolean;
  readonly diff: boolean;
  readonly speed: number | null;
  readonly inspector: InspectorBridge | null;
  readonly out: (line: string) => void;
  readonly progress: (line: string) => void;
}

/** No event of the deal anywhere: name the jobs the first dir holds that look like it. */
async function noSuchDeal(dirs: readonly string[], job: string): Promise<UsageError> {
  const { actors } = await catalogActors(dirs[0]!, { states: false });
  const jobs = actors.filter((a) => a.kind === 'job' || a.kind === 'ensemble' || a.kind === 'array').map((a) => a.id.slice(a.id.indexOf('/') + 1));
  const near = closestIds(job, jobs);
  return new UsageError(`no event of deal ${job} in ${dirs.join(', ')}; ${near.length ? `closest jobs in ${dirs[0]}: ${near.join(', ')}; ` : ''}\`replay --list --kind job --data-dir ${dirs[0]}\` lists its jobs`);
}

function hopSummary(t: DealTimeline): string {
  const matched = t.events.filter((e) => e.hop).map((e) => e.hop!.latencyMs).sort((a, b) => a - b);
  const unmatched = t.events.filter((e) => e.hop === null).length;
  if (matched.length === 0 && unmatched === 0) return 'no messages between the nodes given';
  const p50 = matched[Math.floor((matched.length - 1) / 2)];
  const lat = matched.length ? ` (latency median ${p50} ms, max ${matched.at(-1)} ms, from the sender's event to the receiver's)` : '';
  return `${matched.length} hop${matched.length === 1 ? '' : 's'} matched${lat}${unmatched ? `; ${unmatched} received message${unmatched === 1 ? '' : 's'} without a send in the logs given (a repeat by the runtime, e.g. a status heartbeat)` : ''}`;
}

/** Forwards an event's inspection records; the actor's announcement even when the event itself is not shown. */
function forward(inspector: InspectorBridge | null, e: DealEvent, show: boolean): void {
  const records = e.inspections ?? [];
  const send = show ? records : records.filter((r) => r.type === '@xstate.actor');
  if (inspector && send.length) inspector.forward(onNode(e.label, send));
}

export async function replayDeal(opts: DealReplayOptions): Promise<DealTimeline> {
  for (const d of opts.dirs) needLog(d);
  const job = jobIdOf(opts.job);
  const t = await dealTimeline(opts.dirs, job, { diff: opts.diff, inspect: opts.inspector !== null, progress: opts.progress });
  if (t.events.length === 0) throw await noSuchDeal(opts.dirs, job);
  const pacer = new Pacer(opts.speed);
  const widths = { label: Math.max(...t.nodes.map((n) => n.label.length)), actor: Math.max(...t.events.map((e) => dealActorName(e.actor, job).length)) };
  for (const line of dealHeader(t)) (opts.json ? opts.progress : opts.out)(opts.json ? `replay: ${line.trim()}` : line);
  for (const e of t.events) {
    if (pastEnd(opts.window, { seq: 0, ts: e.at })) break;
    const show = shown(opts.window, { ts: e.at, type: e.type });
    if (show) await pacer.wait(e.at);
    forward(opts.inspector, e, show);
    if (!show) continue;
    if (opts.json) opts.out(JSON.stringify(dealJson(e)));
    else for (const line of [dealLine(e, t, widths), ...diffLines(opts.diff ? e.diff : undefined, '    ')]) opts.out(line);
  }
  (opts.json ? opts.progress : opts.out)(`${opts.json ? 'replay: ' : ''}${hopSummary(t)}`);
  if (pacer.capped) opts.progress(`replay: ${pacer.capped} gap${pacer.capped === 1 ? '' : 's'} longer than 10 s at this speed ${pacer.capped === 1 ? 'was' : 'were'} shortened to 10 s`);
  return t;
}
