// The EventLog port's behaviour, written once and run against every implementation (event-log.test.ts).
// A factory gives a fresh, empty log and a way to release it; each test gets its own.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import type { VersionedSnapshot } from '../../../actors/actor.protocol.ts';
import type { ActorRecord, EventLog, LoggedEvent } from '../../../actors/event-log.ts';

export interface EventLogFixture {
  readonly log: EventLog;
  /** Releases the log (closes files, removes temp dirs). */
  dispose(): Promise<void>;
}

export type EventLogFactory = () => Promise<EventLogFixture>;

interface Ctx {
  fx?: EventLogFixture;
}

const T0 = 1_700_000_000_000;

/** Event `seq` of an actor, with a payload that depends on both, so a mix-up shows. */
export function ev(actor: string, seq: number): LoggedEvent {
  return { seq, ts: T0 + seq, type: 'tick', origin: seq % 2 ? 'local' : 'api', payload: { type: 'tick', actor, n: seq, nested: { list: [seq, `s${seq}`] } } };
}

export function range(actor: string, from: number, to: number): LoggedEvent[] {
  return Array.from({ length: to - from + 1 }, (_, i) => ev(actor, from + i));
}

const seqs = (events: readonly LoggedEvent[]) => events.map((e) => e.seq);

const snap = (seq: number, extra: unknown = null): VersionedSnapshot => ({ kind: 'counter', version: 3, seq, snapshot: { status: 'active', value: seq, context: { extra } } });

