/**
 * What @bjorn3/browser_wasi_shim needs fixed before a module may use it (the same fixes wasm-runner.ts carries):
 * fd 0 empty and unchangeable, and args_sizes_get counting UTF-8 bytes.
 */
import { File, OpenFile, type WASI, wasi as wasiDefs } from '@bjorn3/browser_wasi_shim';

const { ERRNO_BADF } = wasiDefs;

/**
 * fd 0: empty and read-only. The shim's File with `readonly` refuses fd_write/fd_pwrite but still lets
 * fd_allocate and fd_filestat_set_size grow its buffer, outside the module's memory cap; here every way to change
 * it is refused with EBADF.
 */
export class EmptyStdin extends OpenFile {
  constructor() {
    super(new File([], { readonly: true }));
  }
  override fd_write(): { ret: number; nwritten: number } {
    return { ret: ERRNO_BADF, nwritten: 0 };
  }
  override fd_pwrite(): { ret: number; nwritten: number } {
    return { ret: ERRNO_BADF, nwritten: 0 };
  }
  override fd_allocate(): number {
    return ERRNO_BADF;
  }
  override fd_filestat_set_size(): number {
    return ERRNO_BADF;
  }
}

/** The shim's args_sizes_get counts UTF-16 units instead of UTF-8 bytes: wrong for non-ASCII args. */
export function fixArgsSizes(wasi: WASI, argv: readonly string[]): void {
  const bytes = argv.reduce((n, a) => n + Buffer.byteLength(a) + 1, 0);
  wasi.wasiImport.args_sizes_get = (argcPtr: number, bufSizePtr: number) => {
    const view = new DataView(wasi.inst.exports.memory.buffer);
    view.setUint32(argcPtr, argv.length, true);
    view.setUint32(bufSizePtr, bytes, true);
    return 0;
  };
}
