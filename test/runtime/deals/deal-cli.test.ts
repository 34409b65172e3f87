// The deal commands' bad input, through real `node runtime/main.js` processes (test/e2e/harness.ts), as a user
// meets it: a job file that is missing or wrong is refused with exit 2 and one line naming the field, before any
// node is needed; a job the node does not know is exit 1; a command without its argument is exit 2.
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { type CliResult, type NodeProcess, cli, cliJson, killAll, makeTempDir, removeTempDirs, startNode } from '../../e2e/harness.ts';

/** Exit `code`, nothing on stdout, one line on stderr matching every pattern, no stack trace. */
function assertOneLineError(r: CliResult, code: number, ...patterns: (RegExp | string)[]): void {
  const what = `exit ${String(r.code)}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`;
  assert.is(r.code, code, `exit code ${code} expected\n${what}`);
  assert.is(r.stdout, '', `nothing on stdout expected\n${what}`);
  const lines = r.stderr.split('\n').filter((l) => l.trim() !== '');
  assert.is(lines.length, 1, `a single-line message expected\n${what}`);
  assert.not.match(r.stderr, /^\s{4}at /m, `no stack trace expected\n${what}`);
  for (const p of patterns) assert.match(lines[0] ?? '', p, what);
}

const GOOD = `name: hello
executor: process
process:
  command: echo
  args: [hi]
resources:
  cpu: 1
  memory: 64MiB
`;

/** Job files, each wrong in one way, and what the one-line message must name. */
const BAD: Record<string, { text: string; names: (RegExp | string)[] }> = {
  'unknown-field.yaml': { text: `${GOOD}colour: blue\n`, names: ['unknown-field.yaml', /"colour"/] },
  'negative-cpu.yaml': { text: GOOD.replace('cpu: 1', 'cpu: -1'), names: ['negative-cpu.yaml', /resources\.cpu/, /-1/] },
  'unknown-executor.yaml': { text: GOOD.replace('executor: process', 'executor: docker'), names: [/executor/, /"docker"/] },
  // a bid request carries the job to every provider: at most MAX_BID_JOB_BYTES (64 KiB) encoded
  'huge-args.yaml': { text: GOOD.replace('args: [hi]', `args: [${Array(10).fill('x'.repeat(8000)).join(', ')}]`), names: [/process\.args/, /at most 65536 bytes/] },
  'missing-module.yaml': { text: 'name: w\nexecutor: wasm\nwasm:\n  module: nowhere.wasm\nresources:\n  cpu: 1\n  memory: 64MiB\n', names: [/wasm\.module/, /nowhere\.wasm/] },
};

interface Ctx {
  /** A data dir no node ever ran on. */
  empty: string;
  /** Where the job files are. */
  files: string;
}

/**
 * The node of the second suite, started while the first one runs (a fresh node measures the machine for a few
 * seconds first). It runs on a data dir of its own, so the first suite's data dir still has no node.
 */
let nodeStarting: Promise<{ dir: string; node: NodeProcess }> | undefined;

// ---------------------------------------------------------------------------------------------------------------

const NoNode = suite<Ctx>('deal CLI: a bad job file is refused before any node is needed', {} as Ctx);

NoNode.before(async (ctx) => {
  nodeStarting = makeTempDir('deal-cli-node').then(async (dir) => ({ dir, node: await startNode(dir) }));
  nodeStarting.catch(() => {}); // awaited, and reported, by the second suite
  ctx.empty = await makeTempDir('deal-cli-empty');
  ctx.files = await makeTempDir('deal-cli-files');
  await fs.writeFile(path.join(ctx.files, 'good.yaml'), GOOD);
  for (const [name, { text }] of Object.entries(BAD)) await fs.writeFile(path.join(ctx.files, name), text);
});

NoNode('a good job file with no node to send it to is exit 1, saying how to start one (the control)', async (ctx) => {
  const r = await cli(['deploy', path.join(ctx.files, 'good.yaml'), '--data-dir', ctx.empty]);
  assertOneLineError(r, 1, /node/);
});

NoNode('deploy of a file that does not exist: exit 2, one line naming the file', async (ctx) => {
  const file = path.join(ctx.files, 'no-such-job.yaml');
  assertOneLineError(await cli(['deploy', file, '--data-dir', ctx.empty]), 2, file, /no such file/);
});

NoNode('deploy of job files wrong in one way each: exit 2, one line naming the field', async (ctx) => {
  const runs = await Promise.all(Object.keys(BAD).map(async (name) => [name, await cli(['deploy', path.join(ctx.files, name), '--data-dir', ctx.empty])] as const));
  for (const [name, r] of runs) {
    try {
      assertOneLineError(r, 2, ...BAD[name]!.names);
    } catch (e) {
      (e as Error).message = `${name}: ${(e as Error).message}`;
      throw e;
    }
  }
  // the data dir stayed as it was: nothing was started or written
  assert.equal(await fs.readdir(ctx.empty), []);
});

NoNode('logs without an id: exit 2', async (ctx) => {
  assertOneLineError(await cli(['logs', '--data-dir', ctx.empty]), 2, /missing required argument 'id'/);
});

NoNode('deploy --help exits 0 and explains --wait', async () => {
  const r = await cli(['deploy', '--help']);
  assert.is(r.code, 0, r.stderr);
  assert.match(r.stdout, /--wait/);
  assert.match(r.stdout, /<file>/);
  assert.is(r.stderr, '');
});

NoNode.run();

// ---------------------------------------------------------------------------------------------------------------

const Running = suite<Ctx & { dir: string; node: NodeProcess }>('deal CLI: against a running node', {} as Ctx & { dir: string; node: NodeProcess });

Running.before(async (ctx) => {
  ctx.files = await makeTempDir('deal-cli-files');
  for (const [name, { text }] of Object.entries(BAD)) await fs.writeFile(path.join(ctx.files, name), text);
  ({ dir: ctx.dir, node: ctx.node } = await (nodeStarting ?? Promise.reject(new Error('the node was never started'))));
});
Running.after(async (ctx) => {
  await ctx.node?.stop().catch(() => {});
  await killAll();
  await removeTempDirs();
});

Running('status of a job the node does not know: exit 1, "no job", the id named', async (ctx) => {
  const [bad, unknown] = await Promise.all([
    cli(['status', 'nosuchid', '--data-dir', ctx.dir]),
    cli(['status', '0123456789abcdef0123456789abcdef', '--data-dir', ctx.dir]),
  ]);
  assertOneLineError(bad, 1, /no job/, 'nosuchid');
  assertOneLineError(unknown, 1, /no job/, '0123456789abcdef0123456789abcdef');
});

Running('a bad job file is refused the same with a node running, and the node never hears of it', async (ctx) => {
  assertOneLineError(await cli(['deploy', path.join(ctx.files, 'negative-cpu.yaml'), '--data-dir', ctx.dir]), 2, /resources\.cpu/);
  assert.equal(await cliJson<unknown[]>(['jobs', '--data-dir', ctx.dir]), []);
});

Running.run();
