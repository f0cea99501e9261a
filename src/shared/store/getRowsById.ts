// Reads rows of a Dexie table by primary key. Its own module: the app's first-paint reader
// (src/client/history/historyDb.ts) uses it without pulling in DexieStore.
import type { Table } from 'dexie';

/**
 * getRowsById reads a span of ids in one range query when the span holds at most this many rows per id
 * asked (so a range read never reads more than twice what was asked).
 */
export const RANGE_READ_SLACK = 2;

/**
 * Rows by primary key, in the order asked (undefined where absent). The ids a catch-up asks for at once
 * are neighbours in the store (a GET_MSGS is 128 consecutive needs, newest first), so when the span from
 * the lowest to the highest holds at most RANGE_READ_SLACK x as many rows, they are read as one range
 * (a count and a getAll) instead of one request per id: Dexie's bulkGet issues a get per key, each a round
 * trip to IndexedDB's backend (SPEC.md H17). Run it inside a transaction for one consistent view.
 */
export async function getRowsById<R extends { id: string }>(table: Table<R, string>, ids: readonly string[]): Promise<(R | undefined)[]> {
  if (ids.length === 0) return [];
  let lo = ids[0]!;
  let hi = ids[0]!;
  for (const id of ids) {
    if (id < lo) lo = id;
    if (id > hi) hi = id;
  }
  const span = table.where(':id').between(lo, hi, true, true);
  if (ids.length > 1 && (await span.count()) <= RANGE_READ_SLACK * ids.length) {
    const byId = new Map((await span.toArray()).map((r) => [r.id, r]));
    return ids.map((id) => byId.get(id));
  }
  return table.bulkGet(ids as string[]);
}

