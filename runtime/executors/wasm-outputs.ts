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

/** Files and directories /out may hold (the manifest lists every file). */
export const MAX_OUTPUT_ENTRIES = 4096;
/** Files the module may hold open in /out at once. */
export const MAX_OPEN_FILES = 128;
/** Longest path inside /out, in UTF-8 bytes; a name is at most 255 bytes. */
export const MAX_OUTPUT_PATH_BYTES = 512;
const MAX_NAME_BYTES = 255;
/** Most bytes one fd_read returns (a short read is allowed). */
const MAX_READ_BYTES = 1 << 20;
/** Every right: the shim checks none, and wasi-libc only asks. */
const ALL_RIGHTS = (1n << 29n) - 1n;

/** What the module did with its outputs, for the runner's report. */
export interface OutputsUsage {
  readonly usedBytes: number;
  readonly capBytes: number;
  /** Set when a write would have taken the total past capBytes: the total it asked for. */
  readonly overflowBytes: number | null;
}

/** The state every fd of one /out shares: its root, the bytes in it, and the bounds. */
export class OutputsTree {
  used = 0;
  entries = 0;
  open = 0;
  overflowBytes: number | null = null;
  /** Logical size of each file by inode number. */
  readonly sizes = new Map<bigint, number>();

  constructor(readonly root: string, readonly capBytes: number) {}

  usage(): OutputsUsage {
    return { usedBytes: this.used, capBytes: this.capBytes, overflowBytes: this.overflowBytes };
  }

  /** Takes `grow` more bytes, or refuses (and remembers the overflow). */
  reserve(grow: number): boolean {
    if (grow <= 0) return true;
    if (this.used + grow > this.capBytes) {
      this.overflowBytes = Math.max(this.overflowBytes ?? 0, this.used + grow);
      return false;
    }
    this.used += grow;
    return true;
  }

  /** Notes a file's new logical size; its growth must have been reserved. */
  resize(ino: bigint, size: number): void {
    const was = this.sizes.get(ino) ?? 0;
    if (size < was) this.used -= was - size;
    this.sizes.set(ino, size);
  }

  /** A file left /out (unlinked, or replaced by a rename). */
  forget(ino: bigint): void {
    this.used -= this.sizes.get(ino) ?? 0;
    this.sizes.delete(ino);
    this.entries = Math.max(0, this.entries - 1);
  }

  /**
   * The real path of `rel` under the directory `base` (components from the root), or an errno: absolute paths,
   * `..`, NUL, over-long names, and a symbolic link on the way are refused.
   */
  resolve(base: readonly string[], rel: string): { ret: number; parts: string[]; real: string } {
    const fail = (ret: number) => ({ ret, parts: [], real: '' });
    if (rel.includes('\0')) return fail(wasi.ERRNO_INVAL);
    if (rel.startsWith('/')) return fail(wasi.ERRNO_NOTCAPABLE);
    const parts = [...base];
    for (const c of rel.split('/')) {
      if (c === '' || c === '.') continue;
      if (c === '..') return fail(wasi.ERRNO_NOTCAPABLE);
      if (Buffer.byteLength(c) > MAX_NAME_BYTES) return fail(wasi.ERRNO_NAMETOOLONG);
      parts.push(c);
    }
    if (Buffer.byteLength(parts.join('/')) > MAX_OUTPUT_PATH_BYTES) return fail(wasi.ERRNO_NAMETOOLONG);
    // every directory on the way must be a real directory, not a link out
    let dir = this.root;
    for (const c of parts.slice(0, -1)) {
      dir = path.join(dir, c);
      const st = lstatOrNull(dir);
      if (!st) return fail(wasi.ERRNO_NOENT);
      if (st.isSymbolicLink()) return fail(wasi.ERRNO_NOTCAPABLE);
      if (!st.isDirectory()) return fail(wasi.ERRNO_NOTDIR);
    }
    return { ret: wasi.ERRNO_SUCCESS, parts, real: path.join(this.root, ...parts) };
  }
}

