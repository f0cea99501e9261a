// The app's top: the identity (made on first visit), the tab that holds the session, and the client.
import { useLiveQuery } from 'dexie-react-hooks';
import { useEffect, useState } from 'react';
import { type IdentityRow, appDb } from './appDb';
import { ChatApp } from './components/ChatApp';
import { OtherTab } from './components/OtherTab';
import { Welcome } from './identity/Welcome';
import type { ClientLike } from './session/ClientLike';
import { ClientContext } from './session/ClientContext';
import { startBrowserClient } from './session/startBrowserClient';
import { useTabLeadership } from './session/useTabLeadership';
import type { BrowserVoiceMedia } from './voice/browserVoiceMedia';
import { VoiceMediaContext } from './voice/VoiceMediaContext';

function Session({ identity }: { identity: IdentityRow }) {
  const [client, setClient] = useState<ClientLike | null>(null);
  const [voiceMedia, setVoiceMedia] = useState<BrowserVoiceMedia | null>(null);
  const [error, setError] = useState<string | null>(null);
  useEffect(() => {
    let closed = false;
    let close: (() => Promise<void>) | null = null;
    startBrowserClient(identity).then(
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
  if (identity === null) return <Welcome onDone={() => {}} />;
  if (role === 'follower') return <OtherTab onUseHere={takeOver} />;
  return <Session key={identity.publicKey} identity={identity} />;
}
