// Unread counts come from the store every time, never from a counter kept beside it: a count is "how many
// envelopes of others in this channel have an id above my read marker", an indexed range on [channel+id].
// So a reload, a second tab or a catch-up can never make it drift (the "phantom ping" class of bugs).
import { useLiveQuery } from 'dexie-react-hooks';
import { useCallback } from 'react';
import { appDb } from '../appDb';
import { historyReader } from '../history/historyDb';

/** Counted up to here; shown as "99+" beyond. */
export const UNREAD_CAP = 100;

export function useReadMarkers(): Record<string, string> | undefined {
  return useLiveQuery(async () => {
    const rows = await appDb().reads.toArray();
    return Object.fromEntries(rows.map((r) => [r.channel, r.lastReadId]));
  }, []);
}

export function useUnreadCounts(channels: readonly string[], self: string, markers: Record<string, string> | undefined): Record<string, number> {
  const key = channels.join(',');
  return (
    useLiveQuery(async () => {
      if (!markers) return {};
      const reader = historyReader();
      const out: Record<string, number> = {};
      for (const ch of channels) out[ch] = await reader.unreadCount(ch, markers[ch] ?? '', self, UNREAD_CAP);
      return out;
    }, [key, self, markers]) ?? {}
  );
}

/** Moves the channel's read marker forward to `id` (never back). */
export async function markRead(channel: string, id: string): Promise<void> {
  if (!id) return;
  const db = appDb();
  await db.transaction('rw', db.reads, async () => {
    const cur = await db.reads.get(channel);
    if (!cur || cur.lastReadId < id) await db.reads.put({ channel, lastReadId: id });
  });
}

export function useMarkRead() {
  return useCallback((channel: string, id: string) => void markRead(channel, id), []);
}

export const unreadLabel = (n: number): string => (n >= UNREAD_CAP ? '99+' : String(n));
