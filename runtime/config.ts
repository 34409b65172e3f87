/**
 * Configuration, parsed once from flags, the environment and the config file (layered by config-sources.ts) into a
 * frozen object that is passed down. Nothing below this file reads process.env.
 */
import os from 'node:os';
import path from 'node:path';
import type { Offer } from '../machines/onboarding.ts';
import { type ConfigFile, type Layered, type SettingKey, describeOrigin, envLayer, fileLayer, flagLayer, layerSources } from './config-sources.ts';
import { UsageError } from './errors.ts';
import { LOG_LEVELS, type LogLevelName } from './logger.ts';
import { KNOWN_EXECUTORS } from '../machines/onboarding.ts';
import { DEFAULT_RETAIN_MS } from './deals/retention.ts';
import { parseDuration, parseSize } from './units.ts';
import { DEAL_SERVICE_DEFAULTS, type DealServiceInit } from './deals/deal-config.ts';

export const DEFAULT_LISTEN = '/ip4/0.0.0.0/tcp/9000/ws';
export const DEFAULT_API = '127.0.0.1:9999';
export const DEFAULT_INSPECT = 'ws://localhost:8080';

export interface ApiAddress {
  readonly host: string;
  readonly port: number;
}

export interface RunConfig {
  readonly dataDir: string;
  readonly listen: readonly string[];
  readonly bootstrap: readonly string[];
  readonly api: ApiAddress | null;
  /** Only the fields the user set; unset ones keep the stored offer or the defaults. */
  readonly offer: Offer;
  readonly rebenchmark: boolean;
  readonly inspect: string | null;
  readonly json: boolean;
  readonly logLevel: LogLevelName;
  readonly monitorIntervalMs: number;
  /** PEM certificate and key files for /wss (or /tls/ws) listen addresses; both or neither. */
  readonly tls: { readonly certFile: string; readonly keyFile: string } | null;
  /** Deal timing: the bid window and the other steps' timeouts. */
  readonly deals: DealServiceInit;
  /** Peer exchange dials new peers only while this node has fewer connections; null: the network default. */
  readonly maxPeers: number | null;
  /** Free space the data dir's disk must keep for the node to take new work (`disk-full` under it). */
  readonly minFreeDisk: MinFreeDisk;
  /** How long what an ended deal leaves (records, modules, output) is kept (`--retain`); 0: forever. */
  readonly retainMs: number;
  /** Most bytes of journal history (for `replay`) kept, whatever its age (`--retain-history`); 0: no cap. */
  readonly retainHistoryBytes: number;
  /** As a provider, serve only requesters whose capability tokens grant `deploy` from this node's anchors. */
  readonly requireGrants: boolean;
}

/**
 * `--min-free-disk`: bytes, a share of the disk, or both (the smaller wins). Resolved against the disk's size at
 * start (`resolveMinFreeDisk`).
 */
export interface MinFreeDisk {
  readonly bytes?: number;
  /** 0..1 of the data dir's disk. */
  readonly share?: number;
}

/** 1 GiB or 5% of the disk, whichever is smaller. */
export const DEFAULT_MIN_FREE_DISK: MinFreeDisk = Object.freeze({ bytes: 1024 ** 3, share: 0.05 });

/** The bytes `rule` asks to keep free on a disk of `diskTotal` bytes. */
export function resolveMinFreeDisk(rule: MinFreeDisk, diskTotal: number): number {
  const byShare = rule.share === undefined ? Infinity : Math.floor(diskTotal * rule.share);
  const min = Math.min(rule.bytes ?? Infinity, byShare);
  return Number.isFinite(min) ? min : 0;
}

export interface ClientConfig {
  readonly dataDir: string;
  readonly api: ApiAddress | null;
  readonly json: boolean;
}

/** The raw options commander hands over (all strings or flags); config-sources.ts turns env and file into the same. */
export interface RawOptions {
  /** `--config FILE`: the config file to read instead of `<data dir>/config.yaml`. */
  config?: string;
  dataDir?: string;
  listen?: string[];
  bootstrap?: string[];
  api?: string;
  cpu?: string;
  memory?: string;
  disk?: string;
  executors?: string;
  rebenchmark?: boolean;
  requireGrants?: boolean;
  inspect?: string | boolean;
  json?: boolean;
  logLevel?: string;
  monitorInterval?: string;
  tlsCert?: string;
  tlsKey?: string;
  bidWindow?: string;
  maxPeers?: string;
  minFreeDisk?: string;
  retain?: string;
  retainHistory?: string;
}

