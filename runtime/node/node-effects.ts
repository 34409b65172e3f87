/**
 * The effects of the Node's intents: benchmarking, saving the registration and preferences to the store,
 * the lock-expiry timer, and logs. The supervisor hands over intents only from live events, never replayed ones.
 */
import type { NodeEvent, NodeIntent } from '../../machines/node.messages.ts';
import { runBenchmark } from './benchmark.ts';
import type { Clock, Timer } from '../clock.ts';
import type { Logger } from '../logger.ts';
import type { DexieEventLog } from '../store/dexie-event-log.ts';
import type { ActorRef } from '../supervisor/supervisor.ts';

type NodeRef = ActorRef<NodeEvent>;

/** Store meta keys (the "identity and capability" table). */
export const REGISTRATION_KEY = 'registration';
export const PREFERENCES_KEY = 'preferences';
export const IDENTITY_KEY = 'identity';

export interface NodeEffectsDeps {
  readonly dataDir: string;
  readonly log: Logger;
  readonly store: DexieEventLog;
  /** The Node actor: benchmark results and lock expiries go back to it. */
  readonly node: NodeRef;
  /** Reads the time and runs the lock-expiry timer. */
  readonly clock: Clock;
  /** The Node saved its registration or its preferences: whatever was derived from them is stale. */
  readonly onRegistered: () => void;
  /** The Node's intents that the deal service carries out. */
  readonly deals: (intents: readonly unknown[]) => void;
}

export interface NodeEffects {
  handle(intents: readonly unknown[]): void;
  /** Resolves once no benchmark is running: each one this started has sent its result to the Node. */
  benchmarked(): Promise<void>;
  /** Resolves once every store write asked for so far has landed (or failed, which is logged). */
  flush(): Promise<void>;
  /** Clears the lock-expiry timer: nothing of these effects sends to the Node any more by itself. */
  stop(): void;
}

/** Carries out the Node's intents. Store writes are serialised so they land in order. */
export function createNodeEffects(deps: NodeEffectsDeps): NodeEffects {
  const { node, clock } = deps;
  let writes = Promise.resolve();
  let timer: Timer | undefined;
  const benchmarks = benchmarkTracker();
  const write = (key: string, value: unknown) => {
    writes = writes.then(() => deps.store.putMeta(key, value)).catch((e: Error) => deps.log.error({ key, err: e.message }, `could not save ${key}`));
  };
  const handle = (intent: NodeIntent): void => {
    switch (intent.type) {
      case 'benchmark.run':
        benchmarks.track(
          runBenchmark({ dataDir: deps.dataDir, clock }).then(
            (benchmark) => node.send({ type: 'benchmark.done', benchmark } satisfies NodeEvent, 'benchmark'),
            (e: Error) => node.send({ type: 'benchmark.fail', reason: e.message } satisfies NodeEvent, 'benchmark'),
          ),
        );
        return;
      case 'registration.save':
        write(REGISTRATION_KEY, intent.registration);
        deps.onRegistered();
        return;
      case 'preferences.save':
        write(PREFERENCES_KEY, intent.preferences);
        deps.onRegistered();
        return;
      case 'onboarding.failed':
        deps.log.warn({ problems: intent.problems }, 'onboarding failed');
        return;
      case 'timer.schedule':
        timer?.clear();
        timer = intent.at === null ? undefined : clock.after(intent.at - clock.now(), () => node.send({ type: 'ledger.expire', now: clock.now() } satisfies NodeEvent, 'timer'));
        return;
      case 'allocation.stop':
        deps.log.info({ allocation: intent.allocationId }, 'stopping allocation');
        return;
      case 'log.write':
        deps.log[intent.level](intent.data ?? {}, intent.message);
        return;
      case 'reply.send':
        return;
      case 'bid.open':
      case 'bid.decline.send':
        deps.deals([intent]);
        return;
      default: {
        const never: never = intent;
        deps.log.warn({ intent: never }, 'unknown intent');
      }
    }
  };
  return {
    handle: (intents) => intents.forEach((i) => handle(i as NodeIntent)),
    benchmarked: () => benchmarks.idle(),
    flush: () => writes,
    stop: () => timer?.clear(),
  };
}

/** Counts the benchmarks under way and tells whoever waits when none is left. */
function benchmarkTracker() {
  let running = 0;
  let waiting: (() => void)[] = [];
  return {
    track(done: Promise<void>): void {
      running += 1;
      // ends this benchmark either way; a send that threw (the Node had stopped) still surfaces, as unhandled
      void done.finally(() => {
        running -= 1;
        if (running > 0) return;
        const wake = waiting;
        waiting = [];
        for (const w of wake) w();
      });
    },
    idle: (): Promise<void> => (running === 0 ? Promise.resolve() : new Promise<void>((resolve) => waiting.push(resolve))),
  };
}
