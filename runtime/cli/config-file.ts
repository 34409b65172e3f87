/**
 * Finds and reads `run`'s config file: `--config FILE` (or DMS_CONFIG), which must exist, else
 * `<data dir>/config.yaml` when present. The YAML parser is loaded only when there is a file to parse.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { type ConfigFile, DATA_DIR_CONFIG_FILE, DMS_CONFIG } from '../config-sources.ts';
import { type RawOptions, layerRunSources, resolveDataDir } from '../config.ts';
import { UsageError } from '../errors.ts';

/** A config file holds a few settings: anything bigger is not one. */
const MAX_CONFIG_BYTES = 64 * 1024;

/** The config file the flags and the environment point at, parsed; null when there is none. */
export async function loadConfigFile(flags: RawOptions, env: NodeJS.ProcessEnv): Promise<ConfigFile | null> {
  const named = flags.config ?? (env[DMS_CONFIG] || undefined); // an empty variable counts as unset
  if (named !== undefined) {
    const by = flags.config !== undefined ? '--config' : `${DMS_CONFIG}=${JSON.stringify(named)} (environment):`;
    if (named.trim() === '') throw new UsageError(`${by} names no file; pass the path of a YAML config file`);
    const file = path.resolve(named);
    const text = await readText(file);
    if (text === null) throw new UsageError(`${by} ${file}: no such file; pass the path of a YAML config file`);
    return { path: file, explicit: true, doc: await parseYaml(file, text) };
  }
  // the data dir from the flags and the environment only: its own file cannot move it
  const dataDir = resolveDataDir(layerRunSources(flags, env).raw.dataDir, {});
  const file = path.join(dataDir, DATA_DIR_CONFIG_FILE);
  const text = await readText(file);
  return text === null ? null : { path: file, explicit: false, doc: await parseYaml(file, text) };
}

/** The file's text; null when it does not exist. */
async function readText(file: string): Promise<string | null> {
  let buf: Buffer;
  try {
    buf = await fs.readFile(file);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return null; // ENOTDIR: a data dir under a file, which run reports
    throw new UsageError(`${file}: cannot read the config file (${code ?? (e as Error).message}); check the path and its permissions`);
  }
  if (buf.length > MAX_CONFIG_BYTES) throw new UsageError(`${file}: ${buf.length} bytes is too big for a config file (at most ${MAX_CONFIG_BYTES}); is it the right file?`);
  return buf.toString('utf8');
}

async function parseYaml(file: string, text: string): Promise<unknown> {
  const { parse } = await import('yaml');
  try {
    return parse(text);
  } catch (e) {
    const why = (e as Error).message.split('\n')[0]!.trim().replace(/:$/, '');
    throw new UsageError(`${file}: not YAML (${why}); write one "flag-name: value" per line, e.g. "api: 127.0.0.1:9999"`);
  }
}
