/**
 * The running node: the composition root of `node runtime/main.js run`. Its start is a list of phases declared
 * once (see `nodeLifecycle`): the data dir and the offer checked, the durable store, identity, the supervised Node
 * actor and the deal service (node-actors.ts), the network, the local API, onboarding, monitoring. Stop runs the
 * same list in reverse, and a phase that fails to start stops the ones before it (lifecycle.ts).
 */
import { randomBytes } from 'node:crypto';
import { existsSync, promises as fs } from 'node:fs';
import path from 'node:path';
import { EMPTY_INDEXES, type Indexes } from '../../machines/indexes.ts';
import type { NodeEvent } from '../../machines/node.messages.ts';
import type { NodeView } from '../../actors/node.actor.ts';
import { type Benchmark, type Offer, type Registration, resolveOffer, validateOffer } from '../../machines/onboarding.ts';
import { API_FILE, TOKEN_FILE } from '../api/client.ts';
import { type ApiServer, type TrustApi, startApiServer } from '../api/http-server.ts';
import type { TrustService } from '../trust/trust-service.ts';
import { createNodeApi } from '../api/node-api.ts';
import { type NodeMetrics, type Timings, createNodeMetrics, createTimings, metricsRoute } from '../api/metrics.ts';
import { createDashboard } from '../api/dashboard.ts';
import { createDashboardApi } from '../api/dashboard-api.ts';
import { DashboardAuth } from '../api/dashboard-auth.ts';
import { type Clock, type Timer, realClock } from '../clock.ts';
import type { RunConfig } from '../config.ts';
import { dealPayloadSchemas, logsPayloadSchemas } from '../deals/deal-schemas.ts';
import { dealInboxes } from '../deals/deal-inboxes.ts';
import type { MessageRouter } from '../net/message-router.ts';
import { TRUST_INBOX, trustInbox, trustPayloadSchemas } from '../trust/trust-inbox.ts';
import { partsOf, servePartTunnels } from '../deals/part-registry.ts';
import { resultsRoot } from '../deals/results-manifest.ts';
import { serveJobResults } from '../deals/results-serving.ts';
import type { DealService } from '../deals/deal-service.ts';
import { DataDirError, OnboardingError } from '../errors.ts';
import { probeWritable, writeFileDurable, writeJson } from '../files.ts';
import type { InspectorBridge } from '../inspector/inspector.ts';
import type { Logger } from '../logger.ts';
import type { NetworkService } from '../net/network-service.ts';
import { loadNetworkModule, startNetwork } from '../net/start-network.ts';
import { SWEEP_EVERY_MS, sweepRetention } from '../deals/retention.ts';
import { isolationReport } from '../executors/isolation.ts';
import { formatMs } from '../executors/limits.ts';
import { JOURNAL_DIR, STORE_DEFAULTS } from '../store/constants.ts';
import { DexieEventLog, type RecoveryReport } from '../store/dexie-event-log.ts';
import type { HistoryPruneReport } from '../store/history-retention.ts';
import { INDEXES_KEY, type IndexStore, createIndexStore } from '../store/projections.ts';
import type { OmitFrom, Recovery } from '../supervisor/supervisor.ts';
import { readMachineFacts } from './benchmark.ts';
import { type Identity, type NodeId, loadOrCreateIdentity } from './identity.ts';
import { lockDataDir, tightenModes } from './data-dir-lock.ts';
import { Lifecycle, type Started } from './lifecycle.ts';
import { createMonitor } from './monitor.ts';
import { type Actors, type NetworkSlot, type NodeRef, startActors } from './node-actors.ts';
import { IDENTITY_KEY, type NodeEffects, REGISTRATION_KEY } from './node-effects.ts';

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
  /** Stops every phase in reverse order of start; idempotent. */
  stop(): Promise<void>;
}

/** What every phase may use: the run's config and the node's logger and clock. */
interface Root {
  readonly config: RunConfig;
  readonly log: Logger;
  readonly clock: Clock;
  /** When start began (performance.now()), for the ready line's startMs. */
  readonly t0: number;
  readonly escalate: (e: Error) => void;
  readonly net: NetworkSlot;
}

export async function startNode(config: RunConfig, log: Logger, clock: Clock = realClock): Promise<RunningNode> {
  const t0 = performance.now();
  const networkModule = loadNetworkModule(); // loads while the store opens and the worker boots
  networkModule.catch(() => {}); // a failure surfaces in startNetwork
  let escalate!: (e: Error) => void;
  const fatal = new Promise<Error>((r) => (escalate = r));
  const lifecycle = nodeLifecycle({ config, log, clock, t0, escalate, net: { current: undefined } });
  const { ready, node, deals } = await lifecycle.start();
  return { ready, node, deals, fatal, stop: () => lifecycle.stop() };
}

