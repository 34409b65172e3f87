/** An open file of `/out` (wasm-outputs.ts): an OS file descriptor, bounded by its tree's cap. */
import fs from 'node:fs';
import { Fd, wasi } from '@bjorn3/browser_wasi_shim';
import { ALL_RIGHTS, MAX_READ_BYTES, OutputsTree, errnoOf, filestatOf } from './wasm-outputs-tree.ts';

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

