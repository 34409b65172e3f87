/**
 * WASM modules by content: `<data-dir>/modules/<sha256>.wasm`, written durably before a deal that needs one is
 * acknowledged. The requester keeps the modules it deploys; a provider keeps those it received with a deal.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { sha256Hex } from '../executors/wasm-module.ts';
import { writeFileDurable } from '../files.ts';

export const MODULES_DIR = 'modules';

export class ModuleHashError extends Error {
  override name = 'ModuleHashError';
}

export class ModuleStore {
  readonly dir: string;
  readonly #writing = new Map<string, Promise<void>>();

  constructor(dataDir: string) {
    this.dir = path.join(dataDir, MODULES_DIR);
  }

  path(sha256: string): string {
    if (!/^[0-9a-f]{64}$/.test(sha256)) throw new ModuleHashError(`"${sha256}" is not a sha256 in hex`);
    return path.join(this.dir, `${sha256}.wasm`);
  }

  async has(sha256: string): Promise<boolean> {
    return fs.access(this.path(sha256)).then(() => true, () => false);
  }

  /** Stores `bytes` after checking they hash to `sha256`; a module already stored is not written again. */
  async put(sha256: string, bytes: Uint8Array): Promise<void> {
    const actual = sha256Hex(bytes);
    if (actual !== sha256) throw new ModuleHashError(`the module's bytes hash to ${actual}, not to the job's sha256 ${sha256}`);
    // one write per module at a time: concurrent writers of one file would share its temp file
    const inFlight = this.#writing.get(sha256);
    if (inFlight) return inFlight;
    const write = (async () => {
      if (await this.has(sha256)) {
        const now = new Date();
        await fs.utimes(this.path(sha256), now, now); // in use again: retention counts its age from now
        return;
      }
      await fs.mkdir(this.dir, { recursive: true, mode: 0o700 });
      await writeFileDurable(this.path(sha256), bytes);
    })().finally(() => this.#writing.delete(sha256));
    this.#writing.set(sha256, write);
    return write;
  }

  async get(sha256: string): Promise<Uint8Array> {
    return new Uint8Array(await fs.readFile(this.path(sha256)));
  }
}
