/**
 * What the CLI's commands share: the option sets of the API clients and of the offer, the way they print, the
 * connection to the running node, and whether a failing command should also print its error's stack.
 */
import type { Command } from 'commander';
import { type ApiClient, connect } from '../api/client.ts';
import { type RawOptions, parseClientConfig } from '../config.ts';

/** The helpers a group of commands gets from the program (see deal-commands.ts). */
export interface CliKit {
  clientOptions(cmd: Command): Command;
  client(opts: RawOptions): Promise<{ api: ApiClient; json: boolean }>;
  print(json: boolean, value: unknown, human: () => string): void;
}

let debug = false;

/** Commander's collector of a repeatable option (no previous list: the option's first use, it has no default). */
export const collect = (v: string, prev: string[] | undefined) => [...(prev ?? []), v];

/**
 * Remembers whether the command runs with --log-level debug: then an error it ends with shows its stack. `run`
 * notes its flags first, then the level its configuration settled on (the flag, DMS_LOG_LEVEL or the file).
 */
export function noteLogLevel(opts: Pick<RawOptions, 'logLevel'>): void {
  debug = opts.logLevel === 'debug';
}

/** Whether the running command asked for --log-level debug. */
export function debugEnabled(): boolean {
  return debug;
}

export function clientOptions(cmd: Command): Command {
  return cmd
    .option('--data-dir <dir>', 'the node\'s data dir (default $DMS_HOME, else ~/.dms)')
    .option('--api <host:port>', 'the node\'s API address (default: read from the data dir)')
    .option('--json', 'machine-readable output on stdout')
    .option('--log-level <level>', 'silent, error, warn, info or debug');
}

export function offerOptions(cmd: Command): Command {
  return cmd
    .option('--cpu <n>', 'cores to offer (1..machine cores; default 3/4 of them)')
    .option('--memory <size>', 'memory to offer, e.g. 8GiB (10-90% of the machine; default half)')
    .option('--disk <size>', 'disk to offer, e.g. 20GB (default half of the free space)')
    .option('--executors <list>', 'comma list of executors to offer (wasm, process; default wasm)');
}

/** Prints a command's answer: as one JSON line with --json, else its human form. */
export function print(json: boolean, value: unknown, human: () => string): void {
  process.stdout.write(json ? `${JSON.stringify(value)}\n` : `${human()}\n`);
}

/** Connects to the running node that the client options point at. */
export async function client(opts: RawOptions): Promise<{ api: ApiClient; json: boolean }> {
  noteLogLevel(opts);
  const cfg = parseClientConfig(opts, process.env);
  return { api: await connect(cfg), json: cfg.json };
}

/** The kit handed to command groups that take one. */
export const cliKit: CliKit = { clientOptions, client, print };
