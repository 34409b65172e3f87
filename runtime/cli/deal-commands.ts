/**
 * The CLI's deal commands: deploy, jobs, status, logs, cancel. Clients of the local API, like the others.
 */
import type { Command } from 'commander';
import { JOB_TERMINAL } from '../../machines/deal.constants.ts';
import type { EnsembleRecord } from '../../machines/ensemble.messages.ts';
import type { JobRecord } from '../../machines/requester.messages.ts';
import type { ApiClient } from '../api/client.ts';
import type { RawOptions } from '../config.ts';
import { UsageError } from '../errors.ts';
import type { CliKit } from './cli-kit.ts';

/** How often `deploy --wait` polls a node too old for the event stream. */
const POLL_MS = 100;

/**
 * Writes and waits until the text is handed to the OS: a pipe takes 64 KiB at a time and the CLI ends with
 * process.exit once the command returns, which drops whatever the pipe had not taken yet (`logs JOB | cat` of
 * 983,040 characters printed 950,272).
 */
function written(stream: NodeJS.WriteStream, text: string): Promise<void> {
  return new Promise((resolve, reject) => stream.write(text, (err) => (err ? reject(err) : resolve())));
}
const time = (ms: number | null) => (ms === null ? '-' : new Date(ms).toISOString().slice(11, 23));
const short = (peer: string | null) => (peer ? `${peer.slice(0, 8)}…${peer.slice(-6)}` : '-');

/** Exit code of a finished job: 0 only when it completed with exit code 0. */
export function jobExitCode(r: JobRecord): number {
  return r.state === 'completed' && (r.exitCode ?? 0) === 0 ? 0 : 1;
}

type AnyRecord = JobRecord | EnsembleRecord;
const isEnsemble = (r: AnyRecord): r is EnsembleRecord => 'kind' in r && r.kind === 'ensemble';

/** `--index`: a whole number from 0; undefined when not given. */
function indexOption(raw: string | undefined): number | undefined {
  if (raw === undefined) return undefined;
  if (!/^\d{1,6}$/.test(raw)) throw new UsageError(`--index "${raw}" is not an instance number (0 to the job's count - 1)`);
  return Number(raw);
}

/** One instance of an array job, for people. */
function formatInstance(r: Record<string, unknown>): string {
  const where = r.provider ? `\n  provider   ${r.provider}\n  allocation ${r.allocationId}` : '';
  const code = r.exitCode === null || r.exitCode === undefined ? '' : `\n  exit code  ${r.exitCode}`;
  return `job ${r.job} instance ${r.index} of ${r.count}: ${r.state}${where}${code}\n  attempts   ${r.attempts} failed\n  ${r.message}`;
}

/** Exit code of a finished ensemble (or one that is up): 0 only when no part failed and it was not cancelled. */
export function ensembleExitCode(r: EnsembleRecord): number {
  return r.state === 'failed' || r.state === 'cancelled' || r.parts.some((p) => p.state === 'failed' || (p.exitCode ?? 0) !== 0) ? 1 : 0;
}

/** `deploy --wait` of an ensemble returns once it ended, or every task ended and every service runs healthy. */
export function ensembleSettled(r: EnsembleRecord): boolean {
  if (r.endedAt !== null || ['completed', 'failed', 'cancelled'].includes(r.state)) return true;
  return r.parts.every((p) => (p.type === 'task' ? ['completed', 'failed', 'terminated'].includes(p.state) : p.state === 'running' && p.healthy !== false));
}

