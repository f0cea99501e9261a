// The window of a channel's history the list shows, read live from IndexedDB. It starts at the newest
// PAGE envelopes, then is anchored at its oldest id: new envelopes (from the relay, from peers, our own)
// extend it at the end, older pages extend it at the start (keyset paging on [channel+id], so rows never
// shift as they would with offsets). One live query covers the whole window, so a catch-up that fills
// holes inside it shows up too.
import { useLiveQuery } from 'dexie-react-hooks';
import { useCallback, useEffect, useRef, useState } from 'react';
import type { Envelope } from '../../shared/protocol/relay';
import { historyReader } from '../history/historyDb';
import { liveRead } from './liveRead';

/** Envelopes loaded at open and per older page. */
export const PAGE = 150;
/** The most envelopes one window holds (~1 KiB each); beyond, the oldest are let go. */
export const WINDOW_MAX = 3000;
/** Below every ULID: a window anchored here holds the channel from its first envelope on. */
const CHANNEL_START = '';

/**
 * The first page of the channel in the address bar, read at boot (main.tsx) while the identity, the tab
 * lock and the client core load. The channel view then paints from it at its first render instead of
 * starting its own read only then (one IndexedDB open and read off the path to the first message); its
 * live query takes over a moment later. One entry, taken once: a later visit reads afresh.
 */
let bootPage: { channel: string; envelopes?: Envelope[] } | null = null;

export function prefetchFirstPage(channel: string, reader = historyReader()): Promise<void> {
  const mine = { channel } as { channel: string; envelopes?: Envelope[] };
  bootPage = mine;
  return reader.latest(channel, PAGE).then(
    (envelopes) => {
      // Taken (or replaced) before it was read: a late answer would be a stale page for a later visit.
      if (bootPage === mine) mine.envelopes = envelopes;
    },
    () => {}, // the live query reads again and reports its own failure
  );
}

/** The boot page of `channel` if it has been read; the boot read is spent either way. */
export function takeFirstPage(channel: string): Envelope[] | undefined {
  const page = bootPage;
  if (page?.channel !== channel) return undefined;
  bootPage = null;
  return page.envelopes;
}

export interface ChannelWindow {
  envelopes: Envelope[] | undefined;
  hasOlder: boolean;
  loadOlder(): void;
  /** Grows the window back to `id` (a reply's original); false if it is not stored. */
  reachBack(id: string): Promise<boolean>;
}

