// Page entry: the client core in Chromium (DexieStore, WebCrypto, browser PeerJS) on the real relay with
// this origin's IndexedDB quota made tiny over CDP (SPEC.md H16, CL5): a full store is QUOTA_EXCEEDED,
// an own post is kept in the outbox, and after "Clear old attachments" (H15) retry stores it.
import { Peer } from 'peerjs';
import { ClientReason, PeerchatClient } from '../../../src/shared/client/PeerchatClient';
import { detectBackend, randomSecretKey } from '../../../src/shared/crypto/ed25519';
import type { SignedAttachment } from '../../../src/shared/protocol/relay';
import { DexieStore } from '../../../src/shared/store/DexieStore';
import { isStoreQuotaError } from '../../../src/shared/store/HistoryStore';
import { monotonicFactory } from 'ulidx';
import { registerCases } from '../pageCases';

const ulid = monotonicFactory();

function assert(cond: unknown, what: string): asserts cond {
  if (!cond) throw new Error(what);
}
async function until(cond: () => boolean, what: string, ms = 30_000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}
function noise(size: number): Uint8Array {
  const out = new Uint8Array(size);
  for (let i = 0; i < size; i += 65536) crypto.getRandomValues(out.subarray(i, Math.min(size, i + 65536)));
  return out;
}
/** Content other peers sent earlier: placeholder signatures, the store does not verify (H7). */
function meta(size: number): SignedAttachment {
  const K = 'R'.repeat(43);
  return { id: ulid(), ts: Date.now(), uploader: K, relay: K, rsig: 'A'.repeat(86), meta: { name: 'old.bin', mime: 'application/octet-stream', size, sha256: 'S'.repeat(43), chunkRoot: 'C'.repeat(43) } };
}

registerCases([
  {
    name: 'H16 CL5 UI11 in Chromium with a full IndexedDB: an own post is QUOTA_EXCEEDED and kept in the outbox; after clearing old attachments retry stores it',
    async run(input) {
      const { relayUrl, quotaBytes } = input as { relayUrl: string; quotaBytes: number };
      const store = new DexieStore(`peerchat-client-quota-${Date.now()}`);
      const client = new PeerchatClient({
        relayUrl,
        secretKey: randomSecretKey(),
        name: 'full disk',
        kind: 'browser',
        store,
        backend: await detectBackend(),
        createPeer: ({ peerId, options }) => new Peer(peerId, options),
      });
      const errors: string[] = [];
      client.on('error', (e) => errors.push(e.reason));
      try {
        await client.start();
        await until(() => client.getSnapshot().connection.state === 'online', 'online');
        // Attachments other peers sent fill the disk.
        const size = 256 * 1024;
        let full = false;
        for (let i = 0; i < Math.ceil((2 * quotaBytes) / size) + 4 && !full; i++) {
          const m = meta(size);
          try {
            await store.putAttachmentMeta(m);
            await store.putAttachmentBytes(m.id, noise(size));
          } catch (err) {
            assert(isStoreQuotaError(err), `filling: ${String(err)}`);
            full = true;
          }
        }
        assert(full, 'the quota was never reached');
        await until(() => errors.includes(ClientReason.QUOTA_EXCEEDED), 'the client reports the full store');

        const pending = client.post('general', 'written while the disk was full');
        const res = await pending.result;
        assert(!res.ok && res.error.reason === ClientReason.QUOTA_EXCEEDED, `post result ${JSON.stringify(!res.ok && res.error.reason)}`);
        const kept = client.getSnapshot().outbox.find((p) => p.clientId === pending.clientId);
        assert(kept?.status === 'failed' && kept.error?.reason === ClientReason.QUOTA_EXCEEDED, 'kept in the outbox, failed QUOTA_EXCEEDED');

        // "Clear old attachments": all of them here; messages stay.
        const dropped = await store.dropAttachmentBytes({});
        assert(dropped.ids.length > 0, 'something to clear');
        const again = client.retry(pending.clientId);
        assert(again, 'retry found it');
        const ok = await again.result;
        assert(ok.ok, `retry: ${JSON.stringify(!ok.ok && ok.error)}`);
        assert((await store.getMessages([ok.envelope.id]))[0]?.post.text === 'written while the disk was full', 'stored after clearing');
        assert(client.getSnapshot().outbox.length === 0, 'outbox empty');
      } finally {
        await client.stop();
        await store.close();
      }
    },
  },
]);
