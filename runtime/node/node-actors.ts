/**
 * The `actors` phase of a running node: the supervisor, the Node actor (recovered from its log when the data dir has
 * one), and the two services that carry out its actors' intents: the Node's effects and the deal service. They
 * start together because they need one another: the supervisor hands intents to the services, which answer the
 * actors it hosts.
 */
import type { TrustEvent } from '../../machines/trust.machine.ts';
import { TrustService } from '../trust/trust-service.ts';
import { ACTIVITY_DEFAULTS, ActivityFeed, observedLog } from '../api/activity-feed.ts';
import type { NodeView } from '../../actors/node.actor.ts';
import type { NodeEvent } from '../../machines/node.messages.ts';
import type { Clock } from '../clock.ts';
import { type RunConfig, resolveMinFreeDisk } from '../config.ts';
import type { DealServiceInit } from '../deals/deal-config.ts';
import { handleDealIntents } from '../deals/deal-effects.ts';
import { DealService } from '../deals/deal-service.ts';
import { ProcessExecutor } from '../executors/process-executor.ts';
import { WasiExecutor } from '../executors/wasm-executor.ts';
import { WasmRunnerPool } from '../executors/wasm-pool.ts';
import type { InspectorBridge } from '../inspector/inspector.ts';
import type { Logger } from '../logger.ts';
import type { Timings } from '../api/metrics.ts';
import type { NetworkService } from '../net/network-service.ts';
import type { DexieEventLog, RecoveryReport } from '../store/dexie-event-log.ts';
import { BidGate } from '../deals/bid-gate.ts';
import { INDEXES_KEY, type IndexStore, recordFacts } from '../store/projections.ts';
import { type ActorRef, type Recovery, SUPERVISOR_DEFAULTS, Supervisor } from '../supervisor/supervisor.ts';
import type { Identity, NodeId } from './identity.ts';
import type { Started } from './lifecycle.ts';
import { diskTotal } from './monitor.ts';
import { type NodeEffects, createNodeEffects } from './node-effects.ts';

export type NodeRef = ActorRef<NodeEvent>;

/** The network as the deal service reaches it: set by the `network` phase, which starts after this one. */
export interface NetworkSlot {
  current: NetworkService | undefined;
}

/** The identity document the API last built, kept until the Node saves a new registration or preferences. */
export interface DescriptorCache {
  get(): { key: string; nodeId: NodeId } | undefined;
  set(d: { key: string; nodeId: NodeId }): void;
}

export interface Actors {
  readonly supervisor: Supervisor;
  readonly node: NodeRef;
  readonly effects: NodeEffects;
  readonly deals: DealService;
  readonly recovery: Recovery;
  readonly descriptor: DescriptorCache;
  /** What the actors just did (every event their logs accepted), for the dashboard. */
  readonly feed: ActivityFeed;
  /** Capability tokens: what this node trusts and holds, and the check the deal path asks. */
  readonly trust: TrustService;
}

/** Starts the actors. Stops them as a unit: no timer fires into them while the supervisor takes them down. */
export async function startActors(p: {
  readonly config: RunConfig;
  readonly log: Logger;
  readonly clock: Clock;
  readonly escalate: (e: Error) => void;
  readonly net: NetworkSlot;
  readonly identity: Identity;
  readonly store: DexieEventLog;
  readonly storeRecovery: RecoveryReport;
  readonly indexes: IndexStore;
  readonly inspector: InspectorBridge | null;
  readonly timings: Timings;
}): Promise<Started<Actors>> {
  const { config, log, clock, store, indexes, inspector } = p;
  const { dataDir } = config;
  // fed the Node's facts from its first event on, before the deal service that uses it exists
  const gate = new BidGate();
  const feed = new ActivityFeed(ACTIVITY_DEFAULTS, clock);
  const supervisor = new Supervisor(SUPERVISOR_DEFAULTS, {
    log,
    eventLog: observedLog(store, feed),
    // Intents come from live events only, so none before the Node is spawned and `effects` and `deals` exist.
    onIntents: (id, intents) => (id === 'node' ? effects.handle(intents) : handleDealIntents(deals, id, intents)),
    onEscalate: p.escalate,
    onFacts: (facts) => {
      p.timings.facts(facts, indexes.getSnapshot().context); // before the fold: a job's previous state is there
      recordFacts(indexes, facts);
      gate.facts(facts);
    },
    snapshotMeta: (id) => (id === 'node' ? [{ key: INDEXES_KEY, value: indexes.getSnapshot().context }] : []),
    now: () => clock.now(),
    ...(inspector ? { onInspect: (records) => inspector.forward(records) } : {}),
  });
  const node = await spawnNode(supervisor);
  const facts = cachedNodeFacts(node);
  // what this node trusts and holds (capability tokens, anchors, revocations): before the deals that ask it
  const trust = new TrustService({
    actor: await supervisor.spawn<TrustEvent>({ id: 'trust', kind: 'trust', input: {}, placement: 'shared' }).catch(async (e: Error) => {
      await supervisor.stop().catch(() => {});
      throw e;
    }),
    key: p.identity.key,
    clock,
    // the flag, or the provider preference (the Node machine applies the same rule to each bid request)
    requireGrants: async () => config.requireGrants || (await facts.get()).preferences.provider.requireGrants === true,
  });
  await trust.start();
  const descriptor = descriptorCache();
  const deals = createDeals(config.deals, { supervisor, store, dataDir, log, self: p.identity.peerId, node, net: () => p.net.current, facts, clock, gate, trust });
  const effects = createNodeEffects({
    dataDir, log, store, node, clock,
    onRegistered: () => {
      descriptor.forget();
      facts.forget();
      gate.noteRegistered();
    },
    deals: (intents) => handleDealIntents(deals, 'node', intents),
  });
  const stop = async () => {
    effects.stop();
    deals.quiesce(); // no new deal actors or timers while the supervisor stops the ones there are
    await supervisor.stop();
    deals.stop();
    await effects.flush();
    feed.stop();
  };
  const recovery = node.recovery!;
  try {
    // before any bid request can arrive: how much free disk the node keeps (`--min-free-disk`, against this disk)
    const minFreeDisk = resolveMinFreeDisk(config.minFreeDisk, await diskTotal(dataDir));
    node.send({ type: 'node.configure', minFreeDisk, requireGrants: config.requireGrants }, 'local');
    if (recovery.recovered) {
      node.send({ type: 'node.recovered', now: clock.now() }, 'local');
      const s = p.storeRecovery;
      log.info({ ...recovery, journalRecords: s.records, tornBytes: s.tornBytes }, `recovered the node from its log: snapshot at seq ${recovery.snapshotSeq}, ${recovery.replayed} events replayed, ${recovery.ms} ms (store ${s.ms} ms)`);
    }
  } catch (e) {
    await stop().catch(() => {});
    throw e;
  }
  return { parts: { supervisor, node, effects, deals, recovery, descriptor, feed, trust }, stop };
}

