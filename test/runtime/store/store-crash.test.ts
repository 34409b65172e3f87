// Tests that really crash: a child process appending to the store is killed with SIGKILL at a random moment,
// several times on one data dir; after each kill the store must open, hold every acknowledged event exactly once
// and in order, and read nothing half-written.
import { spawn } from 'node:child_process';
import { appendFile, mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import type { LoggedEvent } from '../../../actors/event-log.ts';
import { frame, listSegments, segmentName } from '../../../runtime/store/journal.ts';
import { JOURNAL_DIR } from '../../../runtime/store/constants.ts';
import { DexieEventLog } from '../../../runtime/store/dexie-event-log.ts';
import { historyOf } from '../../../runtime/store/history-reader.ts';
import { COMPACT_BYTES, CRASH_ACTOR, crashEvent, crashSnapshot } from './store-crash.child.ts';

const CHILD = fileURLToPath(new URL('./store-crash.child.ts', import.meta.url));
const ROUNDS = 5;
const START_TIMEOUT_MS = 15_000;

interface Run {
  readonly ready: number;
  readonly acked: number[];
  readonly signal: NodeJS.Signals | null;
  readonly code: number | null;
  readonly stderr: string;
}

/** Starts the child, kills it with SIGKILL `killAfterMs` after its first ack, and returns what it printed. */
function runAndKill(dataDir: string, killAfterMs: number): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', CHILD, dataDir], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let stderr = '';
    let ready: number | undefined;
    let writing = false;
    const guard = setTimeout(() => child.kill('SIGKILL'), START_TIMEOUT_MS);
    child.stderr.on('data', (d: Buffer) => (stderr += d));
    child.stdout.on('data', (d: Buffer) => {
      out += d;
      const m = ready === undefined ? /^ready (\d+)$/m.exec(out) : null;
      if (m) ready = Number(m[1]);
      if (!writing && /^acked /m.test(out)) {
        // the clock starts once appends are flowing, so every kill lands in the middle of the burst
        writing = true;
        clearTimeout(guard);
        setTimeout(() => child.kill('SIGKILL'), killAfterMs);
      }
    });
    child.on('error', reject);
    child.on('close', (code, signal) => {
      clearTimeout(guard);
      if (ready === undefined || !writing) return reject(new Error(`child never started appending (code ${code}, signal ${signal}): ${stderr}`));
      const lines = out.split('\n').filter(Boolean);
      const bad = lines.filter((l) => !/^(ready|acked|snapshot) \d+$/.test(l));
      if (bad.length) return reject(new Error(`child printed unexpected lines: ${bad.slice(0, 3).join(' | ')}`));
      const acked = lines.filter((l) => l.startsWith('acked ')).map((l) => Number(l.slice(6)));
      resolve({ ready, acked, signal, code, stderr });
    });
  });
}

const upTo = (n: number, from = 1) => Array.from({ length: Math.max(0, n - from + 1) }, (_, i) => from + i);

/** Asserts every event is exactly the one the child wrote at that seq, and the seqs are exactly `expected`. */
function assertEvents(what: string, events: readonly LoggedEvent[], expected: readonly number[]) {
  assert.equal(events.map((e) => e.seq), expected, `${what}: seqs`);
  for (const e of events) if (JSON.stringify(e) !== JSON.stringify(crashEvent(e.seq))) assert.unreachable(`${what}: event ${e.seq} was misread: ${JSON.stringify(e)}`);
}

/**
 * What a power cut can leave that a SIGKILL cannot (the kernel finishes a write() it started): the first bytes
 * of a frame whose record, misread, would add events far beyond anything written. Returns the bytes appended.
 */
