/**
 * A statechart bound to its shell: it collects the intents the machine emits while a batch is delivered,
 * restores from a versioned snapshot, and replays events with effects switched off.
 */
import { type AnyStateMachine, type Actor, type InspectionEvent, createActor } from 'xstate';
import type { ActorView, DeliverResult, IndexedFact, InspectionRecord, PlainSnapshot, VersionedSnapshot } from './actor.protocol.ts';

/** One kind of actor: its machine, the version of its snapshot shape, and how its state is shown. */
export interface ActorKind {
  readonly kind: string;
  readonly version: number;
  readonly logic: AnyStateMachine;
  /** A plain view of a snapshot's context for clients (defaults to the context itself). */
  readonly present?: (context: unknown, value: unknown) => unknown;
  /** Recorded facts between two contexts (for the indexes); computed live and during replay alike. */
  readonly facts?: (before: unknown, after: unknown) => readonly { readonly type: string }[];
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
  #sink: string[] | null = null;
  #inspections: InspectionRecord[] | null;
  #facts: IndexedFact[] = [];
  #context: unknown;

  constructor(readonly id: string, kind: ActorKind, opts: { snapshot?: VersionedSnapshot; input?: unknown; replay?: readonly unknown[]; inspect?: boolean }) {
    this.#kind = kind;
    if (opts.snapshot && (opts.snapshot.kind !== kind.kind || opts.snapshot.version !== kind.version)) {
      throw new SnapshotVersionError(opts.snapshot.kind, opts.snapshot.version, kind.version);
    }
    this.#inspections = opts.inspect ? [] : null;
    this.#actor = createActor(kind.logic, {
      id,
      input: opts.input,
      ...(opts.snapshot ? { snapshot: opts.snapshot.snapshot as never } : {}),
      ...(opts.inspect ? { inspect: (e: InspectionEvent) => this.#inspect(e) } : {}),
    });
    this.#actor.on('*', (intent) => this.#sink?.push(JSON.stringify(intent)));
    // A failure is reported by deliver() (or thrown from here during replay). Without an error observer xstate
    // would also rethrow it from a timer as an uncaught exception, killing the replay tool or the whole worker.
    this.#actor.subscribe({ error: () => {} });
    this.#actor.start();
    this.#context = this.#actor.getSnapshot().context;
    const replay = opts.replay ?? [];
    for (let i = 0; i < replay.length; i += 1) {
      this.#actor.send(replay[i] as never);
      this.#collectFacts(i);
    }
    this.#throwIfFailed();
  }

  /**
   * Sends each event in order and returns the intents they produced, as JSON text: intents kept as objects until
   * the batch ends make V8 pretenure them, which more than halves the event rate; short-lived strings do not.
   */
  deliver(batch: readonly unknown[]): DeliverResult {
    const parts: string[] = [];
    this.#sink = parts;
    const intents = () => `[${parts.join(',')}]`;
    try {
      for (let i = 0; i < batch.length; i += 1) {
        this.#actor.send(batch[i] as never);
        this.#collectFacts(i);
        const snap = this.#actor.getSnapshot();
        if (snap.status === 'error') {
          const err = snap.error as { name?: string; message?: string } | undefined;
          return { intents: intents(), processed: i, failure: { index: i, name: err?.name ?? 'Error', message: err?.message ?? String(err) }, ...this.#takeInspections() };
        }
      }
      return { intents: intents(), processed: batch.length, ...this.#takeInspections() };
    } finally {
      this.#sink = null;
    }
  }

  /** The inspection records and facts collected since the last call. */
  #takeInspections(): { inspections?: InspectionRecord[]; facts?: IndexedFact[] } {
    const out: { inspections?: InspectionRecord[]; facts?: IndexedFact[] } = {};
    if (this.#inspections && this.#inspections.length > 0) {
      out.inspections = this.#inspections;
      this.#inspections = [];
    }
    if (this.#facts.length > 0) {
      out.facts = this.#facts;
      this.#facts = [];
    }
    return out;
  }

  /** Facts produced by the event at `index` of the current batch (or replay). */
  #collectFacts(index: number): void {
    if (!this.#kind.facts) return;
    const context = this.#actor.getSnapshot().context;
    if (context === this.#context) return;
    for (const fact of this.#kind.facts(this.#context, context)) this.#facts.push({ index, fact });
    this.#context = context;
  }

  /** Facts of the replay done at construction. */
  takeFacts(): IndexedFact[] {
    const f = this.#facts;
    this.#facts = [];
    return f;
  }

  takeInspections(): InspectionRecord[] {
    const r = this.#inspections ?? [];
    if (this.#inspections) this.#inspections = [];
    return r;
  }

  /** The current state value (cheap; for replay timelines). */
  get value(): unknown {
    return this.#actor.getSnapshot().value;
  }

  #inspect(e: InspectionEvent): void {
    const ref = e.actorRef as unknown as { sessionId: string; id?: string; _parent?: { sessionId: string }; logic?: { toJSON?: () => unknown } };
    const plain = (s: unknown): PlainSnapshot => {
      // xstate announces an actor (@xstate.actor) from its constructor, before it has a snapshot
      const snap = (s ?? {}) as { value?: unknown; context?: unknown; status?: string };
      return { value: snap.value, context: snap.context, status: snap.status ?? 'active' };
    };
    // session ids are numbered per thread (x:0, x:1, ...): qualify them by the hosted actor's id, unique per node
    const sid = (id: string) => `${this.id}/${id}`;
    const base = { sessionId: sid(ref.sessionId), ...(e.rootId ? { rootId: sid(e.rootId) } : {}) };
    if (e.type === '@xstate.actor') {
      const def = ref.logic?.toJSON?.();
      this.#inspections?.push({ type: e.type, ...base, name: ref.id ?? ref.sessionId, ...(ref._parent ? { parentId: sid(ref._parent.sessionId) } : {}), ...(def ? { definition: JSON.stringify(def) } : {}), snapshot: plain(e.actorRef.getSnapshot()) });
    } else if (e.type === '@xstate.event') {
      const source = e.sourceRef as unknown as { sessionId?: string } | undefined;
      this.#inspections?.push({ type: e.type, ...base, ...(source?.sessionId ? { sourceId: sid(source.sessionId) } : {}), event: e.event });
    } else if (e.type === '@xstate.snapshot') {
      this.#inspections?.push({ type: e.type, ...base, event: e.event, snapshot: plain(e.snapshot) });
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
