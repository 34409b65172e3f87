/**
 * What one tunnel listener or acceptor counts: connections carried, bytes each way, refusals by reason. And the
 * log of refusals: the first per peer and reason in a while at warn, the rest at debug, so a peer sending
 * garbage cannot flood the log.
 */

export interface TunnelLog {
  debug(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
}

export interface TunnelCountersView {
  /** Tunnels that got past the handshake. */
  readonly opened: number;
  /** Tunnels carrying bytes now. */
  readonly active: number;
  /** Bytes sent to the peer (read from the local TCP socket). */
  readonly bytesToPeer: number;
  /** Bytes received from the peer (written to the local TCP socket). */
  readonly bytesFromPeer: number;
  /** Connections or streams refused, by reason. */
  readonly refused: Readonly<Record<string, number>>;
  readonly refusedTotal: number;
  /** Tunnels that ended with an error (reset, aborted) rather than both sides closing. */
  readonly aborted: number;
}

export class TunnelCounters {
  opened = 0;
  active = 0;
  bytesToPeer = 0;
  bytesFromPeer = 0;
  aborted = 0;
  readonly #refused = new Map<string, number>();

  refuse(reason: string): void {
    this.#refused.set(reason, (this.#refused.get(reason) ?? 0) + 1);
  }

  view(): TunnelCountersView {
    const refused = Object.fromEntries([...this.#refused].sort(([a], [b]) => a.localeCompare(b)));
    const refusedTotal = [...this.#refused.values()].reduce((a, b) => a + b, 0);
    return { opened: this.opened, active: this.active, bytesToPeer: this.bytesToPeer, bytesFromPeer: this.bytesFromPeer, refused, refusedTotal, aborted: this.aborted };
  }
}

/** A refusal is logged at warn once per peer and reason in this window; the rest at debug. */
const WARN_EVERY_MS = 60_000;
/** Peer-and-reason pairs remembered for that; the memory is dropped whole when full. */
const WARN_KEYS = 1024;

/** Logs refusals, the first per peer and reason in a while at warn (when `loud`), the rest at debug. */
export class RefusalLog {
  readonly #lastWarn = new Map<string, number>();

  constructor(readonly log: TunnelLog) {}

  note(peer: string, reason: string, detail: string, loud: boolean): void {
    const key = `${peer} ${reason}`;
    const now = Date.now();
    const last = this.#lastWarn.get(key);
    if (loud && (last === undefined || now - last >= WARN_EVERY_MS)) {
      if (this.#lastWarn.size >= WARN_KEYS) this.#lastWarn.clear();
      this.#lastWarn.set(key, now);
      this.log.warn({ peer, reason, detail }, `tunnel refused: ${reason} (${detail}); more from this peer for this reason within ${WARN_EVERY_MS / 1000} s are logged at debug`);
      return;
    }
    this.log.debug({ peer, reason, detail }, `tunnel refused: ${reason} (${detail})`);
  }
}
