/**
 * Where each `run` setting comes from: a flag, the environment (`DMS_<FLAG>`), a YAML config file (`--config FILE`,
 * else `<data dir>/config.yaml`), or its default, in that order. One table, SETTINGS, names every setting's flag,
 * environment variable and file key and says how each source writes it; `run` and `config` both read it.
 * This file turns each source into raw options (what the flags would have been) and layers them; the values
 * themselves are checked by config.ts's parse functions, one source at a time, so an error names its source.
 */
import os from 'node:os';
import path from 'node:path';
import type { RawOptions } from './config.ts';
import { UsageError } from './errors.ts';

/** A setting as the flags carry it: text, a list (repeatable flags), or a switch (`--inspect` takes both). */
export type RawValue = string | readonly string[] | boolean;

export type SettingKey = Exclude<keyof RawOptions, 'config'>;

/**
 * How the environment and a file write a setting. `text`: a string (a file may also give a number). `path`: a
 * string; relative to the file's directory when in a file. `list`: comma-separated in the environment, a YAML list
 * or one string in a file. `csv`: one comma list, or a YAML list. `boolean`: true, false, 1 or 0. `inspect`: true,
 * false, 1, 0 or a URL.
 */
export type SettingKind = 'text' | 'path' | 'list' | 'csv' | 'boolean' | 'inspect';

export interface Setting {
  /** The option's key in RawOptions. */
  readonly key: SettingKey;
  /** The flag's name without `--`: also the key in a config file. */
  readonly name: string;
  readonly flag: string;
  readonly env: string;
  readonly kind: SettingKind;
  /** The default as the flag would give it; null when it is worked out at start (what `defaultText` says). */
  readonly default: RawValue | null;
  readonly defaultText: string;
}

const setting = (key: SettingKey, name: string, env: string, kind: SettingKind, dflt: RawValue | null, defaultText: string): Setting =>
  Object.freeze({ key, name, flag: `--${name}`, env, kind, default: dflt, defaultText });

/** Every `run` setting, in the order of `run --help`. The defaults here are what config.ts applies (a test checks). */
export const SETTINGS: readonly Setting[] = Object.freeze([
  setting('dataDir', 'data-dir', 'DMS_DATA_DIR', 'path', path.join(os.homedir(), '.dms'), '~/.dms'),
  setting('listen', 'listen', 'DMS_LISTEN', 'list', ['/ip4/0.0.0.0/tcp/9000/ws'], '/ip4/0.0.0.0/tcp/9000/ws'),
  setting('bootstrap', 'bootstrap', 'DMS_BOOTSTRAP', 'list', [], 'none'),
  setting('tlsCert', 'tls-cert', 'DMS_TLS_CERT', 'path', null, 'none'),
  setting('tlsKey', 'tls-key', 'DMS_TLS_KEY', 'path', null, 'none'),
  setting('api', 'api', 'DMS_API', 'text', '127.0.0.1:9999', '127.0.0.1:9999'),
  setting('cpu', 'cpu', 'DMS_CPU', 'text', null, 'the stored offer, else 3/4 of the cores'),
  setting('memory', 'memory', 'DMS_MEMORY', 'text', null, 'the stored offer, else half the memory'),
  setting('disk', 'disk', 'DMS_DISK', 'text', null, 'the stored offer, else half the free space'),
  setting('executors', 'executors', 'DMS_EXECUTORS', 'csv', null, 'the stored offer, else wasm'),
  setting('rebenchmark', 'rebenchmark', 'DMS_REBENCHMARK', 'boolean', false, 'false'),
  setting('requireGrants', 'require-grants', 'DMS_REQUIRE_GRANTS', 'boolean', false, 'false'),
  setting('inspect', 'inspect', 'DMS_INSPECT', 'inspect', false, 'off'),
  setting('monitorInterval', 'monitor-interval', 'DMS_MONITOR_INTERVAL', 'text', '5000', '5000'),
  setting('bidWindow', 'bid-window', 'DMS_BID_WINDOW', 'text', '2s', '2s'),
  setting('retain', 'retain', 'DMS_RETAIN', 'text', '7d', '7d'),
  setting('retainHistory', 'retain-history', 'DMS_RETAIN_HISTORY', 'text', '1GiB', '1GiB'),
  setting('minFreeDisk', 'min-free-disk', 'DMS_MIN_FREE_DISK', 'text', null, '1GiB or 5% of the disk, whichever is smaller'),
  setting('maxPeers', 'max-peers', 'DMS_MAX_PEERS', 'text', null, 'the network default, 50'),
  setting('json', 'json', 'DMS_JSON', 'boolean', false, 'false'),
  setting('logLevel', 'log-level', 'DMS_LOG_LEVEL', 'text', 'warn', 'warn'),
]);

