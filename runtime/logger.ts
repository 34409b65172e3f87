/**
 * Structured logs (pino) on stderr, so stdout carries only the ready line and command output.
 * Quiet by default: warnings and errors only, unless --log-level asks for more.
 */
import { createRequire } from 'node:module';
import type { Logger } from 'pino';

export const LOG_LEVELS = ['silent', 'error', 'warn', 'info', 'debug'] as const;
export type LogLevelName = (typeof LOG_LEVELS)[number];

/**
 * pino is loaded with the first logger, not with this module: the client commands import the log levels (through
 * config.ts) and never log, and loading pino would add ~15 ms to each of them.
 */
let loaded: typeof import('pino') | undefined;

export function createLogger(level: LogLevelName): Logger {
  const { pino } = (loaded ??= createRequire(import.meta.url)('pino') as typeof import('pino'));
  return pino({ level, base: { pid: process.pid } }, pino.destination({ fd: 2, sync: true }));
}

export type { Logger };
