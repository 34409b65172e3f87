/**
 * The ids nearest to one that is not there, for "no actor X; did you mean ...": an id the wanted text starts, ends
 * or is part of comes first (with or without its kind prefix, `job/`), then the most similar by shared letter pairs
 * (Dice's coefficient: linear in the ids' lengths, so a log of many actors is ranked at once).
 */

function pairs(s: string): Map<string, number> {
  const m = new Map<string, number>();
  for (let i = 0; i + 1 < s.length; i += 1) {
    const p = s.slice(i, i + 2);
    m.set(p, (m.get(p) ?? 0) + 1);
  }
  return m;
}

/** Dice's coefficient of two strings' letter pairs, 0..1. */
export function similarity(a: string, b: string): number {
  if (a === b) return 1;
  if (a.length < 2 || b.length < 2) return 0;
  const pa = pairs(a);
  let shared = 0;
  for (const [p, n] of pairs(b)) shared += Math.min(n, pa.get(p) ?? 0);
  return (2 * shared) / (a.length - 1 + b.length - 1);
}

function score(wanted: string, id: string): number {
  const w = wanted.toLowerCase();
  const full = id.toLowerCase();
  const bare = full.slice(full.indexOf('/') + 1);
  if (full.startsWith(w) || bare.startsWith(w)) return 3;
  if (full.includes(w) || (w.length >= 4 && w.includes(bare))) return 2;
  return Math.max(similarity(w, full), similarity(w, bare));
}

/** Up to `n` ids near `wanted`, best first; none when nothing is near (similarity under `min`). */
export function closestIds(wanted: string, ids: Iterable<string>, n = 5, min = 0.4): string[] {
  const ranked: { id: string; s: number }[] = [];
  for (const id of ids) {
    const s = score(wanted, id);
    if (s >= min) ranked.push({ id, s });
  }
  return ranked.sort((a, b) => b.s - a.s || a.id.localeCompare(b.id)).slice(0, n).map((r) => r.id);
}
