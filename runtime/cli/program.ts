/**
 * The CLI program: `dms` with every command, composed from the command groups of this folder.
 */
import { Command } from 'commander';
import { cliKit } from './cli-kit.ts';
import { addDealCommands } from './deal-commands.ts';
import { addNodeCommands } from './node-commands.ts';
import { addResultsCommand } from './results-command.ts';
import { addRunCommand } from './run-command.ts';
import { addStandaloneCommands } from './standalone-commands.ts';

export function buildCli(): Command {
  const program = new Command('dms')
    .description('DMS runtime: a Device Management Service node (see README.md)')
    .exitOverride()
    .configureOutput({
      writeErr: (s) => process.stderr.write(s),
      // one line per usage error (commander may add a second, e.g. "(Did you mean --json?)"), like every other error
      outputError: (s, write) => write(`${s.trim().replace(/\s*\n\s*/g, ' ')} (add --help for usage)\n`),
    });
  // the order here is the order of `--help`
  addRunCommand(program);
  addNodeCommands(program);
  addDealCommands(program, cliKit);
  addResultsCommand(program, cliKit);
  addStandaloneCommands(program);
  return program;
}
