/**
 * A statechart bound to its shell: it collects the intents the machine emits while a batch is delivered,
 * restores from a versioned snapshot, and replays events with effects switched off.
 */
import { type AnyStateMachine, type Actor, createActor } from 'xstate';
import type { ActorView, DeliverResult, VersionedSnapshot } from './actor.protocol.ts';

/** One kind of actor: its machine, the version of its snapshot shape, and how its state is shown. */
export interface ActorKind {
  readonly kind: string;
  readonly version: number;
  readonly logic: AnyStateMachine;
  /** A plain view of a snapshot's context for clients (defaults to the context itself). */
  readonly present?: (context: unknown, value: unknown) => unknown;
}

export class SnapshotVersionError extends Error {
  override name = 'SnapshotVersionError';
  constructor(kind: string, found: number, expected: number) {
    super(`snapshot of ${kind} has machine version ${found}, this build reads version ${expected}; replay the event log or remove the stale snapshot`);
  }
}

export class UnknownActorKindError extends Error {
  override name = 'UnknownActorKindError';
  constructor(kind: string) {
    super(`no actor kind named "${kind}" is registered in this worker`);
  }
}

export class HostedActor {
  readonly #kind: ActorKind;
  readonly #actor: Actor<AnyStateMachine>;
  #sink: unknown[] | null = null;

  constructor(readonly id: string, kind: ActorKind, opts: { snapshot?: VersionedSnapshot; input?: unknown; replay?: readonly unknown[] }) {
    this.#kind = kind;
    if (opts.snapshot && (opts.snapshot.kind !== kind.kind || opts.snapshot.version !== kind.version)) {
      throw new SnapshotVersionError(opts.snapshot.kind, opts.snapshot.version, kind.version);
    }
    this.#actor = createActor(kind.logic, {
      id,
      input: opts.input,
      ...(opts.snapshot ? { snapshot: opts.snapshot.snapshot as never } : {}),
    });
    this.#actor.on('*', (intent) => this.#sink?.push(intent));
    this.#actor.start();
    for (const e of opts.replay ?? []) this.#actor.send(e as never);
    this.#throwIfFailed();
  }

  /** Sends each event in order and returns the intents they produced. */
  deliver(batch: readonly unknown[]): DeliverResult {
    const intents: unknown[] = [];
    this.#sink = intents;
    try {
      for (let i = 0; i < batch.length; i += 1) {
        this.#actor.send(batch[i] as never);
        const snap = this.#actor.getSnapshot();
        if (snap.status === 'error') {
          const err = snap.error as { name?: string; message?: string } | undefined;
          return { intents, processed: i, failure: { index: i, name: err?.name ?? 'Error', message: err?.message ?? String(err) } };
        }
      }
      return { intents, processed: batch.length };
    } finally {
      this.#sink = null;
    }
  }

  persisted(seq: number): VersionedSnapshot {
    return { kind: this.#kind.kind, version: this.#kind.version, seq, snapshot: this.#actor.getPersistedSnapshot() };
  }

  view(): ActorView {
    const snap = this.#actor.getSnapshot();
    const context = this.#kind.present ? this.#kind.present(snap.context, snap.value) : snap.context;
    return { id: this.id, kind: this.#kind.kind, status: snap.status, value: snap.value, context };
  }

  stop(): void {
    this.#actor.stop();
  }

  #throwIfFailed(): void {
    const snap = this.#actor.getSnapshot();
    if (snap.status === 'error') throw snap.error instanceof Error ? snap.error : new Error(String(snap.error));
  }
}