export function resolveDataDir(flag: string | undefined, env: NodeJS.ProcessEnv): string {
  const dir = flag ?? env.DMS_HOME ?? path.join(os.homedir(), '.dms');
  if (dir.trim() === '') throw new UsageError('--data-dir is empty; pass a directory path');
  return path.resolve(dir);
}

export function parseApi(value: string | undefined): ApiAddress | null {
  const v = value ?? DEFAULT_API;
  if (v === 'off') return null;
  const m = /^(\[[0-9a-fA-F:]+\]|[^:]+):(\d{1,5})$/.exec(v);
  const port = m ? Number(m[2]) : NaN;
  if (!m || port > 65535) throw new UsageError(`--api "${v}" is not HOST:PORT; use e.g. 127.0.0.1:9999, 127.0.0.1:0 for any free port, or "off"`);
  const host = m[1]!.replace(/^\[|\]$/g, '');
  if (!/^(127\.\d+\.\d+\.\d+|::1|localhost)$/.test(host)) {
    throw new UsageError(`--api host ${host} is not a loopback address; the API is local only: use 127.0.0.1 or ::1`);
  }
  return { host, port };
}

function parseMultiaddrs(list: string[] | undefined, flag: string, needPeer: boolean): string[] {
  return (list ?? []).map((a) => {
    if (!/^\/(ip4|ip6|dns|dns4|dns6)\/[^/]+\/tcp\/\d+/.test(a) || (needPeer && !/\/p2p\/\w+$/.test(a))) {
      throw new UsageError(`${flag} "${a}" is not a ${needPeer ? 'full ' : ''}multiaddr; use e.g. /ip4/127.0.0.1/tcp/9000/ws${needPeer ? '/p2p/<peerId>' : ''}`);
    }
    return a;
  });
}

export function parseOffer(raw: Pick<RawOptions, 'cpu' | 'memory' | 'disk' | 'executors'>): Offer {
  const offer: { cpu?: number; memory?: number; disk?: number; executors?: string[] } = {};
  if (raw.cpu !== undefined) {
    const n = Number(raw.cpu);
    if (raw.cpu.trim() === '' || !Number.isFinite(n) || n <= 0) throw new UsageError(`--cpu "${raw.cpu}" is not a number of cores; use e.g. --cpu 2 or --cpu 1.5`);
    offer.cpu = n;
  }
  for (const f of ['memory', 'disk'] as const) {
    const v = raw[f];
    if (v === undefined) continue;
    const n = parseSize(v);
    if (n === undefined || n === 0) throw new UsageError(`--${f} "${v}" is not a size; use bytes or a unit, e.g. --${f} 8GiB or --${f} 512MB`);
    offer[f] = n;
  }
  if (raw.executors !== undefined) {
    const list = raw.executors.split(',').map((s) => s.trim()).filter(Boolean);
    const unknown = list.filter((e) => !(KNOWN_EXECUTORS as readonly string[]).includes(e));
    if (list.length === 0 || unknown.length > 0) {
      throw new UsageError(`--executors "${raw.executors}" names ${unknown.length ? `unknown executor ${unknown.join(', ')}` : 'nothing'}; choose from ${KNOWN_EXECUTORS.join(', ')}`);
    }
    offer.executors = list;
  }
  return offer;
}

export function parseLogLevel(v: string | undefined): LogLevelName {
  const level = v ?? 'warn';
  if (!(LOG_LEVELS as readonly string[]).includes(level)) throw new UsageError(`--log-level "${level}" is not one of ${LOG_LEVELS.join(', ')}`);
  return level as LogLevelName;
}

function parsePemPath(v: string | undefined, flag: string): string | undefined {
  if (v !== undefined && v.trim() === '') throw new UsageError(`${flag} is empty; pass a PEM file`);
  return v;
}

