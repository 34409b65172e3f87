/**
 * A writable directory on real disk for @bjorn3/browser_wasi_shim, preopened in a module as `/out` (a job with
 * `wasm.outputs`). The shim's own files live in memory; these are OS files, so a large output never sits in the
 * runner's heap. What a wasi-libc program needs to write results: path_open (O_CREAT, O_TRUNC, O_EXCL, append),
 * fd_write / fd_pwrite / fd_read / fd_seek / fd_tell / fd_close / fd_filestat_get / fd_filestat_set_size,
 * path_create_directory, path_filestat_get, path_unlink_file, path_remove_directory, path_rename, fd_readdir.
 *
 * Bounds: the bytes of every file together stay within `capBytes` (the job's `resources.disk`): a write, resize or
 * allocate past it fails with ENOSPC and the overflow is remembered, so the runner can fail the job even when the
 * module carries on. Files and directories are at most MAX_OUTPUT_ENTRIES, open files MAX_OPEN_FILES, a path
 * MAX_OUTPUT_PATH_BYTES. Nothing escapes the root: absolute paths and `..` are refused (ENOTCAPABLE), symbolic
 * links are never followed (the module cannot make one; one found on the way is refused), hard links are refused.
 *
 * Sizes are counted by inode (so a rename needs no bookkeeping) as logical sizes: a sparse file counts in full.
 */
import fs from 'node:fs';
import path from 'node:path';
import { Fd, Inode, type WASI, wasi } from '@bjorn3/browser_wasi_shim';
import { formatBytes } from './limits.ts';
import { OutputsFileFd } from './wasm-outputs-file.ts';
import { ALL_RIGHTS, MAX_OPEN_FILES, MAX_OUTPUT_ENTRIES, OutputsTree, type OutputsUsage, errnoOf, filestatOf, lstatOrNull } from './wasm-outputs-tree.ts';

export * from './wasm-outputs-tree.ts';
export { OutputsFileFd } from './wasm-outputs-file.ts';

/** A file or directory of /out named by path: what path_unlink hands to path_link in a rename. */
export class OutputsEntry extends Inode {
  constructor(readonly tree: OutputsTree, readonly parts: readonly string[], readonly real: string) {
    super();
  }

  path_open(): { ret: number; fd_obj: Fd | null } {
    return { ret: wasi.ERRNO_NOTSUP, fd_obj: null };
  }

  stat(): wasi.Filestat {
    const st = lstatOrNull(this.real);
    return st ? filestatOf(st) : new wasi.Filestat(this.ino, wasi.FILETYPE_UNKNOWN, 0n);
  }
}

/** An open directory of /out (the preopen itself, or one opened under it). */
export class OutputsDirFd extends Fd {
  #listing: string[] | null = null;

  constructor(readonly tree: OutputsTree, readonly parts: readonly string[]) {
    super();
  }

  get real(): string {
    return path.join(this.tree.root, ...this.parts);
  }

  override fd_fdstat_get(): { ret: number; fdstat: wasi.Fdstat | null } {
    const s = new wasi.Fdstat(wasi.FILETYPE_DIRECTORY, 0);
    s.fs_rights_base = ALL_RIGHTS;
    s.fs_rights_inherited = ALL_RIGHTS;
    return { ret: wasi.ERRNO_SUCCESS, fdstat: s };
  }

  override fd_filestat_get(): { ret: number; filestat: wasi.Filestat | null } {
    const st = lstatOrNull(this.real);
    return st ? { ret: wasi.ERRNO_SUCCESS, filestat: filestatOf(st) } : { ret: wasi.ERRNO_NOENT, filestat: null };
  }

