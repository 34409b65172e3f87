/**
 * Structured logs (pino) on stderr, so stdout carries only the ready line and command output.
 * Quiet by default: warnings and errors only, unless --log-level asks for more.
 */
import { pino, type Logger } from 'pino';

export const LOG_LEVELS = ['silent', 'error', 'warn', 'info', 'debug'] as const;
export type LogLevelName = (typeof LOG_LEVELS)[number];

export function createLogger(level: LogLevelName): Logger {
  return pino({ level, base: { pid: process.pid } }, pino.destination({ fd: 2, sync: true }));
}

export type { Logger };
