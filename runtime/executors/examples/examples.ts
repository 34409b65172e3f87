/**
 * Example WASM jobs, built from WAT source in this folder with the `wabt` package when asked for: the demo deploys
 * `hello`, tests use it and their own fixtures. Compiling takes a few ms once wabt is loaded (~0.4 s, once).
 */
import { readFile } from 'node:fs/promises';
import wabtInit from 'wabt';

/** Example modules shipped with the runtime. */
export type ExampleName = 'hello';

let wabt: ReturnType<typeof wabtInit> | undefined;

/** Compiles WebAssembly text to a validated binary module; `file` names it in error messages. */
export async function compileWat(source: string, file = 'module.wat'): Promise<Uint8Array> {
  wabt ??= wabtInit();
  const module = (await wabt).parseWat(file, source);
  try {
    module.validate();
    return module.toBinary({}).buffer;
  } finally {
    module.destroy();
  }
}

/** The named example, compiled: `hello` prints its args and env, a line on stderr, and exits with "exit=N". */
export async function exampleModule(name: ExampleName): Promise<Uint8Array> {
  const file = new URL(`./${name}.wat`, import.meta.url);
  return compileWat(await readFile(file, 'utf8'), `${name}.wat`);
}