  override fd_readdir_single(cookie: bigint): { ret: number; dirent: wasi.Dirent | null } {
    if (cookie === 0n || this.#listing === null) {
      try {
        this.#listing = fs.readdirSync(this.real).sort();
      } catch (e) {
        return { ret: errnoOf(e), dirent: null };
      }
    }
    if (cookie === 0n) return { ret: wasi.ERRNO_SUCCESS, dirent: new wasi.Dirent(1n, 0n, '.', wasi.FILETYPE_DIRECTORY) };
    if (cookie === 1n) return { ret: wasi.ERRNO_SUCCESS, dirent: new wasi.Dirent(2n, 0n, '..', wasi.FILETYPE_DIRECTORY) };
    const name = this.#listing[Number(cookie - 2n)];
    if (name === undefined) return { ret: wasi.ERRNO_SUCCESS, dirent: null };
    const st = lstatOrNull(path.join(this.real, name));
    const type = st ? filestatOf(st).filetype : wasi.FILETYPE_UNKNOWN;
    return { ret: wasi.ERRNO_SUCCESS, dirent: new wasi.Dirent(cookie + 1n, st?.ino ?? 0n, name, type) };
  }

  override path_filestat_get(_flags: number, rel: string): { ret: number; filestat: wasi.Filestat | null } {
    const r = this.tree.resolve(this.parts, rel);
    if (r.ret !== wasi.ERRNO_SUCCESS) return { ret: r.ret, filestat: null };
    const st = lstatOrNull(r.real);
    if (!st) return { ret: wasi.ERRNO_NOENT, filestat: null };
    return { ret: wasi.ERRNO_SUCCESS, filestat: filestatOf(st, st.isFile() ? this.tree.sizes.get(st.ino) : undefined) };
  }

  override path_open(_dirflags: number, rel: string, oflags: number, rightsBase: bigint, _rightsInheriting: bigint, fdFlags: number): { ret: number; fd_obj: Fd | null } {
    const fail = (ret: number) => ({ ret, fd_obj: null });
    const { tree } = this;
    const r = tree.resolve(this.parts, rel);
    if (r.ret !== wasi.ERRNO_SUCCESS) return fail(r.ret);
    const has = (flag: number) => (oflags & flag) === flag;
    const st = lstatOrNull(r.real);
    if (st?.isSymbolicLink()) return fail(wasi.ERRNO_NOTCAPABLE);
    if (st && has(wasi.OFLAGS_CREAT) && has(wasi.OFLAGS_EXCL)) return fail(wasi.ERRNO_EXIST);
    if (st?.isDirectory()) return has(wasi.OFLAGS_TRUNC) ? fail(wasi.ERRNO_ISDIR) : { ret: wasi.ERRNO_SUCCESS, fd_obj: new OutputsDirFd(tree, r.parts) };
    if (has(wasi.OFLAGS_DIRECTORY)) return fail(st ? wasi.ERRNO_NOTDIR : wasi.ERRNO_NOENT);
    if (!st && !has(wasi.OFLAGS_CREAT)) return fail(wasi.ERRNO_NOENT);
    if (!st && tree.entries >= MAX_OUTPUT_ENTRIES) return fail(wasi.ERRNO_NOSPC);
    if (tree.open >= MAX_OPEN_FILES) return fail(wasi.ERRNO_MFILE);
    const write = (rightsBase & BigInt(wasi.RIGHTS_FD_WRITE)) !== 0n || has(wasi.OFLAGS_TRUNC);
    const read = (rightsBase & BigInt(wasi.RIGHTS_FD_READ)) !== 0n || !write;
    const c = fs.constants;
    let flags = (write ? (read ? c.O_RDWR : c.O_WRONLY) : c.O_RDONLY) | c.O_NOFOLLOW;
    if (has(wasi.OFLAGS_CREAT)) flags |= c.O_CREAT;
    if (has(wasi.OFLAGS_EXCL)) flags |= c.O_EXCL;
    if (has(wasi.OFLAGS_TRUNC)) flags |= c.O_TRUNC;
    let fd: number;
    try {
      fd = fs.openSync(r.real, flags, 0o600);
    } catch (e) {
      return fail(errnoOf(e));
    }
    const ino = fs.fstatSync(fd, { bigint: true }).ino;
    if (!st) tree.entries += 1;
    if (has(wasi.OFLAGS_TRUNC)) tree.resize(ino, 0);
    else if (!tree.sizes.has(ino)) {
      // a file that was there before this run (not the case for a prepared /out): counted as it is
      const size = st ? Number(st.size) : 0;
      tree.used += size;
      tree.sizes.set(ino, size);
    }
    tree.open += 1;
    return { ret: wasi.ERRNO_SUCCESS, fd_obj: new OutputsFileFd(tree, fd, ino, { read, write, append: (fdFlags & wasi.FDFLAGS_APPEND) !== 0 }) };
  }

