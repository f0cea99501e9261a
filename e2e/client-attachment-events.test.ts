// The client core's attachment events (SPEC.md CL1), which the web app's photo views listen to: two
// NodePeers (the client core over wrtc) on a real relay; the reader's engine fetches the author's
// attachment and the client says so, chunk by chunk and once stored.
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { randomSecretKey } from '../src/shared/crypto/ed25519';
import { LIMITS } from '../src/shared/protocol/relay';
import { MemoryStore } from '../src/shared/store/MemoryStore';
import { NodePeer } from '../src/virtual/NodePeer';
import { content, startRelayWithSignalling } from './fixtures/relayWithSignalling';
import type { Relay } from '../src/server/createRelay';

const cleanup: (() => Promise<unknown>)[] = [];
after(async () => {
  for (const c of cleanup.reverse()) await c().catch(() => {});
});

async function peer(r: Relay, name: string): Promise<{ node: NodePeer; store: MemoryStore }> {
  const store = new MemoryStore();
  const node = await NodePeer.start({ relayUrl: r.url, secretKey: randomSecretKey(), name, kind: 'browser', store, relay: { retryBaseMs: 50, restartDelayMs: 50 } });
  cleanup.push(async () => {
    await node.stop();
    await store.close();
  });
  await node.whenOnline();
  return { node, store };
}

describe('client attachment events', () => {
  it('CL1 a fetched attachment is reported as attachmentProgress (verified bytes so far, of the signed size) then attachmentStored', { timeout: 60_000 }, async () => {
    const r = await startRelayWithSignalling({ limits: { postsPerMinute: 10_000, mintsPerMinute: 10_000 } });
    cleanup.push(() => r.close());
    const author = await peer(r, 'author');
    const reader = await peer(r, 'reader');
    const progress: { id: string; receivedBytes: number; totalBytes: number }[] = [];
    const stored: string[] = [];
    reader.node.client.on('attachmentProgress', (e) => progress.push(e));
    const got = new Promise<string>((resolve) =>
      reader.node.client.on('attachmentStored', (e) => {
        stored.push(e.id);
        resolve(e.id);
      }),
    );
    await author.node.waitFor(() => author.node.presence().some((u) => u.name === 'reader'));
    const size = 6 * LIMITS.chunkBytes + 100;
    const att = await author.node.publishAttachment(content(size, 9), { name: 'photo.bin', mime: 'application/octet-stream' });
    await author.node.post('general', 'look', [att]);
    assert.equal(await got, att.id);
    assert.deepEqual(stored, [att.id]);
    const mine = progress.filter((p) => p.id === att.id);
    assert.ok(mine.length >= 1, 'progress was reported');
    assert.ok(mine.every((p) => p.totalBytes === size), 'of the signed size');
    for (let i = 1; i < mine.length; i++) assert.ok(mine[i]!.receivedBytes > mine[i - 1]!.receivedBytes, 'growing');
    assert.equal(mine.at(-1)!.receivedBytes, size, 'complete before it is stored');
    assert.ok(await reader.store.hasAttachmentBytes(att.id));
  });
});
