import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Envelope } from '../protocol/relay';
import { MemoryStore } from './MemoryStore';
import { storeConformance } from './storeConformance';
import { content, createFixtures } from './testing/fixtures';

storeConformance('MemoryStore', async () => new MemoryStore());

const MIN = 60_000;
const HOUR = 60 * MIN;

/** A clock the test moves by hand; fixtures mint ts and ids from the same clock, as the relay does. */
function manualClock(start = 1_750_000_000_000) {
  let t = start;
  return { now: () => t, advance: (ms: number) => void (t += ms), set: (ms: number) => void (t = ms) };
}

/** What each envelope costs by the store's own accounting, measured on an unbounded store. */
async function sizesOf(envs: readonly Envelope[]): Promise<number[]> {
  const probe = new MemoryStore({ maxBytes: Number.MAX_SAFE_INTEGER, maxAgeMs: Number.MAX_SAFE_INTEGER });
  const sizes: number[] = [];
  for (const env of envs) {
    const before = probe.stats().bytes;
    await probe.putMessages([env]);
    sizes.push(probe.stats().bytes - before);
  }
  await probe.close();
  return sizes;
}

const sum = (xs: readonly number[]): number => xs.reduce((a, b) => a + b, 0);
const ids = (envs: readonly Envelope[]): string[] => envs.map((e) => e.id);

