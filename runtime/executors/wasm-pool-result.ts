/** How a pooled instance's end reads as an ExecutionResult: the same words WasiExecutor uses, where they apply. */
import type { ExecutionResult } from '../../actors/executor.ts';
import { formatBytes, formatMs } from './limits.ts';
import type { RunnerLost } from './wasm-pool-process.ts';
import type { InstanceEnd, InstanceEnded, InstanceOutputsUsage } from './wasm-pool-runner.protocol.ts';
import { overflowMessage } from './wasm-outputs.ts';

/** A failure with the memory this close to its cap is put down to memory. */
const MEMORY_FULL_SHARE = 0.9;

type Head = Pick<ExecutionResult, 'exitCode' | 'reason' | 'message'>;

export interface ResultContext {
  readonly capBytes: number;
  readonly timeoutMs: number;
  /** When the pool sent the instance (for the duration of one whose runner died). */
  readonly sentAt: number;
  /** Output bytes heard so far (for one whose runner died). */
  readonly outputBytes: number;
}

export function resultOf(end: InstanceEnded | RunnerLost, ctx: ResultContext): ExecutionResult {
  if (end.type === 'runner.lost') {
    return { ...lostHead(end), signal: end.signal, durationMs: performance.now() - ctx.sentAt, outputBytes: ctx.outputBytes, outputTruncated: false };
  }
  const head = overflowHead(end.end, end.outputs) ?? endHead(end.end, end.durationMs, ctx);
  return { ...head, signal: null, durationMs: end.durationMs, outputBytes: end.outputBytes, outputTruncated: end.outputTruncated };
}

/**
 * A module that wrote past its /out cap fails for it (whatever it did after the refused write), in WasiExecutor's
 * words (wasm-executor.ts), so a job reads the same whether it ran alone or in a pool.
 */
function overflowHead(end: InstanceEnd, over: InstanceOutputsUsage | undefined): Head | undefined {
  if (!over || over.overflowBytes === null || (end.type !== 'exited' && end.type !== 'trapped')) return undefined;
  const how = end.type === 'exited' ? `exited with code ${end.code}` : `trapped (${end.message})`;
  return {
    exitCode: end.type === 'exited' ? end.code : null,
    reason: 'failed',
    message: overflowMessage(over.overflowBytes, over.capBytes, how),
  };
}

function endHead(end: InstanceEnd, durationMs: number, { capBytes, timeoutMs }: ResultContext): Head {
  const full = (bytes: number) => bytes >= MEMORY_FULL_SHARE * capBytes;
  const atCap = (bytes: number, what: string): Head => ({
    exitCode: null,
    reason: 'memory',
    message: `${what} with its memory at ${formatBytes(bytes)} of its ${formatBytes(capBytes)} limit; ask for more memory`,
  });
  switch (end.type) {
    case 'exited':
      if (end.code === 0) return { exitCode: 0, reason: 'completed', message: 'exited with code 0' };
      if (full(end.memoryBytes)) return { ...atCap(end.memoryBytes, `exited with code ${end.code}`), exitCode: end.code };
      return { exitCode: end.code, reason: 'failed', message: `exited with code ${end.code}` };
    case 'trapped':
      if (full(end.memoryBytes)) return atCap(end.memoryBytes, `trapped (${end.message})`);
      return { exitCode: null, reason: 'failed', message: `trapped: ${end.message}` };
    case 'refused':
      return { exitCode: null, reason: end.cause === 'memory' ? 'memory' : 'failed', message: end.message };
    case 'over-memory':
      return {
        exitCode: null,
        reason: 'memory',
        message: `stopped: its memory grew to ${formatBytes(end.memoryBytes)}, past its ${formatBytes(capBytes)} limit; ask for more memory`,
      };
    case 'timeout':
      return { exitCode: null, reason: 'timeout', message: `killed at its time limit of ${formatMs(timeoutMs)}; give the job a longer timeout or make it faster` };
    case 'cancelled':
      return { exitCode: null, reason: 'cancelled', message: `cancelled after ${formatMs(durationMs)}` };
    case 'thread-died':
      if (end.memory) return { exitCode: null, reason: 'memory', message: `its thread ran out of JS heap (${end.message}); ask for more memory` };
      return { exitCode: null, reason: 'crashed', message: `its thread in the WASM runner died (${end.message}); the instance can be retried` };
    default: {
      const never: never = end;
      return never;
    }
  }
}

function lostHead(lost: RunnerLost): Head {
  if (lost.stoppedByPool) return { exitCode: null, reason: 'cancelled', message: 'cancelled: the WASM runner pool was closed' };
  const lastWords = lost.stderrTail.trim().split('\n').slice(-2).join(' | ').slice(-300);
  const how = lost.signal ? `was killed by ${lost.signal}` : lost.exitCode === null ? 'could not be started' : `exited with code ${lost.exitCode}`;
  const oom = lost.oomKilled || /out of memory|allocation failed|Cannot allocate/i.test(lastWords);
  const hint = oom ? ' (out of memory: its instances together used more than the runner may)' : lost.signal === 'SIGKILL' ? ' (by someone else: the kernel\'s out-of-memory killer?)' : '';
  return {
    exitCode: null,
    reason: 'crashed',
    message: `this requester's WASM runner ${how}${hint} before the instance finished${lastWords ? `: ${lastWords}` : ''}; only this requester's runner was lost (the node and other requesters are unaffected), and the instance can be retried`,
  };
}
