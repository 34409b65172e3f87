/**
 * `config`: the configuration `run` would use with the same flags, environment and config file, and where each
 * value comes from (flag, env DMS_X, file PATH or default). Starts nothing: it loads only the configuration code.
 */
import type { Command } from 'commander';
import path from 'node:path';
import { type ConfigFile, DATA_DIR_CONFIG_FILE, type ResolvedSetting } from '../config-sources.ts';
import { type RawOptions, resolveRunConfig } from '../config.ts';
import { noteLogLevel, print } from './cli-kit.ts';
import { loadConfigFile } from './config-file.ts';
import { runOptions } from './run-command.ts';

/** `config --json`: one document. */
export interface ConfigReport {
  readonly file: string | null;
  readonly settings: readonly { name: string; value: ResolvedSetting['value']; source: ResolvedSetting['source']; from: string | null }[];
}

export function addConfigCommand(program: Command): void {
  runOptions(
    program
      .command('config')
      .description("print the configuration `run` would use with these flags, the environment and the config file, and where each value comes from"),
    'print one JSON document {file, settings: [{name, value, source, from}]}',
  ).action(configCommand);
}

async function configCommand(opts: RawOptions): Promise<void> {
  noteLogLevel(opts);
  const file = await loadConfigFile(opts, process.env);
  const { settings } = resolveRunConfig(opts, process.env, file).layered;
  const report: ConfigReport = {
    file: file?.path ?? null,
    settings: settings.map((s) => ({ name: s.name, value: s.value, source: s.source, from: s.from })),
  };
  print(opts.json === true, report, () => formatConfig(file, settings, opts));
}

/** The human form: the file, then one aligned row per setting. */
export function formatConfig(file: ConfigFile | null, settings: readonly ResolvedSetting[], flags: RawOptions): string {
  const dataDir = settings.find((s) => s.key === 'dataDir')?.value;
  const fileLine = file === null
    ? `config file  none (no ${typeof dataDir === 'string' ? path.join(dataDir, DATA_DIR_CONFIG_FILE) : DATA_DIR_CONFIG_FILE})`
    : `config file  ${file.path} (${!file.explicit ? 'in the data dir' : flags.config !== undefined ? '--config' : 'DMS_CONFIG'})`;
  const rows = settings.map((s) => [s.name, showValue(s), s.from === null ? s.source : `${s.source} ${s.from}`] as const);
  const widths = [0, 1].map((i) => Math.max(...rows.map((r) => r[i]!.length), i === 0 ? 'setting'.length : 'value'.length));
  const line = (r: readonly string[]) => `${r[0]!.padEnd(widths[0]!)}  ${r[1]!.padEnd(widths[1]!)}  ${r[2]!}`;
  return [fileLine, line(['setting', 'value', 'source']), ...rows.map(line)].join('\n');
}

function showValue(s: ResolvedSetting): string {
  const v = s.value;
  if (v === null) return `(${s.defaultText})`;
  if (typeof v === 'boolean') return String(v);
  if (typeof v === 'string') return v === '' ? '""' : v;
  return v.length === 0 ? '(none)' : v.join(', ');
}
