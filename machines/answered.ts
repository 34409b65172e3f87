/**
 * The bid requests a Node answered, so that a repeat (gossip can deliver one request twice) is not answered again:
 * `${requester}/${dealId}:${nonce}` -> when to forget it (ms since the epoch). Bounded by its cap: past it, the
 * entries due to be forgotten soonest go first.
 *
 * Changed in place, on purpose. Copying the map on every request (what the Node did first) cost ~6 ms a request at
 * 10k entries and held the Node near 160 requests/s. Here lookup is O(1) (a property read), recording is O(1)
 * expected (a property write and a heap push, which rarely sifts: times mostly arrive in order), and pruning and
 * eviction pop the heap once per entry they drop (O(log n) each, every entry dropped once). A version of the table
 * (the small `Answered` record) is still a new object on every change, so the machine's context changes as
 * before, and `recorded`/`last` tell what a step added without comparing maps. What is shared is `until`: every
 * version points at the same map, which holds the latest state. So only the latest version may be used.
 *
 * Why snapshots and replay stay exact:
 * - The persisted form is `until` as it is: plain JSON, no derived data. The heap is derived (see `indexOf`): it is
 *   rebuilt from `until` on first use after a restore, and the order it evicts in is total (soonest time first,
 *   then the key), so a restored Node drops exactly the entries the live one dropped.
 * - A persisted snapshot shares `until` with the live actor until it is serialised. The runtime takes it in the
 *   actor's worker between two deliveries and clones it at once (postMessage); whoever takes one otherwise must
 *   serialise it before the actor takes another event.
 * - A table restored from a snapshot is adopted (copied once) before its first change, so two actors restored from
 *   the same snapshot object never share a map.
 */

export interface Answered {
  /** Key -> when to forget it. Shared by every version of the table and changed in place: see above. */
  readonly until: Readonly<Record<string, number>>;
  /** Entries in `until`. */
  readonly size: number;
  /** At most this many entries are kept. */
  readonly cap: number;
  /** Requests recorded since the Node began: the indexes count one for each (a new `recorded` has `last` as its key). */
  readonly recorded: number;
  readonly last: string | null;
}

/** At most this many answered requests are remembered by default (a Node's snapshot carries them all). */
export const MAX_ANSWERED = 10_000;

/** Per requester: another peer reusing a deal's id and nonce must not make the Node ignore the real one. */
export function answeredKey(dealId: string, nonce: number, requester: string): string {
  return `${requester}/${dealId}:${nonce}`;
}

/** A binary min-heap of (time, key) in two parallel arrays, ordered by time, then key. */
interface Heap {
  readonly t: number[];
  readonly k: string[];
}

/**
 * The heap of each live `until` map, and the map it belongs to. A cache of derived data (a WeakMap, so a dropped
 * table takes its heap with it): nothing here is read that `until` does not determine.
 */
const heaps = new WeakMap<object, Heap>();

export function emptyAnswered(cap = MAX_ANSWERED): Answered {
  if (!Number.isInteger(cap) || cap < 1) throw new RangeError(`the answered table's cap is a whole number >= 1, not ${cap}`);
  const until: Record<string, number> = {};
  heaps.set(until, { t: [], k: [] });
  return { until, size: 0, cap, recorded: 0, last: null };
}

/** When the Node forgets `key`; undefined when it does not remember it. */
export function answeredUntil(a: Answered, key: string): number | undefined {
  return Object.hasOwn(a.until, key) ? a.until[key] : undefined;
}

/** The table without the entries forgotten by `now`; the same version when none were. */
export function pruneAnswered(a: Answered, now: number): Answered {
  const { table, map, heap } = own(a);
  let size = table.size;
  while (heap.t.length > 0 && heap.t[0]! <= now) size -= drop(map, heap);
  return size === table.size ? table : { ...table, size };
}

/**
 * Remembers `key` until `until`, after dropping what is forgotten by `now`; past the cap, drops the entries due
 * soonest (which may be this one, when it is due soonest of all).
 */
export function rememberAnswered(a: Answered, key: string, until: number, now: number): Answered {
  const pruned = pruneAnswered(a, now);
  const { map, heap } = own(pruned);
  let size = pruned.size;
  if (!Object.hasOwn(map, key)) size += 1;
  // a key remembered again leaves its old heap slot stale: `drop` skips it, and `compact` clears such slots
  map[key] = until;
  push(heap, until, key);
  while (size > pruned.cap) size -= drop(map, heap);
  if (heap.t.length > 2 * size + 64) compact(map, heap);
  return { until: map, size, cap: pruned.cap, recorded: pruned.recorded + 1, last: key };
}

/** Its map and heap, adopting a table restored from a snapshot (or built by hand) first: copied, its heap built. */
function own(a: Answered): { table: Answered; map: Record<string, number>; heap: Heap } {
  const known = heaps.get(a.until);
  if (known) return { table: a, map: a.until as Record<string, number>, heap: known };
  const map: Record<string, number> = {};
  const heap: Heap = { t: [], k: [] };
  for (const key of Object.keys(a.until)) map[key] = a.until[key]!;
  compact(map, heap);
  heaps.set(map, heap);
  return { table: { ...a, until: map, size: heap.t.length }, map, heap };
}

/** Pops the heap's top; removes its entry when the slot is current. Returns how many entries went (0 or 1). */
function drop(map: Record<string, number>, heap: Heap): number {
  const t = heap.t[0]!;
  const key = heap.k[0]!;
  pop(heap);
  if (map[key] !== t) return 0;
  delete map[key];
  return 1;
}

/** Rebuilds the heap from the map (one slot per entry). */
function compact(map: Record<string, number>, heap: Heap): void {
  heap.t.length = 0;
  heap.k.length = 0;
  for (const key of Object.keys(map)) {
    heap.t.push(map[key]!);
    heap.k.push(key);
  }
  for (let i = (heap.t.length >> 1) - 1; i >= 0; i -= 1) down(heap, i);
}

function less(h: Heap, i: number, j: number): boolean {
  const a = h.t[i]!;
  const b = h.t[j]!;
  return a < b || (a === b && h.k[i]! < h.k[j]!);
}

function swap(h: Heap, i: number, j: number): void {
  const t = h.t[i]!;
  h.t[i] = h.t[j]!;
  h.t[j] = t;
  const k = h.k[i]!;
  h.k[i] = h.k[j]!;
  h.k[j] = k;
}

function push(h: Heap, t: number, key: string): void {
  h.t.push(t);
  h.k.push(key);
  let i = h.t.length - 1;
  while (i > 0) {
    const parent = (i - 1) >> 1;
    if (!less(h, i, parent)) break;
    swap(h, i, parent);
    i = parent;
  }
}

function pop(h: Heap): void {
  const t = h.t.pop()!;
  const k = h.k.pop()!;
  if (h.t.length === 0) return;
  h.t[0] = t;
  h.k[0] = k;
  down(h, 0);
}

function down(h: Heap, from: number): void {
  const n = h.t.length;
  let i = from;
  for (;;) {
    const l = 2 * i + 1;
    if (l >= n) return;
    const r = l + 1;
    const c = r < n && less(h, r, l) ? r : l;
    if (!less(h, c, i)) return;
    swap(h, i, c);
    i = c;
  }
}