export function useChannelWindow(channel: string): ChannelWindow {
  const reader = historyReader();
  const [boot] = useState(() => takeFirstPage(channel));
  // With a boot page the window is anchored from the start (at the channel's start when the page held the
  // whole channel, as below): the live query's first run is then the window itself, not a second read of
  // the newest page followed by a third from the anchor.
  const [bootAnchor] = useState<string | null>(() => (boot && boot.length > 0 ? (boot.length < PAGE ? CHANNEL_START : boot[0]!.id) : null));
  const [start, setStart] = useState<{ channel: string; id: string | null }>(() => ({ channel, id: bootAnchor }));
  const [hasOlder, setHasOlder] = useState(() => !boot || boot.length >= PAGE);
  const loading = useRef(false);
  const startId = start.channel === channel ? start.id : null;

  const anchoredAtBoot = useRef(boot !== undefined);
  useEffect(() => {
    // Start over at the channel's newest page; not at a mount that anchored at the boot page, which this
    // would drop (only the first run can see that mark).
    if (anchoredAtBoot.current) return void (anchoredAtBoot.current = false);
    setStart({ channel, id: null });
    setHasOlder(true);
  }, [channel]);

  // Tagged with what it was read for: until a new query answers, useLiveQuery keeps returning the previous
  // one (another channel's rows, or the window before its anchor moved), and decisions taken on that
  // would anchor a channel on another's ids or page back again and again before a page has landed.
  // Until the first answer: the boot read of this channel, if there was one.
  const initial = start.channel === channel && boot ? { channel, from: bootAnchor, rows: boot } : undefined;
  // The newest page, before the window is anchored: a plain live query of PAGE envelopes.
  const newest = useLiveQuery(
    async () => (startId === null ? { channel, from: null, rows: await reader.latest(channel, PAGE) } : null),
    [channel, startId],
    initial?.from === null ? initial : undefined,
  );
  // The anchored window: observed through its size (liveRead), read taking the envelopes of the last read
  // as they are (fromNewestKnown). `known` holds at most WINDOW_MAX, replaced on every read.
  const known = useRef<ReadonlyMap<string, Envelope>>(new Map());
  const [anchored, setAnchored] = useState<{ channel: string; from: string | null; rows: Envelope[] } | undefined>(initial?.from !== null ? initial : undefined);
  const [failed, setFailed] = useState<unknown>(null);
  useEffect(() => {
    if (startId === null) return;
    return liveRead(
      () => reader.windowSize(channel, startId),
      async () => {
        const rows = await reader.fromNewestKnown(channel, startId, WINDOW_MAX, known.current);
        known.current = new Map(rows.map((e) => [e.id, e]));
        return { channel, from: startId, rows };
      },
      setAnchored,
      setFailed,
    );
  }, [channel, startId, reader]);
  // As useLiveQuery does: a failed read surfaces in render (the error boundary).
  if (failed) throw failed;
  // The answer for what is asked now, else the last answer shown (as useLiveQuery keeps its last result
  // until the new query answers: a window that re-anchors never shows empty meanwhile).
  const fresh = [newest, anchored].find((r) => r && r.channel === channel && r.from === startId) ?? undefined;
  const shown = useRef(initial);
  if (fresh) shown.current = fresh;
  const result = fresh ?? shown.current;
  const envelopes = result?.rows;
  const current = result !== undefined && result.channel === channel && result.from === startId;

  // Anchor once the first page has rows, so later arrivals extend the window instead of shifting it. A
  // first page that was not full held the whole channel: the window then starts at the channel's start,
  // not at the oldest id seen so far, because envelopes are not stored in id order -- a catch-up fetches
  // newest first, and our own post's confirmation races the relay's stream -- and one older than that id
  // arriving later would fall below the window, never shown (UI1; e2e S1 once missed the first post so).
  useEffect(() => {
    if (startId === null && current && envelopes && envelopes.length > 0) {
      const whole = envelopes.length < PAGE;
      setStart({ channel, id: whole ? CHANNEL_START : envelopes[0]!.id });
      if (whole) setHasOlder(false);
    }
  }, [envelopes, current, startId, channel]);

  const loadOlder = useCallback(() => {
    // One page at a time: the next only once the last one is in the window (the list asks again as it
    // renders; under load it asked a dozen times before the first page landed and ran to WINDOW_MAX).
    if (loading.current || !hasOlder || startId === null || !current) return;
    if (envelopes && envelopes.length >= WINDOW_MAX) {
      setHasOlder(false);
      return;
    }
    loading.current = true;
    void reader
      .before(channel, startId, PAGE)
      .then((older) => {
        if (older.length < PAGE) setHasOlder(false);
        if (older.length > 0) setStart({ channel, id: older[0]!.id });
      })
      .finally(() => {
        loading.current = false;
      });
  }, [channel, startId, hasOlder, envelopes, current, reader]);

  const reachBack = useCallback(
    async (id: string) => {
      const env = await reader.get(id);
      if (!env || env.post.channel !== channel) return false;
      if (startId !== null && id >= startId) return true;
      const before = await reader.before(channel, id, 20);
      setStart({ channel, id: before[0]?.id ?? id });
      return true;
    },
    [channel, startId, reader],
  );

  return { envelopes, hasOlder: hasOlder && startId !== null, loadOlder, reachBack };
}
