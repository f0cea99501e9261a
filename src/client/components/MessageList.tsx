// The virtualized message list (TanStack Virtual's chat mode): anchored to the end, it follows new
// messages only while the reader is at the bottom, and keeps the visible row still when older rows are
// prepended. Rows are keyed by envelope id (never by index) so measurements survive prepends.
import { useVirtualizer } from '@tanstack/react-virtual';
import { forwardRef, useCallback, useEffect, useImperativeHandle, useLayoutEffect, useRef, useState } from 'react';
import type { Envelope } from '../../shared/protocol/relay';
import type { Row } from '../history/buildRows';
import { markHistoryPlaced } from '../history/historyPlaced';
import { attachmentsHeight } from './MessageAttachments';
import { MessageRow, type NameLookup } from './MessageRow';
import styles from './MessageList.module.css';

/** Within this many pixels of the end the reader counts as "at the bottom". */
const AT_END_PX = 80;
/** Ask for older rows when the reader is within this many pixels of the top. */
const PREFETCH_PX = 1200;

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

/** The most frames spent placing a channel's rows before they are shown anyway. */
const MAX_PLACE_FRAMES = 3;

export const MessageList = forwardRef<MessageListHandle, MessageListProps>(function MessageList(props, ref) {
  const { rows } = props;
  const scrollRef = useRef<HTMLDivElement>(null);
  const [atEnd, setAtEnd] = useState(true);
  const [flash, setFlash] = useState<string | null>(null);
  const v = useVirtualizer({
    count: rows.length,
    getScrollElement: () => scrollRef.current,
    estimateSize: (i) => {
      const r = rows[i];
      if (!r || r.kind === 'new' || r.kind === 'gap') return 32;
      // Photos and file cards add their known height (MD7): an estimate close to the measure keeps the
      // scroll position still when the row mounts and is measured.
      const atts = r.kind === 'msg' ? r.env.post.attachments : (r.post.attachments ?? []);
      return (r.head ? 58 : 26) + (r.day ? 32 : 0) + attachmentsHeight(atts);
    },
    getItemKey: (i) => rows[i]!.key,
    anchorTo: 'end',
    followOnAppend: true,
    scrollEndThreshold: AT_END_PX,
    overscan: 8,
    // useFlushSync stays on (the default): a row measured above the view moves the scroll position at
    // once, and the rows' new positions must be rendered in that same task. Without it a slow CPU showed
    // the rows jumped by what the rows above lost to their measure (10 px, UI1 throttled). The library
    // leaves flushSync out for measures from its ref callback, where React would warn.
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
  // Older pages are not asked for until then: the scroller starts at the top, which would look like
  // "the reader scrolled up" and pull in pages the reader never wanted.
  const [positioned, setPositioned] = useState(false);
  const rowsRef = useRef(rows);
  rowsRef.current = rows;
  const hasRows = rows.length > 0;
  useLayoutEffect(() => {
    if (!hasRows) return;
    setPositioned(false);
    const place = () => {
      const divider = rowsRef.current.findIndex((r) => r.kind === 'new');
      if (divider >= 0) v.scrollToIndex(divider, { align: 'start' });
      else v.scrollToEnd();
    };
    place();
    // Rows measure after their first paint; place again once sizes are real, and show the rows as soon as
    // every row in view has its real size and the view is where it should be. Sizes of rows out of view
    // may still change (the estimate of each unmeasured row stays until it is rendered), but the list
    // keeps what is in view still when they do. A fixed three frames cost the first placed message of a
    // 10,000-message channel two frames of work (bench:client); MAX_PLACE_FRAMES is still the most.
    const inPlace = (): boolean => {
      const el = scrollRef.current;
      if (!el) return false;
      const top = el.scrollTop;
      const bottom = top + el.clientHeight;
      const inView = v.getVirtualItems().filter((it) => it.end > top && it.start < bottom);
      if (inView.length === 0 || !inView.every((it) => v.itemSizeCache.has(it.key))) return false;
      // And the page shows those sizes: a measure the list has not rendered yet leaves rows where they were.
      const origin = el.getBoundingClientRect().top - top;
      for (const it of inView) {
        const row = el.querySelector(`[data-index="${it.index}"]`);
        if (!row || Math.abs(row.getBoundingClientRect().top - origin - it.start) > 1) return false;
      }
      const divider = rowsRef.current.findIndex((r) => r.kind === 'new');
      if (divider < 0) return v.isAtEnd(1);
      // At the top of the view, or as near it as the end of the list lets it be.
      const at = inView.find((it) => it.index === divider);
      return at !== undefined && (Math.abs(at.start - top) <= 1 || v.isAtEnd(1));
    };
    let frames = 0;
    let raf = 0;
    const settle = () => {
      place();
      if (inPlace() || ++frames >= MAX_PLACE_FRAMES) setPositioned(true);
      else raf = requestAnimationFrame(settle);
    };
    raf = requestAnimationFrame(settle);
    return () => cancelAnimationFrame(raf);
  }, [props.channel, hasRows, v]);

  useEffect(() => {
    if (positioned) markHistoryPlaced();
  }, [positioned]);

  const items = v.getVirtualItems();
  const first = items[0]?.index ?? 0;
  const { hasOlder, onLoadOlder } = props;
  useEffect(() => {
    // The real scroll position, not the rendered range: right after a prepend the range is stale for a
    // render, and would ask for page after page.
    const top = scrollRef.current?.scrollTop ?? Infinity;
    if (positioned && hasOlder && rows.length > 0 && top < PREFETCH_PX) onLoadOlder();
  }, [positioned, first, hasOlder, onLoadOlder, rows.length]);

  const onScroll = useCallback(() => {
    const end = v.isAtEnd(AT_END_PX);
    setAtEnd((was) => {
      if (was !== end) props.onAtEndChange(end);
      return end;
    });
  }, [v, props]);

  // The viewport shrinks when the composer grows (files waiting, a longer draft): a reader who was at the
  // bottom stays there instead of having the newest rows slide under the composer. Judged from the DOM
  // before the shrink (the at-end state can lag the first placement).
  useEffect(() => {
    const el = scrollRef.current;
    if (!el) return;
    let height = el.clientHeight;
    const ro = new ResizeObserver(() => {
      const wasAtEnd = el.scrollHeight - el.scrollTop - height <= AT_END_PX;
      if (el.clientHeight < height && wasAtEnd) el.scrollTop = el.scrollHeight;
      height = el.clientHeight;
    });
    ro.observe(el);
    return () => ro.disconnect();
  }, []);

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
        // Hidden (still laid out and measured) until placed, so the top of the window never flashes.
        style={{ visibility: positioned ? 'visible' : 'hidden' }}
        data-positioned={positioned}
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