  override path_create_directory(rel: string): number {
    const r = this.tree.resolve(this.parts, rel);
    if (r.ret !== wasi.ERRNO_SUCCESS) return r.ret;
    if (r.parts.length === 0) return wasi.ERRNO_EXIST;
    if (this.tree.entries >= MAX_OUTPUT_ENTRIES) return wasi.ERRNO_NOSPC;
    try {
      fs.mkdirSync(r.real, { mode: 0o700 });
    } catch (e) {
      return errnoOf(e);
    }
    this.tree.entries += 1;
    return wasi.ERRNO_SUCCESS;
  }

  override path_unlink_file(rel: string): number {
    const r = this.tree.resolve(this.parts, rel);
    if (r.ret !== wasi.ERRNO_SUCCESS) return r.ret;
    const st = lstatOrNull(r.real);
    if (!st) return wasi.ERRNO_NOENT;
    if (st.isDirectory()) return wasi.ERRNO_ISDIR;
    try {
      fs.unlinkSync(r.real);
    } catch (e) {
      return errnoOf(e);
    }
    this.tree.forget(st.ino);
    return wasi.ERRNO_SUCCESS;
  }

  override path_remove_directory(rel: string): number {
    const r = this.tree.resolve(this.parts, rel);
    if (r.ret !== wasi.ERRNO_SUCCESS) return r.ret;
    if (r.parts.length === 0) return wasi.ERRNO_BUSY;
    const st = lstatOrNull(r.real);
    if (!st) return wasi.ERRNO_NOENT;
    if (!st.isDirectory()) return wasi.ERRNO_NOTDIR;
    try {
      fs.rmdirSync(r.real);
    } catch (e) {
      return errnoOf(e);
    }
    this.tree.entries = Math.max(0, this.tree.entries - 1);
    return wasi.ERRNO_SUCCESS;
  }

  /** Hard links are refused (they would let a file be counted once and named twice). */
  override path_lookup(): { ret: number; inode_obj: Inode | null } {
    return { ret: wasi.ERRNO_NOTSUP, inode_obj: null };
  }

  /** The first half of a rename (the shim unlinks, then links): names the entry, moves nothing yet. */
  override path_unlink(rel: string): { ret: number; inode_obj: Inode | null } {
    const r = this.tree.resolve(this.parts, rel);
    if (r.ret !== wasi.ERRNO_SUCCESS) return { ret: r.ret, inode_obj: null };
    if (r.parts.length === 0) return { ret: wasi.ERRNO_BUSY, inode_obj: null };
    const st = lstatOrNull(r.real);
    if (!st) return { ret: wasi.ERRNO_NOENT, inode_obj: null };
    if (st.isSymbolicLink()) return { ret: wasi.ERRNO_NOTCAPABLE, inode_obj: null };
    return { ret: wasi.ERRNO_SUCCESS, inode_obj: new OutputsEntry(this.tree, r.parts, r.real) };
  }

  /** The second half of a rename: moves the entry path_unlink named (of this same /out) to `rel`. */
  override path_link(rel: string, inode: Inode, allowDir: boolean): number {
    if (!(inode instanceof OutputsEntry) || inode.tree !== this.tree || !allowDir) return wasi.ERRNO_NOTSUP;
    const r = this.tree.resolve(this.parts, rel);
    if (r.ret !== wasi.ERRNO_SUCCESS) return r.ret;
    if (r.real === inode.real) return wasi.ERRNO_SUCCESS;
    if (r.parts.length === 0 || (r.real + path.sep).startsWith(inode.real + path.sep)) return wasi.ERRNO_INVAL;
    const replaced = lstatOrNull(r.real);
    if (replaced?.isSymbolicLink()) return wasi.ERRNO_NOTCAPABLE;
    try {
      fs.renameSync(inode.real, r.real);
    } catch (e) {
      return errnoOf(e);
    }
    if (replaced?.isFile()) this.tree.forget(replaced.ino);
    else if (replaced?.isDirectory()) this.tree.entries = Math.max(0, this.tree.entries - 1);
    return wasi.ERRNO_SUCCESS;
  }
}