export function eventLogContract(impl: string, factory: EventLogFactory): void {
  const make = (behaviour: string) => {
    const s = suite<Ctx>(`${impl}: ${behaviour}`);
    s.before.each(async (ctx) => {
      ctx.fx = await factory();
    });
    s.after.each(async (ctx) => {
      await ctx.fx?.dispose();
      delete ctx.fx;
    });
    return s;
  };
  const logOf = (ctx: Ctx) => ctx.fx!.log;

  const empty = make('an empty log knows nothing');
  empty('lastSeq 0, no events, no snapshot, no actors', async (ctx) => {
    const log = logOf(ctx);
    assert.is(await log.lastSeq('a'), 0);
    assert.equal(await log.eventsAfter('a', 0), []);
    assert.is(await log.latestSnapshot('a'), undefined);
    assert.is(await log.actor('a'), undefined);
    assert.equal(await log.actors(), []);
  });
  empty.run();

  const order = make('append keeps events in order, per actor');
  order('eventsAfter returns every appended event, in seq order, with its fields intact', async (ctx) => {
    const log = logOf(ctx);
    await log.append('a', range('a', 1, 3));
    await log.append('a', [ev('a', 4)]);
    await log.append('a', range('a', 5, 9));
    assert.equal(await log.eventsAfter('a', 0), range('a', 1, 9));
  });
  order('eventsAfter(seq) gives only later events, also from the middle of an appended batch', async (ctx) => {
    const log = logOf(ctx);
    await log.append('a', range('a', 1, 5));
    await log.append('a', range('a', 6, 10));
    assert.equal(seqs(await log.eventsAfter('a', 3)), [4, 5, 6, 7, 8, 9, 10]);
    assert.equal(seqs(await log.eventsAfter('a', 5)), [6, 7, 8, 9, 10]);
    assert.equal(await log.eventsAfter('a', 10), []);
  });
  order('actors do not see each other’s events; lastSeq is per actor', async (ctx) => {
    const log = logOf(ctx);
    await log.append('a', range('a', 1, 4));
    await log.append('b', range('b', 1, 2));
    await log.append('a', range('a', 5, 6));
    assert.equal(await log.eventsAfter('a', 0), range('a', 1, 6));
    assert.equal(await log.eventsAfter('b', 0), range('b', 1, 2));
    assert.is(await log.lastSeq('a'), 6);
    assert.is(await log.lastSeq('b'), 2);
    assert.is(await log.lastSeq('c'), 0);
  });
  order('concurrent appends of consecutive batches all land, in order', async (ctx) => {
    const log = logOf(ctx);
    await Promise.all(Array.from({ length: 20 }, (_, i) => log.append('a', range('a', i * 5 + 1, i * 5 + 5))));
    assert.equal(seqs(await log.eventsAfter('a', 0)), Array.from({ length: 100 }, (_, i) => i + 1));
    assert.is(await log.lastSeq('a'), 100);
  });
  order('appending nothing changes nothing', async (ctx) => {
    const log = logOf(ctx);
    await log.append('a', range('a', 1, 2));
    await log.append('a', []);
    assert.is(await log.lastSeq('a'), 2);
    assert.equal(seqs(await log.eventsAfter('a', 0)), [1, 2]);
  });
  order.run();

  const snapshots = make('snapshots cover the events before them');
  snapshots('latestSnapshot returns what was saved (kind, version, seq, nested snapshot)', async (ctx) => {
    const log = logOf(ctx);
    await log.append('a', range('a', 1, 4));
    await log.saveSnapshot('a', snap(4, { deep: [1, { x: 'y' }] }));
    assert.equal(await log.latestSnapshot('a'), snap(4, { deep: [1, { x: 'y' }] }));
    assert.is(await log.latestSnapshot('b'), undefined);
  });
  snapshots('a snapshot drops the events it covers from eventsAfter and keeps the later ones', async (ctx) => {
    const log = logOf(ctx);
    await log.append('a', range('a', 1, 3));
    await log.append('a', range('a', 4, 6));
    await log.append('a', range('a', 7, 9));
    await log.saveSnapshot('a', snap(6));
    assert.equal(await log.eventsAfter('a', 0), range('a', 7, 9));
    assert.is(await log.lastSeq('a'), 9);
  });
  snapshots('after a snapshot taken mid-batch, eventsAfter(snapshot.seq) is exactly the later events', async (ctx) => {
    const log = logOf(ctx);
    await log.append('a', range('a', 1, 10));
    await log.saveSnapshot('a', snap(4));
    assert.equal(await log.eventsAfter('a', 4), range('a', 5, 10));
    assert.is(await log.lastSeq('a'), 10);
  });
  snapshots('a snapshot of everything leaves no events and lastSeq at the snapshot; appends continue after it', async (ctx) => {
    const log = logOf(ctx);
    await log.append('a', range('a', 1, 5));
    await log.saveSnapshot('a', snap(5));
    assert.equal(await log.eventsAfter('a', 0), []);
    assert.is(await log.lastSeq('a'), 5);
    await log.append('a', range('a', 6, 7));
    assert.equal(await log.eventsAfter('a', 5), range('a', 6, 7));
    assert.is(await log.lastSeq('a'), 7);
  });
  snapshots('a newer snapshot replaces the older one; other actors keep theirs and their events', async (ctx) => {
    const log = logOf(ctx);
    await log.append('a', range('a', 1, 4));
    await log.append('b', range('b', 1, 4));
    await log.saveSnapshot('a', snap(2));
    await log.saveSnapshot('b', snap(1, 'b'));
    await log.saveSnapshot('a', snap(4, 'newer'));
    assert.equal(await log.latestSnapshot('a'), snap(4, 'newer'));
    assert.equal(await log.latestSnapshot('b'), snap(1, 'b'));
    assert.equal(await log.eventsAfter('b', 1), range('b', 2, 4));
  });
  snapshots.run();

  const dropped = make('markDropped takes one event out of replays');
  dropped('eventsAfter skips the dropped seq and keeps its neighbours; lastSeq is unchanged', async (ctx) => {
    const log = logOf(ctx);
    await log.append('a', range('a', 1, 5));
    await log.markDropped('a', 3, 'boom');
    assert.equal(seqs(await log.eventsAfter('a', 0)), [1, 2, 4, 5]);
    assert.equal(seqs(await log.eventsAfter('a', 2)), [4, 5]);
    assert.is(await log.lastSeq('a'), 5);
  });
  dropped('a drop is per actor', async (ctx) => {
    const log = logOf(ctx);
    await log.append('a', range('a', 1, 3));
    await log.append('b', range('b', 1, 3));
    await log.markDropped('a', 2, 'boom');
    assert.equal(seqs(await log.eventsAfter('a', 0)), [1, 3]);
    assert.equal(seqs(await log.eventsAfter('b', 0)), [1, 2, 3]);
  });
  dropped.run();

  const registry = make('the actor registry');
  const rec = (id: string, kind = 'node', input: unknown = { id }): ActorRecord => ({ id, kind, input, createdAt: T0 });
  registry('register then actor(id) returns the record; unknown ids give undefined', async (ctx) => {
    const log = logOf(ctx);
    await log.register(rec('n1', 'node', { offer: { cpu: 2 }, tags: ['x'] }));
    assert.equal(await log.actor('n1'), rec('n1', 'node', { offer: { cpu: 2 }, tags: ['x'] }));
    assert.is(await log.actor('n2'), undefined);
  });
  registry('actors() lists every registered actor once; re-registering replaces the record', async (ctx) => {
    const log = logOf(ctx);
    await log.register(rec('n1'));
    await log.register(rec('a1', 'allocation'));
    await log.register(rec('n1', 'node', { v: 2 }));
    const all = (await log.actors()).sort((x, y) => x.id.localeCompare(y.id));
    assert.equal(all, [rec('a1', 'allocation'), rec('n1', 'node', { v: 2 })]);
  });
  registry('forget(actor) removes its record, snapshot, events and dropped marks, and nothing of another actor', async (ctx) => {
    const log = logOf(ctx);
    for (const id of ['gone', 'kept']) {
      await log.register(rec(id, 'provider'));
      await log.append(id, range(id, 1, 6));
      await log.saveSnapshot(id, snap(3));
      await log.markDropped(id, 5, 'poison');
    }
    await log.forget('gone');
    assert.is(await log.actor('gone'), undefined);
    assert.is(await log.latestSnapshot('gone'), undefined);
    assert.equal(await log.eventsAfter('gone', 0), []);
    assert.is(await log.lastSeq('gone'), 0);
    assert.equal((await log.actors()).map((a) => a.id), ['kept']);
    assert.equal(seqs(await log.eventsAfter('kept', 3)), [4, 6]);
    assert.is((await log.latestSnapshot('kept'))?.seq, 3);
    await log.forget('never-was'); // a no-op
  });
  registry.run();
}
