#!/usr/bin/env node
/**
 * `node runtime/main.js [command]`: the CLI. `run` (the default) starts a node; the other commands are
 * clients of a running node's local API. See INTERFACE.md. The commands live in cli/.
 *
 * Start-up time matters to the client commands: what this file and cli/program.ts import is only commander and
 * the light command definitions; each action imports what it needs when it runs (the node runtime, libp2p and its
 * polyfills.ts, xstate, dexie, zod, pino, YAML). test/runtime/cli/startup.test.ts checks what they load.
 */
import { CommanderError } from 'commander';
import { debugEnabled } from './cli/cli-kit.ts';
import { buildCli } from './cli/program.ts';
import { exitCodeOf } from './errors.ts';

export async function main(argv: readonly string[]): Promise<number> {
  try {
    await buildCli().parseAsync(argv as string[], { from: 'user' });
    return typeof process.exitCode === 'number' ? process.exitCode : 0;
  } catch (e) {
    if (e instanceof CommanderError) {
      // commander printed its message already; --help and --version end with code 0
      return e.exitCode === 0 || e.code === 'commander.helpDisplayed' || e.code === 'commander.help' ? 0 : 2;
    }
    const err = e as Error;
    process.stderr.write(`error: ${err.message}\n`);
    if (debugEnabled() && err.stack) process.stderr.write(`${err.stack}\n`);
    return exitCodeOf(e);
  }
}

/** Resolves once `stream` has handed everything written so far to the OS (a pipe takes ~64 KiB at a time). */
function drained(stream: NodeJS.WriteStream): Promise<void> {
  if (!stream.writableNeedDrain) return Promise.resolve();
  return new Promise((resolve) => {
    stream.once('drain', resolve);
    stream.once('error', resolve); // a closed pipe (EPIPE): nothing more to wait for
  });
}

const code = await main(process.argv.slice(2));
// process.exit drops what a pipe has not taken yet: a long `status --json` or `jobs` piped to `head` or `jq`
// would lose its end. The node's own run returns only when it stopped, so this waits for a client's output only.
await Promise.race([Promise.all([drained(process.stdout), drained(process.stderr)]), new Promise((r) => setTimeout(r, 5000).unref())]);
process.exit(code);
