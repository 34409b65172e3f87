/** How `replay` prints timelines, diffs, the actor list and a deal (the text forms; `--json` prints the values). */
import type { ActorSummary, Catalog } from '../replay/actor-catalog.ts';
import { type Diff, formatDiff } from '../replay/context-diff.ts';
import { dealIdOfActor } from '../replay/deal-match.ts';
import type { DealEvent, DealTimeline } from '../replay/deal-timeline.ts';
import { parseDealKey } from '../../machines/deal.ids.ts';
import { describeRemoved, describeStop } from '../store/history-reader.ts';
import { shortPeer } from '../replay/node-identity.ts';

export const iso = (ms: number | null) => (ms === null ? '-' : new Date(ms).toISOString());
export const stateText = (s: unknown) => (s === null || s === undefined ? '?' : typeof s === 'string' ? s : JSON.stringify(s));

/** A diff under its event's line, indented. */
export function diffLines(d: Diff | undefined, indent = '          '): string[] {
  if (!d) return [];
  const lines = formatDiff(d);
  return lines.length ? lines.map((l) => `${indent}${l}`) : [`${indent}(no change)`];
}

/** A diff for --json: its changes and how many were left out. */
export function diffJson(d: Diff | undefined): object {
  return d ? { changes: d.changes, ...(d.truncated ? { moreChanges: d.truncated } : {}) } : {};
}

/** One line of an actor's timeline: "   12  2026-...Z  ledger.lock        api       -> registered". */
export function timelineLine(e: { seq: number; ts: number; type: string; origin: string }, state: unknown): string {
  return `${String(e.seq).padStart(8)}  ${iso(e.ts)}  ${e.type.padEnd(18)} ${(e.origin.length > 20 ? shortPeer(e.origin) : e.origin).padEnd(9)} -> ${stateText(state)}`;
}

// -------------------------------------------------------------------------------------------------------- list

function ago(ms: number | null, now: number): string {
  if (ms === null) return '-';
  const s = Math.max(0, Math.round((now - ms) / 1000));
  return s < 120 ? `${s}s ago` : s < 7200 ? `${Math.round(s / 60)}m ago` : s < 172_800 ? `${Math.round(s / 3600)}h ago` : `${Math.round(s / 86_400)}d ago`;
}

/** The actor list as a table, newest first, with a line on what the history holds. */
export function formatList(c: Catalog, dataDir: string, now = Date.now()): string {
  const removed = describeRemoved(c.start);
  const stop = describeStop(c.stop);
  const head = `${c.actors.length} actor${c.actors.length === 1 ? '' : 's'} in the log of ${dataDir}${c.peerId ? ` (node ${c.peerId})` : ''}`;
  const rows = c.actors.map((a: ActorSummary) => [a.kind, a.id, a.name ?? '', a.events.toLocaleString('en'), iso(a.first), iso(a.last), ago(a.last, now), `${stateText(a.state)}${a.problem ? ` [${a.problem}]` : ''}`]);
  const header = ['KIND', 'ID', 'NAME', 'EVENTS', 'FIRST', 'LAST', '', 'STATE'];
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (r: string[]) => r.map((v, i) => (i === 3 ? v.padStart(widths[i]!) : i === r.length - 1 ? v : v.padEnd(widths[i]!))).join('  ');
  return [head, ...(removed ? [removed] : []), ...(stop ? [stop] : []), line(header), ...rows.map(line)].join('\n');
}

// -------------------------------------------------------------------------------------------------------- deal

/** An actor of the deal named relative to it: `job`, `job@kv`, `provider.1`, `allocation@kv.1`, `node`. */
export function dealActorName(id: string, job: string): string {
  const d = dealIdOfActor(id);
  if (d === undefined) return id;
  const kind = id.slice(0, id.indexOf('/'));
  const part = d.startsWith(job) ? d.slice(job.length) : `/${d}`;
  const nonce = kind === 'provider' || kind === 'allocation' ? parseDealKey(id.slice(kind.length + 1))?.nonce : undefined;
  return `${kind}${part}${nonce === undefined ? '' : `.${nonce}`}`;
}

/** The header: the deal, and each node with its label, peer id, dir and how much of the deal it holds. */
export function dealHeader(t: DealTimeline): string[] {
  const lines = [`deal ${t.job}${t.name ? ` (${t.name})` : ''}: ${t.events.length} events on ${t.nodes.length} nodes`];
  for (const n of t.nodes) {
    lines.push(`  ${n.label.padEnd(4)} ${n.peerId.startsWith('dir:') ? '(peer id unknown)' : n.peerId}  ${n.dir}  ${n.events} events`);
    for (const note of [n.removed, describeStop(n.stop)]) if (note) lines.push(`       ${note}`);
  }
  return lines;
}

function hopText(e: DealEvent, t: DealTimeline): string {
  const from = t.nodes.find((n) => n.peerId === e.origin);
  if (e.hop) return `<- ${from?.label ?? shortPeer(e.hop.from.node)} ${dealActorName(e.hop.from.actor, t.job)} #${e.hop.from.seq} +${e.hop.latencyMs} ms`;
  if (e.hop === null) return `<- ${from?.label ?? '?'} (no send of it in the logs given)`;
  if (e.origin.length > 20) return `<- ${shortPeer(e.origin)} (not among the data dirs)`;
  return e.origin === 'local' ? '' : `(${e.origin})`;
}

/** One event of the deal: time, node, actor, seq, type, where it came from, resulting state. */
export function dealLine(e: DealEvent, t: DealTimeline, widths: { label: number; actor: number }): string {
  const state = e.problem && e.state === null ? `? [${e.problem}]` : `${stateText(e.state)}${e.problem ? ` [${e.problem}]` : ''}`;
  const from = hopText(e, t);
  return `${iso(e.at)}  ${e.label.padEnd(widths.label)}  ${dealActorName(e.actor, t.job).padEnd(widths.actor)} ${`#${e.seq}`.padStart(5)}  ${e.type.padEnd(18)} ${from ? `${from}  ` : ''}-> ${state}`;
}

/** A deal event for --json: the contract's fields, then its origin, a matched hop and (with --diff) its changes. */
export function dealJson(e: DealEvent): object {
  return {
    at: e.at,
    node: e.node,
    actor: e.actor,
    seq: e.seq,
    type: e.type,
    state: e.state,
    origin: e.origin,
    label: e.label,
    ...(e.hop ? { hop: { from: e.hop.from.node, latencyMs: e.hop.latencyMs, actor: e.hop.from.actor, seq: e.hop.from.seq } } : {}),
    ...(e.problem ? { problem: e.problem } : {}),
    ...diffJson(e.diff),
  };
}
