// The EventLog contract against the in-memory fake and the durable store (a real temp data dir per test).
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { MemoryEventLog } from '../../../actors/event-log.ts';
import { DexieEventLog } from '../../../runtime/store/dexie-event-log.ts';
import { eventLogContract } from './event-log.contract.ts';

eventLogContract('MemoryEventLog', async () => ({ log: new MemoryEventLog(), dispose: async () => {} }));

eventLogContract('DexieEventLog', async () => {
  const dataDir = await mkdtemp(path.join(os.tmpdir(), 'dms-eventlog-contract-'));
  const { store } = await DexieEventLog.open({ dataDir, compactBytes: 1024 * 1024 });
  return {
    log: store,
    dispose: async () => {
      await store.close();
      await rm(dataDir, { recursive: true, force: true });
    },
  };
});
