/**
 * Start and stop of a composition root as ordered phases, the way js-libp2p's `components.ts` starts and stops its
 * services: the order is declared once, start runs it forward and stop runs it in exact reverse. A phase that fails
 * to start stops the ones already started, in reverse, and the start fails with its error.
 *
 * Each phase is one component: its start gets the parts the phases before it made, and returns the parts it makes
 * (typed: a phase can only name parts made before it) and how to stop what it started. A phase whose start throws
 * cleans up after itself, as a constructor that throws would; nothing of it is stopped.
 */

/** What a phase started: the parts it hands on to the phases after it, and how to stop it. */
export interface Started<Out extends object> {
  readonly parts?: Out;
  readonly stop?: () => Promise<void> | void;
}

/** Starts one phase from the parts made before it. Returning nothing: it hands on nothing and has nothing to stop. */
export type PhaseStart<In extends object, Out extends object> = (parts: In) => Promise<Started<Out> | void> | Started<Out> | void;

export type LifecycleStatus = 'idle' | 'starting' | 'started' | 'stopping' | 'stopped';

export interface LifecycleOptions {
  /** Told of each stop that failed and is not the error `stop()` rejects with: every one during the rollback of a
   * failed start (which rejects with the start's error), every one after the first during `stop()`. */
  readonly onStopError?: (phase: string, err: Error) => void;
}

/** A phase was added, or the lifecycle started, when it no longer could be. */
export class LifecycleStateError extends Error {
  override name = 'LifecycleStateError';
}

interface Phase {
  readonly name: string;
  readonly start: PhaseStart<object, object>;
}

interface Running {
  readonly name: string;
  readonly stop: () => Promise<void> | void;
}

const asError = (e: unknown): Error => (e instanceof Error ? e : new Error(String(e)));

/** Phases declared with `phase()` in start order; `start()` once, `stop()` any number of times. */
export class Lifecycle<P extends object> {
  readonly #phases: Phase[] = [];
  /** Started phases with something to stop, in start order. */
  readonly #running: Running[] = [];
  #status: LifecycleStatus = 'idle';
  #starting: Promise<P> | undefined;
  #stopping: Promise<void> | undefined;

  constructor(
    readonly initial: P,
    readonly opts: LifecycleOptions = {},
  ) {}

  get status(): LifecycleStatus {
    return this.#status;
  }

  /** Declares the next phase. */
  phase<Out extends object = {}>(name: string, start: PhaseStart<P, Out>): Lifecycle<P & Out> {
    if (this.#status !== 'idle') throw new LifecycleStateError(`phase ${name} added to a lifecycle that is ${this.#status}`);
    this.#phases.push({ name, start: start as unknown as PhaseStart<object, object> });
    return this as unknown as Lifecycle<P & Out>;
  }

  /** Starts every phase in order; resolves with all the parts they made. On a failure, see the module comment. */
  start(): Promise<P> {
    if (this.#status !== 'idle') return Promise.reject(new LifecycleStateError(`start of a lifecycle that is ${this.#status}`));
    this.#status = 'starting';
    this.#starting = this.#startAll();
    return this.#starting;
  }

  /**
   * Stops every started phase in reverse order, each one even when one before it failed; rejects with the first
   * failure. Idempotent: later calls get the same promise. Called during start, it waits for the start to end.
   */
  stop(): Promise<void> {
    this.#stopping ??= this.#stopAll();
    return this.#stopping;
  }

  async #startAll(): Promise<P> {
    let parts: object = this.initial;
    for (const phase of this.#phases) {
      try {
        const started = await phase.start(parts);
        if (started?.parts) parts = { ...parts, ...started.parts };
        if (started?.stop) this.#running.push({ name: phase.name, stop: started.stop });
      } catch (e) {
        this.#status = 'stopping';
        for (const f of await this.#unwind()) this.opts.onStopError?.(f.phase, f.err);
        this.#status = 'stopped';
        throw e;
      }
    }
    this.#status = 'started';
    return parts as P;
  }

  async #stopAll(): Promise<void> {
    await this.#starting?.catch(() => {}); // a failed start has already stopped what it started
    if (this.#status === 'stopped') return;
    this.#status = 'stopping';
    const [first, ...rest] = await this.#unwind();
    this.#status = 'stopped';
    for (const f of rest) this.opts.onStopError?.(f.phase, f.err);
    if (first) throw first.err;
  }

  /** Stops the running phases, last started first; returns the failures in the order they happened. */
  async #unwind(): Promise<{ phase: string; err: Error }[]> {
    const failures: { phase: string; err: Error }[] = [];
    for (let r = this.#running.pop(); r; r = this.#running.pop()) {
      try {
        await r.stop();
      } catch (e) {
        failures.push({ phase: r.name, err: asError(e) });
      }
    }
    return failures;
  }
}