async function tearNewestSegment(dataDir: string, round: number): Promise<number> {
  const dir = path.join(dataDir, JOURNAL_DIR);
  const newest = (await listSegments(dir)).at(-1)!;
  const bogus = Array.from({ length: 4 }, (_, i) => crashEvent(1_000_000_000 + i));
  const record = { tx: [{ t: 'events', op: 'add', values: [{ actor: CRASH_ACTOR, seq: bogus.at(-1)!.seq, first: bogus[0]!.seq, events: bogus }] }] };
  const whole = frame(Buffer.from(JSON.stringify(record), 'utf8'));
  const torn = whole.subarray(0, round % 4 === 0 ? 6 : whole.length - 5);
  await appendFile(path.join(dir, segmentName(newest)), torn);
  return torn.length;
}

const crash = suite('SIGKILL during a burst of writes loses nothing acknowledged');

crash(`${ROUNDS} random kills on one data dir: every acked event is there once, in order, nothing misread`, async () => {
  const dataDir = await mkdtemp(path.join(os.tmpdir(), 'dms-store-crash-'));
  const log: string[] = [];
  let maxAcked = 0;
  let lastSeq = 0;
  let compacted = false;
  try {
    for (let round = 1; round <= ROUNDS; round += 1) {
      const killAfterMs = 100 + Math.floor(Math.random() * 1400);
      const run = await runAndKill(dataDir, killAfterMs);
      const where = `round ${round} (killed ${killAfterMs} ms into the burst)`;
      assert.is(run.signal, 'SIGKILL', `${where}: the child died by itself (code ${run.code}): ${run.stderr}`);
      assert.is(run.ready, lastSeq, `${where}: the child resumed from the store's lastSeq`);
      assert.ok(run.acked.length > 0, `${where}: the child acknowledged nothing before the kill`);
      assert.equal(run.acked, [...run.acked].sort((a, b) => a - b), `${where}: acks in order`);
      assert.ok(run.acked[0]! > lastSeq, `${where}: the first ack continues the sequence`);
      maxAcked = run.acked.at(-1)!;
      const tornBytes = round % 2 === 0 ? await tearNewestSegment(dataDir, round) : 0;

      // open() must not throw, whatever the kill left behind
      const { store, recovery } = await DexieEventLog.open({ dataDir, compactBytes: COMPACT_BYTES });
      try {
        lastSeq = await store.lastSeq(CRASH_ACTOR);
        assert.ok(lastSeq >= maxAcked, `${where}: lastSeq ${lastSeq} < acked ${maxAcked}`);
        const snapshot = await store.latestSnapshot(CRASH_ACTOR);
        const from = snapshot?.seq ?? 0;
        if (snapshot) assert.equal(snapshot, crashSnapshot(snapshot.seq), `${where}: snapshot intact`);
        assert.ok(from <= lastSeq, `${where}: snapshot ${from} beyond lastSeq ${lastSeq}`);
        assertEvents(`${where}: eventsAfter(snapshot)`, await store.eventsAfter(CRASH_ACTOR, from), upTo(lastSeq, from + 1));
        // at least the frame we tore: a kill in the middle of a write can leave a torn frame of its own before it
        if (tornBytes > 0) assert.ok(recovery.tornBytes >= tornBytes, `${where}: the torn frame was cut (${recovery.tornBytes} B cut, ${tornBytes} B torn)`);
        compacted ||= recovery.checkpoint;
        log.push(`${where}: acked ${run.acked.length} appends up to ${maxAcked}, store at ${lastSeq}, snapshot ${from}, replayed ${recovery.records} records of ${recovery.segments} segments, torn ${recovery.tornBytes} B`);
      } finally {
        await store.close();
      }
      const history: LoggedEvent[] = [];
      for await (const h of historyOf(dataDir, CRASH_ACTOR)) history.push(h.event);
      assertEvents(`${where}: historyOf`, history, upTo(lastSeq));
    }
    assert.ok(compacted, 'the runs compacted at least once (a checkpoint was used on recovery)');
  } catch (e) {
    (e as Error).message += `\n${log.join('\n')}`;
    throw e;
  } finally {
    await rm(dataDir, { recursive: true, force: true });
  }
  if (process.env.DMS_TEST_VERBOSE) console.log(log.join('\n'));
});

crash.run();
