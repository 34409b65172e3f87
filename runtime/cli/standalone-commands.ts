/**
 * The CLI's commands that are not clients of a running node: `demo` (starts its own nodes) and `replay` (reads
 * data dirs' event logs; replay-command.ts). Their code is loaded only when they run.
 */
import type { Command } from 'commander';
import { addReplayCommand } from './replay-command.ts';
import { addSimCommand } from './sim-command.ts';

export function addStandaloneCommands(program: Command): void {
  program
    .command('demo')
    .description('start three nodes on loopback, deploy a sample WASM job, narrate each step, clean up')
    .option('--keep', 'keep the nodes\' data dirs (to replay them afterwards)')
    .action(async (opts: { keep?: boolean }) => {
      await import('../polyfills.ts');
      const { runDemo } = await import('./demo.ts');
      process.exitCode = await runDemo({ say: (line) => process.stdout.write(`${line}\n`), keep: opts.keep === true });
    });

  addReplayCommand(program);
  addSimCommand(program);
}
