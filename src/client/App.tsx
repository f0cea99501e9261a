import { useEffect, useState } from 'react';
import { zServerInfo, type ServerInfo } from '../shared/protocol/relay';

// Placeholder until the web app issue: shows which relay this is, from its published info.
// Text is rendered as React text nodes only (never as HTML).
export function App() {
  const [info, setInfo] = useState<ServerInfo | null>(null);
  const [error, setError] = useState<string | null>(null);
  useEffect(() => {
    const ctl = new AbortController();
    fetch('/.well-known/peerchat.json', { signal: ctl.signal })
      .then((r) => r.json())
      .then((j) => {
        const parsed = zServerInfo.safeParse(j);
        if (parsed.success) setInfo(parsed.data);
        else setError('The relay answered with info this app does not understand.');
      })
      .catch((e) => {
        if (!ctl.signal.aborted) setError(`Cannot reach the relay: ${String(e)}`);
      });
    return () => ctl.abort();
  }, []);
  return (
    <main style={{ fontFamily: 'system-ui, sans-serif', maxWidth: 640, margin: '2rem auto' }}>
      <h1>peerchat</h1>
      {error && <p role="alert">{error}</p>}
      {info && (
        <>
          <p data-testid="relay-name">
            Relay <strong>{info.name}</strong> <code>{info.fingerprint}</code>
          </p>
          <p>Channels: {info.channels.map((c) => `#${c.id}`).join(' ')}</p>
        </>
      )}
      {!info && !error && <p>Connecting…</p>}
    </main>
  );
}
