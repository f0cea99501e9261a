// SPEC.md A1-A6: the relay signs attachment metadata, never content.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { toB64url } from '../shared/encoding';
import { LIMITS } from '../shared/protocol/relay';
import { contentDigests, verifyAttachment } from '../shared/protocol/signed';
import { DEFAULT_MAX_ATTACHMENT_BYTES } from './config';
import type { Relay } from './createRelay';
import { backend, loggedIn, rawClient, refusal, startTestRelay } from './testKit';

let relay: Relay;
const closers: (() => Promise<void>)[] = [];
before(async () => {
  relay = await startTestRelay();
});
after(async () => {
  await Promise.all(closers.map((c) => c()));
  await relay.close();
});

const content = new Uint8Array(40_000).map((_, i) => i % 251);
const meta = () => ({ name: 'photo.jpg', mime: 'image/jpeg', ...contentDigests(content), width: 640, height: 480 });

describe('attachments', () => {
  it('A1 A2 mint returns relay-signed metadata bound to the uploader; it verifies offline and not when changed', async () => {
    const u = await loggedIn(relay);
    closers.push(u.close);
    const thumb = toB64url(new Uint8Array(LIMITS.maxThumbnailBytes).fill(3));
    const a = await u.client.attachment.mint.mutate({ ...meta(), thumbnail: { mime: 'image/webp', data: thumb } });
    assert.equal(a.uploader, u.id.publicKey);
    assert.equal(a.relay, relay.info.publicKey);
    assert.deepEqual(a.meta, { ...meta(), thumbnail: { mime: 'image/webp', data: thumb } });
    assert.deepEqual(await verifyAttachment(backend, a, relay.info.publicKey), { ok: true });
    assert.equal((await verifyAttachment(backend, { ...a, uploader: relay.info.publicKey }, relay.info.publicKey)).ok, false);
    assert.equal((await verifyAttachment(backend, { ...a, meta: { ...a.meta, size: a.meta.size + 1 } }, relay.info.publicKey)).ok, false);
    const b = await u.client.attachment.mint.mutate(meta());
    assert.ok(b.id > a.id, 'ids are ULIDs minted in order');
  });

  it('A3 an oversize thumbnail is refused (schema bound) and a malformed one BAD_ATTACHMENT', async () => {
    const u = await loggedIn(relay);
    closers.push(u.close);
    const big = toB64url(new Uint8Array(LIMITS.maxThumbnailBytes + 1));
    assert.equal(await refusal(u.client.attachment.mint.mutate({ ...meta(), thumbnail: { mime: 'image/png', data: big } })), 'BAD_INPUT');
    // 'AB' has non-zero trailing bits: not the one canonical encoding of any byte string.
    assert.equal(await refusal(u.client.attachment.mint.mutate({ ...meta(), thumbnail: { mime: 'image/png', data: 'AB' } })), 'BAD_ATTACHMENT');
  });

  it('A6 the signature covers the placeholder: changed, stripped or added, it fails; metadata without one still verifies', async () => {
    const u = await loggedIn(relay);
    closers.push(u.close);
    const placeholder = { kind: 'thumbhash' as const, data: toB64url(new Uint8Array(30).map((_, i) => i + 1)) };
    const a = await u.client.attachment.mint.mutate({ ...meta(), placeholder });
    assert.deepEqual(a.meta.placeholder, placeholder);
    assert.deepEqual(await verifyAttachment(backend, a, relay.info.publicKey), { ok: true });
    const other = { ...placeholder, data: toB64url(new Uint8Array(30).fill(9)) };
    assert.equal((await verifyAttachment(backend, { ...a, meta: { ...a.meta, placeholder: other } }, relay.info.publicKey)).ok, false);
    const { placeholder: _stripped, ...bare } = a.meta;
    assert.equal((await verifyAttachment(backend, { ...a, meta: bare }, relay.info.publicKey)).ok, false);
    const old = await u.client.attachment.mint.mutate(meta());
    assert.equal(old.meta.placeholder, undefined);
    assert.deepEqual(await verifyAttachment(backend, old, relay.info.publicKey), { ok: true });
    assert.equal((await verifyAttachment(backend, { ...old, meta: { ...old.meta, placeholder } }, relay.info.publicKey)).ok, false);
  });

  it('A6 a placeholder above maxPlaceholderBytes or not canonical base64url is refused BAD_ATTACHMENT', async () => {
    const u = await loggedIn(relay);
    closers.push(u.close);
    const big = { kind: 'thumbhash' as const, data: toB64url(new Uint8Array(LIMITS.maxPlaceholderBytes + 1)) };
    assert.equal(await refusal(u.client.attachment.mint.mutate({ ...meta(), placeholder: big })), 'BAD_ATTACHMENT');
    assert.equal(await refusal(u.client.attachment.mint.mutate({ ...meta(), placeholder: { kind: 'thumbhash', data: 'AB' } })), 'BAD_ATTACHMENT');
    const wrongKind = { kind: 'blurhash', data: 'AAAA' } as unknown as { kind: 'thumbhash'; data: string };
    assert.equal(await refusal(u.client.attachment.mint.mutate({ ...meta(), placeholder: wrongKind })), 'BAD_INPUT');
    const exact = { kind: 'thumbhash' as const, data: toB64url(new Uint8Array(LIMITS.maxPlaceholderBytes)) };
    assert.ok((await u.client.attachment.mint.mutate({ ...meta(), placeholder: exact })).rsig);
  });

  it('A4 no procedure takes attachment bytes: content in the mint input is refused BAD_INPUT', async () => {
    const u = await loggedIn(relay);
    closers.push(u.close);
    const withBytes = { ...meta(), bytes: toB64url(content.subarray(0, 1000)) } as ReturnType<typeof meta>;
    assert.equal(await refusal(u.client.attachment.mint.mutate(withBytes)), 'BAD_INPUT');
    const withData = { ...meta(), data: [1, 2, 3] } as ReturnType<typeof meta>;
    assert.equal(await refusal(u.client.attachment.mint.mutate(withData)), 'BAD_INPUT');
  });

  it('A1 minting needs a login', async () => {
    const c = rawClient(relay);
    closers.push(c.close);
    assert.equal(await refusal(c.client.attachment.mint.mutate(meta())), 'NOT_LOGGED_IN');
  });

  it('A5 the relay publishes its attachment cap (default 25 MiB) in info and mints nothing larger: TOO_LARGE', async () => {
    assert.equal(relay.info.limits.maxAttachmentBytes, DEFAULT_MAX_ATTACHMENT_BYTES);
    assert.equal(DEFAULT_MAX_ATTACHMENT_BYTES, 25 * 1024 * 1024);
    const u = await loggedIn(relay);
    closers.push(u.close);
    assert.equal(await refusal(u.client.attachment.mint.mutate({ ...meta(), size: DEFAULT_MAX_ATTACHMENT_BYTES + 1 })), 'TOO_LARGE');
    const atCap = await u.client.attachment.mint.mutate({ ...meta(), size: DEFAULT_MAX_ATTACHMENT_BYTES });
    assert.equal(atCap.meta.size, DEFAULT_MAX_ATTACHMENT_BYTES);
  });

  it('A5 an operator cap is what info says and what mint enforces', async () => {
    const small = await startTestRelay({ limits: { maxAttachmentBytes: 50_000 } });
    closers.push(() => small.close());
    assert.equal(small.info.limits.maxAttachmentBytes, 50_000);
    const u = await loggedIn(small);
    closers.push(u.close);
    assert.equal((await u.client.info.query()).limits.maxAttachmentBytes, 50_000);
    assert.equal((await u.client.attachment.mint.mutate(meta())).meta.size, content.length); // 40,000: under the cap
    assert.equal(await refusal(u.client.attachment.mint.mutate({ ...meta(), size: 50_001 })), 'TOO_LARGE');
  });
});
