/**
 * Which events of a timeline are shown: `--type T` (repeatable, or a comma list), `--from TIME`, `--to TIME|SEQ`.
 * Every event is still replayed (the state after each one depends on all before it); the window only chooses what
 * is printed, and `--to` also ends the replay. TIME is an ISO 8601 date-time (`2026-12-03T18:13:58Z`, a date
 * alone is its midnight UTC) or milliseconds since the epoch; a whole number below 10^11 (early 1973 as a time) is a
 * sequence number.
 */
import { UsageError } from '../errors.ts';

export interface ReplayWindow {
  /** Event types shown (null: all). */
  readonly types: ReadonlySet<string> | null;
  /** Shown from this time on (ms since the epoch). */
  readonly from: number | null;
  /** Replayed up to this time (inclusive). */
  readonly toTime: number | null;
  /** Replayed up to this seq (inclusive); one actor's timeline only. */
  readonly toSeq: number | null;
}

export const OPEN_WINDOW: ReplayWindow = { types: null, from: null, toTime: null, toSeq: null };

const SEQ_BELOW = 1e11;
const ISO = /^\d{4}-\d\d-\d\d([T ]\d\d:\d\d(:\d\d(\.\d+)?)?(Z|[+-]\d\d:?\d\d)?)?$/;

/** A TIME flag's value as ms since the epoch. */
export function parseTime(flag: string, v: string): number {
  const s = v.trim();
  if (/^\d+$/.test(s)) return Number(s);
  if (ISO.test(s)) {
    // a date-time without a zone is UTC here, as every time replay prints is
    const t = Date.parse(/T|\s/.test(s) && !/(Z|[+-]\d\d:?\d\d)$/.test(s) ? `${s.replace(' ', 'T')}Z` : s);
    if (Number.isFinite(t)) return t;
  }
  throw new UsageError(`${flag} "${v}" is not a time: give an ISO date-time (e.g. 2026-12-03T18:13:58Z) or milliseconds since the epoch`);
}

/** The window the flags ask for. `allowSeq`: whether `--to` may be a seq (one actor's timeline). */
export function parseWindow(flags: { type?: readonly string[]; from?: string; to?: string }, allowSeq: boolean): ReplayWindow {
  const types = flags.type?.flatMap((t) => t.split(',')).map((t) => t.trim()).filter(Boolean) ?? [];
  const from = flags.from === undefined ? null : parseTime('--from', flags.from);
  let toTime: number | null = null;
  let toSeq: number | null = null;
  if (flags.to !== undefined) {
    const s = flags.to.trim();
    if (/^\d+$/.test(s) && Number(s) < SEQ_BELOW) {
      if (!allowSeq) throw new UsageError(`--to ${s} is a sequence number, and seqs are per actor: with --deal give a time (ISO or epoch ms)`);
      toSeq = Number(s);
    } else toTime = parseTime('--to', s);
  }
  if (from !== null && toTime !== null && toTime < from) throw new UsageError(`--to (${new Date(toTime).toISOString()}) is before --from (${new Date(from).toISOString()})`);
  return { types: types.length ? new Set(types) : null, from, toTime, toSeq };
}

/** Whether an event is past the window's end (the replay stops before it). */
export function pastEnd(w: ReplayWindow, e: { seq: number; ts: number }): boolean {
  return (w.toSeq !== null && e.seq > w.toSeq) || (w.toTime !== null && e.ts > w.toTime);
}

/** Whether an event inside the replayed range is shown. */
export function shown(w: ReplayWindow, e: { ts: number; type: string }): boolean {
  return (w.from === null || e.ts >= w.from) && (w.types === null || w.types.has(e.type));
}
