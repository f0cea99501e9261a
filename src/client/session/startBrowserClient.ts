// Composes the shared client core for the browser: the page's own origin as relay, IndexedDB history,
// WebCrypto Ed25519 when present (else the library fallback), PeerJS's browser Peer, and the relay key
// pin kept in the app database so a changed key is caught on the next visit too.
import type { Peer } from 'peerjs';
import { PeerchatClient } from '../../shared/client/PeerchatClient';
import { detectBackend } from '../../shared/crypto/ed25519';
import { fingerprint } from '../../shared/crypto/signing';
import { fromB64url } from '../../shared/encoding';
import { verifyEnvelopes } from '../../shared/protocol/signed';
import { DexieStore } from '../../shared/store/DexieStore';
import { relaySignalledPeer } from '../../shared/transport/relaySignalling';
import { type IdentityRow, appDb } from '../appDb';
import { HISTORY_DB_NAME } from '../history/historyDb';
import { historyPlaced } from '../history/historyPlaced';
import { type BrowserVoiceMedia, createBrowserVoiceMedia } from '../voice/browserVoiceMedia';
import { browserVerifyPool } from './verifyPool';

/**
 * The client, ready for the UI as soon as its store is: the caller renders the history from IndexedDB
 * while `started` (PeerJS loaded, relay connection opened) is still under way, so the first paint waits
 * for neither the relay nor the PeerJS chunk.
 */
/** The longest the client's start waits for the history to be placed (historyPlaced.ts). */
const START_AFTER_PLACED_MAX_MS = 500;
/** Then the longest it waits for an idle moment (the placing frame's paint). */
const START_AFTER_IDLE_MAX_MS = 100;

export async function startBrowserClient(
  identity: IdentityRow,
  relayUrl = location.origin,
): Promise<{ client: PeerchatClient; voiceMedia: BrowserVoiceMedia; started: Promise<void>; close(): Promise<void> }> {
  // Its own chunk: the first paint does not need PeerJS, and `createPeer` is called only after start().
  const peerjs = import('peerjs');
  let PeerCtor: typeof Peer | null = null;
  const db = appDb();
  // Both before the client exists, so before the channel's first render: read at once, not one after the other.
  const [pin, backend] = await Promise.all([db.pins.get(relayUrl), detectBackend()]);
  const store = new DexieStore(HISTORY_DB_NAME);
  const voiceMedia = createBrowserVoiceMedia();
  // Catch-up verifies thousands of envelopes: off the main thread, on every core (verifyPool.ts).
  const pool = browserVerifyPool((envs, relayKey) => verifyEnvelopes(backend, envs, relayKey));
  const client = new PeerchatClient({
    voiceMedia,
    relayUrl,
    secretKey: identity.secretKey,
    name: identity.name,
    kind: 'browser',
    store,
    backend,
    verifyEnvelopes: pool.verify,
    // Signalling rides the relay socket this client already holds (SPEC.md W11).
    createPeer: ({ peerId, options }) => new (relaySignalledPeer(PeerCtor!))(peerId, options),
    ...(pin ? { pinnedRelayKey: pin.publicKey } : {}),
    onRelayKeyPinned: async (relayKey) => {
      const bytes = fromB64url(relayKey);
      await db.pins.put({ origin: relayUrl, publicKey: relayKey, fingerprint: bytes ? fingerprint(bytes) : '', pinnedAt: Date.now() });
    },
  });
  // The engine's start (index load, key pinning, the relay login) waits until the history read from
  // IndexedDB has been placed and painted: it would otherwise compete with it.
  const idle = historyPlaced(START_AFTER_PLACED_MAX_MS).then(
    () =>
      new Promise<void>((resolve) =>
        typeof requestIdleCallback === 'function' ? requestIdleCallback(() => resolve(), { timeout: START_AFTER_IDLE_MAX_MS }) : setTimeout(resolve, 0),
      ),
  );
  const started = Promise.all([peerjs, idle]).then(([m]) => {
    PeerCtor = m.Peer;
    // Workers loaded before the first catch-up, not during it.
    void pool.warm();
    return client.start();
  });
  // Leaving the page leaves the voice room at once (VR7): others see it now, not at the relay's heartbeat.
  const onPageHide = (): void => void client.voice.leave();
  addEventListener('pagehide', onPageHide);
  return {
    client,
    voiceMedia,
    started,
    async close() {
      removeEventListener('pagehide', onPageHide);
      await client.stop();
      pool.close();
      await store.close();
    },
  };
}
