// SPEC.md H15, UI11: clearing old attachments drops content by age, in batches, keeping messages and metadata.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { MemoryStore } from '../../shared/store/MemoryStore';
import { content, createFixtures } from '../../shared/store/testing/fixtures';
import { CLEAR_BATCH, clearOldAttachments, formatBytes, ulidBoundAt } from './clearOldAttachments';

const DAY = 24 * 60 * 60 * 1000;

describe('clearOldAttachments', () => {
  it('UI11 H15 drops the content of attachments older than the age, all of them at age 0, keeping messages and metadata', async () => {
    const now = Date.UTC(2026, 0, 10);
    const store = new MemoryStore({ now: () => now, maxAgeMs: 30 * DAY });
    let t = now - 3 * DAY;
    const fx = await createFixtures(() => t);
    const old: string[] = [];
    for (let i = 0; i < CLEAR_BATCH + 5; i++) {
      // More than one batch of old ones, so the loop is exercised.
      t = now - 3 * DAY + i;
      const m = await fx.attachment(content(10, i));
      await store.putAttachmentMeta(m);
      assert.equal(await store.putAttachmentBytes(m.id, content(10, i)), true);
      old.push(m.id);
    }
    t = now - 60_000;
    const recent = await fx.attachment(content(500, 9));
    await store.putAttachmentMeta(recent);
    await store.putAttachmentBytes(recent.id, content(500, 9));
    const env = await fx.envelope({ attachments: [recent] });
    await store.putMessages([env]);

    assert.deepEqual(await clearOldAttachments(store, DAY, now), { attachments: old.length, bytes: old.length * 10 });
    assert.deepEqual(await store.listAttachmentIds({}), [recent.id]);
    assert.equal((await store.getAttachment(old[0]!))?.bytes, undefined);
    assert.ok((await store.getAttachment(old[0]!))?.meta, 'metadata kept');
    assert.deepEqual(await store.usage(), { messages: 1, attachments: old.length + 1, attachmentsHeld: 1, attachmentBytes: 500 });
    assert.deepEqual(await clearOldAttachments(store, DAY, now), { attachments: 0, bytes: 0 });
    assert.deepEqual(await clearOldAttachments(store, 0, now), { attachments: 1, bytes: 500 });
    assert.deepEqual(await store.getMessages([env.id]), [env]);
  });

  it('UI11 the age bound is a ULID time prefix; sizes read in decimal units', () => {
    assert.equal(ulidBoundAt(0), '0000000000' + '0'.repeat(16));
    assert.ok(ulidBoundAt(1000) < ulidBoundAt(1001));
    assert.equal(formatBytes(999), '999 B');
    assert.equal(formatBytes(1500), '1.5 KB');
    assert.equal(formatBytes(25 * 1024 * 1024), '26.2 MB');
    assert.equal(formatBytes(2_100_000_000), '2.1 GB');
  });
});
