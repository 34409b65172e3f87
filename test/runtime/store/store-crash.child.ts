// Child process of store-crash.test.ts: opens the store in the data dir given as argv[2], then appends pages of
// events for actor 'a' until it is killed, with several appends in flight, a snapshot now and then and a small
// compaction threshold. Prints `ready <lastSeq>` once open, and `acked <seq>` (in order) as each append resolves.
import { fileURLToPath } from 'node:url';
import type { LoggedEvent } from '../../../actors/event-log.ts';
import { DexieEventLog } from '../../../runtime/store/dexie-event-log.ts';

export const CRASH_ACTOR = 'a';
export const PAGE_EVENTS = 16;
export const IN_FLIGHT = 4;
export const SNAPSHOT_EVERY_PAGES = 40;
export const COMPACT_BYTES = 256 * 1024;

/** The event the child writes at `seq`: derived from seq alone, so the parent can check every field. */
export function crashEvent(seq: number): LoggedEvent {
  return { seq, ts: 1_700_000_000_000 + seq, type: 'counter.add', origin: 'local', payload: { type: 'counter.add', n: seq, pad: `p${seq}`.padEnd(64, '.') } };
}

export const crashSnapshot = (seq: number) => ({ kind: 'counter', version: 1, seq, snapshot: { upTo: seq } });

async function main(dataDir: string): Promise<void> {
  const { store } = await DexieEventLog.open({ dataDir, compactBytes: COMPACT_BYTES });
  let next = (await store.lastSeq(CRASH_ACTOR)) + 1;
  process.stdout.write(`ready ${next - 1}\n`);
  const inFlight: { line: string; done: Promise<unknown> }[] = [];
  for (let pages = 1; ; pages += 1) {
    const events = Array.from({ length: PAGE_EVENTS }, (_, i) => crashEvent(next + i));
    next += PAGE_EVENTS;
    inFlight.push({ line: `acked ${next - 1}`, done: store.append(CRASH_ACTOR, events) });
    if (pages % SNAPSHOT_EVERY_PAGES === 0) {
      // a snapshot of what is already acknowledged, taken while later appends are still in flight
      const seq = next - 1 - PAGE_EVENTS * IN_FLIGHT;
      inFlight.push({ line: `snapshot ${seq}`, done: store.saveSnapshot(CRASH_ACTOR, crashSnapshot(seq)) });
    }
    while (inFlight.length >= IN_FLIGHT) {
      const head = inFlight.shift()!;
      await head.done;
      process.stdout.write(`${head.line}\n`);
    }
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const dataDir = process.argv[2];
  if (!dataDir) throw new Error('usage: store-crash.child.ts DATA_DIR');
  main(dataDir).catch((e: unknown) => {
    console.error(e);
    process.exit(1);
  });
}
