// One channel: its history window from IndexedDB, our posts in flight from the client's outbox, the
// composer, and the rules of the "new" divider (frozen for the visit; cleared on send, on Esc, or on
// reaching the bottom) and of the read marker (moves while the tab is visible and the list at the bottom).
import { useCallback, useEffect, useMemo, useRef, useState } from 'react';
import type { ClientSnapshot } from '../../shared/client/PeerchatClient';
import { LIMITS } from '../../shared/protocol/limits';
import type { Envelope, SignedAttachment } from '../../shared/protocol/relay';
import { type OutgoingPost, buildRows } from '../history/buildRows';
import { historyReader } from '../history/historyDb';
import { markHistoryPlaced } from '../history/historyPlaced';
import { useChannelWindow } from '../hooks/useChannelWindow';
import { authorNameOf } from '../hooks/useNames';
import { usePendingAttachments } from '../hooks/usePendingAttachments';
import { attachmentView } from '../media/attachmentView';
import { markRead } from '../hooks/useUnread';
import { useWatchAuthors } from '../hooks/useWatchAuthors';
import type { ClientLike } from '../session/ClientLike';
import { Composer } from './Composer';
import { Lightbox } from './Lightbox';
import { LiveAnnouncer } from './LiveAnnouncer';
import { MessageList, type MessageListHandle } from './MessageList';
import type { NameLookup } from './MessageRow';
import { type PhotoViewer, PhotoViewerContext } from './PhotoViewerContext';
import styles from './ChannelView.module.css';

/** Announced text per message at most. */
const ANNOUNCE_CHARS = 200;

/** " (2 photos, 1 file)" for the live region: a message may be attachments only. */
function attachmentsWords(e: Envelope): string {
  const photos = e.post.attachments.filter((a) => attachmentView(a.meta).kind === 'image').length;
  const files = e.post.attachments.length - photos;
  const parts = [photos && `${photos} photo${photos > 1 ? 's' : ''}`, files && `${files} file${files > 1 ? 's' : ''}`].filter(Boolean);
  return parts.length > 0 ? ` (${parts.join(', ')})` : '';
}