/** The preopened `/out` itself. */
export class OutputsPreopen extends OutputsDirFd {
  constructor(tree: OutputsTree, readonly name = '/out') {
    super(tree, []);
  }

  override fd_prestat_get(): { ret: number; prestat: wasi.Prestat | null } {
    return { ret: wasi.ERRNO_SUCCESS, prestat: wasi.Prestat.dir(this.name) };
  }
}

/**
 * `/out` on the existing directory `dir`, bounded by `capBytes` in total: the fd to preopen (fd 3 when it comes
 * right after stdio) and what the module did with it. For any runner that uses the shim.
 */
export function outputsPreopen(dir: string, capBytes: number): { preopen: OutputsPreopen; usage: () => OutputsUsage } {
  const tree = new OutputsTree(path.resolve(dir), capBytes);
  return { preopen: new OutputsPreopen(tree), usage: () => tree.usage() };
}

/**
 * Makes fd_write / fd_pwrite on /out files write straight from the module's memory. The shim copies every iovec
 * into a fresh ArrayBuffer first (`slice`), and at a file's write rate those buffers, freed only by a later GC,
 * pile up outside the JS heap until the runner's address-space limit kills it (SIGSEGV after ~24 MB measured
 * here). The writes are synchronous, so a view of the memory is safe. Other fds keep the shim's own calls.
 */
export function writeOutputsInPlace(w: WASI): void {
  const imports = w.wasiImport as Record<string, (...args: never[]) => number>;
  const write = imports.fd_write!;
  const pwrite = imports.fd_pwrite!;
  const direct = (fd: number, iovs: number, count: number, nwrittenPtr: number, offset: bigint | null): number => {
    const memory = w.inst.exports.memory.buffer;
    const view = new DataView(memory);
    const file = w.fds[fd] as OutputsFileFd;
    let total = 0;
    for (let i = 0; i < count; i += 1) {
      const buf = view.getUint32(iovs + i * 8, true);
      const len = view.getUint32(iovs + i * 8 + 4, true);
      if (buf + len > memory.byteLength) return wasi.ERRNO_FAULT;
      const data = new Uint8Array(memory, buf, len);
      const r = offset === null ? file.fd_write(data) : file.fd_pwrite(data, offset + BigInt(total));
      if (r.ret !== wasi.ERRNO_SUCCESS) {
        view.setUint32(nwrittenPtr, total, true);
        return r.ret;
      }
      total += r.nwritten;
    }
    view.setUint32(nwrittenPtr, total, true);
    return wasi.ERRNO_SUCCESS;
  };
  imports.fd_write = ((fd: number, iovs: number, count: number, nw: number) =>
    w.fds[fd] instanceof OutputsFileFd ? direct(fd, iovs, count, nw, null) : write(...([fd, iovs, count, nw] as never[]))) as never;
  imports.fd_pwrite = ((fd: number, iovs: number, count: number, offset: bigint, nw: number) =>
    w.fds[fd] instanceof OutputsFileFd ? direct(fd, iovs, count, nw, offset) : pwrite(...([fd, iovs, count, offset, nw] as never[]))) as never;
}

/**
 * Why a module that wrote past its /out cap failed, whatever it did after the refused write (`how`: "exited with
 * code N" or "trapped (...)"): the same words whether it ran in a runner of its own or in the pool.
 */
export function overflowMessage(overflowBytes: number, capBytes: number, how: string): string {
  return `wrote more than its disk: its files in /out would have taken ${overflowBytes} bytes, over its resources.disk of ${capBytes} bytes (${formatBytes(capBytes)}) (the write failed with ENOSPC; the module then ${how}); ask for more disk`;
}
