/**
 * The CLI's commands that are not clients of a running node: `demo` (starts its own nodes) and `replay` (reads
 * a data dir's event log). Their code is loaded only when they run.
 */
import { type Command, Option } from 'commander';
import { DEFAULT_INSPECT, type RawOptions, parseClientConfig } from '../config.ts';
import { UsageError } from '../errors.ts';
import { createLogger } from '../logger.ts';
import { noteLogLevel, print } from './cli-kit.ts';
import { formatReplay } from './format.ts';

type ReplayFlags = RawOptions & { actor: string; to?: string; summary?: boolean };

export function addStandaloneCommands(program: Command): void {
  program
    .command('demo')
    .description('start three nodes on loopback, deploy a sample WASM job, narrate each step, clean up')
    .option('--keep', 'keep the nodes\' data dirs (to replay them afterwards)')
    .action(async (opts: { keep?: boolean }) => {
      await import('../polyfills.ts');
      const { runDemo } = await import('./demo.ts');
      process.exitCode = await runDemo({ say: (line) => process.stdout.write(`${line}\n`), keep: opts.keep === true });
    });

  program
    .command('replay')
    .description("rebuild an actor's state from the data dir's event log (no running node needed): timeline and final state")
    .option('--data-dir <dir>', 'the node\'s data dir (default $DMS_HOME, else ~/.dms)')
    .option('--actor <id>', 'which actor', 'node')
    .option('--to <seq>', 'stop after this event sequence number')
    .option('--summary', 'print only the final state, not the timeline')
    .addOption(new Option('--inspect [url]', 'stream the history to the Stately inspector (default: a relay on ws://127.0.0.1:8080)'))
    .option('--json', 'JSON lines: one per event, then the final state')
    .option('--log-level <level>', 'silent, error, warn, info or debug', 'warn')
    .action(replayCommand);
}

async function replayCommand(opts: ReplayFlags): Promise<void> {
  noteLogLevel(opts);
  const to = opts.to === undefined ? null : Number(opts.to);
  if (to !== null && (!Number.isInteger(to) || to < 0)) throw new UsageError(`--to "${opts.to}" must be a whole number >= 0 (an event sequence number)`);
  const { dataDir } = parseClientConfig(opts, process.env);
  await import('../polyfills.ts');
  const { replay } = await import('./replay.ts');
  const inspectUrl = opts.inspect === undefined || opts.inspect === false ? null : opts.inspect === true ? DEFAULT_INSPECT : opts.inspect;
  const inspector = inspectUrl ? await (await import('../inspector/inspector.ts')).createInspectorBridge(inspectUrl, createLogger('warn')) : null;
  const json = opts.json === true;
  const r = await replay({
    dataDir, actor: opts.actor, to, json, timeline: opts.summary !== true, inspector,
    out: (line) => process.stdout.write(`${line}\n`),
    progress: (line) => process.stderr.write(`${line}\n`),
  });
  // listen for Ctrl-C before the final state is out: whoever reads it may press Ctrl-C at once
  const interrupted = inspector ? new Promise<void>((resolve) => process.once('SIGINT', () => resolve())) : null;
  print(json, { event: 'final', actor: opts.actor, ...r }, () => formatReplay(opts.actor, r));
  if (inspector) {
    if (inspector.page) process.stderr.write(`inspector: open ${inspector.page}; press Ctrl-C when done\n`);
    await interrupted;
    inspector.stop();
  }
}