/** The cross-field rules of TLS, on the layered settings: an error names where each value came from. */
function parseTls(layered: Layered, listen: readonly string[]): RunConfig['tls'] {
  const { raw, originOf } = layered;
  if ((raw.tlsCert === undefined) !== (raw.tlsKey === undefined)) {
    const certGiven = raw.tlsCert !== undefined;
    const [given, missing] = certGiven ? ['--tls-cert', '--tls-key'] : ['--tls-key', '--tls-cert'];
    const from = describeOrigin(originOf(certGiven ? 'tlsCert' : 'tlsKey'));
    throw new UsageError(`--tls-cert and --tls-key go together: ${given} is set (${from}) but ${missing} is not; pass both PEM files, or neither`);
  }
  const secure = listen.filter((a) => /\/(wss|tls\/ws)(\/|$)/.test(a));
  if (secure.length > 0 && raw.tlsCert === undefined) {
    throw new UsageError(`--listen ${secure[0]} (${describeOrigin(originOf('listen'))}) needs a certificate: pass --tls-cert FILE and --tls-key FILE (PEM), or listen on /ws`);
  }
  return raw.tlsCert === undefined ? null : { certFile: path.resolve(raw.tlsCert), keyFile: path.resolve(raw.tlsKey!) };
}

function parseMonitorInterval(v: string | undefined): number {
  const interval = v === undefined ? 5000 : Number(v);
  if (!Number.isInteger(interval) || interval < 100) throw new UsageError(`--monitor-interval "${v}" must be a whole number of milliseconds >= 100`);
  return interval;
}

/** Each setting's check on its own, for every source's value (the cross-field rules wait for the layered result). */
const CHECKS: { readonly [K in SettingKey]: (raw: RawOptions) => unknown } = {
  dataDir: (r) => resolveDataDir(r.dataDir, {}),
  listen: (r) => parseMultiaddrs(r.listen, '--listen', false),
  bootstrap: (r) => parseMultiaddrs(r.bootstrap, '--bootstrap', true),
  tlsCert: (r) => parsePemPath(r.tlsCert, '--tls-cert'),
  tlsKey: (r) => parsePemPath(r.tlsKey, '--tls-key'),
  api: (r) => parseApi(r.api),
  cpu: parseOffer,
  memory: parseOffer,
  disk: parseOffer,
  executors: parseOffer,
  // switches: the environment and the file decoded them already (config-sources.ts), a flag is true
  rebenchmark: () => undefined,
  requireGrants: () => undefined,
  inspect: () => undefined,
  json: () => undefined,
  monitorInterval: (r) => parseMonitorInterval(r.monitorInterval),
  bidWindow: parseDeals,
  retain: (r) => parseRetain(r.retain),
  retainHistory: (r) => parseRetainHistory(r.retainHistory),
  minFreeDisk: (r) => parseMinFreeDisk(r.minFreeDisk),
  maxPeers: (r) => parseMaxPeers(r.maxPeers),
  logLevel: (r) => parseLogLevel(r.logLevel),
};

/**
 * Every source's settings, each value checked on its own and layered: flag, then environment, then `file` (read by
 * the command: this stays pure), then default.
 */
export function layerRunSources(flags: RawOptions, env: NodeJS.ProcessEnv, file: ConfigFile | null = null): Layered {
  return layerSources([flagLayer(flags), envLayer(env), fileLayer(file)], (key, raw) => CHECKS[key](raw));
}

/** The frozen configuration of `run` from its flags, the environment and the config file's document. */
export function parseRunConfig(flags: RawOptions, env: NodeJS.ProcessEnv, file: ConfigFile | null = null): RunConfig {
  return resolveRunConfig(flags, env, file).config;
}

/** `parseRunConfig`, with each setting's effective value and origin (what `config` prints). */
export function resolveRunConfig(flags: RawOptions, env: NodeJS.ProcessEnv, file: ConfigFile | null = null): { config: RunConfig; layered: Layered } {
  const layered = layerRunSources(flags, env, file);
  return { config: buildRunConfig(layered), layered };
}

function buildRunConfig(layered: Layered): RunConfig {
  const { raw } = layered;
  const listen = parseMultiaddrs(raw.listen?.length ? raw.listen : [DEFAULT_LISTEN], '--listen', false);
  return Object.freeze({
    dataDir: resolveDataDir(raw.dataDir, {}),
    listen,
    bootstrap: parseMultiaddrs(raw.bootstrap, '--bootstrap', true),
    api: parseApi(raw.api),
    offer: parseOffer(raw),
    rebenchmark: raw.rebenchmark === true,
    requireGrants: raw.requireGrants === true,
    inspect: raw.inspect === undefined || raw.inspect === false ? null : raw.inspect === true ? DEFAULT_INSPECT : raw.inspect,
    json: raw.json === true,
    logLevel: parseLogLevel(raw.logLevel),
    monitorIntervalMs: parseMonitorInterval(raw.monitorInterval),
    tls: parseTls(layered, listen),
    deals: parseDeals(raw),
    maxPeers: parseMaxPeers(raw.maxPeers),
    minFreeDisk: parseMinFreeDisk(raw.minFreeDisk),
    retainMs: parseRetain(raw.retain),
    retainHistoryBytes: parseRetainHistory(raw.retainHistory),
  });
}

