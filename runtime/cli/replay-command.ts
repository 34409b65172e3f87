/**
 * The `replay` command: one actor's timeline (`--actor`, the default), the actors a log holds (`--list`), or one
 * deal across several data dirs (`--deal`). Reads data dirs only; no running node is needed.
 */
import { type Command, Option } from 'commander';
import { DEFAULT_INSPECT, parseClientConfig } from '../config.ts';
import { UsageError } from '../errors.ts';
import type { InspectorBridge } from '../inspector/inspector.ts';
import { createLogger } from '../logger.ts';
import { parseKind } from '../replay/actor-kinds.ts';
import { parseWindow } from '../replay/replay-window.ts';
import { collect, noteLogLevel, print } from './cli-kit.ts';
import { formatReplay } from './format.ts';
import { parseSpeed } from './replay-inspect.ts';

interface ReplayFlags {
  dataDir?: string[];
  actor?: string;
  list?: boolean;
  kind?: string;
  deal?: string;
  diff?: boolean;
  type?: string[];
  from?: string;
  to?: string;
  summary?: boolean;
  inspect?: string | boolean;
  speed?: string;
  json?: boolean;
  logLevel?: string;
}

export function addReplayCommand(program: Command): void {
  program
    .command('replay')
    .description("rebuild an actor's state from a data dir's event log (no running node needed): timeline and final state; or list the log's actors (--list), or follow one deal across data dirs (--deal)")
    .option('--data-dir <dir>', "the node's data dir (default $DMS_HOME, else ~/.dms); repeat it with --deal, once per node", collect)
    .option('--actor <id>', 'which actor (default: node)')
    .option('--list', 'list the actors in the log: kind, id, job name, events, first and last time, final state; newest first')
    .option('--kind <kind>', 'with --list: only job, provider, allocation, ensemble, node, array, batch or trust actors')
    .option('--deal <job>', "one deal's timeline across the --data-dir of its requester and of its providers")
    .option('--diff', 'under each event, what it changed in the state and context')
    .option('--type <type>', 'show only events of this type (repeatable, or a comma list)', collect)
    .option('--from <time>', 'show events from this time on (ISO 8601, or ms since the epoch)')
    .option('--to <seq|time>', 'stop after this event sequence number, or this time')
    .option('--summary', 'print only the final state, not the timeline')
    .addOption(new Option('--inspect [url]', 'stream the history to the Stately inspector (default: a relay on ws://127.0.0.1:8080)'))
    .option('--speed <x>', 'replay at x times the recorded pace (with --inspect, or to watch the timeline)')
    .option('--json', 'JSON: one line per event (then the final state); with --list one document')
    .option('--log-level <level>', 'silent, error, warn, info or debug', 'warn')
    .action(replayCommand);
}

function checkFlags(o: ReplayFlags): void {
  const modes = [o.list && '--list', o.deal !== undefined && '--deal', o.actor !== undefined && '--actor'].filter(Boolean);
  if (modes.length > 1) throw new UsageError(`${modes.join(' and ')} do not go together: --actor replays one actor, --list lists them, --deal follows one deal`);
  const not = (flag: string, set: unknown, mode: string) => {
    if (set !== undefined && set !== false) throw new UsageError(`${flag} does not go with ${mode}`);
  };
  if (o.list) for (const [f, v] of [['--diff', o.diff], ['--type', o.type], ['--from', o.from], ['--to', o.to], ['--summary', o.summary], ['--inspect', o.inspect], ['--speed', o.speed]] as const) not(f, v, '--list');
  if (!o.list) not('--kind', o.kind, `replay without --list (it filters the list)`);
  if (o.deal !== undefined) not('--summary', o.summary, '--deal');
  if (o.deal === undefined && (o.dataDir?.length ?? 0) > 1) throw new UsageError('give one --data-dir (several only with --deal, one per node)');
}

const out = (line: string) => process.stdout.write(`${line}\n`);
const progress = (line: string) => process.stderr.write(`${line}\n`);

async function inspectorFor(flag: string | boolean | undefined): Promise<InspectorBridge | null> {
  const url = flag === undefined || flag === false ? null : flag === true ? DEFAULT_INSPECT : flag;
  if (!url) return null;
  await import('../polyfills.ts'); // the inspector's websocket
  return (await import('../inspector/inspector.ts')).createInspectorBridge(url, createLogger('warn'));
}

/** With --inspect: the page to open, then wait for Ctrl-C (listened for before the last output is out). */
async function holdInspector(inspector: InspectorBridge | null, interrupted: Promise<void> | null): Promise<void> {
  if (!inspector) return;
  if (inspector.page) process.stderr.write(`inspector: open ${inspector.page}; press Ctrl-C when done\n`);
  await interrupted;
  inspector.stop();
}

async function replayCommand(o: ReplayFlags): Promise<void> {
  noteLogLevel(o);
  // `replay ... | head`: the reader has what it wanted
  process.stdout.on('error', (e: NodeJS.ErrnoException) => (e.code === 'EPIPE' ? process.exit(0) : undefined));
  checkFlags(o);
  const json = o.json === true;
  const window = parseWindow(o, o.deal === undefined);
  const speed = parseSpeed(o.speed);
  const dirs = o.dataDir?.length ? o.dataDir.map((d) => parseClientConfig({ dataDir: d }, process.env).dataDir) : [parseClientConfig({}, process.env).dataDir];
  if (o.list) {
    const { listActors } = await import('./replay-list.ts');
    return listActors({ dataDir: dirs[0]!, kind: o.kind === undefined ? null : parseKind(o.kind), json, out, progress });
  }
  const inspector = await inspectorFor(o.inspect);
  const interrupted = inspector ? new Promise<void>((resolve) => process.once('SIGINT', () => resolve())) : null;
  if (o.deal !== undefined) {
    const { replayDeal } = await import('./replay-deal.ts');
    await replayDeal({ dirs, job: o.deal, window, json, diff: o.diff === true, speed, inspector, out, progress });
    return holdInspector(inspector, interrupted);
  }
  const { replay } = await import('./replay.ts');
  const actor = o.actor ?? 'node';
  const r = await replay({ dataDir: dirs[0]!, actor, window, json, timeline: o.summary !== true, diff: o.diff === true, speed, inspector, out, progress });
  print(json, { event: 'final', actor, ...r }, () => [formatReplay(actor, r), ...(r.stopped ? [`the history stops early: ${r.stopped.note}`] : [])].join('\n'));
  await holdInspector(inspector, interrupted);
}