/** The phases of a node, in start order. */
function nodeLifecycle(root: Root) {
  return new Lifecycle(root, { onStopError: (phase, err) => root.log.warn({ phase, err: err.message }, `${phase} did not stop cleanly`) })
    .phase('data dir', checkDataDir)
    .phase('data dir lock', async ({ config }) => {
      // one node per data dir (a second one would truncate this one's live journal segment); 0700/0600 every start
      const lock = await lockDataDir(config.dataDir);
      await tightenModes(config.dataDir).catch(async (e: Error) => {
        await lock.release();
        throw new DataDirError(`cannot set the modes of data dir ${config.dataDir} (0700, files 0600): ${e.message}`);
      });
      return { stop: () => lock.release() };
    })
    // the metrics' histograms: fed from the store's journal and the actors' facts on, served by the `api` phase
    .phase('timings', () => ({ parts: { timings: createTimings() } }))
    .phase('store', async ({ config, clock, log, timings }) => {
      const history = { retainMs: config.retainMs, maxBytes: config.retainHistoryBytes };
      const onHistoryPruned = (r: HistoryPruneReport | Error) => (r instanceof Error ? log.warn({ err: r.message }, 'retention: removing old journal segments failed') : log.info(r, r.note!));
      const { store, recovery } = await DexieEventLog.open({ dataDir: config.dataDir, ...STORE_DEFAULTS, clock, history, onHistoryPruned, onJournalCommit: (s) => timings.appendSeconds.observe(s) });
      return { parts: { store, storeRecovery: recovery }, stop: () => store.close() };
    })
    .phase('offer', readOffer)
    .phase('identity', loadIdentity)
    .phase('indexes', async ({ store }) => ({ parts: { indexes: createIndexStore((await store.getMeta<Indexes>(INDEXES_KEY)) ?? EMPTY_INDEXES) } }))
    .phase('inspector', async ({ config, log, clock }) => {
      // loaded only when asked for: @statelyai/inspect costs ~70 ms of start-up
      const inspector = config.inspect ? await (await import('../inspector/inspector.ts')).createInspectorBridge(config.inspect, log, { clock }) : null;
      return { parts: { inspector }, stop: () => inspector?.stop() };
    })
    .phase('actors', startActors)
    // from here on, a stop leaves no api.json pointing at a node that is not there (the `api` phase writes it)
    .phase('api address', ({ config }) => ({ stop: () => fs.rm(apiFile(config), { force: true }) }))
    .phase('network', async ({ config, log, clock, identity, deals, node, net, trust }) => {
      const inboxes = (router: MessageRouter) => [...dealInboxes(deals, node, router), trustInbox(trust, log)];
      const network = await startNetwork(config, identity, { schemas: [dealPayloadSchemas, logsPayloadSchemas, trustPayloadSchemas], inboxes }, log, clock);
      net.current = network;
      await servePartTunnels(network.libp2p, partsOf(deals), log);
      await serveJobResults(network.libp2p, deals, log);
      return { parts: { network }, stop: () => network.stop().catch((e: Error) => log.warn({ err: e.message }, 'network did not stop cleanly')) };
    })
    .phase('deal recovery', async ({ log, deals }) => {
      // deal messages that arrive meanwhile wait for this (a benchmark at onboarding can take seconds)
      const unfinished = await deals.recover();
      if (unfinished > 0) log.info({ deals: unfinished }, `recovered ${unfinished} unfinished deal actors from the log`);
    })
    .phase('api', startApi)
    .phase('onboarding', onboard)
    .phase('monitor', async ({ config, log, clock, node }) => {
      const onError = (e: Error) => log.warn({ err: e.message }, 'monitoring sample failed');
      const monitor = createMonitor({ dataDir: config.dataDir, intervalMs: config.monitorIntervalMs, onError, clock }, (sample) => node.send({ type: 'monitor.sample', sample } satisfies NodeEvent, 'monitor'));
      await startOrStop(monitor.start(), () => monitor.stop());
      return { stop: () => monitor.stop() };
    })
    .phase('isolation', async ({ log }) => {
      // said once at start: an operator must know when a job's cpu share is not enforced
      const r = await isolationReport();
      if (r.cgroups) log.info(r, `jobs run in a cgroup each (cpu, memory and process count enforced)${r.processUser ? `; process jobs run as ${r.processUser}` : ''}`);
      else log.warn(r, `jobs are limited by rlimits alone, so their cpu share is not enforced: no cgroups here (${r.why})`);
    })
    .phase('serving', ({ deals, supervisor }) => {
      deals.start(); // its heartbeat ends with the actors' stop (the deal service's quiesce)
      supervisor.warm();
    })
    .phase('retention', ({ config, log, clock, store, deals }) => {
      if (config.retainMs === 0) return;
      // after recovery: every live deal is known, so nothing it names is swept
      let running: Promise<void> = Promise.resolve();
      const sweep = () => {
        running = running.then(async () => {
          const deps = { store, modulesDir: deals.modules.dir, outputDir: deals.output.dir, resultsDir: resultsRoot(deals.deps.dataDir), now: () => clock.now() };
          const r = await sweepRetention(deps, config.retainMs).catch((e: Error) => log.warn({ err: e.message }, 'retention sweep failed'));
          if (r && r.records + r.modules + r.outputs > 0) log.info(r, `retention: removed what ended deals left behind over ${formatMs(config.retainMs)} ago`);
          // journal segments older than that, back to one a checkpoint starts (never one recovery needs)
          const h = await store.pruneHistory().catch((e: Error) => log.warn({ err: e.message }, 'retention: removing old journal segments failed'));
          if (h?.note) log.info(h, h.note);
        });
      };
      sweep();
      const timer = clock.every(SWEEP_EVERY_MS, sweep);
      return {
        stop: async () => {
          timer.clear();
          await running;
        },
      };
    })
    .phase('ready', async (p) => ({ parts: { ready: readyInfo(p, String((await p.node.view()).value)) } }));
}

