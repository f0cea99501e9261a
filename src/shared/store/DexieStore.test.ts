import assert from 'node:assert/strict';
import { it } from 'node:test';
import { IDBFactory, IDBKeyRange } from 'fake-indexeddb';
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
