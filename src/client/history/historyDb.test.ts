import assert from 'node:assert/strict';
import { it } from 'node:test';
import { IDBFactory, IDBKeyRange } from 'fake-indexeddb';
import type { Envelope } from '../../shared/protocol/relay';
import { DexieStore } from '../../shared/store/DexieStore';
import { createFixtures } from '../../shared/store/testing/fixtures';
import { HistoryReader } from './historyDb';

it('UI1 a window re-read reads rows only for envelopes it does not hold yet, and equals a full read', async () => {
  const indexedDB = new IDBFactory();
  const fx = await createFixtures();
  const envs = await fx.envelopes(300);
  const store = new DexieStore('peerchat-history', { indexedDB, IDBKeyRange });
  const reader = new HistoryReader('peerchat-history', { indexedDB, IDBKeyRange });
  // A catch-up stores newest first: the window held the newest 200, then the older 100 came.
  await store.putMessages(envs.slice(100));
  const channel = envs[0]!.post.channel;
  const held = await reader.fromNewest(channel, '', 1000);
  await store.putMessages(envs.slice(0, 100));

  const table = reader.db.table('messages');
  const bulkGet = table.bulkGet.bind(table);
  let rowsRead = 0;
  table.bulkGet = ((keys: string[]) => ((rowsRead += keys.length), bulkGet(keys))) as typeof table.bulkGet;
  const known = new Map<string, Envelope>(held.map((e) => [e.id, e]));
  const next = await reader.fromNewestKnown(channel, '', 1000, known);
  assert.equal(rowsRead, 100, 'only the 100 new envelopes are read from rows');
  assert.deepEqual(next.map((e) => e.id), (await reader.fromNewest(channel, '', 1000)).map((e) => e.id));
  assert.deepEqual(next.map((e) => e.id), envs.map((e) => e.id));
  // The limit keeps the newest, as fromNewest's does; what `known` holds beyond the window is not shown.
  assert.deepEqual((await reader.fromNewestKnown(channel, envs[250]!.id, 20, known)).map((e) => e.id), envs.slice(280).map((e) => e.id));
  await store.close();
  reader.db.close();
});
