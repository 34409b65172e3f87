/**
 * The CLI program: `dms` with every command, composed from the command groups of this folder.
 */
import { readFileSync } from 'node:fs';
import { Command } from 'commander';
import { cliKit } from './cli-kit.ts';
import { addConfigCommand } from './config-command.ts';
import { addCapCommands } from './cap-commands.ts';
import { addDealCommands } from './deal-commands.ts';
import { addNodeCommands } from './node-commands.ts';
import { addResultsCommand } from './results-command.ts';
import { addRunCommand } from './run-command.ts';
import { addStandaloneCommands } from './standalone-commands.ts';

export function buildCli(): Command {
  const program = new Command('dms')
    .description('DMS runtime: a Device Management Service node (see README.md)')
    .version(version(), '-V, --version', 'print the version')
    .exitOverride()
    .configureOutput({
      writeErr: (s) => process.stderr.write(s),
      // one line per usage error (commander may add a second, e.g. "(Did you mean --json?)"), like every other error
      outputError: (s, write) => write(`${s.trim().replace(/\s*\n\s*/g, ' ')} (add --help for usage)\n`),
    });
  // the order here is the order of `--help`
  addRunCommand(program);
  addConfigCommand(program);
  addNodeCommands(program);
  addDealCommands(program, cliKit);
  addResultsCommand(program, cliKit);
  addCapCommands(program, cliKit);
  addStandaloneCommands(program);
  return program;
}

/** This package's version, from its package.json. */
function version(): string {
  return (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version;
}
