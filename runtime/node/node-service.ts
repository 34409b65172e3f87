/**
 * The running node: the composition root of `node runtime/main.js run`. It opens the durable store, wires
 * identity, the supervised Node actor (recovered from its log when the data dir has one), the effects the
 * Node asks for, monitoring, the network and the local API.
 */
import { randomBytes } from 'node:crypto';
import { existsSync, promises as fs } from 'node:fs';
import path from 'node:path';
import { EMPTY_INDEXES, type Indexes } from '../../machines/indexes.ts';
import type { NodeEvent } from '../../machines/node.messages.ts';
import { type Benchmark, type Offer, type Registration, resolveOffer, validateOffer } from '../../machines/onboarding.ts';
import { type ApiServer, startApiServer } from '../api/http-server.ts';
import { readMachineFacts } from './benchmark.ts';
import { API_FILE, TOKEN_FILE } from '../api/client.ts';
import type { RunConfig } from '../config.ts';
import { DataDirError, OnboardingError } from '../errors.ts';
import { probeWritable, writeFileDurable, writeJson } from '../files.ts';
import { loadOrCreateIdentity, type NodeId } from './identity.ts';
import type { InspectorBridge } from '../inspector/inspector.ts';
import type { Logger } from '../logger.ts';
import { createMonitor } from './monitor.ts';
import type { NetworkService } from '../net/network-service.ts';
import { loadNetworkModule, startNetwork } from '../net/start-network.ts';
import { createNodeApi } from '../api/node-api.ts';
import { INDEXES_KEY, createIndexStore, recordFacts } from '../store/projections.ts';
import { IDENTITY_KEY, REGISTRATION_KEY, createNodeEffects } from './node-effects.ts';
import type { DealServiceInit } from '../deals/deal-config.ts';
import { DealService } from '../deals/deal-service.ts';
import { handleDealIntents } from '../deals/deal-effects.ts';
import { dealInboxes } from '../deals/deal-inboxes.ts';
import { WasiExecutor } from '../executors/wasm-executor.ts';
import { ProcessExecutor } from '../executors/process-executor.ts';
import { dealPayloadSchemas, logsPayloadSchemas } from '../deals/deal-schemas.ts';
import type { NodeView } from '../../actors/node.actor.ts';
import { JOURNAL_DIR, STORE_DEFAULTS } from '../store/constants.ts';
import { DexieEventLog } from '../store/dexie-event-log.ts';
import { type ActorRef, type OmitFrom, type Recovery, SUPERVISOR_DEFAULTS, Supervisor } from '../supervisor/supervisor.ts';

type NodeRef = ActorRef<NodeEvent>;

const ONBOARD_TIMEOUT_MS = 120_000;

/** What the ready line reports. */
export interface ReadyInfo {
  readonly event: 'ready';
  readonly peerId: string;
  readonly did: string;
  readonly uuid: string;
  readonly listen: readonly string[];
  readonly api: string | null;
  readonly dataDir: string;
  readonly state: string;
  readonly benchmarked: boolean;
  /** How the Node actor was rebuilt from the log, or null on a first start. */
  readonly recovered: (Recovery & { readonly journalRecords: number; readonly tornBytes: number }) | null;
  readonly inspect: string | null;
  readonly startMs: number;
}

export interface RunningNode {
  readonly ready: ReadyInfo;
  readonly node: NodeRef;
  readonly deals: DealService;
  /** Settles with the error that forces the node down (an actor failing past its restart limit). */
  readonly fatal: Promise<Error>;
  stop(): Promise<void>;
}

async function ensureToken(dataDir: string): Promise<string> {
  const file = path.join(dataDir, TOKEN_FILE);
  const existing = await fs.readFile(file, 'utf8').catch(() => '');
  if (existing.trim().length >= 32) return existing.trim();
  const token = randomBytes(32).toString('base64url');
  await writeFileDurable(file, token, 0o600);
  return token;
}

/** Refuses an offer that cannot fit this machine before anything slow starts (exit code 2). */
async function precheckOffer(dataDir: string, offer: Offer): Promise<void> {
  const f = await readMachineFacts(dataDir);
  const pseudo: Benchmark = {
    cores: f.cores, cpuOpsPerSecPerCore: 0, cpuOpsPerSecTotal: 0, memoryTotal: f.memoryTotal, diskTotal: f.diskTotal, diskFree: f.diskFree,
    diskWriteBytesPerSec: 0, gpus: [], arch: '', cpuModel: '', measuredAt: '', durationMs: 0,
  };
  const problems = validateOffer(resolveOffer(offer, pseudo), pseudo, { dataDirWritable: true, dataDir });
  if (problems.length > 0) throw new OnboardingError(problems.map((p) => p.message).join('; '));
}