export function formatEnsemble(r: EnsembleRecord): string {
  const lines = [
    `ensemble  ${r.id}  (${r.name}, ${r.parts.length} parts, recovery ${r.recovery})`,
    `state     ${r.state}`,
    `message   ${r.message || '-'}`,
    `times     created ${new Date(r.createdAt).toISOString()}  started ${r.startedAt ? new Date(r.startedAt).toISOString() : '-'}  ended ${r.endedAt ? new Date(r.endedAt).toISOString() : '-'}`,
    `restarts  ${r.restarts}`,
    'parts',
    '  name              type     state       provider          restarts  health     exit  allocation',
  ];
  for (const p of r.parts) {
    const health = p.healthy === null ? '-' : p.healthy ? 'healthy' : 'unhealthy';
    lines.push(`  ${p.name.slice(0, 16).padEnd(16)}  ${p.type.padEnd(7)}  ${p.state.padEnd(10)}  ${short(p.provider).padEnd(16)}  ${String(p.restarts).padStart(8)}  ${health.padEnd(9)}  ${String(p.exitCode ?? '-').padStart(4)}  ${p.allocationId ?? '-'}`);
  }
  if (r.history.length > 0) {
    lines.push('history');
    for (const h of r.history) lines.push(`  ${time(h.at)}  ${h.state.padEnd(12)}  ${h.message}`);
  }
  return lines.join('\n');
}

export function formatJob(r: JobRecord): string {
  const lines = [
    `job       ${r.id}  (${r.name}, ${r.executor})`,
    `state     ${r.state}${r.exitCode === null ? '' : `  exit code ${r.exitCode}`}`,
    `provider  ${r.provider ?? '-'}`,
    `allocation ${r.allocationId ?? '-'}${r.allocations.length > 1 ? `  (tried: ${r.allocations.join(', ')})` : ''}`,
    `message   ${r.message || '-'}`,
    `times     created ${new Date(r.createdAt).toISOString()}  started ${r.startedAt ? new Date(r.startedAt).toISOString() : '-'}  ended ${r.endedAt ? new Date(r.endedAt).toISOString() : '-'}  deadline ${new Date(r.deadline).toISOString()}`,
    `rounds    ${r.rounds}`,
  ];
  // an array job: its instances by state, and the providers that ran them
  const arr = r as JobRecord & { instances?: Record<string, number>; deals?: { provider: string; nonce: number; slots: number; state: string; completed: number; message: string }[]; duplicates?: number };
  if (arr.instances) {
    const i = arr.instances;
    lines.push(`instances ${i['total']} in all: ${i['queued']} queued, ${i['running']} running, ${i['completed']} completed, ${i['failed']} failed${arr.duplicates ? `  (${arr.duplicates} repeated reports ignored)` : ''}`);
    if (arr.deals && arr.deals.length > 0) {
      lines.push('deals (provider, round, slots, state, instances completed)');
      for (const d of arr.deals.slice(-20)) lines.push(`  ${short(d.provider).padEnd(18)}  ${String(d.nonce).padStart(3)}  ${String(d.slots).padStart(4)}  ${d.state.padEnd(10)}  ${String(d.completed).padStart(6)}  ${d.message}`);
    }
  }
  if (r.bids.length > 0) {
    lines.push('bids (latest round, best first)', '  rank  provider            price      score   rtt ms  utility  outcome');
    for (const b of r.bids) {
      lines.push(`  ${String(b.rank).padStart(4)}  ${short(b.provider).padEnd(18)}  ${String(b.price).padStart(5)}  ${String(Math.round(b.score)).padStart(9)}  ${b.rttMs.toFixed(2).padStart(7)}  ${b.utility.toFixed(3).padStart(7)}  ${b.outcome}${b.note ? ` (${b.note})` : ''}`);
    }
  }
  for (const d of r.declines) lines.push(`declined  ${short(d.provider)}: ${d.reason}`);
  if (r.declinesNotListed) lines.push(`declined  and ${r.declinesNotListed} more peers (not listed)`);
  if (r.history.length > 0) {
    lines.push('history');
    for (const h of r.history) lines.push(`  ${time(h.at)}  ${h.state.padEnd(12)}  ${h.message}`);
  }
  return lines.join('\n');
}

