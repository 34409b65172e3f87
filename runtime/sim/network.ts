/**
 * The simulated network: nodes in regions, a latency per link from the topology, a sender's uplink that carries
 * one message at a time (bandwidth), loss, duplication, reordering, and partitions that split the nodes into sides
 * that hear nothing of each other until they heal. Broadcasts (bid requests) travel a gossip mesh like gossipsub's:
 * each node links to a few others, and a broadcast reaches a node along the fastest path through the mesh over
 * nodes that are up and on the sender's side, after a forwarding cost per hop.
 */
import type { EventQueue } from './event-queue.ts';
import type { Random } from './random.ts';

export interface NetworkModel {
  /** Regions the nodes are spread over (round robin by index). */
  readonly regions: number;
  /** One-way latency within a region, and between two regions (the farther apart their numbers, the slower). */
  readonly intraMs: number;
  readonly interMs: number;
  /** Per-message latency spread: a message takes latency * (1 +- jitter). */
  readonly jitter: number;
  /** A node's uplink, bytes per simulated millisecond (12,500 = 100 Mbit/s). */
  readonly bytesPerMs: number;
  readonly loss: number;
  readonly duplicate: number;
  /** Chance that a message is held back up to `reorderMs` more (so a later one overtakes it). */
  readonly reorder: number;
  readonly reorderMs: number;
  /** Mesh links each node makes (gossipsub's D is 6: about `meshDegree` neighbours each). */
  readonly meshDegree: number;
  /** What forwarding a broadcast costs a node on its path (validation, dedup, re-send). */
  readonly hopMs: number;
}

export const LAN_MODEL: NetworkModel = Object.freeze({
  regions: 4,
  intraMs: 2,
  interMs: 30,
  jitter: 0.1,
  bytesPerMs: 12_500,
  loss: 0,
  duplicate: 0,
  reorder: 0,
  reorderMs: 20,
  meshDegree: 6,
  hopMs: 0.3,
});

/** Nodes on one machine's loopback, every one linked to every other (what `npm run sim:real` runs). */
export const LOOPBACK_MODEL: NetworkModel = Object.freeze({ ...LAN_MODEL, regions: 1, intraMs: 0.1, interMs: 0.1, jitter: 0.2, bytesPerMs: 1_000_000, meshDegree: Number.MAX_SAFE_INTEGER });

/** Counts of what the network carried and dropped. */
export interface NetworkCounters {
  direct: number;
  /** Transmissions of broadcasts over mesh links (each node forwards to its mesh neighbours). */
  broadcastHops: number;
  broadcasts: number;
  dropped: number;
  duplicated: number;
  partitioned: number;
}

interface Reach {
  readonly epoch: number;
  /** Nodes the broadcast reaches, nearest first, and when (ms after it is sent). */
  readonly order: Int32Array;
  readonly delay: Float64Array;
  readonly hops: number;
}

export class SimNetwork {
  readonly counters: NetworkCounters = { direct: 0, broadcastHops: 0, broadcasts: 0, dropped: 0, duplicated: 0, partitioned: 0 };
  readonly #up: Uint8Array;
  readonly #side: Int32Array;
  readonly #mesh: number[][];
  readonly #uplinkFree: Float64Array;
  readonly #reach = new Map<number, Reach>();
  #epoch = 0;

