// SPEC.md M1-M7, R4-R7: posting, countersigned envelopes, ids, chains, idempotency, replay, fan-out.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { decodeTime } from 'ulidx';
import { toB64url } from '../shared/encoding';
import { type Envelope, POST_TIME_WINDOW_MS, zEnvelope } from '../shared/protocol/relay';
import { contentDigests, envelopeHash, signEnvelope, signPost, verifyEnvelope } from '../shared/protocol/signed';
import type { Relay } from './createRelay';
import { backend, collectEvents, identity, loggedIn, login, makePost, rawClient, refusal, startTestRelay } from './testKit';

let relay: Relay;
const closers: (() => Promise<void>)[] = [];
async function user(name = 'u') {
  const u = await loggedIn(relay, { name });
  closers.push(u.close);
  return u;
}

before(async () => {
  relay = await startTestRelay({ limits: { postsPerMinute: 100_000, maxFramesPerSecond: 10_000 } });
});
after(async () => {
  await Promise.all(closers.map((c) => c()));
  await relay.close();
});

/** Every way one changed character of the wire JSON can be caught: parse, schema or signature. */
async function acceptsOffline(json: string, relayKey: string): Promise<boolean> {
  let value: unknown;
  try {
    value = JSON.parse(json);
  } catch {
    return false;
  }
  const parsed = zEnvelope.safeParse(value);
  if (!parsed.success) return false;
  return (await verifyEnvelope(backend, parsed.data, relayKey)).ok;
}