/** Refuses a data dir that cannot be written, and an offer that cannot fit this machine before anything is created. */
async function checkDataDir({ config }: Root): Promise<void> {
  const { dataDir } = config;
  if (!(await probeWritable(dataDir))) throw new DataDirError(`data dir ${dataDir} cannot be created or written; fix its permissions or pass another --data-dir`);
  // a refused offer must leave a fresh data dir as it was: check it before anything is created
  if (!existsSync(path.join(dataDir, JOURNAL_DIR))) await precheckOffer(dataDir, config.offer);
}

/** The offer to onboard with: the saved one, overridden by the flags given (checked against this machine). */
async function readOffer({ config, store }: Root & { store: DexieEventLog }) {
  const fresh = (await store.actor('node')) === undefined;
  const saved = await store.getMeta<Registration | null>(REGISTRATION_KEY);
  const offer: Offer = { ...(saved?.offer ?? {}), ...config.offer };
  const flagsGiven = Object.keys(config.offer).length > 0;
  if (flagsGiven) await precheckOffer(config.dataDir, offer);
  return { parts: { fresh, saved, offer, flagsGiven } };
}

async function loadIdentity({ config, log, store }: Root & { store: DexieEventLog }) {
  const { identity, created } = await loadOrCreateIdentity(config.dataDir);
  if (created) log.info({ peerId: identity.peerId }, 'created a new node identity');
  const token = await ensureToken(config.dataDir);
  const nodeId = { uuid: identity.uuid, peerId: identity.peerId, did: identity.did };
  const known = await store.getMeta<Omit<NodeId, 'cid'>>(IDENTITY_KEY);
  if (JSON.stringify(known) !== JSON.stringify(nodeId)) await store.putMeta(IDENTITY_KEY, nodeId);
  return { parts: { identity, token } };
}

/** The local API, when asked for, and its address in the data dir for the clients. */
async function startApi(p: Root & Actors & { identity: Identity; token: string; indexes: IndexStore; network: NetworkService; timings: Timings }): Promise<Started<{ api: ApiServer | null }>> {
  const { config, log } = p;
  if (!config.api) return { parts: { api: null } };
  let url: string | null = null; // the API reports its own address, known once it listens
  const nodeApi = createNodeApi({
    node: p.node, deals: p.deals, identity: p.identity, dataDir: config.dataDir, clock: p.clock,
    indexes: () => p.indexes.getSnapshot().context, net: () => p.network, apiUrl: () => url,
    descriptor: p.descriptor.get, setDescriptor: p.descriptor.set,
  });
  const auth = new DashboardAuth(() => p.clock.now());
  const dashboard = createDashboard({ auth, feed: p.feed, clock: p.clock, peers: async () => p.network?.peers() ?? [] });
  const dashboardApi = createDashboardApi({
    supervisor: p.supervisor, feed: p.feed, auth, apiUrl: () => url, net: () => p.network,
    deploy: nodeApi.deploy, deployEnsemble: nodeApi.deployEnsemble,
  });
  const api = await startApiServer(
    { ...config.api, token: p.token, open: [dashboard.route, metricsRoute(nodeMetrics(p).register)], authorize: (req) => dashboard.authorize(req) },
    {
      ...nodeApi,
      // what the trust service checked: grants required or not, and its verifications (cache hits, refusals by reason)
      info: async () => ({ ...((await nodeApi.info()) as object), trust: { requireGrants: await p.trust.requireGrants(), anchors: p.trust.anchors().length, verifications: p.trust.stats() } }),
      dashboard: dashboardApi,
      trust: trustApi(p.trust, () => p.network),
    },
    log,
  );
  url = api.url;
  await startOrStop(writeJson(apiFile(config), { url: api.url, pid: process.pid }), () => (dashboard.stop(), api.stop()));
  const stop = () => {
    dashboard.stop();
    return api.stop();
  };
  return { parts: { api }, stop };
}

