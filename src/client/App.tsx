// The app's top: the identity (made on first visit), the tab that holds the session, and the client.
import { useLiveQuery } from 'dexie-react-hooks';
import { Suspense, lazy, useEffect, useState } from 'react';
import { type IdentityRow, appDb } from './appDb';
import { ChatApp } from './components/ChatApp';
import { OtherTab } from './components/OtherTab';
import type { ClientLike } from './session/ClientLike';
import { ClientContext } from './session/ClientContext';
import { useTabLeadership } from './session/useTabLeadership';
import type { BrowserVoiceMedia } from './voice/browserVoiceMedia';
import { VoiceMediaContext } from './voice/VoiceMediaContext';

// The client core (relay connection, sync engine, protocol schemas) is its own chunk, fetched at once and
// compiled while the identity and the history are read from IndexedDB: the main chunk, which the first
// paint waits for, holds only React, Dexie and the views.
const clientCore = import('./session/startBrowserClient');
// First visits only; brings the import form and its crypto.
const Welcome = lazy(() => import('./identity/Welcome').then((m) => ({ default: m.Welcome })));

function Session({ identity }: { identity: IdentityRow }) {
  const [client, setClient] = useState<ClientLike | null>(null);
  const [voiceMedia, setVoiceMedia] = useState<BrowserVoiceMedia | null>(null);
  const [error, setError] = useState<string | null>(null);
  useEffect(() => {
    let closed = false;
    let close: (() => Promise<void>) | null = null;
    clientCore.then(({ startBrowserClient }) => startBrowserClient(identity)).then(
      (c) => {
        if (closed) return void c.close();
        close = c.close;
        setVoiceMedia(c.voiceMedia);
        setClient(c.client);
        c.started.catch((e: unknown) => !closed && setError(String(e)));
      },
      (e: unknown) => setError(String(e)),
    );
    return () => {
      closed = true;
      void close?.();
    };
  }, [identity]);
  if (error) return <p role="alert">The app could not start: {error}</p>;
  if (!client) return null;
  return (
    <ClientContext.Provider value={client}>
      <VoiceMediaContext.Provider value={voiceMedia}>
        <ChatApp identity={identity} />
      </VoiceMediaContext.Provider>
    </ClientContext.Provider>
  );
}

export function App() {
  const identity = useLiveQuery(() => appDb().identity.get('self').then((r) => r ?? null), []);
  const { role, takeOver } = useTabLeadership();
  if (identity === undefined || role === 'pending') return null;
  if (identity === null)
    return (
      <Suspense fallback={null}>
        <Welcome onDone={() => {}} />
      </Suspense>
    );
  if (role === 'follower') return <OtherTab onUseHere={takeOver} />;
  return <Session key={identity.publicKey} identity={identity} />;
}