function formatJobs(list: readonly AnyRecord[]): string {
  if (list.length === 0) return 'no jobs yet; `deploy FILE` submits one';
  return list
    .map((r) =>
      isEnsemble(r)
        ? `${r.id}  ${r.name.slice(0, 20).padEnd(20)}  ${r.state.padEnd(12)}  ${`${r.parts.length} parts`.padEnd(16)}  ${r.parts.map((p) => `${p.name}:${p.state}`).join(' ')}  ${new Date(r.createdAt).toISOString()}`
        : 'instances' in r && r.instances
          ? `${r.id}  ${r.name.slice(0, 20).padEnd(20)}  ${r.state.padEnd(12)}  ${`${(r.instances as Record<string, number>)['completed']}/${(r.instances as Record<string, number>)['total']} done`.padEnd(16)}  exit ${r.exitCode ?? '-'}  ${new Date(r.createdAt).toISOString()}`
          : `${r.id}  ${r.name.slice(0, 20).padEnd(20)}  ${r.state.padEnd(12)}  ${short(r.provider).padEnd(16)}  exit ${r.exitCode ?? '-'}  ${new Date(r.createdAt).toISOString()}`,
    )
    .join('\n');
}

/**
 * Follows a job until it ends (an ensemble: until it is up or ended), printing each new history entry; resolves
 * with the final record. The node pushes each change on its event stream; an older node is polled every POLL_MS.
 */
async function follow(api: ApiClient, id: string, json: boolean): Promise<AnyRecord> {
  const { followJob } = await import('../api/job-follow.ts');
  let last: { readonly at: number; readonly state: string; readonly message: string } | undefined;
  const show = (r: AnyRecord) => {
    // the history keeps its newest entries: print those after the last one shown
    const at = last ? r.history.findLastIndex((h) => h.at === last!.at && h.message === last!.message) : -1;
    const fresh = at >= 0 || !last ? r.history.slice(at + 1) : r.history.filter((h) => h.at > last!.at);
    for (const h of fresh) {
      process.stdout.write(json ? `${JSON.stringify({ event: 'progress', job: id, ...h })}\n` : `${time(h.at)}  ${h.state.padEnd(12)}  ${h.message}\n`);
    }
    last = r.history.at(-1) ?? last;
  };
  return followJob<AnyRecord>(api, id, { until: (r) => (isEnsemble(r) ? ensembleSettled(r) : JOB_TERMINAL.includes(r.state)), onRecord: show, pollMs: POLL_MS });
}

