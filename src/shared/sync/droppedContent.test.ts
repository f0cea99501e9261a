// What the engine does with content the user cleared (SPEC.md H15) and with a store that is full (H16):
// it sees the content as missing, fetches it again from peers, and a full store never leaves a fetch
// hanging.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { IDBFactory, IDBKeyRange } from 'fake-indexeddb';
import { DexieStore } from '../store/DexieStore';
import { StoreQuotaError, isStoreQuotaError } from '../store/HistoryStore';
import { MemoryStore } from '../store/MemoryStore';
import type { FetchResult } from './AttachmentSync';
import { content } from './testing/fixtures';
import { SyncSim } from './testing/SyncSim';

async function settled(sim: SyncSim, p: Promise<FetchResult>, maxRounds = 120): Promise<FetchResult> {
  let done: FetchResult | null = null;
  void p.then((r) => (done = r));
  for (let r = 0; r <= maxRounds && done === null; r++) await sim.round();
  assert.ok(done, `fetch still pending after ${maxRounds} rounds`);
  return done;
}

describe('H15 cleared attachment content', () => {
  it('H15 G8 content dropped from a DexieStore is fetched again from a peer when viewed, and the peer that dropped it no longer serves it', async () => {
    const sim = await SyncSim.create({ seed: 151 });
    const data = content(6 * 16 * 1024 + 11, 151);
    const { env, att } = await sim.fx.attachedMessage(data);
    const dexie = new DexieStore('reader', { indexedDB: new IDBFactory(), IDBKeyRange });
    const holder = await sim.addPeer({ start: false });
    // The simulator types its stores as MemoryStore; the engine needs only HistoryStore.
    const reader = await sim.addPeer({ start: false, store: dexie as unknown as MemoryStore, tuning: { wantAttachment: () => false } });
    for (const p of [holder, reader]) await p.engine.addMessages([env]);
    await holder.store.putAttachmentBytes(att.id, data);
    for (const p of [holder, reader]) await sim.start(p);
    await sim.net.settle();

    const first = await settled(sim, reader.engine.fetchAttachment(att.id));
    assert.deepEqual(first.ok && first.bytes, data);
    assert.equal(await dexie.hasAttachmentBytes(att.id), true);

    // The user clears old attachments: the engine (its hash-list cache included) sees it as missing.
    assert.deepEqual(await dexie.dropAttachmentBytes({}), { ids: [att.id], bytes: data.length });
    assert.deepEqual((await dexie.getAttachment(att.id))?.bytes, undefined);
    const again = await settled(sim, reader.engine.fetchAttachment(att.id));
    assert.deepEqual(again.ok && again.bytes, data, 'fetched again from the holder');
    assert.equal(await dexie.hasAttachmentBytes(att.id), true);

    // Now the first holder clears it too: a newcomer gets it from the reader, the only one holding it.
    await holder.store.dropAttachmentBytes({});
    const late = await sim.addPeer({ start: false, tuning: { wantAttachment: () => false } });
    await late.engine.addMessages([env]);
    await sim.start(late);
    await sim.net.settle();
    const third = await settled(sim, late.engine.fetchAttachment(att.id));
    assert.deepEqual(third.ok && third.bytes, data);
    assert.deepEqual(sim.errors, []);
    await sim.stopAll();
  });
});

/** A MemoryStore whose content writes hit the quota, as IndexedDB's do when the origin is full. */
class FullStore extends MemoryStore {
  override async putAttachmentBytes(): Promise<boolean> {
    throw new StoreQuotaError(new DOMException('quota', 'QuotaExceededError'));
  }
}

describe('H16 a full store', () => {
  it('H16 G8 a download whose content the store cannot keep settles STORE_REFUSED and reports the quota error, never hangs', async () => {
    const sim = await SyncSim.create({ seed: 152 });
    const data = content(3 * 16 * 1024, 152);
    const { env, att } = await sim.fx.attachedMessage(data);
    const holder = await sim.addPeer({ start: false });
    const reader = await sim.addPeer({ start: false, store: new FullStore({ now: () => sim.clock.now() }), tuning: { wantAttachment: () => false } });
    for (const p of [holder, reader]) await p.engine.addMessages([env]);
    await holder.store.putAttachmentBytes(att.id, data);
    for (const p of [holder, reader]) await sim.start(p);
    await sim.net.settle();
    const r = await settled(sim, reader.engine.fetchAttachment(att.id));
    assert.deepEqual(r, { ok: false, reason: 'STORE_REFUSED' });
    assert.equal(reader.engine.stats().wanted, 0);
    assert.ok(sim.errors.some((e) => e.peer === reader.id && isStoreQuotaError(e.err)), 'the quota error reaches onError');
    sim.errors.length = 0; // expected here: stopAll fails on any background error
    await sim.stopAll();
  });
});
