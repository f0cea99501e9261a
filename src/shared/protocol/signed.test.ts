import assert from 'node:assert/strict';
import { it } from 'node:test';
import { type Ed25519Backend, randomSecretKey } from '../crypto/ed25519';
import { nodeBackend } from '../crypto/nodeBackend';
import { toB64url } from '../encoding';
import { type Envelope, LIMITS, zEnvelope } from './relay';
import { attachmentFields, countersign, envelopeHash, signAttachment, verifyAttachment, postDigest, postSigningBytes, VERIFY_CONCURRENCY, signEnvelope, signPost, verifyEnvelope, verifyEnvelopes, verifyPostSignature } from './signed';

async function envelopes(n: number): Promise<{ envs: Envelope[]; relayKey: string }> {
  const b = nodeBackend();
  const relaySecret = randomSecretKey();
  const author = randomSecretKey();
  const relayKey = toB64url(await b.publicKeyOf(relaySecret));
  const authorKey = toB64url(await b.publicKeyOf(author));
  const envs: Envelope[] = [];
  for (let i = 0; i < n; i++) {
    const ts = 1_700_000_000_000 + i;
    const post = await signPost(b, author, {
      channel: 'general', clientId: `c${i}`, text: `m${i}`, attachments: [], replyTo: null, author: authorKey, relay: relayKey, sentAt: ts,
    });
    envs.push(await signEnvelope(b, relaySecret, { id: `01HZZZZZZZZZZZZZZZZZZZ${String(i).padStart(4, '0')}`, ts, epoch: 'e', prev: null, post, relay: relayKey }));
  }
  return { envs, relayKey };
}

it('G2 verifyEnvelopes checks every signature of every envelope, many in flight, results in input order', async () => {
  const { envs, relayKey } = await envelopes(200);
  // A forged author signature (text changed after signing) and a forged relay countersignature.
  envs[37] = { ...envs[37]!, post: { ...envs[37]!.post, text: 'forged' } };
  envs[150] = { ...envs[150]!, rsig: envs[151]!.rsig };
  const real = nodeBackend();
  let inFlight = 0;
  let peak = 0;
  let calls = 0;
  const counting: Ed25519Backend = {
    ...real,
    name: 'counting',
    async verifyRaw(k, m, s) {
      calls++;
      peak = Math.max(peak, ++inFlight);
      await new Promise((r) => setTimeout(r, 1));
      try {
        return await real.verifyRaw(k, m, s);
      } finally {
        inFlight--;
      }
    },
  };
  const checks = await verifyEnvelopes(counting, envs, relayKey);
  assert.equal(checks.length, envs.length);
  checks.forEach((c, i) => assert.equal(c.ok, i !== 37 && i !== 150, `envelope ${i}`));
  assert.deepEqual(checks[37], { ok: false, reason: 'BAD_SIGNATURE' });
  // Both signatures of every envelope are checked (no short cut), and never more than the bound at once:
  // two per envelope in flight.
  assert.equal(calls, 2 * envs.length);
  assert.ok(peak > 2, `verifications overlapped (peak ${peak})`);
  assert.ok(peak <= 2 * VERIFY_CONCURRENCY, `peak ${peak} within 2 x VERIFY_CONCURRENCY`);
});

