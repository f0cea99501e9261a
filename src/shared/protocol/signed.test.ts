import assert from 'node:assert/strict';
import { it } from 'node:test';
import { type Ed25519Backend, nobleBackend, randomSecretKey, webCryptoBackend } from '../crypto/ed25519';
import { nodeBackend } from '../crypto/nodeBackend';
import { fromB64url, toB64url } from '../encoding';
import { type Envelope, LIMITS, POST_TIME_WINDOW_MS, zEnvelope } from './relay';
import { attachmentFields, countersign, envelopeHash, signAttachment, verifyAttachment, postDigest, postSigningBytes, VERIFY_CONCURRENCY, signEnvelope, signPost, verifyEnvelope, verifyEnvelopes, verifyPostSignature } from './signed';

/** `n` envelopes of one channel; `linked`: each linked to the one before (SPEC.md R6), as the relay mints them. */
async function envelopes(n: number, linked = false): Promise<{ envs: Envelope[]; relayKey: string }> {
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
    const prev = linked ? envs.at(-1) : undefined;
    envs.push(await signEnvelope(b, relaySecret, { id: `01HZZZZZZZZZZZZZZZZZZZ${String(i).padStart(4, '0')}`, ts, epoch: 'e', prev: prev ? { id: prev.id, hash: envelopeHash(prev) } : null, post, relay: relayKey }));
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
  // Both signatures of every envelope are checked (unlinked envelopes: no chain to check a countersignature
  // through, R6), and never more than the bound at once:
  // two per envelope in flight.
  assert.equal(calls, 2 * envs.length);
  assert.ok(peak > 2, `verifications overlapped (peak ${peak})`);
  assert.ok(peak <= 2 * VERIFY_CONCURRENCY, `peak ${peak} within 2 x VERIFY_CONCURRENCY`);
});

/** A node:crypto backend that counts its verifies. */
function countingBackend(): { backend: Ed25519Backend; calls: () => number } {
  const real = nodeBackend();
  let calls = 0;
  return { backend: { ...real, name: 'counting', verifyRaw: (k, m, sig) => (calls++, real.verifyRaw(k, m, sig)) }, calls: () => calls };
}

it('G2 R6 a chain\'s countersignatures are checked once, the rest through the prev hashes the relay signed', async () => {
  const { envs, relayKey } = await envelopes(50, true);
  const { backend, calls } = countingBackend();
  const shuffled = [...envs.filter((_, i) => i % 2 === 1), ...envs.filter((_, i) => i % 2 === 0).reverse()];
  assert.notDeepEqual(shuffled, envs);
  for (const batch of [envs, shuffled]) {
    const before = calls();
    const checks = await verifyEnvelopes(backend, batch, relayKey);
    assert.deepEqual(checks, batch.map(() => ({ ok: true })));
    // Every author signature, and one countersignature: the newest's; the others are linked to it.
    assert.equal(calls() - before, 50 + 1);
  }
  // Split into slices (as the verify pool hands them out), each slice's newest is checked directly.
  const before = calls();
  for (let i = 0; i < 50; i += 10) await verifyEnvelopes(backend, envs.slice(i, i + 10), relayKey);
  assert.equal(calls() - before, 50 + 5);
});

