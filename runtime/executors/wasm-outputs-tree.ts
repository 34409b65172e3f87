/**
 * What every fd of one `/out` shares (wasm-outputs.ts): its root on disk, the bytes in it against the cap, the
 * bounds, and the mapping of Node fs results to WASI's.
 */
import fs from 'node:fs';
import path from 'node:path';
import { wasi } from '@bjorn3/browser_wasi_shim';

/** Files and directories /out may hold (the manifest lists every file). */
export const MAX_OUTPUT_ENTRIES = 4096;
/** Files the module may hold open in /out at once. */
export const MAX_OPEN_FILES = 128;
/** Longest path inside /out, in UTF-8 bytes; a name is at most 255 bytes. */
export const MAX_OUTPUT_PATH_BYTES = 512;
export const MAX_NAME_BYTES = 255;
/** Most bytes one fd_read returns (a short read is allowed). */
export const MAX_READ_BYTES = 1 << 20;
/** Every right: the shim checks none, and wasi-libc only asks. */
export const ALL_RIGHTS = (1n << 29n) - 1n;

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

export function lstatOrNull(p: string): fs.BigIntStats | null {
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

export function filestatOf(st: fs.BigIntStats, size?: number): wasi.Filestat {
  const type = st.isDirectory() ? wasi.FILETYPE_DIRECTORY : st.isFile() ? wasi.FILETYPE_REGULAR_FILE : st.isSymbolicLink() ? wasi.FILETYPE_SYMBOLIC_LINK : wasi.FILETYPE_UNKNOWN;
  const f = new wasi.Filestat(st.ino, type, size === undefined ? st.size : BigInt(size));
  f.nlink = st.nlink;
  f.atim = st.atimeNs;
  f.mtim = st.mtimeNs;
  f.ctim = st.ctimeNs;
  return f;
}

