import assert from 'node:assert/strict';
import { it } from 'node:test';
import { Dexie } from 'dexie';
import { IDBFactory, IDBKeyRange, IDBObjectStore } from 'fake-indexeddb';
import { DexieStore } from './DexieStore';
import { storeConformance } from './storeConformance';
import { content, createFixtures } from './testing/fixtures';

// A fresh fake IndexedDB per store: tests cannot see each other's databases.
storeConformance('DexieStore on fake-indexeddb', async () =>
  new DexieStore('peerchat-test', { indexedDB: new IDBFactory(), IDBKeyRange }),
);

it('H12 DexieStore data persists across closing and reopening the same database name', async () => {
  const indexedDB = new IDBFactory();
  const fx = await createFixtures();
  const envs = await fx.envelopes(4);
  const data = content(3000);
  const meta = await fx.attachment(data);

  const first = new DexieStore('peerchat-persist', { indexedDB, IDBKeyRange });
  await first.putMessages(envs);
  await first.putAttachmentMeta(meta);
  assert.equal(await first.putAttachmentBytes(meta.id, data), true);
  await first.close();

  const other = new DexieStore('peerchat-other', { indexedDB, IDBKeyRange });
  assert.equal(await other.countMessages(), 0, 'another name is another database');
  await other.close();

  const again = new DexieStore('peerchat-persist', { indexedDB, IDBKeyRange });
  try {
    assert.equal(await again.countMessages(), 4);
    assert.deepEqual(await again.listIds({}), envs.map((e) => e.id));
    assert.deepEqual(await again.latest('general', 2), envs.slice(2));
    assert.deepEqual(await again.getAttachment(meta.id), { meta, bytes: data });
    assert.deepEqual(await again.putMessages(envs), [], 'reopened store still knows its ids');
  } finally {
    await again.close();
  }
});

it('H12 H14 a version 1 database opens at version 2: content written whole stays readable, whole and by range', async () => {
  const indexedDB = new IDBFactory();
  const fx = await createFixtures();
  const envs = await fx.envelopes(2);
  const data = content(2 * 16 * 1024 + 100, 9);
  const meta = await fx.attachment(data);

  // The released version 1 schema, written as version 1 code wrote it: content whole in attachmentBytes.
  const v1 = new Dexie('peerchat-v1', { indexedDB, IDBKeyRange });
  v1.version(1).stores({ messages: 'id, [channel+id]', attachments: 'id', attachmentBytes: 'id' });
  await v1.table('messages').bulkAdd(envs.map((env) => ({ id: env.id, channel: env.post.channel, env })));
  await v1.table('attachments').add({ id: meta.id, meta });
  await v1.table('attachmentBytes').add({ id: meta.id, bytes: data });
  v1.close();

  const store = new DexieStore('peerchat-v1', { indexedDB, IDBKeyRange });
  try {
    assert.deepEqual(await store.listIds({}), envs.map((e) => e.id));
    assert.deepEqual(await store.getAttachment(meta.id), { meta, bytes: data });
    assert.deepEqual(await store.getAttachmentRange(meta.id, 16 * 1024 - 3, 16 * 1024 + 3), data.subarray(16 * 1024 - 3, 16 * 1024 + 3));
    assert.deepEqual(await store.listAttachmentIds({}), [meta.id]);
    assert.equal(await store.hasAttachmentBytes(meta.id), true);
    // New content next to the old goes into rows.
    const fresh = content(20_000, 10);
    const freshMeta = await fx.attachment(fresh);
    await store.putAttachmentMeta(freshMeta);
    assert.equal(await store.putAttachmentBytes(freshMeta.id, fresh), true);
    assert.deepEqual((await store.getAttachment(freshMeta.id))?.bytes, fresh);
    assert.deepEqual(await store.listAttachmentIds({}), [meta.id, freshMeta.id]);
  } finally {
    await store.close();
  }
  const raw = new Dexie('peerchat-v1', { indexedDB, IDBKeyRange });
  await raw.open();
  assert.equal(raw.verno, 2, 'opened at the newest version');
  assert.equal(await raw.table('attachmentChunks').count(), 2, 'rows only for the content written since');
  raw.close();
});

it('H17 getMessages reads a span of neighbouring ids as one range, scattered ids by key, both in the order asked', async () => {
  const store = new DexieStore('peerchat-range', { indexedDB: new IDBFactory(), IDBKeyRange });
  const fx = await createFixtures();
  const envs = await fx.envelopes(400);
  await store.putMessages(envs);
  const proto = IDBObjectStore.prototype as { get: (...a: unknown[]) => unknown; getAll: (...a: unknown[]) => unknown };
  const [get, getAll] = [proto.get, proto.getAll];
  const calls = { get: 0, getAll: 0 };
  proto.get = function (this: unknown, ...a: unknown[]) {
    calls.get++;
    return get.apply(this, a);
  };
  proto.getAll = function (this: unknown, ...a: unknown[]) {
    calls.getAll++;
    return getAll.apply(this, a);
  };
  try {
    // A GET_MSGS page: 128 neighbours, newest first, one of them not held.
    const page = envs.slice(200, 328).map((e) => e.id).reverse();
    page.splice(5, 0, '01ZZZZZZZZZZZZZZZZZZZZZZZZ');
    const got = await store.getMessages(page);
    assert.deepEqual(got.map((e) => e?.id), page.map((id, i) => (i === 5 ? undefined : id)));
    assert.deepEqual(calls, { get: 0, getAll: 1 }, 'one range read, no get per id');
    // Ids spread over the whole store: a range would read far more than asked, so one get each.
    calls.getAll = 0;
    const spread = [envs[399]!.id, envs[0]!.id, envs[200]!.id];
    assert.deepEqual((await store.getMessages(spread)).map((e) => e?.id), spread);
    assert.deepEqual(calls, { get: 3, getAll: 0 });
  } finally {
    proto.get = get;
    proto.getAll = getAll;
    await store.close();
  }
});