/** The older name of DMS_DATA_DIR, still honoured below it. */
export const DMS_HOME = 'DMS_HOME';
/** The config file's environment variable (the `--config` flag's). */
export const DMS_CONFIG = 'DMS_CONFIG';
/** The file `run` reads from the data dir when no `--config` is given. */
export const DATA_DIR_CONFIG_FILE = 'config.yaml';

/** Where a value came from: `from` is the environment variable or the file's path. */
export interface Origin {
  readonly source: 'flag' | 'env' | 'file' | 'default';
  readonly from: string | null;
}

/** One source's value of a setting, with the prefix an error about it starts with. */
export interface SourcedValue {
  readonly value: RawValue;
  readonly origin: Origin;
  /** Prepended to a parse error's message to name the source; empty for a flag (the message names the flag). */
  readonly blame: string;
}

/** What one source sets. */
export type Layer = ReadonlyMap<SettingKey, SourcedValue>;

/** A config file as read: its path, whether `--config` named it, and its parsed YAML document. */
export interface ConfigFile {
  readonly path: string;
  /** Named by `--config` / DMS_CONFIG (it may set data-dir), rather than found in the data dir. */
  readonly explicit: boolean;
  readonly doc: unknown;
}

/** A setting's effective value and where it came from (what `config` prints). */
export interface ResolvedSetting extends Origin {
  readonly name: string;
  readonly key: SettingKey;
  /** Null: the default, worked out at start (see `defaultText`). Paths are absolute. */
  readonly value: RawValue | null;
  readonly defaultText: string;
}

/** The settings of all sources layered: the raw options `run` uses, and each setting's origin. */
export interface Layered {
  readonly raw: RawOptions;
  readonly settings: readonly ResolvedSetting[];
  originOf(key: SettingKey): Origin;
}

/** "flag", "env DMS_API", "file /path/config.yaml" or "default". */
export function describeOrigin(o: Origin): string {
  return o.from === null ? o.source : `${o.source} ${o.from}`;
}

/** The flags the user gave (commander leaves out the ones not given: run's options have no commander defaults). */
export function flagLayer(raw: RawOptions): Layer {
  const layer = new Map<SettingKey, SourcedValue>();
  for (const s of SETTINGS) {
    const value = raw[s.key];
    if (value !== undefined) layer.set(s.key, { value, origin: { source: 'flag', from: null }, blame: '' });
  }
  return layer;
}

/**
 * The `DMS_<FLAG>` variables that are set (DMS_HOME for the data dir when DMS_DATA_DIR is not). An empty variable
 * counts as unset, as `VAR=` in an env file or a shell means.
 */
export function envLayer(env: NodeJS.ProcessEnv): Layer {
  const layer = new Map<SettingKey, SourcedValue>();
  for (const s of SETTINGS) {
    const name = s.key === 'dataDir' && !env[s.env] ? DMS_HOME : s.env;
    const text = env[name];
    if (text === undefined || text === '') continue;
    const blame = `${name}=${JSON.stringify(text)} (environment): `;
    layer.set(s.key, { value: fromEnv(s, text, blame), origin: { source: 'env', from: name }, blame });
  }
  return layer;
}

function fromEnv(s: Setting, text: string, blame: string): RawValue {
  switch (s.kind) {
    case 'text':
    case 'path':
    case 'csv':
      return text;
    case 'list':
      return text.split(',').map((a) => a.trim()).filter(Boolean);
    case 'boolean':
    case 'inspect':
      return switchValue(s, text, blame);
    default:
      return unreachable(s.kind);
  }
}

/** true, false, 1 or 0 (any case); `--inspect` also takes a URL. */
function switchValue(s: Setting, text: string, blame: string): boolean | string {
  const t = text.trim().toLowerCase();
  if (t === 'true' || t === '1') return true;
  if (t === 'false' || t === '0') return false;
  if (s.kind === 'inspect' && t !== '') return text.trim();
  throw new UsageError(`${blame}${s.flag} takes true or false (or 1, 0)${s.kind === 'inspect' ? ', or the inspector\'s URL' : ''}`);
}

