/**
 * `results JOB [--out DIR] [--index I]`: fetches a job's result files (INTERFACE.md "Many tasks"); an array job's
 * without --index, every completed instance's into DIR/<index>/. The work is in results-fetch.ts and
 * results-instances.ts, loaded when the command runs.
 */
import path from 'node:path';
import type { Command } from 'commander';
import type { ApiClient } from '../api/client.ts';
import type { RawOptions } from '../config.ts';
import { UsageError } from '../errors.ts';
import type { CliKit } from './cli-kit.ts';
import type { ArrayListing } from './results-instances.ts';

export function addResultsCommand(program: Command, kit: CliKit): void {
  kit
    .clientOptions(program.command('results').description("fetch a job's result files (wasm.outputs) into DIR, each checked against its sha256").argument('<job>', 'job id'))
    .option('--out <dir>', 'where to put them (default ./<job id>/; an instance of an array job goes into DIR/<index>/)')
    .option('--index <i>', "an array job's instance (without it: every completed instance, each into DIR/<index>/)")
    .action(async (id: string, opts: RawOptions & { out?: string; index?: string }) => {
      if (id.trim() === '') throw new UsageError('results needs a job id');
      let index: number | undefined;
      if (opts.index !== undefined) {
        index = Number(opts.index);
        if (!/^\d+$/.test(opts.index) || index > 99_999) throw new UsageError(`--index "${opts.index}" is not an instance index (0 to 99999)`);
      }
      const { api, json } = await kit.client(opts);
      const { fetchListed, formatResults, requestResults } = await import('./results-fetch.ts');
      const out = opts.out ?? id;
      const raw = await requestResults(api, id, index);
      const listing = index === undefined ? (await import('./results-instances.ts')).arrayListing(raw) : undefined;
      if (listing) return fetchEveryInstance(kit, json, api, id, path.resolve(out), listing);
      const r = await fetchListed(api, id, { out, ...(index === undefined ? {} : { index }) }, raw);
      for (const f of r.failed) process.stderr.write(`error: ${f.path}: ${f.reason}\n`);
      kit.print(json, { files: r.files, ...(r.failed.length > 0 ? { failed: r.failed } : {}) }, () => formatResults(r));
      if (r.failed.length > 0) process.exitCode = 1;
    });
}

/** An array job without --index: every completed instance into DIR/<index>/. */
async function fetchEveryInstance(kit: CliKit, json: boolean, api: ApiClient, id: string, out: string, listing: ArrayListing): Promise<void> {
  const { anyFailed, fetchInstances, formatInstances, instancesJson } = await import('./results-instances.ts');
  const r = await fetchInstances(api, id, out, listing);
  for (const i of r.instances) {
    if (i.error !== undefined) process.stderr.write(`error: instance ${i.index}: ${i.error}\n`);
    for (const f of i.failed) process.stderr.write(`error: instance ${i.index}: ${f.path}: ${f.reason}\n`);
  }
  kit.print(json, instancesJson(r), () => formatInstances(r));
  if (anyFailed(r)) process.exitCode = 1;
}