/** Waits while a recovered node finishes the benchmark its old process had started. */
async function settled(node: NodeRef): Promise<string> {
  const deadline = Date.now() + ONBOARD_TIMEOUT_MS;
  for (;;) {
    const state = String((await node.view()).value);
    if (state !== 'benchmarking' || Date.now() > deadline) return state;
    await new Promise((r) => setTimeout(r, 100));
  }
}

export async function startNode(config: RunConfig, log: Logger): Promise<RunningNode> {
  const t0 = performance.now();
  const networkModule = loadNetworkModule(); // loads while the store opens and the worker boots
  networkModule.catch(() => {}); // a failure surfaces in startNetwork
  const { dataDir } = config;
  if (!(await probeWritable(dataDir))) throw new DataDirError(`data dir ${dataDir} cannot be created or written; fix its permissions or pass another --data-dir`);
  const flagsGiven = Object.keys(config.offer).length > 0;
  // a refused offer must leave a fresh data dir as it was: check it before anything is created
  if (!existsSync(path.join(dataDir, JOURNAL_DIR))) await precheckOffer(dataDir, config.offer);
  const { store, recovery: storeRecovery } = await DexieEventLog.open({ dataDir, ...STORE_DEFAULTS });
  const fresh = (await store.actor('node')) === undefined;
  const saved = await store.getMeta<Registration | null>(REGISTRATION_KEY);
  const offer: Offer = { ...(saved?.offer ?? {}), ...config.offer };
  try {
    if (flagsGiven) await precheckOffer(dataDir, offer);
  } catch (e) {
    await store.close();
    throw e;
  }
  const { identity, created } = await loadOrCreateIdentity(dataDir);
  if (created) log.info({ peerId: identity.peerId }, 'created a new node identity');
  const token = await ensureToken(dataDir);
  const nodeId = { uuid: identity.uuid, peerId: identity.peerId, did: identity.did };
  const known = await store.getMeta<Omit<NodeId, 'cid'>>(IDENTITY_KEY);
  if (JSON.stringify(known) !== JSON.stringify(nodeId)) await store.putMeta(IDENTITY_KEY, nodeId);

  let resolveFatal!: (e: Error) => void;
  const fatal = new Promise<Error>((r) => (resolveFatal = r));
  let nodeRef: NodeRef | undefined;
  let descriptor: { key: string; nodeId: NodeId } | undefined;
  const indexes = createIndexStore((await store.getMeta<Indexes>(INDEXES_KEY)) ?? EMPTY_INDEXES);
  // loaded only when asked for: @statelyai/inspect costs ~70 ms of start-up
  const inspector: InspectorBridge | null = config.inspect ? await (await import('../inspector/inspector.ts')).createInspectorBridge(config.inspect, log) : null;
  let deals: DealService | undefined;
  const nodeFacts = cachedNodeFacts(() => nodeRef!);
  const effects = createNodeEffects({ dataDir, log, store, node: () => nodeRef!, onRegistered: () => {
      descriptor = undefined;
      nodeFacts.forget();
    }, deals: (intents) => deals && handleDealIntents(deals, 'node', intents) });
  const supervisor = new Supervisor(SUPERVISOR_DEFAULTS, {
    log,
    eventLog: store,
    onIntents: (id, intents) => (id === 'node' ? effects.handle(intents) : deals && handleDealIntents(deals, id, intents)),
    onEscalate: (e) => resolveFatal(e),
    onFacts: (facts) => recordFacts(indexes, facts),
    snapshotMeta: (id) => (id === 'node' ? [{ key: INDEXES_KEY, value: indexes.getSnapshot().context }] : []),
    ...(inspector ? { onInspect: (records) => inspector.forward(records) } : {}),
  });
  let node: NodeRef;
  try {
    node = await supervisor.spawn<NodeEvent>({ id: 'node', kind: 'node', input: {} });
  } catch (e) {
    await supervisor.stop().catch(() => {});
    await store.close();
    inspector?.stop();
    throw e;
  }
  nodeRef = node;
  deals = createDeals(config.deals, { supervisor, store, dataDir, log, self: identity.peerId, node, net: () => network, facts: nodeFacts });
  const rec = node.recovery!;
  if (rec.recovered) {
    node.send({ type: 'node.recovered', now: Date.now() }, 'local');
    log.info({ ...rec, journalRecords: storeRecovery.records, tornBytes: storeRecovery.tornBytes }, `recovered the node from its log: snapshot at seq ${rec.snapshotSeq}, ${rec.replayed} events replayed, ${rec.ms} ms (store ${storeRecovery.ms} ms)`);
  }

  let api: ApiServer | undefined;
  let monitor: ReturnType<typeof createMonitor> | undefined;
  let network: NetworkService | undefined;
  const stop = async () => {
    await monitor?.stop();
    await network?.stop().catch((e: Error) => log.warn({ err: e.message }, 'network did not stop cleanly'));
    await api?.stop();
    await fs.rm(path.join(dataDir, API_FILE), { force: true });
    effects.stop();
    deals?.quiesce(); // no new deal actors or timers while the supervisor stops the ones there are
    await supervisor.stop();
    deals?.stop();
    await effects.flush();
    await store.close();
    inspector?.stop();
  };

  try {
    const dealService = deals;
    const nodeApi = createNodeApi({ node, deals: dealService, identity, dataDir, indexes: () => indexes.getSnapshot().context, net: () => network, apiUrl: () => api?.url ?? null, descriptor: () => descriptor, setDescriptor: (d) => (descriptor = d) });
    network = await startNetwork(config, identity, { schemas: [dealPayloadSchemas, logsPayloadSchemas], inboxes: (router) => dealInboxes(dealService, node, router) }, log);
    // deal messages that arrive meanwhile wait for this (a benchmark at onboarding can take seconds)
    const unfinished = await dealService.recover();
    if (unfinished > 0) log.info({ deals: unfinished }, `recovered ${unfinished} unfinished deal actors from the log`);
    if (config.api) {
      api = await startApiServer({ ...config.api, token }, nodeApi, log);
      await writeJson(path.join(dataDir, API_FILE), { url: api.url, pid: process.pid });
    }
    const state = await settled(node);
    const onboard = fresh || flagsGiven || config.rebenchmark || (state !== 'registered' && state !== 'offboarded');
    let benchmarked = false;
    if (onboard) {
      benchmarked = config.rebenchmark || !saved?.benchmark;
      const reply = await node.ask({ type: 'node.onboard', offer, host: { dataDir, dataDirWritable: true }, rebenchmark: config.rebenchmark } satisfies OmitFrom<NodeEvent, 'replyTo'>, ONBOARD_TIMEOUT_MS);
      if (!reply.ok) throw new OnboardingError(`onboarding failed: ${reply.message}`);
    }
    monitor = createMonitor({ dataDir, intervalMs: config.monitorIntervalMs, onError: (e: Error) => log.warn({ err: e.message }, 'monitoring sample failed') }, (sample) =>
      node.send({ type: 'monitor.sample', sample } satisfies NodeEvent, 'monitor'),
    );
    await monitor.start();
    dealService.start();
    supervisor.warm();
    const view = await node.view();
    const ready: ReadyInfo = {
      event: 'ready', peerId: identity.peerId, did: identity.did, uuid: identity.uuid, listen: network.listen(), api: api?.url ?? null,
      dataDir, state: String(view.value), benchmarked,
      recovered: rec.recovered ? { ...rec, journalRecords: storeRecovery.records, tornBytes: storeRecovery.tornBytes } : null,
      inspect: inspector?.url ?? null, startMs: Math.round(performance.now() - t0),
    };
    return { ready, node, deals: dealService, fatal, stop };
  } catch (e) {
    await stop().catch(() => {});
    throw e;
  }
}

/**
 * What deals read of the Node (its offered executors and its preferences), kept between changes: asking the Node's
 * worker each time would put a round trip on every deal's path. Forgotten when the Node saves either.
 */
function cachedNodeFacts(node: () => NodeRef) {
  let cached: Promise<{ executors: readonly string[]; preferences: NodeView['preferences'] }> | undefined;
  return {
    get: () =>
      (cached ??= node()
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
  deps: { supervisor: Supervisor; store: DexieEventLog; dataDir: string; log: Logger; self: string; node: NodeRef; net: () => NetworkService | undefined; facts: ReturnType<typeof cachedNodeFacts> },
): DealService {
  const { node, facts } = deps;
  const wasm = new WasiExecutor();
  const proc = new ProcessExecutor();
  return new DealService(init, {
    ...deps,
    preferences: async () => (await facts.get()).preferences,
    ledger: {
      allocate: async (allocationId, lockId) => {
        const r = await node.ask({ type: 'ledger.allocate', allocationId, lockId, now: Date.now() }, undefined, 'deal');
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
