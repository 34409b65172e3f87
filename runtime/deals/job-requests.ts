/**
 * The jobs this node asked for, while they are placed and run: what the runtime needs of each beyond its
 * requester machine. Its job spec (a WASM job's allocate carries the module the spec names), and the peers its
 * rounds asked for bids: the only ones whose answers reach the job, unless the latest round was broadcast beyond
 * this node's neighbours (open: any peer the mesh reached may answer, and joins the asked ones, up to
 * MAX_ANSWERERS per job).
 */
import type { JobSpec } from '../../machines/job.ts';

/** The most peers whose answers one job takes (its neighbours and the farther peers of open rounds). */
export const MAX_ANSWERERS = 1024;

interface Asked {
  readonly peers: Set<string>;
  open: boolean;
}

export class JobRequests {
  readonly #jobs = new Map<string, JobSpec>();
  readonly #asked = new Map<string, Asked>();

  /** A job this node asks for (deployed, or recovered at start). */
  open(dealId: string, job: JobSpec): void {
    this.#jobs.set(dealId, job);
  }

  spec(dealId: string): JobSpec | undefined {
    return this.#jobs.get(dealId);
  }

  /** A round's request went to `candidates` (added to the peers asked before); `open`: it went beyond them. */
  asked(dealId: string, candidates: readonly string[], open: boolean): void {
    const peers = this.#asked.get(dealId)?.peers ?? new Set<string>();
    for (const p of candidates) peers.add(p);
    this.#asked.set(dealId, { peers, open });
  }

  /** A recovered job: the peers its record names (its provider, its bidders, its decliners) may still answer. */
  recovered(dealId: string, peers: readonly string[]): void {
    this.#asked.set(dealId, { peers: new Set(peers), open: false });
  }

  /** Whether a deal message from `peer` may reach the job: a peer it asked, or a bid or decline in an open round. */
  mayAnswer(dealId: string, peer: string, type: string): boolean {
    const asked = this.#asked.get(dealId);
    if (!asked) return false;
    if (asked.peers.has(peer)) return true;
    if (!asked.open || (type !== 'bid.submit' && type !== 'bid.decline') || asked.peers.size >= MAX_ANSWERERS) return false;
    asked.peers.add(peer);
    return true;
  }

  /** The job ended: nothing more reaches it. */
  close(dealId: string): void {
    this.#jobs.delete(dealId);
    this.#asked.delete(dealId);
  }
}
