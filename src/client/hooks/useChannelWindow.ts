// The window of a channel's history the list shows, read live from IndexedDB. It starts at the newest
// PAGE envelopes, then is anchored at its oldest id: new envelopes (from the relay, from peers, our own)
// extend it at the end, older pages extend it at the start (keyset paging on [channel+id], so rows never
// shift as they would with offsets). One live query covers the whole window, so a catch-up that fills
// holes inside it shows up too.
import { useLiveQuery } from 'dexie-react-hooks';
import { useCallback, useEffect, useRef, useState } from 'react';
import type { Envelope } from '../../shared/protocol/relay';
import { historyReader } from '../history/historyDb';

/** Envelopes loaded at open and per older page. */
export const PAGE = 150;
/** The most envelopes one window holds (~1 KiB each); beyond, the oldest are let go. */
export const WINDOW_MAX = 3000;

export interface ChannelWindow {
  envelopes: Envelope[] | undefined;
  hasOlder: boolean;
  loadOlder(): void;
  /** Grows the window back to `id` (a reply's original); false if it is not stored. */
  reachBack(id: string): Promise<boolean>;
}

export function useChannelWindow(channel: string): ChannelWindow {
  const reader = historyReader();
  const [start, setStart] = useState<{ channel: string; id: string | null }>({ channel, id: null });
  const [hasOlder, setHasOlder] = useState(true);
  const loading = useRef(false);
  const startId = start.channel === channel ? start.id : null;

  useEffect(() => {
    setStart({ channel, id: null });
    setHasOlder(true);
  }, [channel]);

  const envelopes = useLiveQuery(async () => {
    if (startId === null) return reader.latest(channel, PAGE);
    const rows = await reader.fromNewest(channel, startId, WINDOW_MAX);
    return rows;
  }, [channel, startId]);

  // Anchor at the first page's oldest id once there is one, so later arrivals extend instead of shifting.
  useEffect(() => {
    if (startId === null && envelopes && envelopes.length > 0) {
      setStart({ channel, id: envelopes[0]!.id });
      if (envelopes.length < PAGE) setHasOlder(false);
    }
  }, [envelopes, startId, channel]);

  const loadOlder = useCallback(() => {
    if (loading.current || !hasOlder || startId === null) return;
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
  }, [channel, startId, hasOlder, envelopes, reader]);

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
