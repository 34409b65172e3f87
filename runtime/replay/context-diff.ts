/**
 * What one event changed in an actor: the paths of its state and context that were added, removed or changed,
 * with the values shortened for a terminal. Structural: objects by key, arrays by index; subtrees that are the same
 * object before and after (xstate's `assign` keeps what it does not touch) are skipped without being walked.
 */

export interface Change {
  /** `state`, `context.bids[1].score`, `context.locks["k 2"]`. */
  readonly path: string;
  readonly op: 'added' | 'removed' | 'changed';
  /** The value before (changed, removed). */
  readonly from?: unknown;
  /** The value after (added, changed). */
  readonly to?: unknown;
}

/** The changes from `before` to `after`, at most `limit` of them (then `truncated` says how many more there were). */
export interface Diff {
  readonly changes: readonly Change[];
  readonly truncated: number;
}

const IDENT = /^[A-Za-z_$][\w$]*$/;

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

function keyPath(base: string, key: string): string {
  const k = IDENT.test(key) ? key : JSON.stringify(key);
  if (!base) return k;
  return IDENT.test(key) ? `${base}.${k}` : `${base}[${k}]`;
}

/** Whether two JSON-like values are equal (objects by content, key order ignored). */
export function sameValue(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return Number.isNaN(a) && Number.isNaN(b);
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  if (Array.isArray(a)) return a.length === (b as unknown[]).length && a.every((x, i) => sameValue(x, (b as unknown[])[i]));
  const ka = Object.keys(a).filter((k) => (a as Record<string, unknown>)[k] !== undefined);
  const kb = Object.keys(b).filter((k) => (b as Record<string, unknown>)[k] !== undefined);
  return ka.length === kb.length && ka.every((k) => sameValue((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k]));
}

class Collector {
  readonly changes: Change[] = [];
  truncated = 0;
  constructor(readonly limit: number) {}
  add(c: Change): void {
    if (this.changes.length < this.limit) this.changes.push(c);
    else this.truncated += 1;
  }
}

function walk(before: unknown, after: unknown, path: string, out: Collector): void {
  if (before === after) return;
  if (isObject(before) && isObject(after)) {
    for (const k of Object.keys(before)) {
      if (before[k] === undefined) continue;
      if (after[k] === undefined) out.add({ path: keyPath(path, k), op: 'removed', from: before[k] });
      else walk(before[k], after[k], keyPath(path, k), out);
    }
    for (const k of Object.keys(after)) if (after[k] !== undefined && before[k] === undefined) out.add({ path: keyPath(path, k), op: 'added', to: after[k] });
    return;
  }
  if (Array.isArray(before) && Array.isArray(after)) {
    const n = Math.min(before.length, after.length);
    for (let i = 0; i < n; i += 1) walk(before[i], after[i], `${path}[${i}]`, out);
    for (let i = n; i < before.length; i += 1) out.add({ path: `${path}[${i}]`, op: 'removed', from: before[i] });
    for (let i = n; i < after.length; i += 1) out.add({ path: `${path}[${i}]`, op: 'added', to: after[i] });
    return;
  }
  if (!sameValue(before, after)) out.add({ path, op: 'changed', from: before, to: after });
}

/** The changes between two views `{ state, context }` (or any two JSON-like values), paths rooted at `root`. */
export function diffValues(before: unknown, after: unknown, opts: { root?: string; limit?: number } = {}): Diff {
  const out = new Collector(opts.limit ?? 50);
  walk(before, after, opts.root ?? '', out);
  return { changes: out.changes, truncated: out.truncated };
}

const cut = (s: string, n: number) => (s.length > n ? `${s.slice(0, Math.ceil(n / 2) - 1)}…${s.slice(s.length - Math.floor(n / 2))}` : s);

/**
 * A value as one short line of JSON, at most `max` characters: a string cut in its middle (ids differ at both
 * ends), strings inside an object or array to 24 characters, and the whole cut at its end.
 */
export function shorten(value: unknown, max = 60): string {
  if (value === undefined) return 'undefined';
  if (typeof value === 'string') return JSON.stringify(cut(value, max - 2));
  const text = JSON.stringify(value, (_k, v: unknown) => (typeof v === 'string' ? cut(v, 24) : v));
  return text.length > max ? `${text.slice(0, max - 1)}…` : text;
}

/** One change as a line: `+ path = value`, `- path (was value)`, `~ path: old -> new`. */
export function formatChange(c: Change, max = 60): string {
  switch (c.op) {
    case 'added':
      return `+ ${c.path} = ${shorten(c.to, max)}`;
    case 'removed':
      return `- ${c.path} (was ${shorten(c.from, max)})`;
    case 'changed':
      return `~ ${c.path}: ${shorten(c.from, max)} -> ${shorten(c.to, max)}`;
    default: {
      const never: never = c.op;
      return String(never);
    }
  }
}

/** A diff as lines (with a last line saying how many changes were left out). */
export function formatDiff(d: Diff, max = 60): string[] {
  return [...d.changes.map((c) => formatChange(c, max)), ...(d.truncated > 0 ? [`… and ${d.truncated} more changes`] : [])];
}
