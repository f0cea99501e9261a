// The signed-in app: channel sidebar, the open channel, the member list, and the bars that always show the
// relay connection and history sync. Phone width: sidebar and member list slide over the channel.
import { Suspense, lazy, useEffect, useMemo, useState } from 'react';
import { visibleControls } from './RichText';
import type { Channel } from '../../shared/protocol/relay';
import type { IdentityRow } from '../appDb';
import { useNames, useRememberNames } from '../hooks/useNames';
import { useRoute } from '../hooks/useRoute';
import { useReadMarkers, useUnreadCounts } from '../hooks/useUnread';
import { useClient, useClientSnapshot } from '../session/ClientContext';
import { ChannelView } from './ChannelView';
import { ConnectionBadge } from './ConnectionBadge';
import { MemberList } from './MemberList';
import { QuotaAlert } from './QuotaAlert';
import { Sidebar } from './Sidebar';
import { SyncStatus } from './SyncStatus';
import { VoiceBar } from './VoiceBar';

// Dialogs are their own chunks: the first paint of a channel needs neither, and the identity dialog
// brings the export crypto (scrypt, XChaCha20-Poly1305) with it.
const IdentityDialog = lazy(() => import('../identity/IdentityDialog').then((m) => ({ default: m.IdentityDialog })));
const KeyChangedDialog = lazy(() => import('./KeyChangedDialog').then((m) => ({ default: m.KeyChangedDialog })));
import styles from './ChatApp.module.css';

const CHANNELS_KEY = 'peerchat:channels';

/** The relay's channel list, remembered so a reload with the relay down still lists (and shows) them. */
function useChannels(live: readonly Channel[]): readonly Channel[] {
  const [known, setKnown] = useState<Channel[]>(() => {
    try {
      return JSON.parse(localStorage.getItem(CHANNELS_KEY) ?? '[]') as Channel[];
    } catch {
      return [];
    }
  });
  useEffect(() => {
    if (live.length === 0) return;
    localStorage.setItem(CHANNELS_KEY, JSON.stringify(live));
    setKnown([...live]);
  }, [live]);
  return live.length > 0 ? live : known;
}

export function ChatApp({ identity }: { identity: IdentityRow }) {
  const client = useClient();
  const snap = useClientSnapshot();
  const names = useNames();
  useRememberNames(snap.presence);
  const { channel: routed, go } = useRoute();
  const channels = useChannels(snap.channels);
  const [panel, setPanel] = useState<'none' | 'channels' | 'members'>('none');
  const [showIdentity, setShowIdentity] = useState(false);

  const channel = routed ?? channels[0]?.id ?? null;
  useEffect(() => {
    if (!routed && channel) go(channel, { replace: true });
  }, [routed, channel, go]);
  useEffect(() => setPanel('none'), [channel]);

  const markers = useReadMarkers();
  const ids = useMemo(() => channels.map((c) => c.id), [channels]);
  const unread = useUnreadCounts(ids, snap.self.publicKey, markers);
  const total = Object.entries(unread).reduce((n, [ch, c]) => n + (ch === channel && document.visibilityState === 'visible' ? 0 : c), 0);
  useEffect(() => {
    document.title = `${total > 0 ? `(${total >= 100 ? '99+' : total}) ` : ''}${channel ? `#${channel} · ` : ''}peerchat`;
  }, [total, channel]);

  const conn = snap.connection;
  const title = channels.find((c) => c.id === channel)?.title;
  return (
    <div className={styles.app} onKeyDown={(e) => e.key === 'Escape' && panel !== 'none' && setPanel('none')}>
      <a href="#composer" className={styles.skip} onClick={(e) => { e.preventDefault(); document.querySelector<HTMLElement>('[data-testid=composer]')?.focus(); }}>
        Skip to the message box
      </a>
      <Sidebar
        relayName={snap.relay?.name ?? 'peerchat'}
        channels={channels}
        current={channel}
        unread={unread}
        onOpen={(c) => go(c)}
        open={panel === 'channels'}
        footer={
          <button type="button" className={styles.identityFooter} onClick={() => setShowIdentity(true)}>
            <bdi>{visibleControls(identity.name)}</bdi> <span className={styles.fp}>{snap.self.fingerprint}</span>
            <span className={styles.fp}> · identity &amp; backup</span>
          </button>
        }
      />
      <div className={styles.main}>
        <header className={styles.header}>
          <button
            type="button"
            className={styles.menu}
            aria-label="Channels"
            aria-controls="sidebar"
            aria-expanded={panel === 'channels'}
            onClick={() => setPanel(panel === 'channels' ? 'none' : 'channels')}
          >
            <svg width="20" height="20" viewBox="0 0 20 20" aria-hidden fill="currentColor"><rect x="2" y="4" width="16" height="2" rx="1" /><rect x="2" y="9" width="16" height="2" rx="1" /><rect x="2" y="14" width="16" height="2" rx="1" /></svg>
          </button>
          <h1 className={styles.title}>
            {channel ? `#${channel}` : 'peerchat'}
            {title && title !== channel && <span className={styles.topic}>{title}</span>}
          </h1>
          <div className={styles.status}>
            <ConnectionBadge connection={conn} onReconnect={() => client.reconnect()} />
            {channel && <SyncStatus sync={snap.sync[channel]} />}
          </div>
          <button type="button" className={styles.headerButton} onClick={() => setShowIdentity(true)} data-testid="open-identity">
            <bdi>{visibleControls(identity.name)}</bdi> <span className={styles.fp}>{snap.self.fingerprint}</span>
          </button>
          <button
            type="button"
            className={styles.menu}
            aria-label="Members"
            aria-controls="members"
            aria-expanded={panel === 'members'}
            onClick={() => setPanel(panel === 'members' ? 'none' : 'members')}
          >
            <svg width="20" height="20" viewBox="0 0 20 20" aria-hidden fill="currentColor"><circle cx="7" cy="7" r="3" /><circle cx="14" cy="8" r="2.5" /><path d="M1.5 17c0-3 2.5-5 5.5-5s5.5 2 5.5 5z" /><path d="M13 17c0-1.8-.6-3.3-1.6-4.4.8-.4 1.6-.6 2.6-.6 2.5 0 4.5 1.7 4.5 5z" /></svg>
          </button>
        </header>
        <QuotaAlert errors={snap.errors} onOpenStorage={() => setShowIdentity(true)} />
        {channel && <VoiceBar channel={channel} snapshot={snap} client={client} />}
        <main className={styles.channel}>
          {channel ? (
            <ChannelView
              key={channel}
              channel={channel}
              snapshot={snap}
              client={client}
              names={names}
              readMarker={markers?.[channel]}
              markersLoaded={markers !== undefined}
            />
          ) : (
            <div className={styles.nochannel}>{conn.state === 'online' ? 'This relay has no channels.' : 'Waiting for the relay to list its channels…'}</div>
          )}
        </main>
      </div>
      <MemberList presence={snap.presence} members={snap.members} voice={snap.voice} open={panel === 'members'} onPage={(p) => client.setMemberPage(p)} />
      {panel !== 'none' && <div className={styles.scrim} onClick={() => setPanel('none')} aria-hidden />}
      <Suspense fallback={null}>
        {conn.state === 'relay-key-changed' && (
          <KeyChangedDialog
            pinnedFingerprint={conn.pinnedFingerprint}
            offeredFingerprint={conn.offeredFingerprint}
            onTrust={() => void client.trustRelayKey(conn.offered)}
          />
        )}
        {showIdentity && <IdentityDialog identity={identity} onClose={() => setShowIdentity(false)} />}
      </Suspense>
    </div>
  );
}
