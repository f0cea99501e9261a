// A live query of one index range that re-runs at most once per `minIntervalMs` while writes keep coming
// (coalescedRunner): useLiveQuery re-ran the channel window on every batch a catch-up stored, reading up to
// WINDOW_MAX rows and re-rendering the list each time (bench:client part 4: 83 re-runs reading 180,000
// rows for 10,000 envelopes caught up). Writes are seen through Dexie's `storagemutated` event, which also
// carries other tabs' writes, as useLiveQuery's are; only writes inside `range` of `index` (or deletions,
// which Dexie may not attribute to an index) wake it.
import { Dexie, type IndexableType, RangeSet, rangesOverlap } from 'dexie';
import { type DependencyList, useEffect, useState } from 'react';
import { coalescedRunner } from './coalescedRunner';

export interface WatchedRange {
  db: string;
  table: string;
  /** The index as Dexie names it, e.g. '[channel+id]'. */
  index: string;
  lower: IndexableType;
  upper: IndexableType;
}

/** `initial` is returned until the first answer (as useLiveQuery's default result). */
export function useCoalescedQuery<T>(
  query: () => Promise<T>,
  watch: WatchedRange,
  minIntervalMs: number,
  deps: DependencyList,
  initial?: T,
): T | undefined {
  const [value, setValue] = useState<T | undefined>(initial);
  useEffect(() => {
    let alive = true;
    const runner = coalescedRunner(async () => {
      const v = await query();
      if (alive) setValue(() => v);
    }, minIntervalMs);
    const mine = new RangeSet(watch.lower, watch.upper);
    const base = `idb://${watch.db}/${watch.table}/`;
    const onMutated = (parts: Record<string, unknown>): void => {
      const written = parts[base + watch.index] as RangeSet | undefined;
      if ((written && rangesOverlap(written, mine)) || parts[`${base}:dels`]) runner.poke();
    };
    Dexie.on('storagemutated', onMutated);
    runner.poke();
    return () => {
      alive = false;
      runner.dispose();
      Dexie.on('storagemutated').unsubscribe(onMutated);
    };
    // The caller's deps decide when the query and its range change (as with useLiveQuery).
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, deps);
  return value;
}
