/**
 * Samples the machine (load, memory, the data dir's free disk) at a fixed interval and hands each sample to a
 * callback, which typically sends it to the Node actor as `monitor.sample`.
 */
import { statfs } from 'node:fs/promises';
import os from 'node:os';
import si from 'systeminformation';
import type { Sample } from '../../machines/node.messages.ts';
import { type Clock, type Timer, realClock } from '../clock.ts';
import { memoryTotal } from './benchmark.ts';

export interface MonitorInit {
  /** Its file system's free space is reported as `diskFree`. */
  readonly dataDir: string;
  /** Time from the start of one sample to the start of the next; a slow sample delays the next, never overlaps it. */
  readonly intervalMs: number;
  /** Told about each sample that failed (and each `onSample` that threw); the monitor keeps going.
   * Without it, failures become process warnings. */
  readonly onError?: (err: Error) => void;
  /** Stamps each sample (`at`) and times the interval (default: the real clock). */
  readonly clock?: Clock;
}

export interface Monitor {
  /** Takes and delivers a first sample, then one every `intervalMs` on an unref'd timer. Idempotent. */
  start(): Promise<void>;
  /** Stops the timer and waits for a sample in progress; no sample is delivered once this is called. */
  stop(): Promise<void>;
  /** Takes one sample without delivering it. Rejects with a MonitorError. */
  sampleOnce(): Promise<Sample>;
}

/** A sample could not be taken, or the monitor was configured wrongly. */
export class MonitorError extends Error {
  override name = 'MonitorError';
}

export function createMonitor(init: MonitorInit, onSample: (s: Sample) => void): Monitor {
  const { dataDir, intervalMs } = init;
  if (!Number.isFinite(intervalMs) || intervalMs <= 0) {
    throw new MonitorError(`monitor interval ${intervalMs} ms must be a positive number of milliseconds`);
  }
  const report = init.onError ?? ((err: Error) => process.emitWarning(err));
  const clock = init.clock ?? realClock;
  let generation = 0; // bumped by start and stop, so a tick from an earlier run never delivers or reschedules
  let running = false;
  let timer: Timer | undefined;
  let inFlight: Promise<void> = Promise.resolve();

  const sampleOnce = (): Promise<Sample> => takeSample(dataDir, clock.now());

  async function tick(gen: number): Promise<void> {
    const began = clock.now();
    const live = (): boolean => running && gen === generation;
    try {
      const sample = await sampleOnce();
      if (live()) deliver(sample);
    } catch (err) {
      if (live()) report(asError(err));
    }
    if (!live()) return;
    // clamped: a wall clock set back must not stretch the wait past one interval
    const wait = Math.min(intervalMs, Math.max(0, intervalMs - (clock.now() - began)));
    timer = clock.after(wait, () => {
      timer = undefined;
      inFlight = tick(gen);
    });
  }

  function deliver(sample: Sample): void {
    try {
      onSample(sample);
    } catch (err) {
      report(new MonitorError(`the monitor's onSample callback threw: ${asError(err).message}`, { cause: err }));
    }
  }

  return {
    async start() {
      if (running) return;
      running = true;
      const gen = ++generation;
      await inFlight; // a sample left over from before a stop() finishes first: samples never overlap
      if (gen !== generation) return;
      inFlight = tick(gen);
      await inFlight;
    },
    async stop() {
      running = false;
      generation++;
      timer?.clear();
      timer = undefined;
      await inFlight;
    },
    sampleOnce,
  };
}

/** The size of the data dir's file system, in bytes. Rejects with a MonitorError. */
export async function diskTotal(dataDir: string): Promise<number> {
  const s = await statfs(dataDir).catch((err: unknown) => {
    throw new MonitorError(`cannot read the size of data dir ${dataDir}'s disk: ${asError(err).message}; check that it still exists`, { cause: err });
  });
  return s.blocks * s.bsize;
}

async function takeSample(dataDir: string, at: number): Promise<Sample> {
  const [mem, disk] = await Promise.all([
    si.mem().catch(() => undefined), // os.freemem() below is a fine stand-in
    statfs(dataDir).catch((err: unknown) => {
      throw new MonitorError(`cannot read the free space of data dir ${dataDir}: ${asError(err).message}; check that it still exists`, { cause: err });
    }),
  ]);
  const total = memoryTotal();
  const available = mem && Number.isFinite(mem.available) && mem.available > 0 ? mem.available : os.freemem();
  return {
    at,
    load1: os.loadavg()[0] ?? 0,
    memoryTotal: total,
    memoryAvailable: Math.min(available, total),
    diskFree: disk.bavail * disk.bsize,
  };
}

function asError(err: unknown): Error {
  return err instanceof Error ? err : new Error(String(err));
}
