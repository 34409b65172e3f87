// What a client command loads (runtime/main.ts, cli/program.ts): only commander and the light command definitions at
// start-up, and each action what it needs. The heavy modules (the node runtime, libp2p and its ws polyfill, xstate,
// dexie, zod, pino, YAML) once made `info` take ~330 ms, most of it loading modules; loaded lazily it takes ~110 ms.
// Timing is too noisy to assert on a shared machine, so this asserts the cause: which packages a command loads.
import { spawnSync } from 'node:child_process';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
const MAIN = path.join(ROOT, 'runtime', 'main.js');
const HEAVY = ['zod', 'ws', 'pino', 'yaml', 'xstate', 'dexie', 'libp2p', '@libp2p/', '@chainsafe/', 'comlink', 'systeminformation', 'fake-indexeddb', '@statelyai/'];

interface Ctx {
  dir: string;
  hooks: string;
}

/** The npm packages `node runtime/main.js ...args` loads (the compiled JS, as a user runs it). */
function packagesLoaded(ctx: Ctx, args: readonly string[]): { packages: string[]; status: number | null; stderr: string } {
  const r = spawnSync(process.execPath, ['--import', pathToFileURL(ctx.hooks).href, MAIN, ...args], { cwd: ROOT, encoding: 'utf8', env: { ...process.env, DMS_HOME: ctx.dir }, timeout: 30_000 });
  const urls = r.stderr.split('\n').filter((l) => l.startsWith('LOADED ')).map((l) => l.slice(7));
  const packages = new Set<string>();
  for (const u of urls) {
    const m = /\/node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(u);
    if (m) packages.add(m[1]!);
  }
  return { packages: [...packages].sort(), status: r.status, stderr: r.stderr.split('\n').filter((l) => !l.startsWith('LOADED ')).join('\n') };
}

const isHeavy = (p: string) => HEAVY.some((h) => (h.endsWith('/') ? p.startsWith(h) : p === h));

const Startup = suite<Ctx>('cli: client commands load only what they need', {} as Ctx);

Startup.before(async (ctx) => {
  ctx.dir = await fs.mkdtemp(path.join(os.tmpdir(), 'dms-startup-'));
  // a token, so `info` gets as far as asking a node (none listens on port 1)
  await fs.writeFile(path.join(ctx.dir, 'api.token'), 'x'.repeat(32), { mode: 0o600 });
  const hooks = path.join(ctx.dir, 'hooks.mjs');
  await fs.writeFile(hooks, "export async function load(url, context, next) { process.stderr.write(`LOADED ${url}\\n`); return next(url, context); }\n");
  ctx.hooks = path.join(ctx.dir, 'register.mjs');
  await fs.writeFile(ctx.hooks, `import { register } from 'node:module';\nregister(${JSON.stringify(pathToFileURL(hooks).href)});\n`);
});

Startup.after(async (ctx) => {
  await fs.rm(ctx.dir, { recursive: true, force: true });
});

Startup('`info` (no node answering) loads commander and small helpers, none of the heavy packages', (ctx) => {
  const r = packagesLoaded(ctx, ['info', '--api', '127.0.0.1:1']);
  assert.is(r.status, 1, r.stderr);
  assert.match(r.stderr, /no node answers at http:\/\/127\.0\.0\.1:1/);
  assert.ok(r.packages.includes('commander'), `the hook saw no packages: ${r.packages.join(', ')}`);
  assert.equal(r.packages.filter(isHeavy), [], `heavy packages loaded by \`info\`: ${r.packages.join(', ')}`);
});

Startup('`--help` and `deploy --help` load none of the heavy packages', (ctx) => {
  for (const args of [['--help'], ['deploy', '--help']]) {
    const r = packagesLoaded(ctx, args);
    assert.is(r.status, 0, r.stderr);
    assert.equal(r.packages.filter(isHeavy), [], `heavy packages loaded by \`${args.join(' ')}\`: ${r.packages.join(', ')}`);
  }
});

Startup.run();
