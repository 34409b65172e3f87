/** Checks a WASM job's module before anything runs: size, sha256, and that it is WASM at all. */
import { createHash } from 'node:crypto';
import { readFile, stat } from 'node:fs/promises';
import {
  InvalidJobError,
  ModuleHashMismatchError,
  ModuleNotFoundError,
  ModuleTooLargeError,
  NotWasmError,
  type WasmJob,
} from '../../actors/executor.ts';

/** "\0asm" then binary format version 1 (little-endian). */
const WASM_HEADER = Uint8Array.of(0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00);

export function sha256Hex(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

const mib = (n: number) => `${(n / 2 ** 20).toFixed(1)} MiB`;

/** The module's bytes, once they pass every check; rejects with the ExecutorError that names the problem. */
export async function loadCheckedModule(job: WasmJob, maxBytes: number): Promise<Uint8Array> {
  const expected = job.sha256.toLowerCase();
  if (!/^[0-9a-f]{64}$/.test(expected)) {
    throw new InvalidJobError(`wasm.sha256 "${job.sha256}" is not a hex sha256 (64 hex digits); compute it with "sha256sum module.wasm"`);
  }
  const bytes = 'bytes' in job.module ? job.module.bytes : await readModuleFile(job.module.path, maxBytes);
  if (bytes.byteLength > maxBytes) {
    throw new ModuleTooLargeError(`the module is ${mib(bytes.byteLength)}, over this executor's limit of ${mib(maxBytes)}; make it smaller (strip debug sections)`);
  }
  const actual = sha256Hex(bytes);
  if (actual !== expected) {
    throw new ModuleHashMismatchError(`the module's sha256 is ${actual}, not the ${expected} the job names; the module was changed or damaged on the way, so it was not run`);
  }
  if (bytes.byteLength < WASM_HEADER.length || WASM_HEADER.some((b, i) => bytes[i] !== b)) {
    const start = Buffer.from(bytes.subarray(0, 8)).toString('hex') || 'nothing';
    throw new NotWasmError(`the module is not WebAssembly: it starts with ${start}, not the WASM header 0061736d01000000; give a compiled .wasm file (WAT text must be compiled first)`);
  }
  return bytes;
}

async function readModuleFile(file: string, maxBytes: number): Promise<Uint8Array> {
  try {
    const { size } = await stat(file);
    if (size > maxBytes) throw new ModuleTooLargeError(`the module ${file} is ${mib(size)}, over this executor's limit of ${mib(maxBytes)}; make it smaller (strip debug sections)`);
    return new Uint8Array(await readFile(file));
  } catch (err) {
    if ((err as Error).name === 'ModuleTooLargeError') throw err;
    throw new ModuleNotFoundError(`cannot read the module ${file}: ${(err as Error).message}; check the path in the job's wasm.module`);
  }
}