  constructor(
    readonly size: number,
    readonly model: NetworkModel,
    private readonly queue: EventQueue,
    private readonly rng: Random,
  ) {
    this.#up = new Uint8Array(size).fill(1);
    this.#side = new Int32Array(size);
    this.#uplinkFree = new Float64Array(size);
    this.#mesh = Array.from({ length: size }, () => []);
    // a degree of at least size - 1: everyone links to everyone (as 50 real nodes with --max-peers 50 do)
    if (model.meshDegree >= size - 1) {
      for (let a = 0; a < size; a += 1) for (let b = 0; b < size; b += 1) if (a !== b) this.#mesh[a]!.push(b);
      return;
    }
    // each node links to half its degree of random others; links go both ways, so each ends with about `meshDegree`
    const links = Math.max(1, Math.ceil(model.meshDegree / 2));
    for (let a = 0; a < size; a += 1) {
      for (let k = 0; k < Math.min(links, size - 1); k += 1) {
        let b = rng.int(0, size - 1);
        for (let tries = 0; (b === a || this.#mesh[a]!.includes(b)) && tries < 8; tries += 1) b = rng.int(0, size - 1);
        if (b === a || this.#mesh[a]!.includes(b)) continue;
        this.#mesh[a]!.push(b);
        this.#mesh[b]!.push(a);
      }
    }
  }

  /** The mesh neighbours of `a` (what a node's `hearers` are: a broadcast reaches them directly). */
  neighbours(a: number): readonly number[] {
    return this.#mesh[a]!;
  }

  region(a: number): number {
    return a % this.model.regions;
  }

  /** One-way latency of the link a -> b before jitter: by region, plus a fixed per-pair offset up to 20%. */
  latency(a: number, b: number): number {
    const ra = this.region(a);
    const rb = this.region(b);
    const base = ra === rb ? this.model.intraMs : this.model.interMs * (1 + Math.abs(ra - rb) / this.model.regions);
    const pair = ((Math.imul(Math.min(a, b) + 1, 0x9e3779b1) ^ Math.imul(Math.max(a, b) + 1, 0x85ebca6b)) >>> 0) / 4294967296;
    return base * (1 + 0.2 * pair);
  }

  isUp(a: number): boolean {
    return this.#up[a] === 1;
  }

  setUp(a: number, up: boolean): void {
    if (this.isUp(a) === up) return;
    this.#up[a] = up ? 1 : 0;
    this.#epoch += 1;
  }

  /** Splits the nodes: `sideOf(i)` names each node's side; messages between sides are lost until `heal`. */
  partition(sideOf: (node: number) => number): void {
    for (let i = 0; i < this.size; i += 1) this.#side[i] = sideOf(i);
    this.#epoch += 1;
  }

  heal(): void {
    this.#side.fill(0);
    this.#epoch += 1;
  }

  sameSide(a: number, b: number): boolean {
    return this.#side[a] === this.#side[b];
  }

  /** Sends `bytes` from a to b; `deliver` runs on arrival unless the message is lost on the way. */
  send(a: number, b: number, bytes: number, deliver: () => void): void {
    const m = this.model;
    const c = this.counters;
    c.direct += 1;
    if (!this.isUp(a)) return;
    if (!this.sameSide(a, b)) {
      c.partitioned += 1;
      return;
    }
    if (this.rng.chance(m.loss)) {
      c.dropped += 1;
      return;
    }
    const now = this.queue.now;
    // the sender's uplink carries one message at a time
    const start = Math.max(now, this.#uplinkFree[a]!);
    const wire = bytes / m.bytesPerMs;
    this.#uplinkFree[a] = start + wire;
    let at = start + wire + this.latency(a, b) * (1 + m.jitter * (2 * this.rng.float() - 1));
    if (this.rng.chance(m.reorder)) at += this.rng.float() * m.reorderMs;
    const arrive = () => {
      // a partition or a crash while it was on the way: lost
      if (!this.isUp(b) || !this.sameSide(a, b)) return void (c.partitioned += 1);
      deliver();
    };
    this.queue.at(at, arrive);
    if (this.rng.chance(m.duplicate)) {
      c.duplicated += 1;
      this.queue.at(at + this.rng.float() * m.reorderMs, arrive);
    }
  }

  /**
   * Broadcasts from `a`: `deliver(node)` runs at each node the mesh reaches (not `a`), nearest first. Returns how
   * many nodes it will reach.
   */
  broadcast(a: number, deliver: (node: number) => void): number {
    const c = this.counters;
    if (!this.isUp(a)) return 0;
    c.broadcasts += 1;
    const reach = this.#reachFrom(a);
    c.broadcastHops += reach.hops;
    const start = this.queue.now;
    const { order, delay } = reach;
    const loss = this.model.loss;
    const side = this.#side[a];
    let k = 0;
    const wave = (): void => {
      // everything due now (or before) goes; the wave then waits for the next node's time
      while (k < order.length && start + delay[k]! <= this.queue.now) {
        const b = order[k]!;
        k += 1;
        if (!this.isUp(b) || this.#side[b] !== side) {
          c.partitioned += 1;
          continue;
        }
        if (loss > 0 && this.rng.chance(loss)) {
          c.dropped += 1;
          continue;
        }
        deliver(b);
      }
      if (k < order.length) this.queue.at(start + delay[k]!, wave);
    };
    if (order.length > 0) this.queue.at(start + delay[0]!, wave);
    return order.length;
  }

  /** Fastest paths from `a` over the mesh, through nodes up and on a's side (Dijkstra), cached until the topology changes. */
  #reachFrom(a: number): Reach {
    const cached = this.#reach.get(a);
    if (cached && cached.epoch === this.#epoch) return cached;
    const n = this.size;
    const dist = new Float64Array(n).fill(Infinity);
    const done = new Uint8Array(n);
    const side = this.#side[a];
    dist[a] = 0;
    const heap: number[] = [a];
    const less = (x: number, y: number) => dist[x]! < dist[y]! || (dist[x] === dist[y] && x < y);
    const push = (v: number) => {
      heap.push(v);
      let i = heap.length - 1;
      while (i > 0) {
        const p = (i - 1) >> 1;
        if (!less(heap[i]!, heap[p]!)) break;
        [heap[i], heap[p]] = [heap[p]!, heap[i]!];
        i = p;
      }
    };
    const pop = (): number => {
      const top = heap[0]!;
      const last = heap.pop()!;
      if (heap.length > 0) {
        heap[0] = last;
        let i = 0;
        for (;;) {
          const l = 2 * i + 1;
          const r = l + 1;
          let m = i;
          if (l < heap.length && less(heap[l]!, heap[m]!)) m = l;
          if (r < heap.length && less(heap[r]!, heap[m]!)) m = r;
          if (m === i) break;
          [heap[i], heap[m]] = [heap[m]!, heap[i]!];
          i = m;
        }
      }
      return top;
    };
    const order: number[] = [];
    let hops = 0;
    while (heap.length > 0) {
      const u = pop();
      if (done[u]) continue;
      done[u] = 1;
      if (u !== a) order.push(u);
      const links = this.#mesh[u]!;
      // every node that has it sends it on to its mesh neighbours (gossipsub: to its mesh, not back to the sender)
      hops += u === a ? links.length : Math.max(0, links.length - 1);
      for (const v of links) {
        if (done[v] || this.#up[v] !== 1 || this.#side[v] !== side) continue;
        const d = dist[u]! + this.latency(u, v) + this.model.hopMs;
        if (d < dist[v]!) {
          dist[v] = d;
          push(v);
        }
      }
    }
    const delay = new Float64Array(order.length);
    for (let i = 0; i < order.length; i += 1) delay[i] = dist[order[i]!]!;
    const reach: Reach = { epoch: this.#epoch, order: Int32Array.from(order), delay, hops };
    this.#reach.set(a, reach);
    return reach;
  }
}
