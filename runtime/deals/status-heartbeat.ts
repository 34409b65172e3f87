/**
 * The latest status of each allocation running here, sent again to its requester every `intervalMs` as a
 * heartbeat, so the requester knows the job is alive (it takes a job that sends nothing for a while as lost).
 */
import type { AllocationStatusMsg } from '../../machines/deal.wire.ts';
import type { Clock, Timer } from '../clock.ts';

export type AllocationStatus = Omit<AllocationStatusMsg, 'type'>;

export class StatusHeartbeat {
  readonly #latest = new Map<string, { readonly to: string; readonly status: AllocationStatus }>();
  #timer: Timer | undefined;

  constructor(
    private readonly deps: {
      readonly clock: Clock;
      readonly intervalMs: number;
      /** Sends one status to the requester `to`. */
      readonly send: (to: string, status: AllocationStatus) => void;
    },
  ) {}

  /** An allocation's latest status, sent to `to`: repeated while it is short of the end, forgotten once it ended. */
  note(to: string, status: AllocationStatus, ended: boolean): void {
    if (ended) this.#latest.delete(status.allocationId);
    else this.#latest.set(status.allocationId, { to, status });
  }

  /** The allocation ended. */
  forget(allocationId: string): void {
    this.#latest.delete(allocationId);
  }

  /** The allocations running here that have not ended, counted by their latest state (the node's metrics). */
  countByState(): Map<AllocationStatus['state'], number> {
    const counts = new Map<AllocationStatus['state'], number>();
    for (const { status } of this.#latest.values()) counts.set(status.state, (counts.get(status.state) ?? 0) + 1);
    return counts;
  }

  start(): void {
    this.#timer ??= this.deps.clock.every(this.deps.intervalMs, () => this.beat());
  }

  /** Sends the latest status of every unfinished allocation again. */
  beat(): void {
    for (const s of this.#latest.values()) this.deps.send(s.to, s.status);
  }

  stop(): void {
    this.#timer?.clear();
    this.#timer = undefined;
  }
}
