// The virtualized message list (TanStack Virtual's chat mode): anchored to the end, it follows new
// messages only while the reader is at the bottom, and keeps the visible row still when older rows are
// prepended. Rows are keyed by envelope id (never by index) so measurements survive prepends.
import { useVirtualizer } from '@tanstack/react-virtual';
import { forwardRef, useCallback, useEffect, useImperativeHandle, useLayoutEffect, useRef, useState } from 'react';
import type { Envelope } from '../../shared/protocol/relay';
import type { Row } from '../history/buildRows';
import { MessageRow, type NameLookup } from './MessageRow';
import styles from './MessageList.module.css';

/** Within this many pixels of the end the reader counts as "at the bottom". */
const AT_END_PX = 80;
/** Ask for older rows when the first rendered row is within this many rows of the top. */
const PREFETCH_ROWS = 15;

export interface MessageListHandle {
  scrollToEnd(): void;
  /** Scrolls to the row of envelope `id` and flashes it; false if it is not in the window. */
  scrollToMessage(id: string): boolean;
}

export interface MessageListProps {
  channel: string;
  rows: Row[];
  self: string;
  names: NameLookup;
  /** There may be rows older than the first one. */
  hasOlder: boolean;
  onLoadOlder(): void;
  onAtEndChange(atEnd: boolean): void;
  onReply(env: Envelope): void;
  onJumpToOriginal(id: string): void;
  onRetry(clientId: string): void;
  onDiscard(clientId: string): void;
  /** Resolves a reply's original for its quote (from the window or the store). */
  original(id: string): Envelope | undefined;
}

export const MessageList = forwardRef<MessageListHandle, MessageListProps>(function MessageList(props, ref) {
  const { rows } = props;
  const scrollRef = useRef<HTMLDivElement>(null);
  const [atEnd, setAtEnd] = useState(true);
  const [flash, setFlash] = useState<string | null>(null);
  const v = useVirtualizer({
    count: rows.length,
    getScrollElement: () => scrollRef.current,
    estimateSize: (i) => (rows[i]?.kind === 'day' || rows[i]?.kind === 'new' ? 32 : rows[i] && 'head' in rows[i]! && rows[i]!.head ? 58 : 26),
    getItemKey: (i) => rows[i]!.key,
    anchorTo: 'end',
    followOnAppend: true,
    scrollEndThreshold: AT_END_PX,
    overscan: 8,
    // React 19 warns about flushSync inside lifecycle methods when rows measure in their ref callback.
    useFlushSync: false,
  });

  useImperativeHandle(ref, () => ({
    scrollToEnd: () => v.scrollToEnd(),
    scrollToMessage(id) {
      const i = rows.findIndex((r) => r.key === id);
      if (i < 0) return false;
      v.scrollToIndex(i, { align: 'center' });
      setFlash(id);
      return true;
    },
  }), [rows, v]);

  // Opening a channel: at the "new" divider when there is one, else at the bottom.
  const opened = useRef<string | null>(null);
  useLayoutEffect(() => {
    if (opened.current === props.channel || rows.length === 0) return;
    opened.current = props.channel;
    const divider = rows.findIndex((r) => r.kind === 'new');
    if (divider >= 0) v.scrollToIndex(divider, { align: 'start' });
    else v.scrollToEnd();
  }, [props.channel, rows, v]);

  const items = v.getVirtualItems();
  const first = items[0]?.index ?? 0;
  const { hasOlder, onLoadOlder } = props;
  useEffect(() => {
    if (hasOlder && rows.length > 0 && first < PREFETCH_ROWS) onLoadOlder();
  }, [first, hasOlder, onLoadOlder, rows.length]);

  const onScroll = useCallback(() => {
    const end = v.isAtEnd(AT_END_PX);
    setAtEnd((was) => {
      if (was !== end) props.onAtEndChange(end);
      return end;
    });
  }, [v, props]);

  useEffect(() => {
    if (!flash) return;
    const t = setTimeout(() => setFlash(null), 1500);
    return () => clearTimeout(t);
  }, [flash]);

  return (
    <div className={styles.wrap}>
      <div
        ref={scrollRef}
        className={styles.scroller}
        onScroll={onScroll}
        data-testid="message-scroller"
        tabIndex={0}
        aria-label={`Messages in #${props.channel}`}
      >
        <div role="list" className={styles.inner} style={{ height: v.getTotalSize() }}>
          {items.map((it) => {
            const row = rows[it.index]!;
            return (
              <div
                key={it.key}
                data-index={it.index}
                data-key={row.key}
                ref={v.measureElement}
                role="listitem"
                aria-setsize={rows.length}
                aria-posinset={it.index + 1}
                className={styles.row}
                style={{ transform: `translateY(${it.start}px)` }}
              >
                <MessageRow
                  row={row}
                  self={props.self}
                  names={props.names}
                  flash={flash === row.key}
                  original={props.original}
                  onReply={props.onReply}
                  onJumpToOriginal={props.onJumpToOriginal}
                  onRetry={props.onRetry}
                  onDiscard={props.onDiscard}
                />
              </div>
            );
          })}
        </div>
      </div>
      {!atEnd && (
        <button type="button" className={styles.jump} onClick={() => v.scrollToEnd()} data-testid="jump-to-present">
          Jump to present ↓
        </button>
      )}
    </div>
  );
});