function lstatOrNull(p: string): fs.BigIntStats | null {
  try {
    return fs.lstatSync(p, { bigint: true });
  } catch {
    return null;
  }
}

/** The WASI errno for a Node fs error. */
export function errnoOf(e: unknown): number {
  switch ((e as NodeJS.ErrnoException).code) {
    case 'ENOENT': return wasi.ERRNO_NOENT;
    case 'EEXIST': return wasi.ERRNO_EXIST;
    case 'ENOTDIR': return wasi.ERRNO_NOTDIR;
    case 'EISDIR': return wasi.ERRNO_ISDIR;
    case 'ENOTEMPTY': return wasi.ERRNO_NOTEMPTY;
    case 'ELOOP': return wasi.ERRNO_NOTCAPABLE;
    case 'EACCES': case 'EPERM': return wasi.ERRNO_ACCES;
    case 'ENOSPC': case 'EDQUOT': return wasi.ERRNO_NOSPC;
    case 'ENAMETOOLONG': return wasi.ERRNO_NAMETOOLONG;
    case 'EMFILE': case 'ENFILE': return wasi.ERRNO_MFILE;
    case 'EBADF': return wasi.ERRNO_BADF;
    case 'EINVAL': return wasi.ERRNO_INVAL;
    default: return wasi.ERRNO_IO;
  }
}

function filestatOf(st: fs.BigIntStats, size?: number): wasi.Filestat {
  const type = st.isDirectory() ? wasi.FILETYPE_DIRECTORY : st.isFile() ? wasi.FILETYPE_REGULAR_FILE : st.isSymbolicLink() ? wasi.FILETYPE_SYMBOLIC_LINK : wasi.FILETYPE_UNKNOWN;
  const f = new wasi.Filestat(st.ino, type, size === undefined ? st.size : BigInt(size));
  f.nlink = st.nlink;
  f.atim = st.atimeNs;
  f.mtim = st.mtimeNs;
  f.ctim = st.ctimeNs;
  return f;
}

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

/** An open file of /out: an OS file descriptor, written at its own position. */
export class OutputsFileFd extends Fd {
  #pos = 0;
  #closed = false;

  constructor(
    readonly tree: OutputsTree,
    readonly fd: number,
    readonly ino: bigint,
    readonly mode: { readonly read: boolean; readonly write: boolean; readonly append: boolean },
  ) {
    super();
  }

  get size(): number {
    return this.tree.sizes.get(this.ino) ?? 0;
  }

  override fd_fdstat_get(): { ret: number; fdstat: wasi.Fdstat | null } {
    const s = new wasi.Fdstat(wasi.FILETYPE_REGULAR_FILE, this.mode.append ? wasi.FDFLAGS_APPEND : 0);
    s.fs_rights_base = ALL_RIGHTS;
    return { ret: wasi.ERRNO_SUCCESS, fdstat: s };
  }