const apiFile = (config: RunConfig) => path.join(config.dataDir, API_FILE);

/** The `cap` commands' API: the trust service, and a revocation of a link this node issued told to the network. */
function trustApi(trust: TrustService, net: () => NetworkService | undefined): TrustApi {
  return {
    list: async () => trust.list(),
    grant: (r) => trust.grant(r.audience, r.actions, r.durationMs, r.depth),
    delegate: (r) => trust.delegate(r.token, r.audience, r.actions, r.durationMs, r.depth),
    anchor: (r) => trust.anchor(r.did, r.remove),
    add: (r) => trust.add(r.token),
    async revoke(id) {
      const { notice } = await trust.revoke(id);
      const told = notice && net() ? await net()!.router.broadcast(TRUST_INBOX, 'trust.revoke', notice).then(() => true, () => false) : false;
      return { id, revoked: true, told };
    },
  };
}

/** GET /metrics: each value read, at scrape time, from the part of the node that keeps it (runtime/api/metrics.ts). */
function nodeMetrics(p: Actors & { indexes: IndexStore; network: NetworkService; timings: Timings }): NodeMetrics {
  const facts = {
    capability: async () => ((await p.node.view()).context as NodeView).capability,
    peers: () => p.network.peers().length,
    envelopes: () => p.network.counters(),
    indexes: () => p.indexes.getSnapshot().context,
    allocations: () => p.deals.heartbeat.countByState(),
    restarts: () => p.supervisor.restartsByKind,
  };
  return createNodeMetrics(facts, p.timings);
}

/** Onboards the Node when this run asks for it (first start, offer flags, --rebenchmark) or it is not registered. */
async function onboard(p: Root & Actors & { fresh: boolean; flagsGiven: boolean; offer: Offer; saved: Registration | null | undefined }) {
  const { config, node } = p;
  const state = await settledState(node, p.effects, p.clock);
  if (!(p.fresh || p.flagsGiven || config.rebenchmark || (state !== 'registered' && state !== 'offboarded'))) return { parts: { benchmarked: false } };
  const benchmarked = config.rebenchmark || !p.saved?.benchmark;
  const command = { type: 'node.onboard', offer: p.offer, host: { dataDir: config.dataDir, dataDirWritable: true }, rebenchmark: config.rebenchmark } satisfies OmitFrom<NodeEvent, 'replyTo'>;
  const reply = await node.ask(command, ONBOARD_TIMEOUT_MS);
  if (!reply.ok) throw new OnboardingError(`onboarding failed: ${reply.message}`);
  return { parts: { benchmarked } };
}

/**
 * The Node's state, once a benchmark that its recovery restarted (the old process died during one) has sent its
 * result, or ONBOARD_TIMEOUT_MS passed. The view after a send covers that send: the state is the one it led to.
 */
async function settledState(node: NodeRef, effects: NodeEffects, clock: Clock): Promise<string> {
  const state = String((await node.view()).value);
  if (state !== 'benchmarking') return state;
  let timer: Timer | undefined;
  const timeout = new Promise<void>((resolve) => (timer = clock.after(ONBOARD_TIMEOUT_MS, resolve, { keepAlive: true })));
  await Promise.race([effects.benchmarked(), timeout]).finally(() => timer?.clear());
  return String((await node.view()).value);
}

function readyInfo(p: Root & Actors & { identity: Identity; storeRecovery: RecoveryReport; inspector: InspectorBridge | null; network: NetworkService; api: ApiServer | null; benchmarked: boolean }, state: string): ReadyInfo {
  const { identity, recovery: rec, storeRecovery: s } = p;
  return {
    event: 'ready', peerId: identity.peerId, did: identity.did, uuid: identity.uuid, listen: p.network.listen(), api: p.api?.url ?? null,
    dataDir: p.config.dataDir, state, benchmarked: p.benchmarked,
    recovered: rec.recovered ? { ...rec, journalRecords: s.records, tornBytes: s.tornBytes } : null,
    inspect: p.inspector?.url ?? null, startMs: Math.round(performance.now() - p.t0),
  };
}

/** Waits for a start step; when it fails, stops what the phase had started and fails with the step's error. */
async function startOrStop(step: Promise<unknown>, stop: () => Promise<void>): Promise<void> {
  try {
    await step;
  } catch (e) {
    await stop().catch(() => {});
    throw e;
  }
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