export function ChannelView(props: {
  channel: string;
  snapshot: ClientSnapshot;
  client: ClientLike;
  names: NameLookup;
  /** The read marker when the channel was opened ('' = nothing read; null = not known yet). */
  readMarker: string | undefined;
  markersLoaded: boolean;
}) {
  const { channel, snapshot, client, names } = props;
  const self = snapshot.self.publicKey;
  const win = useChannelWindow(channel);
  const list = useRef<MessageListHandle>(null);
  const [replyTo, setReplyTo] = useState<Envelope | null>(null);
  const [atEnd, setAtEnd] = useState(true);
  const [announce, setAnnounce] = useState('');
  const [pendingJump, setPendingJump] = useState<string | null>(null);

  // The divider is placed once per visit, from the marker as it was when the channel opened.
  const [divider, setDivider] = useState<{ channel: string; after: string | null } | null>(null);
  useEffect(() => {
    if (!props.markersLoaded) return;
    setDivider((d) => (d && d.channel === channel ? d : { channel, after: props.readMarker ? props.readMarker : null }));
  }, [channel, props.markersLoaded, props.readMarker]);
  const dividerAfter = divider?.channel === channel ? divider.after : null;

  useEffect(() => setReplyTo(null), [channel]);

  const envelopes = win.envelopes;
  useWatchAuthors(client, envelopes);
  const byId = useMemo(() => new Map((envelopes ?? []).map((e) => [e.id, e])), [envelopes]);
  const stored = useMemo(() => new Set((envelopes ?? []).map((e) => e.post.clientId)), [envelopes]);
  const outgoing: OutgoingPost[] = useMemo(
    () =>
      snapshot.outbox
        .filter((p) => p.channel === channel && !stored.has(p.clientId))
        .map((p) => ({
          clientId: p.clientId,
          channel: p.channel,
          text: p.text,
          replyTo: p.replyTo,
          createdAt: p.createdAt,
          state: p.status,
          attachments: p.attachments,
          ...(p.error ? { reason: p.error.reason } : {}),
        })),
    [snapshot.outbox, channel, stored],
  );
  const gaps = snapshot.sync[channel]?.gaps;
  const gapsBefore = useMemo(() => new Set((gaps ?? []).map((g) => g.beforeId)), [gaps]);
  const rows = useMemo(
    () => buildRows({ envelopes: envelopes ?? [], outgoing, dividerAfterId: dividerAfter, self, now: Date.now(), gapsBefore, hasOlder: win.hasOlder }),
    [envelopes, outgoing, dividerAfter, self, gapsBefore, win.hasOlder],
  );

  // Read marker: forward to the newest envelope while the reader can see the bottom of a visible tab.
  // Nothing to place (an empty channel: a new user's first visit): the client core need not wait for the
  // list (historyPlaced.ts), it would only wait out its bound.
  const nothingToPlace = envelopes !== undefined && rows.length === 0;
  useEffect(() => {
    if (nothingToPlace) markHistoryPlaced();
  }, [nothingToPlace]);
  const newest = envelopes?.at(-1)?.id ?? '';
  useEffect(() => {
    const mark = () => {
      if (atEnd && document.visibilityState === 'visible' && newest) void markRead(channel, newest);
    };
    mark();
    document.addEventListener('visibilitychange', mark);
    return () => document.removeEventListener('visibilitychange', mark);
  }, [atEnd, newest, channel]);

  // Reaching the bottom clears the divider (Discord's rule), once something after it was seen.
  useEffect(() => {
    if (atEnd && dividerAfter && newest && newest > dividerAfter && document.visibilityState === 'visible') {
      const t = setTimeout(() => setDivider({ channel, after: null }), 4000);
      return () => clearTimeout(t);
    }
  }, [atEnd, dividerAfter, newest, channel]);

  // New messages from others, arriving while this channel is open, go to the live region.
  const seenNewest = useRef<{ channel: string; id: string } | null>(null);
  useEffect(() => {
    if (!envelopes) return;
    const prev = seenNewest.current;
    const last = envelopes.at(-1)?.id ?? '';
    if (!prev || prev.channel !== channel) {
      seenNewest.current = { channel, id: last };
      return;
    }
    const fresh = envelopes.filter((e) => e.id > prev.id && e.post.author !== self);
    seenNewest.current = { channel, id: last > prev.id ? last : prev.id };
    if (fresh.length > 0) {
      setAnnounce(fresh.map((e) => `${authorNameOf(e, names) ?? 'unknown'}: ${e.post.text.slice(0, ANNOUNCE_CHARS)}${attachmentsWords(e)}`).join('\n'));
    }
  }, [envelopes, channel, self, names]);

  const onSend = useCallback(
    (text: string, reply: string | null, attachments: SignedAttachment[]) => {
      client.post(channel, text, { replyTo: reply, attachments });
      setReplyTo(null);
      setDivider({ channel, after: null });
      // Sending always goes to the bottom, even from far up.
      requestAnimationFrame(() => list.current?.scrollToEnd());
      return true;
    },
    [client, channel],
  );

  const jumpToOriginal = useCallback(
    (id: string) => {
      if (list.current?.scrollToMessage(id)) return;
      void win.reachBack(id).then((ok) => ok && setPendingJump(id));
    },
    [win],
  );
  useEffect(() => {
    if (pendingJump && byId.has(pendingJump)) {
      requestAnimationFrame(() => list.current?.scrollToMessage(pendingJump));
      setPendingJump(null);
    }
  }, [pendingJump, byId]);

  // A reply's original outside the window: fetch it once from the store for its quote.
  const [extra, setExtra] = useState<Map<string, Envelope>>(new Map());
  useEffect(() => {
    const missing = (envelopes ?? []).map((e) => e.post.replyTo).filter((r): r is string => !!r && !byId.has(r) && !extra.has(r));
    if (missing.length === 0) return;
    void Promise.all([...new Set(missing)].slice(0, 50).map((id) => historyReader().get(id))).then((found) => {
      setExtra((m) => {
        const n = new Map(m);
        for (const f of found) if (f) n.set(f.id, f);
        return n;
      });
    });
  }, [envelopes, byId, extra]);
  const original = useCallback((id: string) => byId.get(id) ?? extra.get(id), [byId, extra]);

  const maxLength = snapshot.relay?.limits.maxTextLength ?? LIMITS.maxTextLength;
  const pending = usePendingAttachments(channel, client, {
    maxBytes: snapshot.relay?.limits.maxAttachmentBytes ?? LIMITS.maxAttachmentBytes,
    maxCount: snapshot.relay?.limits.maxAttachmentsPerMessage ?? LIMITS.maxAttachmentsPerMessage,
  });

  // The lightbox: over the channel's loaded photos, in message order (MD10).
  const [viewing, setViewing] = useState<{ id: string; opener: HTMLElement | null } | null>(null);
  const photos = useMemo(
    () => (envelopes ?? []).flatMap((e) => e.post.attachments.filter((a) => attachmentView(a.meta).kind === 'image')),
    [envelopes],
  );
  const viewer: PhotoViewer = useMemo(() => ({ client, open: (att, opener) => setViewing({ id: att.id, opener }) }), [client]);
  const viewIndex = viewing ? photos.findIndex((p) => p.id === viewing.id) : -1;
  const closeViewer = useCallback(() => {
    const opener = viewing?.opener;
    setViewing(null);
    // The opener may have scrolled out of the virtualized window meanwhile: then the list takes focus.
    requestAnimationFrame(() => (opener?.isConnected ? opener : document.querySelector<HTMLElement>('[data-testid=message-scroller]'))?.focus());
  }, [viewing]);

  // Files dropped anywhere on the channel go to the composer.
  const [dragging, setDragging] = useState(false);
  const hasFiles = (e: React.DragEvent) => [...e.dataTransfer.types].includes('Files');
  return (
    <PhotoViewerContext.Provider value={viewer}>
    <section
      className={styles.view}
      aria-label={`#${channel}`}
      onDragOver={(e) => {
        if (!hasFiles(e)) return;
        e.preventDefault();
        e.dataTransfer.dropEffect = 'copy';
        setDragging(true);
      }}
      onDragLeave={(e) => {
        if (!e.currentTarget.contains(e.relatedTarget as Node | null)) setDragging(false);
      }}
      onDrop={(e) => {
        setDragging(false);
        if (e.dataTransfer.files.length === 0) return;
        e.preventDefault();
        pending.add([...e.dataTransfer.files]);
      }}
    >
      {dragging && (
        <div className={styles.dropZone} aria-hidden>
          Drop files to attach them to your message in #{channel}
        </div>
      )}
      {envelopes === undefined ? (
        <div className={styles.loading}>Loading history…</div>
      ) : envelopes.length === 0 && outgoing.length === 0 ? (
        <div className={styles.empty} data-testid="channel-empty">
          <p>No messages in #{channel} yet{snapshot.sync[channel]?.state === 'syncing' ? ' — fetching history from peers…' : '.'}</p>
        </div>
      ) : (
        <MessageList
          ref={list}
          channel={channel}
          rows={rows}
          self={self}
          names={names}
          hasOlder={win.hasOlder}
          onLoadOlder={win.loadOlder}
          onAtEndChange={setAtEnd}
          onReply={setReplyTo}
          onJumpToOriginal={jumpToOriginal}
          onRetry={(id) => void client.retry(id)}
          onDiscard={(id) => client.discard(id)}
          original={original}
        />
      )}
      <LiveAnnouncer text={announce} />
      <Composer
        channel={channel}
        maxLength={maxLength}
        replyTo={replyTo}
        names={names}
        onCancelReply={() => setReplyTo(null)}
        onSend={onSend}
        attachments={pending}
        onEscape={() => {
          setDivider({ channel, after: null });
          list.current?.scrollToEnd();
        }}
      />
      {viewing && viewIndex >= 0 && (
        <Lightbox client={client} photos={photos} index={viewIndex} onIndex={(i) => setViewing({ id: photos[i]!.id, opener: viewing.opener })} onClose={closeViewer} />
      )}
    </section>
    </PhotoViewerContext.Provider>
  );
}
