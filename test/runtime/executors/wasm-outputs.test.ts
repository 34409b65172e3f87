// The disk-backed /out (wasm-outputs.ts) through the shim's Fd interface, as the WASI calls reach it.
import { mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync, mkdirSync, existsSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { wasi } from '@bjorn3/browser_wasi_shim';
import { MAX_OPEN_FILES, type OutputsFileFd, type OutputsPreopen, outputsPreopen } from '../../../runtime/executors/wasm-outputs.ts';

interface Ctx {
  dir: string;
  out: OutputsPreopen;
  usage: () => { usedBytes: number; capBytes: number; overflowBytes: number | null };
}

const CAP = 1000;
const CREAT_TRUNC = wasi.OFLAGS_CREAT | wasi.OFLAGS_TRUNC;
const test = suite<Ctx>('wasm outputs: a disk-backed /out', {} as Ctx);

test.before.each((ctx) => {
  ctx.dir = mkdtempSync(path.join(os.tmpdir(), 'dms-out-'));
  const o = outputsPreopen(ctx.dir, CAP);
  ctx.out = o.preopen;
  ctx.usage = o.usage;
});
test.after.each((ctx) => rmSync(ctx.dir, { recursive: true, force: true }));

function open(ctx: Ctx, p: string, oflags = CREAT_TRUNC, fdflags = 0): OutputsFileFd {
  const r = ctx.out.path_open(0, p, oflags, -1n, -1n, fdflags);
  assert.is(r.ret, wasi.ERRNO_SUCCESS, `path_open ${p}`);
  return r.fd_obj as OutputsFileFd;
}
const bytes = (s: string) => new TextEncoder().encode(s);

test('preopened as /out; create, write, seek back, overwrite, read and stat a file that is on disk', (ctx) => {
  const pre = ctx.out.fd_prestat_get();
  assert.is(pre.ret, 0);
  assert.is(new TextDecoder().decode(pre.prestat!.inner.pr_name), '/out');
  const f = open(ctx, 'a.txt');
  assert.equal(f.fd_write(bytes('hello world')), { ret: 0, nwritten: 11 });
  assert.equal(f.fd_seek(0n, wasi.WHENCE_SET), { ret: 0, offset: 0n });
  f.fd_write(bytes('HELLO'));
  assert.equal(f.fd_tell(), { ret: 0, offset: 5n });
  assert.is(f.fd_filestat_get().filestat!.size, 11n);
  assert.is(new TextDecoder().decode(f.fd_pread(100, 6n).data), 'world');
  assert.is(f.fd_close(), 0);
  assert.is(f.fd_close(), wasi.ERRNO_BADF, 'closed once');
  assert.is(readFileSync(path.join(ctx.dir, 'a.txt'), 'utf8'), 'HELLO world');
  assert.is(ctx.usage().usedBytes, 11);
});

test('mkdir and a file in it; O_TRUNC, unlink and rename keep the byte count right; readdir lists', (ctx) => {
  assert.is(ctx.out.path_create_directory('d'), 0);
  assert.is(ctx.out.path_create_directory('d'), wasi.ERRNO_EXIST);
  const f = open(ctx, 'd/x.bin');
  f.fd_write(new Uint8Array(300));
  f.fd_close();
  assert.is(ctx.usage().usedBytes, 300);
  open(ctx, 'd/x.bin').fd_close(); // O_TRUNC
  assert.is(ctx.usage().usedBytes, 0);
  const g = open(ctx, 'd/y.bin');
  g.fd_write(new Uint8Array(200));
  g.fd_close();
  const moved = ctx.out.path_unlink('d/y.bin');
  assert.is(moved.ret, 0);
  assert.is(ctx.out.path_link('d/x.bin', moved.inode_obj!, true), 0, 'rename over x.bin');
  assert.ok(!existsSync(path.join(ctx.dir, 'd', 'y.bin')));
  assert.is(ctx.usage().usedBytes, 200);
  const dir = ctx.out.path_open(0, 'd', wasi.OFLAGS_DIRECTORY, -1n, -1n, 0).fd_obj!;
  const names = [2n, 3n].map((c) => dir.fd_readdir_single(c).dirent?.dir_name).map((n) => (n ? new TextDecoder().decode(n) : null));
  assert.equal(names, ['x.bin', null]);
  assert.is(ctx.out.path_unlink_file('d/x.bin'), 0);
  assert.is(ctx.usage().usedBytes, 0);
  assert.is(ctx.out.path_remove_directory('d'), 0);
});

test('bounded by the cap in total: a write past it fails with ENOSPC, writes nothing, and is remembered', (ctx) => {
  const a = open(ctx, 'a');
  assert.is(a.fd_write(new Uint8Array(600)).ret, 0);
  const b = open(ctx, 'b');
  assert.equal(b.fd_write(new Uint8Array(401)), { ret: wasi.ERRNO_NOSPC, nwritten: 0 });
  assert.is(ctx.usage().overflowBytes, 1001);
  assert.is(readFileSync(path.join(ctx.dir, 'b')).length, 0, 'nothing written');
  assert.is(b.fd_write(new Uint8Array(400)).ret, 0, 'up to the cap exactly');
  assert.is(b.fd_seek(1n << 40n, wasi.WHENCE_SET).ret, 0);
  assert.is(b.fd_write(new Uint8Array(1)).ret, wasi.ERRNO_NOSPC, 'a sparse write far out counts in full');
  assert.is(b.fd_filestat_set_size(2000n), wasi.ERRNO_NOSPC, 'so does growing by resize');
  assert.is(ctx.usage().usedBytes, 1000);
});

test('nothing outside /out: absolute paths, .., and symbolic links are refused', (ctx) => {
  for (const p of ['/etc/passwd', '../x', 'a/../../x', '..', 'ok/../x']) {
    assert.is(ctx.out.path_open(0, p, CREAT_TRUNC, -1n, -1n, 0).ret, wasi.ERRNO_NOTCAPABLE, p);
  }
  assert.is(ctx.out.path_create_directory('../up'), wasi.ERRNO_NOTCAPABLE);
  const outside = mkdtempSync(path.join(os.tmpdir(), 'dms-outside-'));
  try {
    writeFileSync(path.join(outside, 'secret'), 'x');
    symlinkSync(path.join(outside, 'secret'), path.join(ctx.dir, 'link'));
    symlinkSync(outside, path.join(ctx.dir, 'dirlink'));
    assert.is(ctx.out.path_open(0, 'link', 0, -1n, -1n, 0).ret, wasi.ERRNO_NOTCAPABLE, 'a link to a file');
    assert.is(ctx.out.path_open(0, 'link', CREAT_TRUNC, -1n, -1n, 0).ret, wasi.ERRNO_NOTCAPABLE, 'a link is not truncated through');
    assert.is(ctx.out.path_open(0, 'dirlink/secret', 0, -1n, -1n, 0).ret, wasi.ERRNO_NOTCAPABLE, 'a link to a directory on the way');
    assert.is(ctx.out.path_open(0, 'dirlink/new', CREAT_TRUNC, -1n, -1n, 0).ret, wasi.ERRNO_NOTCAPABLE);
    assert.is(readFileSync(path.join(outside, 'secret'), 'utf8'), 'x');
    assert.not.ok(existsSync(path.join(outside, 'new')));
  } finally {
    rmSync(outside, { recursive: true, force: true });
  }
  assert.is(ctx.out.path_lookup().ret, wasi.ERRNO_NOTSUP, 'no hard links');
});

test('at most MAX_OPEN_FILES open at once (EMFILE), and O_EXCL on an existing file is EEXIST', (ctx) => {
  mkdirSync(path.join(ctx.dir, 'many'));
  const fds = Array.from({ length: MAX_OPEN_FILES }, (_, i) => open(ctx, `many/${i}`));
  assert.is(ctx.out.path_open(0, 'many/one-more', CREAT_TRUNC, -1n, -1n, 0).ret, wasi.ERRNO_MFILE);
  fds.forEach((f) => f.fd_close());
  assert.is(ctx.out.path_open(0, 'many/0', wasi.OFLAGS_CREAT | wasi.OFLAGS_EXCL, -1n, -1n, 0).ret, wasi.ERRNO_EXIST);
  assert.is(ctx.out.path_open(0, 'missing', 0, -1n, -1n, 0).ret, wasi.ERRNO_NOENT);
});

test('append mode writes at the end whatever the position', (ctx) => {
  const f = open(ctx, 'log', CREAT_TRUNC, wasi.FDFLAGS_APPEND);
  f.fd_write(bytes('ab'));
  f.fd_seek(0n, wasi.WHENCE_SET);
  f.fd_write(bytes('cd'));
  f.fd_close();
  assert.is(readFileSync(path.join(ctx.dir, 'log'), 'utf8'), 'abcd');
});

test.run();