describe('chat', () => {
  it('M3 M5 an envelope verifies offline; flipping any character of its JSON makes it fail', async () => {
    const u = await user();
    const content = new TextEncoder().encode('some file content');
    const att = await u.client.attachment.mint.mutate({
      name: 'a.png',
      mime: 'image/png',
      ...contentDigests(content),
      width: 10,
      height: 20,
      thumbnail: { mime: 'image/png', data: 'AAEC' },
    });
    const env = await u.client.chat.post.mutate(await makePost(u.id, { text: 'hi there', attachments: [att], replyTo: null }));
    assert.equal(env.relay, relay.info.publicKey);
    assert.equal(env.epoch, relay.info.epoch);
    const json = JSON.stringify(env);
    assert.equal(await acceptsOffline(json, relay.info.publicKey), true);
    const failures: number[] = [];
    for (let i = 0; i < json.length; i++) {
      const flipped = json.slice(0, i) + String.fromCharCode(json.charCodeAt(i) ^ 1) + json.slice(i + 1);
      if (await acceptsOffline(flipped, relay.info.publicKey)) failures.push(i);
    }
    assert.deepEqual(failures, [], `flips at these offsets still verified: ${failures.map((i) => json.slice(i - 5, i + 5))}`);
  });

  it('M7 the relay countersigns the author\'s login name into the envelope; the name is in the signed bytes', async () => {
    const u = await user('Zoë the author');
    const env = await u.client.chat.post.mutate(await makePost(u.id, { text: 'named' }));
    assert.equal(env.authorName, 'Zoë the author');
    assert.deepEqual(await verifyEnvelope(backend, env, relay.info.publicKey), { ok: true });
    // A peer relabelling the message, or stripping the name, carries an envelope that no longer verifies.
    assert.equal((await verifyEnvelope(backend, { ...env, authorName: 'admin' }, relay.info.publicKey)).ok, false);
    const { authorName: _, ...stripped } = env;
    assert.equal((await verifyEnvelope(backend, stripped, relay.info.publicKey)).ok, false);
    // The live stream carries the same envelope, name included.
    const other = await user('reader');
    const events = collectEvents(other.client, { presence: true });
    await events.until(() => events.events.some((e) => e.t === 'presence'));
    const again = await u.client.chat.post.mutate(await makePost(u.id, { text: 'named twice' }));
    await events.until(() => events.envelopes.some((e) => e.id === again.id));
    events.stop();
    assert.equal(events.envelopes.find((e) => e.id === again.id)?.authorName, 'Zoë the author');
  });

  it('M1 M2 a post must be signed by the logged-in key: wrong author, bad signature, unknown channel, empty', async () => {
    const u = await user();
    const other = await identity();
    assert.equal(await refusal(u.client.chat.post.mutate(await makePost(other, { relay: relay.info.publicKey }))), 'WRONG_AUTHOR');
    const forged = { ...(await makePost(u.id)), text: 'changed after signing' };
    assert.equal(await refusal(u.client.chat.post.mutate(forged)), 'BAD_SIGNATURE');
    assert.equal(await refusal(u.client.chat.post.mutate(await makePost(u.id, { channel: 'nope' }))), 'UNKNOWN_CHANNEL');
    assert.equal(await refusal(u.client.chat.post.mutate(await makePost(u.id, { text: '' }))), 'BAD_INPUT');
  });

  it('M4 an attachment minted for another key, or with a forged relay signature, is refused BAD_ATTACHMENT', async () => {
    const a = await user();
    const b = await user();
    const meta = { name: 'x.bin', mime: 'application/octet-stream', ...contentDigests(new Uint8Array([1, 2, 3])) };
    const minted = await a.client.attachment.mint.mutate(meta);
    assert.equal(await refusal(b.client.chat.post.mutate(await makePost(b.id, { attachments: [minted] }))), 'BAD_ATTACHMENT');
    const forged = { ...minted, meta: { ...minted.meta, size: 4 } };
    assert.equal(await refusal(a.client.chat.post.mutate(await makePost(a.id, { attachments: [forged] }))), 'BAD_ATTACHMENT');
  });

  it('R5 R6 ULIDs follow time order across thousands of posts, match ts, and chain per channel', async () => {
    const watcher = await user('watcher');
    const events = collectEvents(watcher.client, { presence: false });
    const posters = await Promise.all([user('p1'), user('p2'), user('p3')]);
    const channels = ['general', 'random'];
    const total = 3000;
    const sent: Promise<Envelope>[] = [];
    for (let i = 0; i < total; i++) {
      const p = posters[i % posters.length]!;
      sent.push(makePost(p.id, { channel: channels[i % 2]!, text: `m${i}` }).then((post) => p.client.chat.post.mutate(post)));
      // Bounded in flight: 30 per poster per frame, under LIMITS.maxRequestsPerFrame (R10).
      if (i % 90 === 89) await Promise.all(sent.slice(-90));
    }
    const replies = await Promise.all(sent);
    await events.until(() => events.envelopes.length >= total);
    const got = events.envelopes;
    assert.equal(got.length, total);
    // Arrival order == id order == ts order, and ts is the id's own time.
    for (let i = 1; i < got.length; i++) {
      assert.ok(got[i - 1]!.id < got[i]!.id, `ids out of order at ${i}`);
      assert.ok(got[i - 1]!.ts <= got[i]!.ts, `ts out of order at ${i}`);
    }
    for (const e of got) assert.equal(decodeTime(e.id), e.ts);
    // What posters were answered is exactly what subscribers received.
    assert.deepEqual(new Set(replies.map((r) => r.id)), new Set(got.map((e) => e.id)));
    // prev links each channel's envelopes into a hash chain.
    const epochStart = new Map<string, Envelope>();
    for (const e of got) {
      const prev = epochStart.get(e.post.channel);
      if (prev) assert.deepEqual(e.prev, { id: prev.id, hash: envelopeHash(prev) });
      epochStart.set(e.post.channel, e);
    }
    events.stop();
  });

  it('R6 the first envelope of a channel in an epoch has prev = null', async () => {
    const u = await user();
    const env = await u.client.chat.post.mutate(await makePost(u.id, { channel: 'media', text: 'first in media' }));
    assert.equal(env.prev, null);
    const next = await u.client.chat.post.mutate(await makePost(u.id, { channel: 'media', text: 'second' }));
    assert.deepEqual(next.prev, { id: env.id, hash: envelopeHash(env) });
  });

  it('R4 a retried post returns the same envelope (sequential, concurrent, and from a new connection) and is relayed once', async () => {
    const u = await user();
    const watcher = await user('watcher');
    const events = collectEvents(watcher.client, { channels: ['random'], presence: false });
    const post = await makePost(u.id, { channel: 'random', text: 'once' });
    const [a, b] = await Promise.all([u.client.chat.post.mutate(post), u.client.chat.post.mutate(post)]);
    const c = await u.client.chat.post.mutate(post);
    assert.deepEqual(a, b);
    assert.deepEqual(a, c);
    await u.close();
    // The same key on a new connection.
    const reconnect = rawClient(relay);
    closers.push(reconnect.close);
    await login(reconnect.client, u.id);
    assert.deepEqual(await reconnect.client.chat.post.mutate(post), a);
    const marker = await reconnect.client.chat.post.mutate(await makePost(u.id, { channel: 'random', text: 'marker' }));
    await events.until(() => events.envelopes.some((e) => e.id === marker.id));
    assert.equal(events.envelopes.filter((e) => e.post.clientId === post.clientId).length, 1);
    events.stop();
  });

  it('R4 the same clientId with different content is refused DUPLICATE_CLIENT_ID', async () => {
    const u = await user();
    const post = await makePost(u.id, { text: 'v1' });
    await u.client.chat.post.mutate(post);
    const changed = await signPost(backend, u.id.secretKey, { ...post, text: 'v2' });
    assert.equal(await refusal(u.client.chat.post.mutate(changed)), 'DUPLICATE_CLIENT_ID');
  });

  it('R7 a channel filter delivers only those channels; messages are coalesced into batches', async () => {
    const u = await user();
    const w = await user('filter');
    const events = collectEvents(w.client, { channels: ['media'], presence: false });
    const posts = await Promise.all(
      Array.from({ length: 20 }, (_, i) => makePost(u.id, { channel: i % 2 ? 'media' : 'general', text: `f${i}` })),
    );
    await Promise.all(posts.map((p) => u.client.chat.post.mutate(p)));
    await events.until(() => events.envelopes.length >= 10);
    const marker = await u.client.chat.post.mutate(await makePost(u.id, { channel: 'media', text: 'end' }));
    await events.until(() => events.envelopes.some((e) => e.id === marker.id));
    assert.ok(events.envelopes.every((e) => e.post.channel === 'media'));
    assert.equal(events.envelopes.length, 11);
    events.stop();
  });
});

