// History from peers, per channel: "syncing from 2 peers", then "history up to date", or "no peer online".
import type { ChannelSyncState } from '../../shared/client/PeerchatClient';
import styles from './SyncStatus.module.css';

export function syncLabel(s: ChannelSyncState | undefined): string {
  if (!s || s.state === 'idle') return 'No peer online to sync history from';
  if (s.state === 'syncing') return `Syncing from ${s.peers} ${s.peers === 1 ? 'peer' : 'peers'}${s.received ? ` (${s.received} new)` : ''}…`;
  const gaps = s.gaps.length ? ` · ${s.gaps.length} ${s.gaps.length === 1 ? 'gap' : 'gaps'} no peer could fill` : '';
  return `History synced${gaps}`;
}

export function SyncStatus({ sync }: { sync: ChannelSyncState | undefined }) {
  const label = syncLabel(sync);
  // The whole label as the title: on a phone the header cuts it short with "…".
  return (
    <span className={styles.sync} data-state={sync?.state ?? 'idle'} data-testid="sync-status" title={label}>
      {label}
    </span>
  );
}
