// The one history-store test suite (SPEC.md H1-H8, H14-H15). Every HistoryStore implementation runs it from its
// own test file: `storeConformance('MemoryStore', async () => new MemoryStore())`. Registers node:test
// tests; each test opens a fresh store and closes it. Test-only (imports the Node signing fixtures).
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { encodeTime } from 'ulidx';
import type { Envelope, SignedAttachment } from '../protocol/relay';
import { verifyEnvelope } from '../protocol/signed';
import { type HistoryStore, MAX_RANGE_LIMIT, StoreClosedError } from './HistoryStore';
import { content, createFixtures } from './testing/fixtures';

/** A ULID sorting before every id minted at `ms` or later, and after every id minted earlier. */
const boundAt = (ms: number): string => encodeTime(ms, 10) + '0'.repeat(16);

const ids = (envs: readonly Envelope[]): string[] => envs.map((e) => e.id);

/**
 * Registers the conformance tests for one implementation. `open` must return a fresh, empty store that
 * keeps at least the last hour of history and a few MiB (bounded stores run it with roomy bounds).
 */
export function storeConformance(name: string, open: () => Promise<HistoryStore>): void {
  async function withStore(fn: (store: HistoryStore) => Promise<void>): Promise<void> {
    const store = await open();
    try {
      await fn(store);
    } finally {
      await store.close();
    }
  }

  describe(`history store conformance: ${name}`, () => {
    it('H4 put then get and has round-trip, position by position, and still verify', () =>
      withStore(async (store) => {
        const fx = await createFixtures();
        const [a, b, c] = await fx.envelopes(3);
        assert.deepEqual(await store.putMessages([a!, b!, c!]), ids([a!, b!, c!]));
        const missing = boundAt(1);
        const got = await store.getMessages([c!.id, missing, a!.id]);
        assert.deepEqual(got, [c, undefined, a]);
        assert.deepEqual(await store.hasMessages([a!.id, missing, b!.id]), [true, false, true]);
        assert.equal(await store.countMessages(), 3);
        for (const env of got) if (env) assert.deepEqual(await verifyEnvelope(fx.backend, env, fx.relayKey), { ok: true });
        assert.deepEqual(await store.getMessages([]), []);
        assert.deepEqual(await store.hasMessages([]), []);
      }));

    it('H2 put is idempotent: existing ids stay unchanged and only new ids are returned, once each', () =>
      withStore(async (store) => {
        const fx = await createFixtures();
        const [a, b, c] = await fx.envelopes(3);
        assert.deepEqual(await store.putMessages([a!, b!]), [a!.id, b!.id]);
        // Same id, different content: a store is not the place to resolve this, the first write wins.
        const forgedB: Envelope = { ...b!, post: { ...b!.post, text: 'rewritten' } };
        assert.deepEqual(await store.putMessages([forgedB, c!, c!, a!]), [c!.id]);
        assert.deepEqual(await store.getMessages([b!.id]), [b]);
        assert.equal(await store.countMessages(), 3);
        assert.deepEqual(await store.putMessages([]), []);
        assert.deepEqual(await store.putMessages([c!, b!]), []);
      }));

    it('H1 listIds returns ids in ULID order whatever the put order, across channels', () =>
      withStore(async (store) => {
        const fx = await createFixtures();
        const envs: Envelope[] = [];
        for (let i = 0; i < 12; i++) envs.push(await fx.envelope({ channel: i % 3 === 0 ? 'random' : 'general' }));
        const shuffled = [envs[7]!, envs[0]!, envs[11]!, envs[3]!, ...envs.slice(8, 11), ...envs.slice(4, 7), ...envs.slice(1, 3)];
        assert.equal(new Set(shuffled).size, envs.length);
        await store.putMessages(shuffled.slice(0, 5));
        await store.putMessages(shuffled.slice(5));
        const sorted = ids(envs).sort();
        assert.deepEqual(ids(envs), sorted, 'fixtures mint ids in order');
        assert.deepEqual(await store.listIds({}), sorted);
      }));

    it('H1 listIds ranges: from is inclusive, to is exclusive, bounds need not be stored ids', () =>
      withStore(async (store) => {
        const t0 = Date.now() - 60_000;
        const fx = await createFixtures();
        const envs: Envelope[] = [];
        for (let i = 0; i < 8; i++) envs.push(await fx.envelope({ ts: t0 + i * 1000 }));
        const all = ids(envs);
        await store.putMessages(envs);
        assert.deepEqual(await store.listIds({ from: all[2], to: all[5] }), all.slice(2, 5));
        assert.deepEqual(await store.listIds({ from: all[5] }), all.slice(5));
        assert.deepEqual(await store.listIds({ to: all[3] }), all.slice(0, 3));
        assert.deepEqual(await store.listIds({ from: boundAt(t0 + 1500), to: boundAt(t0 + 4500) }), all.slice(2, 5));
        assert.deepEqual(await store.listIds({ from: all[4], to: all[4] }), []);
        assert.deepEqual(await store.listIds({ from: all[5], to: all[2] }), []);
        assert.deepEqual(await store.listIds({ from: boundAt(t0 + 60_000) }), []);
        assert.deepEqual(await store.listIds({ to: boundAt(t0 - 1) }), []);
      }));

    it('H3 listIds limit and channel filter', () =>
      withStore(async (store) => {
        const fx = await createFixtures();
        const envs: Envelope[] = [];
        for (let i = 0; i < 10; i++) envs.push(await fx.envelope({ channel: i % 2 === 0 ? 'general' : 'random' }));
        await store.putMessages(envs);
        const all = ids(envs);
        const general = ids(envs.filter((e) => e.post.channel === 'general'));
        const random = ids(envs.filter((e) => e.post.channel === 'random'));
        assert.deepEqual(await store.listIds({ limit: 3 }), all.slice(0, 3));
        assert.deepEqual(await store.listIds({ from: all[4], limit: 2 }), all.slice(4, 6));
        assert.deepEqual(await store.listIds({ limit: 100 }), all);
        assert.deepEqual(await store.listIds({ limit: 0 }), []);
        assert.deepEqual(await store.listIds({ limit: -5 }), []);
        assert.deepEqual(await store.listIds({ limit: 2.7 }), all.slice(0, 2));
        assert.deepEqual(await store.listIds({}, 'general'), general);
        assert.deepEqual(await store.listIds({}, 'random'), random);
        assert.deepEqual(await store.listIds({ from: general[1], to: general[4], limit: 2 }, 'general'), general.slice(1, 3));
        assert.deepEqual(await store.listIds({ from: all[3] }, 'random'), random.slice(1));
        assert.deepEqual(await store.listIds({}, 'nowhere'), []);
      }));

    it('H3 listIds and latest never return more than MAX_RANGE_LIMIT', () =>
      withStore(async (store) => {
        const fx = await createFixtures();
        const n = MAX_RANGE_LIMIT + 5;
        const all: string[] = [];
        for (let done = 0; done < n; ) {
          const batch = await fx.envelopes(Math.min(1000, n - done));
          assert.equal((await store.putMessages(batch)).length, batch.length);
          all.push(...ids(batch));
          done += batch.length;
        }
        assert.equal(await store.countMessages(), n);
        assert.deepEqual(await store.listIds({}), all.slice(0, MAX_RANGE_LIMIT));
        assert.deepEqual(await store.listIds({ limit: n }, 'general'), all.slice(0, MAX_RANGE_LIMIT));
        assert.deepEqual(await store.listIds({ from: all[5] }), all.slice(5));
        const latest = await store.latest('general', n);
        assert.equal(latest.length, MAX_RANGE_LIMIT);
        assert.equal(latest[0]!.id, all[5]);
        assert.equal(latest.at(-1)!.id, all.at(-1));
      }));

    it('H5 latest returns the newest messages of one channel, oldest first', () =>
      withStore(async (store) => {
        const fx = await createFixtures();
        const envs: Envelope[] = [];
        for (let i = 0; i < 9; i++) envs.push(await fx.envelope({ channel: i % 3 === 2 ? 'random' : 'general' }));
        await store.putMessages([...envs].reverse());
        const general = envs.filter((e) => e.post.channel === 'general');
        assert.deepEqual(await store.latest('general', 3), general.slice(-3));
        assert.deepEqual(await store.latest('general', 100), general);
        assert.deepEqual(await store.latest('random', 1), [envs[8]]);
        assert.deepEqual(await store.latest('general', 0), []);
        assert.deepEqual(await store.latest('nowhere', 5), []);
      }));

    it('H6 attachment metadata first, then bytes; metadata again keeps the bytes', () =>
      withStore(async (store) => {
        const fx = await createFixtures();
        const data = content(40_000);
        const meta = await fx.attachment(data, { name: 'photo.jpg', mime: 'image/jpeg' });
        await store.putAttachmentMeta(meta);
        assert.deepEqual(await store.getAttachment(meta.id), { meta, bytes: undefined });
        assert.equal(await store.hasAttachmentBytes(meta.id), false);
        assert.deepEqual(await store.listAttachmentIds({}), []);

        assert.equal(await store.putAttachmentBytes(meta.id, data), true);
        const got = await store.getAttachment(meta.id);
        assert.deepEqual(got?.meta, meta);
        assert.deepEqual(got?.bytes, data);
        assert.equal(await store.hasAttachmentBytes(meta.id), true);
        assert.deepEqual(await store.listAttachmentIds({}), [meta.id]);

        await store.putAttachmentMeta(meta);
        assert.deepEqual((await store.getAttachment(meta.id))?.bytes, data);

        const empty = await fx.attachment(new Uint8Array(0));
        await store.putAttachmentMeta(empty);
        assert.equal(await store.putAttachmentBytes(empty.id, new Uint8Array(0)), true);
        assert.deepEqual(await store.listAttachmentIds({}), [meta.id, empty.id]);
      }));

    it('H6 bytes are refused for unknown metadata or a length other than meta.size', () =>
      withStore(async (store) => {
        const fx = await createFixtures();
        const data = content(1000);
        const meta = await fx.attachment(data);
        assert.equal(await store.putAttachmentBytes(meta.id, data), false);
        assert.equal(await store.getAttachment(meta.id), undefined);
        assert.equal(await store.hasAttachmentBytes(meta.id), false);
        await store.putAttachmentMeta(meta);
        assert.equal(await store.putAttachmentBytes(meta.id, data.subarray(0, 999)), false);
        assert.equal(await store.hasAttachmentBytes(meta.id), false);
        assert.equal((await store.getAttachment(meta.id))?.bytes, undefined);
        assert.deepEqual(await store.listAttachmentIds({}), []);
      }));

    it('H6 listAttachmentIds lists only held bytes, in ULID order, within range and limit', () =>
      withStore(async (store) => {
        const fx = await createFixtures();
        const metas: SignedAttachment[] = [];
        for (let i = 0; i < 5; i++) metas.push(await fx.attachment(content(100 + i, i)));
        for (const m of [...metas].reverse()) await store.putAttachmentMeta(m);
        for (const i of [4, 0, 3, 1]) assert.equal(await store.putAttachmentBytes(metas[i]!.id, content(100 + i, i)), true);
        const held = [0, 1, 3, 4].map((i) => metas[i]!.id);
        assert.deepEqual(await store.listAttachmentIds({}), held);
        assert.deepEqual(await store.listAttachmentIds({ from: metas[1]!.id, to: metas[4]!.id }), held.slice(1, 3));
        assert.deepEqual(await store.listAttachmentIds({ from: metas[2]!.id }), held.slice(2));
        assert.deepEqual(await store.listAttachmentIds({ limit: 2 }), held.slice(0, 2));
        assert.deepEqual(await store.listAttachmentIds({ limit: 0 }), []);
        assert.equal(await store.countMessages(), 0, 'attachments are not messages');
      }));

    it('H7 bytes given as a view of a larger buffer are stored as their own bytes only', () =>
      withStore(async (store) => {
        const fx = await createFixtures();
        const big = content(64 * 1024, 3);
        const view = big.subarray(1000, 1000 + 5000);
        const meta = await fx.attachment(view);
        await store.putAttachmentMeta(meta);
        assert.equal(await store.putAttachmentBytes(meta.id, view), true);
        big.fill(0); // the caller reuses its buffer
        const got = (await store.getAttachment(meta.id))?.bytes;
        assert.ok(got);
        assert.deepEqual(got, content(64 * 1024, 3).subarray(1000, 6000));
        assert.equal(got.buffer.byteLength, 5000, 'the rest of the caller buffer is not kept');
      }));

    it('H14 getAttachmentRange reads a range of held content, clipped like subarray, as its own copy', () =>
      withStore(async (store) => {
        assert.equal(typeof store.getAttachmentRange, 'function', 'this store serves chunks without reading whole content');
        const range = (id: string, start: number, end: number) => store.getAttachmentRange!(id, start, end);
        const fx = await createFixtures();
        const chunk = 16 * 1024;
        const data = content(3 * chunk + 5000, 13);
        const meta = await fx.attachment(data);
        assert.equal(await range(meta.id, 0, 10), undefined, 'unknown attachment');
        await store.putAttachmentMeta(meta);
        assert.equal(await range(meta.id, 0, 10), undefined, 'metadata only: no bytes held');
        assert.equal(await store.putAttachmentBytes(meta.id, data), true);
        const cases: [number, number][] = [
          [0, 10],
          [chunk - 7, chunk + 9], // across a row boundary
          [chunk, 2 * chunk], // exactly one chunk
          [2 * chunk + 1, data.length + 1000], // clipped at the end
          [-5, 3], // below 0 counts as 0
          [0, data.length],
          [10, 5], // start >= end
          [data.length, data.length + 10], // past the end
        ];
        for (const [start, end] of cases) {
          const got = await range(meta.id, start, end);
          assert.deepEqual(got, data.subarray(Math.max(0, start), Math.max(0, end)), `[${start}, ${end})`);
          assert.equal(got!.buffer.byteLength, got!.length, `[${start}, ${end}) is its own copy`);
        }
        const first = await range(meta.id, 0, 4);
        first!.fill(0); // the caller's copy: the store is not changed through it
        assert.deepEqual(await range(meta.id, 0, 4), data.subarray(0, 4));

        const empty = await fx.attachment(new Uint8Array(0));
        await store.putAttachmentMeta(empty);
        assert.equal(await store.putAttachmentBytes(empty.id, new Uint8Array(0)), true);
        assert.deepEqual(await range(empty.id, 0, chunk), new Uint8Array(0), 'empty content is held and empty');
      }));

    it('H15 usage counts messages, attachments and held content; dropAttachmentBytes drops content in a range, keeps metadata and messages', () =>
      withStore(async (store) => {
        const fx = await createFixtures();
        const chunk = 16 * 1024;
        const sizes = [3 * chunk + 5, 100, 0, 2 * chunk];
        const datas = sizes.map((n, i) => content(n, i + 1));
        const metas: SignedAttachment[] = [];
        for (const d of datas) metas.push(await fx.attachment(d));
        const envs = [await fx.envelope({ attachments: [metas[0]!, metas[1]!] }), await fx.envelope({ attachments: [metas[2]!, metas[3]!] })];
        await store.putMessages(envs);
        for (const m of metas) await store.putAttachmentMeta(m);
        const notHeld = await fx.attachment(content(50)); // metadata only: nothing to drop
        await store.putAttachmentMeta(notHeld);
        for (let i = 0; i < metas.length; i++) assert.equal(await store.putAttachmentBytes(metas[i]!.id, datas[i]!), true);
        const total = sizes.reduce((a, b) => a + b, 0);
        assert.deepEqual(await store.usage(), { messages: 2, attachments: 5, attachmentsHeld: 4, attachmentBytes: total });

        // "Older than" the third attachment: the first two lose their content.
        assert.deepEqual(await store.dropAttachmentBytes({ to: metas[2]!.id }), { ids: [metas[0]!.id, metas[1]!.id], bytes: sizes[0]! + sizes[1]! });
        for (const m of metas.slice(0, 2)) {
          assert.deepEqual(await store.getAttachment(m.id), { meta: m, bytes: undefined }, 'metadata kept, content gone');
          assert.equal(await store.hasAttachmentBytes(m.id), false);
          assert.equal(await store.getAttachmentRange!(m.id, 0, chunk), undefined, 'no chunk is served from dropped content');
        }
        assert.deepEqual(await store.listAttachmentIds({}), [metas[2]!.id, metas[3]!.id]);
        assert.deepEqual(await store.getMessages(ids(envs)), envs, 'messages untouched');
        assert.deepEqual(await store.usage(), { messages: 2, attachments: 5, attachmentsHeld: 2, attachmentBytes: sizes[2]! + sizes[3]! });
        // Nothing left in that range; a limit drops in steps.
        assert.deepEqual(await store.dropAttachmentBytes({ to: metas[2]!.id }), { ids: [], bytes: 0 });
        assert.deepEqual(await store.dropAttachmentBytes({ limit: 1 }), { ids: [metas[2]!.id], bytes: 0 });
        assert.deepEqual(await store.dropAttachmentBytes({}), { ids: [metas[3]!.id], bytes: sizes[3]! });
        assert.deepEqual(await store.usage(), { messages: 2, attachments: 5, attachmentsHeld: 0, attachmentBytes: 0 });

        // Dropped content can come back, as a fetch from a peer would store it, and reads as before.
        assert.equal(await store.putAttachmentBytes(metas[0]!.id, datas[0]!), true);
        assert.deepEqual((await store.getAttachment(metas[0]!.id))?.bytes, datas[0]);
        assert.deepEqual(await store.getAttachmentRange!(metas[0]!.id, chunk - 3, chunk + 3), datas[0]!.subarray(chunk - 3, chunk + 3));
        assert.deepEqual(await store.usage(), { messages: 2, attachments: 5, attachmentsHeld: 1, attachmentBytes: sizes[0] });
      }));

    it('H8 close is idempotent and any later call rejects with STORE_CLOSED', async () => {
      const store = await open();
      const fx = await createFixtures();
      await store.putMessages(await fx.envelopes(2));
      await store.close();
      await store.close();
      const closed = { name: 'StoreClosedError', code: new StoreClosedError().code };
      await assert.rejects(store.countMessages(), closed);
      await assert.rejects(store.putMessages(await fx.envelopes(1)), closed);
      await assert.rejects(store.listIds({}), closed);
      await assert.rejects(store.getAttachment(boundAt(1)), closed);
      await assert.rejects(store.getAttachmentRange!(boundAt(1), 0, 1), closed);
      await assert.rejects(store.usage(), closed);
      await assert.rejects(store.dropAttachmentBytes({}), closed);
    });
  });
}