it('G2 R6 a forged link costs only itself: its predecessor is checked directly, results as verifyEnvelope\'s', async () => {
  const { envs, relayKey } = await envelopes(40, true);
  const b = nodeBackend();
  const forged = [...envs];
  forged[10] = { ...envs[10]!, rsig: envs[11]!.rsig }; // a countersignature that is not this envelope's
  forged[20] = { ...envs[20]!, post: { ...envs[20]!.post, text: 'forged' } }; // content changed after signing
  forged[30] = { ...envs[30]!, prev: { id: envs[28]!.id, hash: envelopeHash(envs[28]!) } }; // relinked past 29
  forged[39] = { ...envs[39]!, rsig: envs[38]!.rsig }; // the newest, the chain's head
  const expected = await Promise.all(forged.map((e) => verifyEnvelope(b, e, relayKey)));
  assert.deepEqual(
    expected.flatMap((c, i) => (c.ok ? [] : [i])),
    [10, 20, 30, 39],
  );
  assert.deepEqual(await verifyEnvelopes(b, forged, relayKey), expected);
  assert.deepEqual(await verifyEnvelopes(b, forged, relayKey, 1), expected, 'one in flight');
  // Alone in its batch, the forged head fails as well: no successor vouches for it.
  assert.deepEqual(await verifyEnvelopes(b, [forged[39]!], relayKey), [expected[39]]);
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

/**
 * Good envelopes and one of each forgery verifyEnvelope knows, with every key seen both in good and in
 * forged envelopes (the batch path decodes each key once and must not let that blur envelopes together).
 */
async function forgeries(): Promise<{ envs: Envelope[]; relayKey: string }> {
  const b = nodeBackend();
  const relaySecret = randomSecretKey();
  const relayKey = toB64url(await b.publicKeyOf(relaySecret));
  const authors = [randomSecretKey(), randomSecretKey()];
  const authorKeys = await Promise.all(authors.map(async (k) => toB64url(await b.publicKeyOf(k))));
  const good: Envelope[] = [];
  let prev: Envelope | null = null;
  for (let i = 0; i < 12; i++) {
    const ts = 1_700_000_000_000 + i * 1000;
    const attachments = i === 5 ? [await signAttachment(b, relaySecret, { id: `01HZZZZZZZZZZZZZZZZZZZA${String(i).padStart(3, '0')}`, ts, uploader: authorKeys[i % 2]!, relay: relayKey, meta: { name: 'a.bin', mime: 'application/octet-stream', size: 3, sha256: toB64url(new Uint8Array(32)), chunkRoot: toB64url(new Uint8Array(32)) } })] : [];
    const post = await signPost(b, authors[i % 2]!, {
      channel: 'general', clientId: `c${i}`, text: i === 7 ? 'naïve ✓ 🙂' : `m${i}`, attachments, replyTo: null, author: authorKeys[i % 2]!, relay: relayKey, sentAt: ts,
    });
    const env: Envelope = await signEnvelope(b, relaySecret, {
      id: `01HZZZZZZZZZZZZZZZZZZZ${String(i).padStart(4, '0')}`, ts, epoch: 'e', prev: prev ? { id: prev.id, hash: envelopeHash(prev) } : null, post, relay: relayKey,
      ...(i === 3 ? { authorName: 'alice' } : {}),
    });
    good.push(env);
    prev = env;
  }
  const resign = ({ rsig: _, ...e }: Envelope): Promise<Envelope> => signEnvelope(b, relaySecret, e);
  const [g0, g1, g2, g3, g4, g5] = good as [Envelope, Envelope, Envelope, Envelope, Envelope, Envelope];
  const smallOrderKey = toB64url(new Uint8Array(32)); // the identity point: refused by C4
  const nonCanonicalS = toB64url(new Uint8Array([...fromB64url(g1.post.sig)!.subarray(0, 32), ...new Uint8Array(32).fill(0xff)]));
  const forged: Envelope[] = [
    { ...g0, post: { ...g0.post, text: 'tampered' } }, // tampered text
    { ...g1, post: { ...g1.post, author: authorKeys[0]! } }, // wrong author key (another real one)
    { ...g2, rsig: g3.rsig }, // wrong relay signature
    { ...g2, prev: { id: g1.id, hash: envelopeHash(g0) } }, // wrong prev hash
    { ...g3, authorName: 'mallory' }, // renamed
    // Countersigned by the relay (a buggy or hostile one), so the author's half decides the reason.
    await resign({ ...g4, post: { ...g4.post, sig: `${g4.post.sig.slice(0, -1)}!` } }), // not base64url
    { ...g4, rsig: g4.rsig.slice(2) }, // relay signature too short
    await resign({ ...g1, post: { ...g1.post, sig: nonCanonicalS } }),
    await resign({ ...g1, post: { ...g1.post, author: smallOrderKey } }),
    await resign({ ...g1, post: { ...g1.post, author: 'not a key' } }),
    await resign({ ...g0, post: { ...g0.post, text: 'tampered after signing' } }),
    { ...g0, relay: authorKeys[0]! }, // another relay
    { ...g0, post: { ...g0.post, sentAt: g0.ts - POST_TIME_WINDOW_MS - 1 } },
    { ...g5, post: { ...g5.post, attachments: [{ ...g5.post.attachments[0]!, uploader: authorKeys[0]! }] } },
    { ...g5, post: { ...g5.post, attachments: [{ ...g5.post.attachments[0]!, rsig: g5.rsig }] } },
  ];
  // Forgeries between good envelopes of the same keys, so a key's cache entry serves both.
  return { envs: good.flatMap((e, i) => (forged[i] ? [e, forged[i]!] : [e])).concat(forged.slice(good.length)), relayKey };
}

it('M5 G2 verifyEnvelopes gives verifyEnvelope\'s result for every envelope, good and forged, on every backend', async () => {
  const { envs, relayKey } = await forgeries();
  const backends = [nodeBackend(), webCryptoBackend(globalThis.crypto.subtle), nobleBackend];
  const expected = await Promise.all(envs.map((e) => verifyEnvelope(backends[0]!, e, relayKey)));
  // The corpus covers every reason (else the comparison would prove little).
  assert.deepEqual(
    new Set(expected.map((c) => (c.ok ? 'ok' : c.reason))),
    new Set(['ok', 'BAD_SIGNATURE', 'BAD_ENCODING', 'BAD_LENGTH', 'NON_CANONICAL_S', 'SMALL_ORDER_KEY', 'WRONG_RELAY', 'STALE_POST', 'WRONG_AUTHOR']),
  );
  assert.equal(expected.filter((c) => c.ok).length, 12);
  for (const b of backends) {
    assert.deepEqual(await Promise.all(envs.map((e) => verifyEnvelope(b, e, relayKey))), expected, `${b.name}: verifyEnvelope`);
    // Twice: the second time every key is already decoded (and, for WebCrypto, imported).
    for (const round of [1, 2]) assert.deepEqual(await verifyEnvelopes(b, envs, relayKey), expected, `${b.name}: verifyEnvelopes, round ${round}`);
    // One at a time and all at once give the same too.
    assert.deepEqual(await verifyEnvelopes(b, envs, relayKey, 1), expected, `${b.name}: one in flight`);
  }
});
