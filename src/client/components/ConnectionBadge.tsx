// The relay connection, always visible: connecting, online, reconnecting in N s, offline.
import { useEffect, useState } from 'react';
import type { ConnectionState } from '../../shared/client/PeerchatClient';
import styles from './ConnectionBadge.module.css';

function useSecondsUntil(at: number | null): number | null {
  const [now, setNow] = useState(() => Date.now());
  useEffect(() => {
    if (at === null) return;
    const t = setInterval(() => setNow(Date.now()), 250);
    return () => clearInterval(t);
  }, [at]);
  return at === null ? null : Math.max(0, Math.ceil((at - now) / 1000));
}

export function connectionLabel(c: ConnectionState, seconds: number | null): string {
  switch (c.state) {
    case 'online':
      return 'Online';
    case 'connecting':
      return seconds !== null ? `Connecting again in ${seconds} s` : 'Connecting…';
    case 'reconnecting':
      return seconds !== null ? `Reconnecting in ${seconds} s` : 'Reconnecting…';
    case 'offline':
      return c.error ? `Offline: ${c.error.reason}` : 'Offline';
    case 'relay-key-changed':
      return 'Relay key changed';
  }
}

export function ConnectionBadge({ connection, onReconnect }: { connection: ConnectionState; onReconnect(): void }) {
  const at = connection.state === 'connecting' || connection.state === 'reconnecting' ? connection.nextAttemptAt : null;
  const seconds = useSecondsUntil(at);
  const retryable = connection.state === 'offline' || at !== null;
  return (
    <span className={styles.badge} data-state={connection.state} data-testid="connection" role="status">
      <span className={styles.dot} aria-hidden />
      {connectionLabel(connection, seconds)}
      {retryable && (
        <button type="button" className={styles.now} onClick={onReconnect}>
          Retry now
        </button>
      )}
    </span>
  );
}