describe('chat: bound to this relay and to a moment (M6)', () => {
  let clock = Date.now();
  let r: Relay;
  const mine: (() => Promise<void>)[] = [];
  before(async () => {
    r = await startTestRelay({ clock: () => clock, limits: { idempotencyEntries: 3, postsPerMinute: 100_000 } });
  });
  after(async () => {
    await Promise.all(mine.map((c) => c()));
    await r.close();
  });
  async function member(name = 'm') {
    const u = await loggedIn(r, { name });
    mine.push(u.close);
    return u;
  }

  it("M6 a post signed for another relay is WRONG_RELAY; outside the window around the relay's clock STALE_POST / CLOCK_SKEW", async () => {
    const u = await member();
    const elsewhere = toB64url(new Uint8Array(32).fill(5));
    assert.equal(await refusal(u.client.chat.post.mutate(await makePost(u.id, { relay: elsewhere }))), 'WRONG_RELAY');
    assert.equal(await refusal(u.client.chat.post.mutate(await makePost(u.id, { sentAt: clock - POST_TIME_WINDOW_MS - 1 }))), 'STALE_POST');
    assert.equal(await refusal(u.client.chat.post.mutate(await makePost(u.id, { sentAt: clock + POST_TIME_WINDOW_MS + 1 }))), 'CLOCK_SKEW');
    const early = await u.client.chat.post.mutate(await makePost(u.id, { sentAt: clock - POST_TIME_WINDOW_MS }));
    const late = await u.client.chat.post.mutate(await makePost(u.id, { sentAt: clock + POST_TIME_WINDOW_MS }));
    assert.equal((await verifyEnvelope(backend, early, r.info.publicKey)).ok, true, 'the edges of the window are inside it');
    assert.equal((await verifyEnvelope(backend, late, r.info.publicKey)).ok, true);
  });

  it('M6 R4 after the idempotency window an old signed post is refused, not relayed again as new', async () => {
    const u = await member();
    const watcher = await member('watcher');
    const events = collectEvents(watcher.client, { channels: ['random'], presence: false });
    const post = await makePost(u.id, { channel: 'random', text: 'said once', sentAt: clock });
    const first = await u.client.chat.post.mutate(post);
    clock += r.config.limits.idempotencyTtlMs + 1_000;
    assert.equal(await refusal(u.client.chat.post.mutate(post)), 'STALE_POST');
    const marker = await u.client.chat.post.mutate(await makePost(u.id, { channel: 'random', text: 'marker', sentAt: clock }));
    await events.until(() => events.envelopes.some((e) => e.id === marker.id));
    assert.deepEqual(events.envelopes.filter((e) => e.post.clientId === post.clientId).map((e) => e.id), [first.id]);
    events.stop();
  });

  it('M6 R4 a post pushed out of the idempotency memory by newer ones is still refused while its window is open', async () => {
    const u = await member();
    const post = await makePost(u.id, { text: 'evicted', sentAt: clock });
    await u.client.chat.post.mutate(post);
    for (let i = 0; i < r.config.limits.idempotencyEntries; i++) await u.client.chat.post.mutate(await makePost(u.id, { text: `push ${i}`, sentAt: clock }));
    assert.equal(await refusal(u.client.chat.post.mutate(post)), 'DUPLICATE_CLIENT_ID');
  });

  it('M5 M6 offline verification refuses an envelope whose post names another relay or lies outside the window', async () => {
    const u = await member();
    const env = await u.client.chat.post.mutate(await makePost(u.id, { sentAt: clock }));
    const resign = (e: Omit<Envelope, 'rsig'>) => signEnvelope(backend, r.config.secretKey, e);
    const { rsig: _, ...bare } = env;
    const otherRelay = await resign({ ...bare, post: await signPost(backend, u.id.secretKey, { ...env.post, relay: toB64url(new Uint8Array(32).fill(5)) }) });
    assert.deepEqual(await verifyEnvelope(backend, otherRelay, r.info.publicKey), { ok: false, reason: 'WRONG_RELAY' });
    const stale = await resign({ ...bare, post: await signPost(backend, u.id.secretKey, { ...env.post, sentAt: env.ts - POST_TIME_WINDOW_MS - 1 }) });
    assert.deepEqual(await verifyEnvelope(backend, stale, r.info.publicKey), { ok: false, reason: 'STALE_POST' });
  });
});
