import assert from 'node:assert/strict';
import { it } from 'node:test';
import { IDBFactory, IDBKeyRange, IDBObjectStore } from 'fake-indexeddb';
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

  // Rows (values) read from the object store, by get or getAll; the ids come from the index.
  const proto = IDBObjectStore.prototype as { get: (...a: unknown[]) => IDBRequest; getAll: (...a: unknown[]) => IDBRequest };
  const [get, getAll] = [proto.get, proto.getAll];
  let rowsRead = 0;
  proto.get = function (this: unknown, ...a: unknown[]) {
    rowsRead++;
    return get.apply(this, a);
  };
  proto.getAll = function (this: unknown, ...a: unknown[]) {
    const req = getAll.apply(this, a);
    req.addEventListener('success', () => (rowsRead += (req.result as unknown[]).length));
    return req;
  };
  const known = new Map<string, Envelope>(held.map((e) => [e.id, e]));
  let next: Envelope[];
  try {
    next = await reader.fromNewestKnown(channel, '', 1000, known);
  } finally {
    proto.get = get;
    proto.getAll = getAll;
  }
  assert.equal(rowsRead, 100, 'only the 100 new envelopes are read from rows');
  assert.deepEqual(next.map((e) => e.id), (await reader.fromNewest(channel, '', 1000)).map((e) => e.id));
  assert.deepEqual(next.map((e) => e.id), envs.map((e) => e.id));
  // The limit keeps the newest, as fromNewest's does; what `known` holds beyond the window is not shown.
  assert.deepEqual((await reader.fromNewestKnown(channel, envs[250]!.id, 20, known)).map((e) => e.id), envs.slice(280).map((e) => e.id));
  await store.close();
  reader.db.close();
});