  override fd_filestat_get(): { ret: number; filestat: wasi.Filestat | null } {
    if (this.#closed) return { ret: wasi.ERRNO_BADF, filestat: null };
    try {
      return { ret: wasi.ERRNO_SUCCESS, filestat: filestatOf(fs.fstatSync(this.fd, { bigint: true }), this.size) };
    } catch (e) {
      return { ret: errnoOf(e), filestat: null };
    }
  }

  override fd_write(data: Uint8Array): { ret: number; nwritten: number } {
    const at = this.mode.append ? this.size : this.#pos;
    const r = this.fd_pwrite(data, BigInt(at));
    if (r.ret === wasi.ERRNO_SUCCESS) this.#pos = at + r.nwritten;
    return r;
  }

  override fd_pwrite(data: Uint8Array, offset: bigint): { ret: number; nwritten: number } {
    if (this.#closed || !this.mode.write) return { ret: wasi.ERRNO_BADF, nwritten: 0 };
    const at = Number(offset);
    const end = at + data.byteLength;
    if (!Number.isSafeInteger(end)) return { ret: wasi.ERRNO_FBIG, nwritten: 0 };
    const before = this.size;
    if (!this.tree.reserve(end - before)) return { ret: wasi.ERRNO_NOSPC, nwritten: 0 };
    try {
      for (let done = 0; done < data.byteLength; ) done += fs.writeSync(this.fd, data, done, data.byteLength - done, at + done);
    } catch (e) {
      // give back what was reserved and not written
      const actual = Math.max(before, fs.fstatSync(this.fd).size);
      this.tree.used -= Math.max(before, end) - actual;
      this.tree.sizes.set(this.ino, actual);
      return { ret: errnoOf(e), nwritten: 0 };
    }
    if (end > before) this.tree.sizes.set(this.ino, end);
    return { ret: wasi.ERRNO_SUCCESS, nwritten: data.byteLength };
  }

  override fd_read(size: number): { ret: number; data: Uint8Array } {
    const r = this.fd_pread(size, BigInt(this.#pos));
    this.#pos += r.data.byteLength;
    return r;
  }

  override fd_pread(size: number, offset: bigint): { ret: number; data: Uint8Array } {
    if (this.#closed || !this.mode.read) return { ret: wasi.ERRNO_BADF, data: new Uint8Array() };
    const buf = Buffer.alloc(Math.min(size, MAX_READ_BYTES));
    try {
      const n = fs.readSync(this.fd, buf, 0, buf.length, Number(offset));
      return { ret: wasi.ERRNO_SUCCESS, data: buf.subarray(0, n) };
    } catch (e) {
      return { ret: errnoOf(e), data: new Uint8Array() };
    }
  }

  override fd_seek(offset: bigint, whence: number): { ret: number; offset: bigint } {
    if (this.#closed) return { ret: wasi.ERRNO_BADF, offset: 0n };
    const from = whence === wasi.WHENCE_SET ? 0n : whence === wasi.WHENCE_CUR ? BigInt(this.#pos) : whence === wasi.WHENCE_END ? BigInt(this.size) : null;
    if (from === null) return { ret: wasi.ERRNO_INVAL, offset: 0n };
    const to = from + offset;
    if (to < 0n) return { ret: wasi.ERRNO_INVAL, offset: 0n };
    if (to > BigInt(Number.MAX_SAFE_INTEGER)) return { ret: wasi.ERRNO_OVERFLOW, offset: 0n };
    this.#pos = Number(to);
    return { ret: wasi.ERRNO_SUCCESS, offset: to };
  }

  override fd_tell(): { ret: number; offset: bigint } {
    return this.#closed ? { ret: wasi.ERRNO_BADF, offset: 0n } : { ret: wasi.ERRNO_SUCCESS, offset: BigInt(this.#pos) };
  }

  override fd_filestat_set_size(size: bigint): number {
    if (this.#closed || !this.mode.write) return wasi.ERRNO_BADF;
    if (size > BigInt(Number.MAX_SAFE_INTEGER)) return wasi.ERRNO_FBIG;
    const n = Number(size);
    if (!this.tree.reserve(n - this.size)) return wasi.ERRNO_NOSPC;
    try {
      fs.ftruncateSync(this.fd, n);
    } catch (e) {
      if (n > this.size) this.tree.used -= n - this.size;
      return errnoOf(e);
    }
    if (n > this.size) this.tree.sizes.set(this.ino, n);
    else this.tree.resize(this.ino, n);
    return wasi.ERRNO_SUCCESS;
  }

  override fd_allocate(offset: bigint, len: bigint): number {
    const end = offset + len;
    return end > BigInt(this.size) ? this.fd_filestat_set_size(end) : wasi.ERRNO_SUCCESS;
  }

  override fd_sync(): number {
    return this.#closed ? wasi.ERRNO_BADF : wasi.ERRNO_SUCCESS; // durability comes with the manifest, not here
  }

  override fd_close(): number {
    if (this.#closed) return wasi.ERRNO_BADF;
    this.#closed = true;
    this.tree.open -= 1;
    try {
      fs.closeSync(this.fd);
      return wasi.ERRNO_SUCCESS;
    } catch (e) {
      return errnoOf(e);
    }
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
