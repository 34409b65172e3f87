/**
 * The effects of the Node's intents: benchmarking, saving the registration and preferences to the store,
 * the lock-expiry timer, and logs. The supervisor hands over intents only from live events, never replayed ones.
 */
import type { NodeEvent, NodeIntent } from '../../machines/node.messages.ts';
import { runBenchmark } from './benchmark.ts';
import type { Logger } from '../logger.ts';
import type { DexieEventLog } from '../store/dexie-event-log.ts';
import type { ActorRef } from '../supervisor/supervisor.ts';

type NodeRef = ActorRef<NodeEvent>;

/** Store meta keys (the "identity and capability" table). */
export const REGISTRATION_KEY = 'registration';
export const PREFERENCES_KEY = 'preferences';
export const IDENTITY_KEY = 'identity';

/** Carries out the Node's intents. Store writes are serialised so they land in order. */
export function createNodeEffects(deps: { dataDir: string; log: Logger; store: DexieEventLog; node: () => NodeRef; onRegistered: () => void; deals: (intents: readonly unknown[]) => void }) {
  let writes = Promise.resolve();
  let timer: NodeJS.Timeout | undefined;
  const write = (key: string, value: unknown) => {
    writes = writes.then(() => deps.store.putMeta(key, value)).catch((e: Error) => deps.log.error({ key, err: e.message }, `could not save ${key}`));
  };
  const handle = (intent: NodeIntent): void => {
    switch (intent.type) {
      case 'benchmark.run':
        runBenchmark({ dataDir: deps.dataDir }).then(
          (benchmark) => deps.node().send({ type: 'benchmark.done', benchmark } satisfies NodeEvent, 'benchmark'),
          (e: Error) => deps.node().send({ type: 'benchmark.fail', reason: e.message } satisfies NodeEvent, 'benchmark'),
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
        clearTimeout(timer);
        if (intent.at !== null) {
          timer = setTimeout(() => deps.node().send({ type: 'ledger.expire', now: Date.now() } satisfies NodeEvent, 'timer'), Math.max(0, intent.at - Date.now()));
          timer.unref();
        }
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
    handle: (intents: readonly unknown[]) => intents.forEach((i) => handle(i as NodeIntent)),
    flush: () => writes,
    stop: () => clearTimeout(timer),
  };
}