it('M7 the relay-attested author name is covered by the relay signature; envelopes without one still verify', async () => {
  const b = nodeBackend();
  const { envs, relayKey } = await envelopes(1);
  const old = envs[0]!; // minted the protocol-2 way: no authorName
  assert.equal('authorName' in old, false);
  assert.deepEqual(await verifyEnvelope(b, old, relayKey), { ok: true }, 'an envelope stored before M7 still verifies');
  // Adding a name to a signed envelope, as a peer carrying it might, breaks the relay signature.
  assert.deepEqual(await verifyEnvelope(b, { ...old, authorName: 'mallory' }, relayKey), { ok: false, reason: 'BAD_SIGNATURE' });
  // The same envelope minted with a name verifies, and through JSON (how peers and IndexedDB carry it).
  const relaySecret = randomSecretKey();
  const relay2 = toB64url(await b.publicKeyOf(relaySecret));
  const author = randomSecretKey();
  const post = await signPost(b, author, {
    channel: 'general', clientId: 'cname0001', text: 'hi', attachments: [], replyTo: null,
    author: toB64url(await b.publicKeyOf(author)), relay: relay2, sentAt: 1_700_000_000_000,
  });
  const named = await signEnvelope(b, relaySecret, { id: '01HZZZZZZZZZZZZZZZZZZZ0001', ts: post.sentAt, epoch: '01HZZZZZZZZZZZZZZZZZZZ0000', prev: null, post, authorName: 'alice', relay: relay2 });
  assert.deepEqual(await verifyEnvelope(b, named, relay2), { ok: true });
  const carried = zEnvelope.parse(JSON.parse(JSON.stringify(named)));
  assert.equal(carried.authorName, 'alice');
  assert.deepEqual(await verifyEnvelope(b, carried, relay2), { ok: true });
  // Renamed or stripped: refused.
  assert.deepEqual(await verifyEnvelope(b, { ...named, authorName: 'alice2' }, relay2), { ok: false, reason: 'BAD_SIGNATURE' });
  const { authorName: _, ...stripped } = named;
  assert.deepEqual(await verifyEnvelope(b, stripped, relay2), { ok: false, reason: 'BAD_SIGNATURE' });
});

it('R17 M3 R6 countersign (signing bytes and digest built once) gives signEnvelope\'s envelope and envelopeHash\'s link', async () => {
  const { envs } = await envelopes(1);
  const b = nodeBackend();
  const relaySecret = randomSecretKey();
  const key = toB64url(await b.publicKeyOf(relaySecret));
  const post = envs[0]!.post;
  const bytes = postSigningBytes(post);
  assert.equal(postDigest(post, bytes), postDigest(post));
  assert.deepEqual(await verifyPostSignature(b, post, bytes), { ok: true });
  assert.notDeepEqual(await verifyPostSignature(b, post, postSigningBytes({ ...post, text: 'other' })), { ok: true });
  const fields = { id: '01HZZZZZZZZZZZZZZZZZZZ0001', ts: post.sentAt, epoch: 'e', prev: { id: envs[0]!.id, hash: envelopeHash(envs[0]!) }, post, relay: key };
  const { env, hash } = await countersign(b, relaySecret, fields, postDigest(post));
  // Ed25519 is deterministic: the same key over the same bytes gives the same signature.
  assert.deepEqual(env, await signEnvelope(b, relaySecret, fields));
  assert.equal(hash, envelopeHash(env));
});

it('A6 attachmentFields append the placeholder only when present; a signed oversize placeholder still fails verifyAttachment', async () => {
  const b = nodeBackend();
  const relaySecret = randomSecretKey();
  const relay = toB64url(await b.publicKeyOf(relaySecret));
  const digest = toB64url(new Uint8Array(32));
  const base = { id: '01J0000000000000000000000A', ts: 1, uploader: relay, relay };
  const meta = { name: 'p.jpg', mime: 'image/jpeg', size: 10, sha256: digest, chunkRoot: digest, width: 4, height: 3 };
  assert.equal(attachmentFields({ ...base, meta }).length, 13);
  const placeholder = { kind: 'thumbhash' as const, data: toB64url(new Uint8Array(28).fill(7)) };
  assert.deepEqual(attachmentFields({ ...base, meta: { ...meta, placeholder } }).slice(13), ['thumbhash', placeholder.data]);
  // A relay that signs past the bound (A6) does not make the metadata acceptable to a holder.
  const big = await signAttachment(b, relaySecret, { ...base, meta: { ...meta, placeholder: { kind: 'thumbhash', data: toB64url(new Uint8Array(LIMITS.maxPlaceholderBytes + 1)) } } });
  assert.deepEqual(await verifyAttachment(b, big, relay), { ok: false, reason: 'BAD_ATTACHMENT' });
  const ok = await signAttachment(b, relaySecret, { ...base, meta: { ...meta, placeholder } });
  assert.deepEqual(await verifyAttachment(b, ok, relay), { ok: true });
});
