/**
 * The journal's records as the history readers see them: event pages, told apart from other mutations without
 * parsing their events. An append is one transaction holding one page (journal-record.ts writes it as
 * `{"tx":[{"t":"events","op":"add","values":[{"actor":A,"seq":S,"first":F,"events":[{"seq":F,"ts":T,...},...]}]}]}`),
 * and on a long log almost every byte is in such pages: reading a page's header (actor, seqs, first time) and its
 * last event instead of parsing it is what lets `replay --list` and `--deal` go through a million events in well
 * under a second. The shortcut checks that the record holds one page and nothing else, that the first event follows
 * the header, and that the last one, found from the end, is seq S and closes the record; anything else is parsed
 * whole (test/runtime/store/history-scan.test.ts).
 */
import type { LoggedEvent } from '../../actors/event-log.ts';
import type { JournaledPage, Mutation } from './journal-record.ts';

/** One page of one actor's events, its events parsed only when asked for. */
export interface HistoryPage {
  readonly actor: string;
  readonly first: number;
  /** Seq of its last event. */
  readonly seq: number;
  /** Time of its first and of its last event. */
  readonly firstTs: number;
  readonly lastTs: number;
  /** Its events; parses them the first time. */
  events(): readonly LoggedEvent[];
  /**
   * Whether `needle` (JSON text, e.g. a deal id) may occur in the page: false only when it surely does not, so a
   * reader looking for one deal skips pages without parsing them.
   */
  mayMention(needle: Buffer): boolean;
}

/** A record: its event pages and its other mutations, in order. */
export interface HistoryRecord {
  readonly pages: readonly HistoryPage[];
  readonly others: readonly Mutation[];
}

/** Records smaller than this are parsed whole: the header shortcut pays only on big pages. */
const SHORTCUT_MIN_BYTES = 16 * 1024;
const PREFIXES = ['add', 'put'].map((op) => Buffer.from(`{"tx":[{"t":"events","op":"${op}","values":[{"actor":"`));
const SUFFIX = Buffer.from(']}]}]}');
/**
 * A second page, or another mutation after the page, starts right after one of these (journal-record.ts joins them
 * so); a payload may hold them too, which costs only a whole parse. Starting with `]`, they are found at memory speed.
 */
const BOUNDARIES = [Buffer.from(']},{"actor":"'), Buffer.from(']},{"t":"')];
const HEADER_RE = /^"((?:[^"\\]|\\.)*)","seq":(\d+),"first":(\d+),"events":\[\{"seq":(\d+),"ts":(\d+),/;

/** A page parsed from a whole record (or a checkpoint), its text unknown. */
function parsedPage(p: JournaledPage): HistoryPage {
  return { actor: p.actor, first: p.first, seq: p.seq, firstTs: p.events[0]?.ts ?? 0, lastTs: p.events.at(-1)?.ts ?? 0, events: () => p.events, mayMention: () => true };
}

/** The pages and other mutations of a list of mutations (a parsed record, or a checkpoint's tables). */
export function splitMutations(tx: readonly Mutation[]): HistoryRecord {
  const pages: HistoryPage[] = [];
  const others: Mutation[] = [];
  for (const m of tx) {
    if (m.t === 'events' && (m.op === 'add' || m.op === 'put')) for (const p of m.values as JournaledPage[]) pages.push(parsedPage(p));
    else others.push(m);
  }
  return { pages, others };
}

/** The single page of a big append record read from its header, or undefined when the record is not one. */
function shortcutPage(body: Buffer): HistoryPage | undefined {
  const prefix = PREFIXES.find((p) => body.subarray(0, p.length).equals(p));
  if (!prefix || !body.subarray(body.length - SUFFIX.length).equals(SUFFIX)) return undefined;
  const head = HEADER_RE.exec(body.toString('utf8', prefix.length - 1, prefix.length + 1024));
  if (!head) return undefined;
  const from = prefix.length - 1 + Buffer.byteLength(head[0]);
  if (BOUNDARIES.some((b) => body.indexOf(b, from) >= 0)) return undefined;
  const [first, seq] = [Number(head[3]), Number(head[2])];
  if (Number(head[4]) !== first) return undefined;
  // the events array: from its `[` (the header's end, less its first event's `{"seq":F,"ts":T,`) to the suffix
  const eventsAt = from - Buffer.byteLength(`{"seq":${head[4]},"ts":${head[5]},`) - 1;
  const lastAt = body.lastIndexOf(`{"seq":${seq},"ts":`);
  if (lastAt <= eventsAt) return undefined;
  let last: LoggedEvent;
  try {
    last = JSON.parse(body.toString('utf8', lastAt, body.length - SUFFIX.length)) as LoggedEvent;
  } catch {
    return undefined;
  }
  if (last.seq !== seq) return undefined;
  const actor = JSON.parse(`"${head[1]}"`) as string;
  let events: LoggedEvent[] | undefined;
  return {
    actor,
    first,
    seq,
    firstTs: Number(head[5]),
    lastTs: last.ts,
    events: () => (events ??= JSON.parse(body.toString('utf8', eventsAt, body.length - SUFFIX.length + 1)) as LoggedEvent[]),
    mayMention: (needle) => body.indexOf(needle, from) >= 0,
  };
}

/** Decodes one journal record. Throws on a record that is not JSON (its checksum matched: a bug, not damage). */
export function decodeRecord(body: Buffer): HistoryRecord {
  if (body.length >= SHORTCUT_MIN_BYTES) {
    const page = shortcutPage(body);
    if (page) return { pages: [page], others: [] };
  }
  return splitMutations((JSON.parse(body.toString('utf8')) as { tx: Mutation[] }).tx);
}