/** Most peers a node dials itself; the bounds keep a node's connections well within the connection manager's. */
export const MAX_PEERS_RANGE = { min: 1, max: 150 } as const;

function parseMaxPeers(v: string | undefined): number | null {
  if (v === undefined) return null;
  const n = /^\d{1,4}$/.test(v) ? Number(v) : NaN;
  if (!Number.isInteger(n) || n < MAX_PEERS_RANGE.min || n > MAX_PEERS_RANGE.max) {
    throw new UsageError(`--max-peers "${v}" must be a whole number from ${MAX_PEERS_RANGE.min} to ${MAX_PEERS_RANGE.max}, e.g. --max-peers 50`);
  }
  return n;
}

/** `--retain`: a duration of at least an hour (a sweep runs hourly), or 0 to keep everything. */
function parseRetain(v: string | undefined): number {
  if (v === undefined) return DEFAULT_RETAIN_MS;
  if (v.trim() === '0') return 0;
  const ms = parseDuration(v);
  if (ms === undefined || !Number.isFinite(ms) || ms < 3_600_000) {
    throw new UsageError(`--retain "${v}" is not a duration of at least 1h; use e.g. --retain 7d, 36h, or 0 to keep everything`);
  }
  return ms;
}

/** Default `--retain-history`: the journal's history a node keeps at most (its segments are 32 MiB). */
export const DEFAULT_RETAIN_HISTORY_BYTES = 1024 ** 3;

/** `--retain-history`: a size of at least 64 MiB (two journal segments), or 0 for no cap. */
function parseRetainHistory(v: string | undefined): number {
  if (v === undefined) return DEFAULT_RETAIN_HISTORY_BYTES;
  const n = parseSize(v);
  if (n === 0) return 0;
  if (n === undefined || !Number.isFinite(n) || n < 64 * 1024 ** 2) {
    throw new UsageError(`--retain-history "${v}" is not a size of at least 64MiB; use e.g. --retain-history 1GiB, 256MiB, or 0 for no cap`);
  }
  return n;
}

function parseMinFreeDisk(v: string | undefined): MinFreeDisk {
  if (v === undefined) return DEFAULT_MIN_FREE_DISK;
  const pct = /^\s*(\d+(?:\.\d+)?)\s*%\s*$/.exec(v);
  if (pct) {
    const share = Number(pct[1]) / 100;
    if (share <= 0.5) return { share };
  } else {
    const bytes = parseSize(v);
    if (bytes !== undefined) return { bytes };
  }
  throw new UsageError(`--min-free-disk "${v}" is not a size or a share of the disk up to 50%; use e.g. --min-free-disk 2GiB, 10% or 0 (never decline for disk)`);
}

function parseDeals(raw: RawOptions): DealServiceInit {
  if (raw.bidWindow === undefined) return DEAL_SERVICE_DEFAULTS;
  const ms = parseDuration(raw.bidWindow);
  if (ms === undefined || ms < 10 || ms > 60_000) throw new UsageError(`--bid-window "${raw.bidWindow}" must be a duration from 10ms to 60s, e.g. 500ms or 2s`);
  return { ...DEAL_SERVICE_DEFAULTS, timing: { ...DEAL_SERVICE_DEFAULTS.timing, bidWindowMs: ms } };
}

export function parseClientConfig(raw: Pick<RawOptions, 'dataDir' | 'api' | 'json'>, env: NodeJS.ProcessEnv): ClientConfig {
  return Object.freeze({
    // a client finds the node `run` would use: --data-dir, then DMS_DATA_DIR, then DMS_HOME
    dataDir: resolveDataDir(raw.dataDir ?? (env.DMS_DATA_DIR || undefined), env),
    api: raw.api === undefined ? null : parseApi(raw.api),
    json: raw.json === true,
  });
}