describe('MemoryStore bounds', () => {
  it('H9 messages and attachments older than maxAgeMs by relay ts are evicted, and bytes go down', async () => {
    const clock = manualClock();
    const fx = await createFixtures(clock.now);
    const store = new MemoryStore({ maxAgeMs: HOUR, now: clock.now });
    const envs: Envelope[] = [];
    for (let i = 0; i < 6; i++) {
      envs.push(await fx.envelope({ channel: i % 2 ? 'random' : 'general' }));
      clock.advance(10 * MIN);
    }
    const data = content(5000);
    const meta = await fx.attachment(data); // minted at +60 min, after every message
    await store.putMessages(envs);
    await store.putAttachmentMeta(meta);
    assert.equal(await store.putAttachmentBytes(meta.id, data), true);
    const full = store.stats();
    assert.deepEqual({ messages: full.messages, attachments: full.attachments }, { messages: 6, attachments: 1 });

    // Now = +60 min: envs[0] (ts +0) is exactly maxAgeMs old and stays; one ms later it is older and goes.
    assert.equal(await store.countMessages(), 6);
    clock.advance(1);
    assert.deepEqual(await store.listIds({}), ids(envs.slice(1)));
    clock.advance(25 * MIN); // +85 min: ts +0, +10, +20 are gone
    assert.deepEqual(await store.listIds({}), ids(envs.slice(3)));
    assert.deepEqual(await store.getMessages([envs[2]!.id, envs[3]!.id]), [undefined, envs[3]]);
    assert.deepEqual(await store.latest('general', 10), [envs[4]]);
    assert.deepEqual(await store.listIds({}, 'random'), ids([envs[3]!, envs[5]!]));
    const partial = store.stats();
    assert.equal(partial.messages, 3);
    assert.ok(partial.bytes < full.bytes, 'bytes accounting goes down with age eviction');
    assert.equal(full.bytes - partial.bytes, sum((await sizesOf(envs)).slice(0, 3)));

    clock.advance(HOUR); // everything, the attachment too
    assert.equal(await store.countMessages(), 0);
    assert.equal(await store.getAttachment(meta.id), undefined);
    assert.deepEqual(await store.listAttachmentIds({}), []);
    assert.deepEqual(store.stats(), { messages: 0, attachments: 0, bytes: 0 });
    await store.close();
  });

  it('H9 a message or attachment already older than maxAgeMs is refused at put and not reported new', async () => {
    const clock = manualClock();
    const fx = await createFixtures(clock.now);
    const old = await fx.envelope();
    const oldMeta = await fx.attachment(content(10));
    clock.advance(2 * HOUR);
    const fresh = await fx.envelope();
    const store = new MemoryStore({ maxAgeMs: HOUR, now: clock.now });
    assert.deepEqual(await store.putMessages([old, fresh]), [fresh.id]);
    assert.deepEqual(await store.hasMessages([old.id, fresh.id]), [false, true]);
    await store.putAttachmentMeta(oldMeta);
    assert.equal(await store.getAttachment(oldMeta.id), undefined);
    assert.equal(await store.putAttachmentBytes(oldMeta.id, content(10)), false);
    await store.close();
  });

  it('H10 total bytes never exceed maxBytes: the oldest messages go first and accounting goes down', async () => {
    const clock = manualClock();
    const fx = await createFixtures(clock.now);
    const envs: Envelope[] = [];
    for (let i = 0; i < 10; i++) {
      envs.push(await fx.envelope({ text: `message number ${i} ` + 'x'.repeat(i * 37) }));
      clock.advance(1000);
    }
    const sizes = await sizesOf(envs);
    const maxBytes = sum(sizes.slice(6)); // room for exactly the last four
    const store = new MemoryStore({ maxBytes, now: clock.now });
    for (const env of envs) {
      assert.deepEqual(await store.putMessages([env]), [env.id], 'the newest message always fits');
      assert.ok(store.stats().bytes <= maxBytes);
    }
    assert.deepEqual(await store.listIds({}), ids(envs.slice(6)));
    assert.equal(store.stats().bytes, maxBytes);
    assert.equal(store.stats().messages, 4);
    assert.deepEqual(await store.getMessages([envs[5]!.id]), [undefined]);
    await store.close();
  });

  it('H10 a batch keeps its newest part; an entry older than all held ones when full is not reported new', async () => {
    const clock = manualClock();
    const fx = await createFixtures(clock.now);
    const envs = await fx.envelopes(8, { text: 'same size text' });
    const sizes = await sizesOf(envs);
    const store = new MemoryStore({ maxBytes: sum(sizes.slice(5)), now: clock.now });
    // Out of order, as a sync batch may arrive: the store keeps the newest three whatever the order.
    const batch = [envs[3]!, envs[7]!, envs[0]!, envs[5]!, envs[6]!, envs[1]!];
    assert.deepEqual(await store.putMessages(batch), ids([envs[7]!, envs[5]!, envs[6]!]));
    assert.deepEqual(await store.listIds({}), ids(envs.slice(5)));
    assert.deepEqual(await store.putMessages([envs[2]!]), [], 'older than everything held, while full');
    assert.equal(await store.countMessages(), 3);
    await store.close();
  });

  it('H10 attachment bytes count: an old attachment goes before newer messages, and one too big for the budget is refused', async () => {
    const clock = manualClock();
    const fx = await createFixtures(clock.now);
    const data = content(20_000);
    const meta = await fx.attachment(data);
    clock.advance(1000);
    const envs = await fx.envelopes(5);
    const sizes = await sizesOf(envs);
    const probe = new MemoryStore({ now: clock.now });
    await probe.putAttachmentMeta(meta);
    const metaSize = probe.stats().bytes;
    await probe.close();

    const maxBytes = metaSize + data.length + sum(sizes.slice(0, 3));
    const store = new MemoryStore({ maxBytes, now: clock.now });
    await store.putAttachmentMeta(meta);
    assert.equal(await store.putAttachmentBytes(meta.id, data), true);
    await store.putMessages(envs.slice(0, 3));
    assert.equal(store.stats().bytes, maxBytes);
    assert.deepEqual(await store.listAttachmentIds({}), [meta.id]);

    // One more message: the attachment is the oldest entry, so it goes, whole (metadata and content).
    assert.deepEqual(await store.putMessages([envs[3]!]), [envs[3]!.id]);
    assert.equal(await store.getAttachment(meta.id), undefined);
    assert.deepEqual(await store.listIds({}), ids(envs.slice(0, 4)));
    assert.equal(store.stats().bytes, sum(sizes.slice(0, 4)));
    assert.equal(store.stats().attachments, 0);

    // Content bigger than the whole budget is refused without flushing what is held.
    const huge = content(maxBytes + 1);
    const hugeMeta = await fx.attachment(huge);
    await store.putAttachmentMeta(hugeMeta);
    const before = store.stats();
    assert.equal(await store.putAttachmentBytes(hugeMeta.id, huge), false);
    assert.deepEqual(store.stats(), before);
    assert.equal(await store.countMessages(), 4);
    await store.close();
  });

  it('H9 H10 both bounds hold together: age frees room, bytes cap what the age would allow', async () => {
    const clock = manualClock();
    const fx = await createFixtures(clock.now);
    const envs: Envelope[] = [];
    for (let i = 0; i < 12; i++) {
      envs.push(await fx.envelope({ text: 'fixed-size text' }));
      clock.advance(5 * MIN);
    }
    const sizes = await sizesOf(envs);
    // Age alone would keep all 12 (maxAge 2 h, spread 55 min); bytes keep only the newest 6.
    const store = new MemoryStore({ maxAgeMs: 2 * HOUR, maxBytes: sum(sizes.slice(6)), now: clock.now });
    await store.putMessages(envs);
    assert.deepEqual(await store.listIds({}), ids(envs.slice(6)));
    // Now +60 min. At +155 min, the ones at +30 and +35 min are more than 2 h old; bytes go down with them.
    clock.advance(95 * MIN + 1);
    assert.deepEqual(await store.listIds({}), ids(envs.slice(8)));
    assert.equal(store.stats().bytes, sum(sizes.slice(8)));
    await store.close();
  });

  it('H11 horizon: the age cutoff, then the oldest held id once bytes have evicted; below it puts are refused', async () => {
    const clock = manualClock();
    const fx = await createFixtures(clock.now);
    const first = await fx.envelope();
    clock.advance(30 * MIN);
    const envs = await fx.envelopes(4, { text: 'fixed' });
    const sizes = await sizesOf(envs);
    const store = new MemoryStore({ maxAgeMs: HOUR, maxBytes: sum(sizes.slice(1)), now: clock.now });

    const h0 = store.horizon();
    assert.ok(h0 < first.id && first.id < envs[0]!.id);
    clock.advance(31 * MIN); // `first` is now older than an hour
    const h1 = store.horizon();
    assert.ok(first.id < h1 && h1 < envs[0]!.id, 'the horizon moves with the clock');
    assert.deepEqual(await store.putMessages([first]), []);

    await store.putMessages(envs); // 4 do not fit in the room for 3: envs[0] is evicted
    const h2 = store.horizon();
    assert.equal(h2, envs[1]!.id);
    assert.deepEqual(await store.putMessages([envs[0]!]), [], 'below the horizon');
    await store.close();
  });

  it('H13 evictions are reported, exactly the ids dropped, by age and by bytes, before the call resolves', async () => {
    const clock = manualClock();
    const fx = await createFixtures(clock.now);
    const envs: Envelope[] = [];
    for (let i = 0; i < 6; i++) {
      envs.push(await fx.envelope());
      clock.advance(10 * MIN);
    }
    const sizes = await sizesOf(envs);
    const store = new MemoryStore({ maxAgeMs: HOUR, maxBytes: sum(sizes) - sizes[0]!, now: clock.now });
    const reports: { messages: string[]; attachments: string[] }[] = [];
    const off = store.onEvict((e) => reports.push(e));
    // Six do not fit a budget of all but the first: the oldest goes within this put.
    assert.deepEqual(await store.putMessages(envs), ids(envs.slice(1)));
    assert.deepEqual(reports, [{ messages: [envs[0]!.id], attachments: [] }]);
    // Age: now +60 min; one ms later envs[1] (ts +10) is still young, 11 min later it is not.
    clock.advance(11 * MIN);
    assert.equal(await store.countMessages(), 4);
    assert.deepEqual(reports[1], { messages: [envs[1]!.id], attachments: [] });
    off();
    clock.advance(10 * MIN);
    assert.equal(await store.countMessages(), 3);
    assert.equal(reports.length, 2, 'no report after unsubscribing');
    await store.close();
  });

  it('H8 closing drops what the store held', async () => {
    const fx = await createFixtures();
    const store = new MemoryStore();
    await store.putMessages(await fx.envelopes(3));
    assert.equal(store.stats().messages, 3);
    await store.close();
    assert.deepEqual(store.stats(), { messages: 0, attachments: 0, bytes: 0 });
  });
});

describe('MemoryStore cleared content', () => {
  it('H15 H10 dropping content gives its bytes back to the budget; the metadata stays accounted and is not evicted', async () => {
    const store = new MemoryStore({ maxBytes: 1024 * 1024 });
    const fx = await createFixtures();
    const data = content(100_000, 4);
    const meta = await fx.attachment(data);
    await store.putAttachmentMeta(meta);
    const metaOnly = store.stats().bytes;
    const evicted: unknown[] = [];
    store.onEvict((e) => evicted.push(e));
    assert.equal(await store.putAttachmentBytes(meta.id, data), true);
    assert.equal(store.stats().bytes, metaOnly + data.length);
    assert.deepEqual(await store.dropAttachmentBytes({}), { ids: [meta.id], bytes: data.length });
    assert.equal(store.stats().bytes, metaOnly);
    assert.equal(store.stats().attachments, 1);
    assert.deepEqual(evicted, [], 'not an eviction: the item is still known (H13)');
    await store.close();
  });
});
