// Issue 10 scenario 6: a bad peer in the room. A Node peer that forges the envelopes it serves (a changed
// text under the old signature; a changed `prev` under the old countersignature) is the browser's only
// peer at first; then one that serves the genuine envelopes but corrupted attachment chunks; then an
// honest one. The relay was restarted after the posts, so every envelope can only come from peers. The
// browser must store none of the forgeries (its IndexedDB is read and every envelope verified here),
// complete the attachment from the honest peer, and keep chatting.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { describe } from 'node:test';
import { nodeBackend } from '../../src/shared/crypto/nodeBackend';
import type { Envelope, SignedAttachment } from '../../src/shared/protocol/relay';
import { verifyEnvelope } from '../../src/shared/protocol/signed';
import { content } from '../fixtures/relayWithSignalling';
import { scenario, until } from './kit';
import { NodePeerProcess } from './nodePeer';

const SIZE = 100_000; // seven 16 KiB chunks
const SEED = 7;

describe('e2e scenario 6: bad peer', () => {
  scenario('bad-peer', 'S6 the browser rejects forged envelopes and corrupted chunks, completes from an honest peer, stores nothing corrupt', async (s) => {
    const relay = await s.relay();
    const author = await NodePeerProcess.start(s, 'honest', relay);
    const att = await author.call<SignedAttachment>({ op: 'publish', size: SIZE, seed: SEED });
    const lines = ['general 1 from honest', 'general 2 from honest', 'general 3 from honest'];
    for (const [i, text] of lines.entries()) await author.call({ op: 'post', channel: 'general', text, attachments: i === 2 ? [att] : [] });
    const envs = await author.call<Envelope[]>({ op: 'envelopes' });
    assert.equal(envs.length, 3);
    await author.close();
    // A fresh relay process: it has never seen these posts, so the browser gets them only from peers.
    await relay.kill();
    await relay.start();

    // 1. The forger is the only peer: whatever alice takes, she takes from it.
    const forger = await NodePeerProcess.start(s, 'forger', relay, { forge: { envelopes: true, chunks: false } });
    await forger.call({ op: 'load', envs });
    const alice = await s.person('alice', relay);
    await alice.createIdentity();
    await until('the forger to have served alice forged envelopes', async () => (await forger.report()).forged.envelopes >= envs.length);

    // 2. A peer with the genuine envelopes whose chunks are corrupted.
    const liar = await NodePeerProcess.start(s, 'liar', relay, { forge: { envelopes: false, chunks: true } });
    await liar.call({ op: 'load', envs });
    await liar.call({ op: 'hold', att, size: SIZE, seed: SEED });
    assert.deepEqual(await alice.seesConfirmed(lines), lines, 'the genuine history, in order');
    await until('the liar to have served alice a corrupted chunk', async () => (await liar.report()).forged.chunks >= 1);

    // 3. An honest holder: the attachment completes from it.
    const helper = await NodePeerProcess.start(s, 'helper', relay);
    await helper.call({ op: 'load', envs });
    await helper.call({ op: 'hold', att, size: SIZE, seed: SEED });
    const sha256 = createHash('sha256').update(content(SIZE, SEED)).digest('base64url');
    await until('alice to hold the attachment', async () => (await alice.stored()).attachments.some((a) => a.id === att.id && a.held));

    // Nothing corrupt in IndexedDB: exactly the genuine envelopes, each verifying; the bytes hash right.
    const stored = await alice.stored();
    const backend = nodeBackend();
    assert.deepEqual(stored.messages.map((m) => m.id).sort(), envs.map((e) => e.id).sort());
    for (const m of stored.messages) {
      assert.deepEqual(await verifyEnvelope(backend, m.env, envs[0]!.relay), { ok: true }, `stored ${m.id} verifies`);
      assert.deepEqual(m.env, envs.find((e) => e.id === m.id), 'stored as posted');
    }
    assert.deepEqual(stored.attachments.map((a) => [a.id, a.held, a.heldSha256]), [[att.id, true, sha256]]);

    // And alice keeps chatting: her post reaches the honest peer.
    await alice.send('general 4 from alice');
    lines.push('general 4 from alice');
    await alice.seesConfirmed(lines);
    await until('the honest peer to get alice’s message', async () => (await helper.report()).messages === 4);
    assert.deepEqual(alice.errors, []);
  });
});
