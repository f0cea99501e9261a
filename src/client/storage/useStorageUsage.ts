// What the app stores, for the Storage section: the store's own counts (messages, attachments, content
// bytes) and the browser's view of the whole origin (navigator.storage: usage, quota, persisted).
import { useCallback, useEffect, useState } from 'react';
import type { HistoryStore, StoreUsage } from '../../shared/store/HistoryStore';

export interface StorageUsage {
  store: StoreUsage | null;
  /** navigator.storage.estimate(): every database and cache of this origin; null when unsupported. */
  estimate: { usage: number; quota: number } | null;
  /** navigator.storage.persisted(); null when unsupported. */
  persisted: boolean | null;
  error: string | null;
}

const EMPTY: StorageUsage = { store: null, estimate: null, persisted: null, error: null };

/** `store` null: not open yet (nothing is read until it is). */
export function useStorageUsage(store: Pick<HistoryStore, 'usage'> | null): { usage: StorageUsage; refresh(): void } {
  const [usage, setUsage] = useState<StorageUsage>(EMPTY);
  const [tick, setTick] = useState(0);
  useEffect(() => {
    if (!store) return;
    let live = true;
    void (async () => {
      const next: StorageUsage = { ...EMPTY };
      try {
        next.store = await store.usage();
      } catch (err) {
        next.error = String((err as Error)?.message ?? err);
      }
      try {
        const e = await navigator.storage?.estimate?.();
        if (e) next.estimate = { usage: e.usage ?? 0, quota: e.quota ?? 0 };
        next.persisted = (await navigator.storage?.persisted?.()) ?? null;
      } catch {
        // Unsupported or refused (some private modes): shown as unknown.
      }
      if (live) setUsage(next);
    })();
    return () => {
      live = false;
    };
  }, [store, tick]);
  return { usage, refresh: useCallback(() => setTick((t) => t + 1), []) };
}