/** What a config file sets; refuses a document that is not a mapping, unknown keys and values of the wrong type. */
export function fileLayer(file: ConfigFile | null): Layer {
  const layer = new Map<SettingKey, SourcedValue>();
  if (file === null || file.doc === null) return layer; // an empty file sets nothing
  if (typeof file.doc !== 'object' || Array.isArray(file.doc)) {
    throw new UsageError(`${file.path}: not a mapping of settings; write one "flag-name: value" per line, e.g. "api: 127.0.0.1:9999"`);
  }
  for (const [key, value] of Object.entries(file.doc as Record<string, unknown>)) {
    const s = SETTINGS.find((x) => x.name === key);
    const blame = `${file.path}: ${key}: `;
    if (!s) throw new UsageError(`${file.path}: unknown setting "${key}"${suggest(key)}; the keys are the flags of \`run\` without "--"`);
    if (s.key === 'dataDir' && !file.explicit) {
      throw new UsageError(`${blame}data-dir cannot be set in the data dir's own config file; pass --data-dir, set DMS_DATA_DIR, or name a config file with --config`);
    }
    layer.set(s.key, { value: fromFile(s, value, path.dirname(file.path), blame), origin: { source: 'file', from: file.path }, blame });
  }
  return layer;
}

function fromFile(s: Setting, v: unknown, dir: string, blame: string): RawValue {
  const text = typeof v === 'string' ? v : typeof v === 'number' && Number.isFinite(v) ? String(v) : undefined;
  const strings = Array.isArray(v) && v.every((x) => typeof x === 'string') ? (v as string[]) : undefined;
  switch (s.kind) {
    case 'text':
      if (text !== undefined) return text;
      break;
    case 'path':
      if (typeof v === 'string') return v.trim() === '' ? v : path.resolve(dir, v);
      break;
    case 'list':
      if (typeof v === 'string') return [v];
      if (strings) return strings;
      break;
    case 'csv':
      if (text !== undefined) return text;
      if (strings) return strings.join(',');
      break;
    case 'boolean':
    case 'inspect':
      if (typeof v === 'boolean') return v;
      if (text !== undefined) return switchValue(s, text, blame);
      break;
    default:
      return unreachable(s.kind);
  }
  throw new UsageError(`${blame}${JSON.stringify(v) ?? String(v)} is not ${EXPECTED[s.kind]}`);
}

const EXPECTED: Record<SettingKind, string> = {
  text: 'a string or a number',
  path: 'a path (a string)',
  list: 'a list of strings (or one string)',
  csv: 'a comma list or a list of strings',
  boolean: 'true or false',
  inspect: 'true, false or a URL',
};

/**
 * Layers the sources, highest first (flag, env, file). Every value of every source is checked by `check` on its
 * own first, so a bad value is reported, naming its source, even where a higher source overrides it.
 */
export function layerSources(layers: readonly Layer[], check: (key: SettingKey, raw: RawOptions) => void): Layered {
  for (const layer of layers) {
    for (const [key, v] of layer) {
      try {
        check(key, { [key]: v.value } as RawOptions);
      } catch (e) {
        throw blamed(e, v.blame);
      }
    }
  }
  const raw: Record<string, RawValue> = {};
  const origins = new Map<SettingKey, Origin>();
  const settings = SETTINGS.map((s): ResolvedSetting => {
    const v = layers.map((l) => l.get(s.key)).find((x) => x !== undefined);
    if (v) raw[s.key] = v.value;
    const origin = v?.origin ?? { source: 'default', from: null };
    origins.set(s.key, origin);
    const value = v === undefined ? s.default : s.kind === 'path' && typeof v.value === 'string' ? path.resolve(v.value) : v.value;
    return Object.freeze({ name: s.name, key: s.key, value, defaultText: s.defaultText, ...origin });
  });
  return { raw: raw as RawOptions, settings, originOf: (key) => origins.get(key)! };
}

/** A UsageError from a parse function, its message prefixed with the source it is about; other errors as they are. */
function blamed(e: unknown, blame: string): unknown {
  if (blame === '' || (e as Error)?.name !== 'UsageError') return e;
  return new UsageError(`${blame}${(e as Error).message}`);
}

/** ` (did you mean "api"?)` for a key close to a known one, else nothing. */
function suggest(key: string): string {
  const bare = key.replace(/^-+/, '').replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`).replace(/_/g, '-').toLowerCase();
  let best: { name: string; d: number } | undefined;
  for (const s of SETTINGS) {
    const d = distance(bare, s.name);
    if (!best || d < best.d) best = { name: s.name, d };
  }
  return best && best.d <= Math.max(2, Math.floor(best.name.length / 3)) ? ` (did you mean "${best.name}"?)` : '';
}

/** Levenshtein distance. */
function distance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    for (let j = 1; j <= b.length; j++) row[j] = Math.min(prev[j]! + 1, row[j - 1]! + 1, prev[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    prev = row;
  }
  return prev[b.length]!;
}

function unreachable(x: never): never {
  throw new Error(`unknown setting kind ${String(x)}`);
}