/** Spawns the Node actor; when that fails, stops the supervisor (nothing else of the phase exists yet). */
async function spawnNode(supervisor: Supervisor): Promise<NodeRef> {
  try {
    return await supervisor.spawn<NodeEvent>({ id: 'node', kind: 'node', input: {} });
  } catch (e) {
    await supervisor.stop().catch(() => {});
    throw e;
  }
}

function descriptorCache(): DescriptorCache & { forget(): void } {
  let kept: { key: string; nodeId: NodeId } | undefined;
  return { get: () => kept, set: (d) => (kept = d), forget: () => (kept = undefined) };
}

/**
 * What deals read of the Node (its offered executors and its preferences), kept between changes: asking the Node's
 * worker each time would put a round trip on every deal's path. Forgotten when the Node saves either.
 */
function cachedNodeFacts(node: NodeRef) {
  let cached: Promise<{ executors: readonly string[]; preferences: NodeView['preferences'] }> | undefined;
  return {
    get: () =>
      (cached ??= node
        .view()
        .then((v) => {
          const c = v.context as NodeView;
          return { executors: c.registration?.capability.executors ?? [], preferences: c.preferences };
        })
        .catch((e: Error) => {
          cached = undefined;
          throw e;
        })),
    forget: () => (cached = undefined),
  };
}

/** The deal service of a node, bound to its Node actor (the ledger) and its executors. */
function createDeals(
  init: DealServiceInit,
  deps: {
    supervisor: Supervisor;
    store: DexieEventLog;
    dataDir: string;
    log: Logger;
    self: string;
    node: NodeRef;
    net: () => NetworkService | undefined;
    facts: ReturnType<typeof cachedNodeFacts>;
    clock: Clock;
    gate: BidGate;
    trust: TrustService;
  },
): DealService {
  const { node, facts, clock } = deps;
  const wasm = new WasiExecutor();
  const proc = new ProcessExecutor();
  // the warm runners of array instances, one per requester: started with the first array allocation here
  let pool: WasmRunnerPool | undefined;
  return new DealService(init, {
    ...deps,
    pool: { get: () => (pool ??= new WasmRunnerPool()), close: async () => pool?.close() },
    preferences: async () => (await facts.get()).preferences,
    ledger: {
      allocate: async (allocationId, lockId) => {
        const r = await node.ask({ type: 'ledger.allocate', allocationId, lockId, now: clock.now() }, undefined, 'deal');
        return r.ok ? { ok: true } : { ok: false, code: r.code, message: r.message };
      },
      unlock: (id) => node.send({ type: 'ledger.unlock', id }, 'deal'),
      release: (allocationId) => node.send({ type: 'ledger.release', allocationId }, 'deal'),
    },
    // `process` runs other people's code unsandboxed: only while the node offers it
    executor: async (kind) => {
      const offered = (await facts.get()).executors;
      if (!offered.includes(kind)) return undefined;
      return kind === 'wasm' ? wasm : kind === 'process' ? proc : undefined;
    },
  });
}
