/**
 * The simulated clock's agenda: a binary heap of callbacks by (time, order of scheduling), so two things due at the
 * same simulated millisecond always run in the order they were scheduled, on every run.
 */
export class EventQueue {
  #times: number[] = [];
  #seqs: number[] = [];
  #jobs: (() => void)[] = [];
  #seq = 0;
  #now = 0;

  constructor(start = 0) {
    this.#now = start;
  }

  get now(): number {
    return this.#now;
  }

  get size(): number {
    return this.#jobs.length;
  }

  /** Runs `job` at simulated time `at` (never before now). */
  at(at: number, job: () => void): void {
    const t = at < this.#now ? this.#now : at;
    const s = this.#seq++;
    const times = this.#times;
    const seqs = this.#seqs;
    const jobs = this.#jobs;
    let i = jobs.length;
    times.push(t);
    seqs.push(s);
    jobs.push(job);
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (times[p]! < t || (times[p] === t && seqs[p]! < s)) break;
      times[i] = times[p]!;
      seqs[i] = seqs[p]!;
      jobs[i] = jobs[p]!;
      i = p;
    }
    times[i] = t;
    seqs[i] = s;
    jobs[i] = job;
  }

  after(ms: number, job: () => void): void {
    this.at(this.#now + ms, job);
  }

  /** The time of the next job, or Infinity when none is due. */
  peek(): number {
    return this.#jobs.length > 0 ? this.#times[0]! : Infinity;
  }

  /** Takes the next job and moves the clock to its time; undefined when none is left. */
  pop(): (() => void) | undefined {
    const jobs = this.#jobs;
    if (jobs.length === 0) return undefined;
    const times = this.#times;
    const seqs = this.#seqs;
    const top = jobs[0]!;
    this.#now = times[0]!;
    const lastT = times.pop()!;
    const lastS = seqs.pop()!;
    const lastJ = jobs.pop()!;
    const n = jobs.length;
    if (n > 0) {
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        if (l >= n) break;
        const r = l + 1;
        const c = r < n && (times[r]! < times[l]! || (times[r] === times[l] && seqs[r]! < seqs[l]!)) ? r : l;
        if (times[c]! > lastT || (times[c] === lastT && seqs[c]! > lastS)) break;
        times[i] = times[c]!;
        seqs[i] = seqs[c]!;
        jobs[i] = jobs[c]!;
        i = c;
      }
      times[i] = lastT;
      seqs[i] = lastS;
      jobs[i] = lastJ;
    }
    return top;
  }
}
