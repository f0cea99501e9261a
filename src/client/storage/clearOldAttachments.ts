// "Clear old attachments" (SPEC.md H15, UI11): drops the content of attachments older than a chosen age,
// keeping every message and the attachments' signed metadata, so a photo shows its thumbnail and is
// fetched again from peers when viewed.
import { encodeTime } from 'ulidx';
import type { HistoryStore } from '../../shared/store/HistoryStore';

/** The ages the panel offers, youngest first. The default keeps the last day: what a user just saw stays. */
export const CLEAR_AGES = [
  { label: 'older than a day', ms: 24 * 60 * 60 * 1000 },
  { label: 'older than a week', ms: 7 * 24 * 60 * 60 * 1000 },
  { label: 'older than 30 days', ms: 30 * 24 * 60 * 60 * 1000 },
  { label: 'all of them', ms: 0 },
] as const;

/** Attachments whose content is dropped per store call: one IndexedDB transaction each, never all at once. */
export const CLEAR_BATCH = 200;

/**
 * The lowest ULID minted at `ms` or later. Ids are the relay's ULIDs (time first, H1), so "older than
 * `ms`" is the id range below this.
 */
export function ulidBoundAt(ms: number): string {
  return encodeTime(Math.max(0, Math.floor(ms)), 10) + '0'.repeat(16);
}

export async function clearOldAttachments(
  store: Pick<HistoryStore, 'dropAttachmentBytes'>,
  olderThanMs: number,
  now: number = Date.now(),
): Promise<{ attachments: number; bytes: number }> {
  // Age 0 = all of them, also those minted "now" on a relay whose clock runs ahead of ours.
  const range = olderThanMs > 0 ? { to: ulidBoundAt(now - olderThanMs) } : {};
  let attachments = 0;
  let bytes = 0;
  for (;;) {
    const r = await store.dropAttachmentBytes({ ...range, limit: CLEAR_BATCH });
    attachments += r.ids.length;
    bytes += r.bytes;
    if (r.ids.length < CLEAR_BATCH) return { attachments, bytes };
  }
}

/** 1536 -> "1.5 KB"; decimal units, as browsers and operating systems show disk use. */
export function formatBytes(n: number): string {
  if (n < 1000) return `${n} B`;
  const units = ['KB', 'MB', 'GB', 'TB'];
  let v = n;
  let i = -1;
  do {
    v /= 1000;
    i++;
  } while (v >= 1000 && i < units.length - 1);
  return `${v >= 100 ? Math.round(v) : v.toFixed(1)} ${units[i]}`;
}
