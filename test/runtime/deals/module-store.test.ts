// WASM modules by content (runtime/deals/module-store.ts): real files in a fresh temp data dir per test.
// A module is stored only under the sha256 of its bytes, written once, and read back exactly.
import { createHash } from 'node:crypto';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { MODULES_DIR, ModuleStore } from '../../../runtime/deals/module-store.ts';

interface Ctx {
  dir: string;
  store: ModuleStore;
}

function behaviour(title: string) {
  const s = suite<Ctx>(title, {} as Ctx);
  s.before.each(async (ctx) => {
    ctx.dir = await fs.mkdtemp(path.join(os.tmpdir(), 'dms-module-store-'));
    ctx.store = new ModuleStore(ctx.dir);
  });
  s.after.each(async (ctx) => {
    await fs.rm(ctx.dir, { recursive: true, force: true });
  });
  return s;
}

const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');
/** A minimal WASM module (the header), plus `n` filler bytes so modules differ. */
const wasm = (n = 0) => Uint8Array.from([0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, ...Array.from({ length: n }, (_, i) => i & 0xff)]);

/** The error `p` rejects with; fails if it resolves. */
async function rejection(p: Promise<unknown>): Promise<Error> {
  try {
    await p;
  } catch (e) {
    return e as Error;
  }
  throw new Error('expected a rejection, but it resolved');
}

const listModules = async (ctx: Ctx) => (await fs.readdir(path.join(ctx.dir, MODULES_DIR)).catch(() => [] as string[])).sort();

// ---------------------------------------------------------------------------------------------------------------

const Put = behaviour('module store: put checks the hash, then stores the bytes once');

Put('put then get returns the same bytes; has() knows it; the file is <data-dir>/modules/<sha256>.wasm', async (ctx) => {
  const bytes = wasm(1000);
  const h = sha(bytes);
  assert.is(await ctx.store.has(h), false);
  await ctx.store.put(h, bytes);
  assert.is(await ctx.store.has(h), true);
  const back = await ctx.store.get(h);
  assert.instance(back, Uint8Array);
  assert.equal([...back], [...bytes]);
  assert.equal(await listModules(ctx), [`${h}.wasm`]);
  assert.is(ctx.store.path(h), path.join(ctx.dir, MODULES_DIR, `${h}.wasm`));
});

Put('bytes whose sha256 differs are refused with ModuleHashError naming both hashes, and nothing is written', async (ctx) => {
  const bytes = wasm(10);
  const other = sha(wasm(11));
  const err = await rejection(ctx.store.put(other, bytes));
  assert.is(err.name, 'ModuleHashError');
  assert.match(err.message, sha(bytes));
  assert.match(err.message, other);
  assert.is(await ctx.store.has(other), false);
  assert.equal(await listModules(ctx), []);
});

Put('one byte changed is enough to be refused', async (ctx) => {
  const bytes = wasm(100);
  const h = sha(bytes);
  const tampered = Uint8Array.from(bytes);
  tampered[50]! ^= 1;
  assert.is((await rejection(ctx.store.put(h, tampered))).name, 'ModuleHashError');
  assert.is(await ctx.store.has(h), false);
});

Put('a name that is not a lowercase hex sha256 is refused (no path outside the store is ever touched)', async (ctx) => {
  for (const bad of ['../../etc/passwd', 'ABCDEF'.padEnd(64, '0'), 'a'.repeat(63), `${'a'.repeat(64)}/x`, '']) {
    assert.is((await rejection(ctx.store.has(bad))).name, 'ModuleHashError', `has(${JSON.stringify(bad)})`);
    assert.is((await rejection(ctx.store.get(bad))).name, 'ModuleHashError', `get(${JSON.stringify(bad)})`);
    assert.is((await rejection(ctx.store.put(bad, wasm()))).name, 'ModuleHashError', `put(${JSON.stringify(bad)})`);
  }
  assert.equal(await listModules(ctx), []);
});

Put('a module already stored is not written again, only touched (retention counts its age from its last use)', async (ctx) => {
  const bytes = wasm(64);
  const h = sha(bytes);
  await ctx.store.put(h, bytes);
  const file = ctx.store.path(h);
  const old = new Date(Date.now() - 86_400_000);
  await fs.utimes(file, old, old);
  const before = await fs.stat(file);
  await ctx.store.put(h, bytes);
  const after = await fs.stat(file);
  assert.is(after.ino, before.ino, 'the file was replaced');
  assert.is(after.ctimeMs >= before.ctimeMs, true);
  assert.ok(after.mtimeMs > before.mtimeMs + 3_600_000, 'a module in use again keeps its old age');
  assert.equal(new Uint8Array(await fs.readFile(file)), bytes);
});

Put('get of a module never stored rejects with ENOENT', async (ctx) => {
  const err = (await rejection(ctx.store.get(sha(wasm(5))))) as NodeJS.ErrnoException;
  assert.is(err.code, 'ENOENT');
});

Put('the store survives a new instance on the same data dir', async (ctx) => {
  const bytes = wasm(300);
  await ctx.store.put(sha(bytes), bytes);
  const again = new ModuleStore(ctx.dir);
  assert.is(await again.has(sha(bytes)), true);
  assert.equal([...(await again.get(sha(bytes)))], [...bytes]);
});

Put.run();

// ---------------------------------------------------------------------------------------------------------------

const Concurrent = behaviour('module store: concurrent puts');

Concurrent('ten concurrent puts of the same module all resolve, and one whole file is left', async (ctx) => {
  const bytes = wasm(200_000);
  const h = sha(bytes);
  const results = await Promise.allSettled(Array.from({ length: 10 }, () => ctx.store.put(h, bytes)));
  const failed = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
  assert.equal(failed.map((r) => `${(r.reason as Error).name}: ${(r.reason as Error).message}`), [], 'concurrent puts of one module failed');
  assert.equal(await listModules(ctx), [`${h}.wasm`], 'a temp file was left behind');
  assert.is(sha(await ctx.store.get(h)), h);
});

Concurrent('concurrent puts of different modules all land', async (ctx) => {
  const mods = Array.from({ length: 8 }, (_, i) => wasm(1000 + i));
  await Promise.all(mods.map((m) => ctx.store.put(sha(m), m)));
  assert.equal(await listModules(ctx), mods.map((m) => `${sha(m)}.wasm`).sort());
  for (const m of mods) assert.equal([...(await ctx.store.get(sha(m)))], [...m]);
});

Concurrent('a bad put next to a good one of the same hash: the bad one is refused, the good one stored', async (ctx) => {
  const bytes = wasm(500);
  const h = sha(bytes);
  const [bad, good] = await Promise.allSettled([ctx.store.put(h, wasm(501)), ctx.store.put(h, bytes)]);
  assert.is(bad.status, 'rejected');
  assert.is(((bad as PromiseRejectedResult).reason as Error).name, 'ModuleHashError');
  assert.is(good.status, 'fulfilled');
  assert.equal([...(await ctx.store.get(h))], [...bytes]);
});

Concurrent.run();
