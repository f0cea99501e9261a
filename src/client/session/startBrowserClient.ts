// Composes the shared client core for the browser: the page's own origin as relay, IndexedDB history,
// WebCrypto Ed25519 when present (else the library fallback), PeerJS's browser Peer, and the relay key
// pin kept in the app database so a changed key is caught on the next visit too.
import { Peer } from 'peerjs';
import { PeerchatClient } from '../../shared/client/PeerchatClient';
import { detectBackend } from '../../shared/crypto/ed25519';
import { fingerprint } from '../../shared/crypto/signing';
import { fromB64url } from '../../shared/encoding';
import { DexieStore } from '../../shared/store/DexieStore';
import { type IdentityRow, appDb } from '../appDb';
import { HISTORY_DB_NAME } from '../history/historyDb';

export async function startBrowserClient(identity: IdentityRow, relayUrl = location.origin): Promise<{ client: PeerchatClient; close(): Promise<void> }> {
  const db = appDb();
  const pin = await db.pins.get(relayUrl);
  const store = new DexieStore(HISTORY_DB_NAME);
  const client = new PeerchatClient({
    relayUrl,
    secretKey: identity.secretKey,
    name: identity.name,
    kind: 'browser',
    store,
    backend: await detectBackend(),
    createPeer: ({ peerId, options }) => new Peer(peerId, options),
    ...(pin ? { pinnedRelayKey: pin.publicKey } : {}),
    onRelayKeyPinned: async (relayKey) => {
      const bytes = fromB64url(relayKey);
      await db.pins.put({ origin: relayUrl, publicKey: relayKey, fingerprint: bytes ? fingerprint(bytes) : '', pinnedAt: Date.now() });
    },
  });
  await client.start();
  return {
    client,
    async close() {
      await client.stop();
      await store.close();
    },
  };
}