export function addDealCommands(program: Command, kit: CliKit): void {
  const { clientOptions, client, print } = kit;

  clientOptions(program.command('deploy').description('submit a job (JSON or YAML file, see INTERFACE.md); prints its id').argument('<file>', 'the job file'))
    .option('--wait', 'show progress until the job ends; the exit code is 0 only if it completed with exit code 0')
    .action(async (file: string, opts: RawOptions & { wait?: boolean }) => {
      const { loadJobFile, readJobDocument } = await import('./job-file.ts');
      // from the wire schemas, which the job file's checks load anyway (deal-service.ts would add the deal runtime)
      const { MAX_DEAL_MODULE_BYTES } = await import('../deals/deal-schemas.ts');
      const doc = await readJobDocument(file);
      let body: object;
      if ('allocations' in doc) {
        // an ensemble: several parts, placed all or none
        const { loadEnsembleFile } = await import('./ensemble-file.ts');
        const loaded = await loadEnsembleFile(file, { maxModuleBytes: MAX_DEAL_MODULE_BYTES });
        body = { ensemble: loaded.ensemble, modules: Object.fromEntries([...loaded.modules].map(([sha, b]) => [sha, Buffer.from(b).toString('base64')])) };
      } else {
        const loaded = await loadJobFile(file, { maxModuleBytes: MAX_DEAL_MODULE_BYTES });
        body = { job: loaded.job, ...(loaded.module ? { module: Buffer.from(loaded.module).toString('base64') } : {}) };
      }
      const { api, json } = await client(opts);
      const rec = (await api.request('POST', '/v1/deploy', body)) as AnyRecord;
      if (!opts.wait) {
        print(json, rec, () => rec.id);
        return;
      }
      if (!json) process.stdout.write(`${isEnsemble(rec) ? 'ensemble' : 'job'} ${rec.id} (${rec.name})\n`);
      const end = await follow(api, rec.id, json);
      if (json) process.stdout.write(`${JSON.stringify({ event: isEnsemble(end) && end.endedAt === null ? 'up' : 'ended', ...end })}\n`);
      else if (isEnsemble(end)) process.stdout.write(`ensemble ${end.id} ${end.state}: ${end.parts.map((p) => `${p.name} ${p.state}${p.exitCode === null ? '' : ` (exit ${p.exitCode})`}`).join(', ')}${end.state === 'failed' || end.state === 'cancelled' ? `: ${end.message}` : ''}\n`);
      else process.stdout.write(`job ${end.id} ${end.state}${end.exitCode === null ? '' : ` with exit code ${end.exitCode}`}${end.state === 'completed' ? '' : `: ${end.message}`}\n`);
      process.exitCode = isEnsemble(end) ? ensembleExitCode(end) : jobExitCode(end);
    });

  clientOptions(program.command('jobs').description('jobs this node asked for')).action(async (opts: RawOptions) => {
    const { api, json } = await client(opts);
    const list = (await api.request('GET', '/v1/jobs')) as AnyRecord[];
    print(json, list, () => formatJobs(list));
  });

  clientOptions(program.command('status').description('a job: state, provider, allocations, the bids and how they ranked, exit code, times').argument('<job>', 'job id'))
    .option('--index <i>', "an array job's instance (0 to count-1): its state, where it ran, how it ended")
    .action(async (id: string, opts: RawOptions & { index?: string }) => {
      const index = indexOption(opts.index);
      const { api, json } = await client(opts);
      if (index !== undefined) {
        const r = (await api.request('GET', `/v1/jobs/${encodeURIComponent(id)}/instances/${index}`)) as Record<string, unknown>;
        return print(json, r, () => formatInstance(r));
      }
      const r = (await api.request('GET', `/v1/jobs/${encodeURIComponent(id)}`)) as AnyRecord;
      print(json, r, () => (isEnsemble(r) ? formatEnsemble(r) : formatJob(r)));
    });

  clientOptions(program.command('cancel').description('stop a job wherever it runs and release its resources').argument('<job>', 'job id'))
    .action(async (id: string, opts: RawOptions) => {
      const { api, json } = await client(opts);
      const r = (await api.request('POST', `/v1/jobs/${encodeURIComponent(id)}/cancel`)) as AnyRecord;
      print(json, r, () => (isEnsemble(r) ? `ensemble ${r.id} ${r.state}${r.state === 'stopping' ? ' (its parts are being stopped)' : ''}` : `job ${r.id} ${r.state}${r.state === 'cancelling' ? ' (the provider is stopping it)' : ''}`));
    });

  clientOptions(program.command('logs').description("a job's (or an allocation's) stdout and stderr").argument('<id>', 'job id, or allocation id on its provider'))
    .option('--follow', 'keep printing output until the job ends')
    .option('--part <name>', "an ensemble's part (default: its only part)")
    .option('--index <i>', "an array job's instance (0 to count-1)")
    .action(async (id: string, opts: RawOptions & { follow?: boolean; part?: string; index?: string }) => {
      if (id.trim() === '') throw new UsageError('logs needs a job or allocation id');
      if (opts.part !== undefined && !/^[A-Za-z][A-Za-z0-9_-]{0,63}$/.test(opts.part)) throw new UsageError(`--part "${opts.part}" is not a part name (a letter, then letters, digits, - and _)`);
      const index = indexOption(opts.index);
      if (index !== undefined && opts.part !== undefined) throw new UsageError('--part names a part of an ensemble and --index an instance of an array job; give one of them');
      const { api, json } = await client(opts);
      const part = opts.part === undefined ? (index === undefined ? '' : `&index=${index}`) : `&part=${encodeURIComponent(opts.part)}`;
      let offset = 0;
      for (;;) {
        const page = (await api.request('GET', `/v1/logs/${encodeURIComponent(id)}?offset=${offset}${part}`)) as { chunks: { stream: 'stdout' | 'stderr'; text: string }[]; next: number; eof: boolean; ended: boolean };
        for (const c of page.chunks) {
          if (json) await written(process.stdout, `${JSON.stringify(c)}\n`);
          else await written(c.stream === 'stdout' ? process.stdout : process.stderr, c.text);
        }
        offset = page.next;
        if (!page.eof) continue;
        if (!opts.follow || page.ended) return;
        await new Promise((res) => setTimeout(res, 250));
      }
    });
}
