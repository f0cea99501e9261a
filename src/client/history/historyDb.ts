// Read-only window queries over the history database that DexieStore writes (same name, same schema
// version 1). The UI reads here so `useLiveQuery` re-runs when the store adds rows, without reaching into
// DexieStore's private tables; writes stay with the store, which verifies before it puts (SPEC.md G2).
import { Dexie, type Table } from 'dexie';
import type { Envelope } from '../../shared/protocol/relay';
import { getRowsById } from '../../shared/store/getRowsById';

export const HISTORY_DB_NAME = 'peerchat-history';

interface MessageRow {
  id: string;
  channel: string;
  env: Envelope;
}

export interface HistoryReaderOptions {
  /** The IndexedDB factory; Node tests pass fake-indexeddb's. @default globalThis.indexedDB */
  indexedDB?: IDBFactory;
  /** Must come from the same implementation as `indexedDB`. @default globalThis.IDBKeyRange */
  IDBKeyRange?: typeof IDBKeyRange;
}

export class HistoryReader {
  readonly db: Dexie;
  readonly #messages: Table<MessageRow, string>;
  constructor(name = HISTORY_DB_NAME, options: HistoryReaderOptions = {}) {
    this.db = new Dexie(name, {
      // Dexie's query cache deep-copies every live query's result for each subscriber and applies only
      // writes made through this instance, which makes none (DexieStore writes): off, so a window re-read
      // during a catch-up is not copied again (bench:client: 0.2 s of deepClone).
      cache: 'disabled',
      ...(options.indexedDB ? { indexedDB: options.indexedDB } : {}),
      ...(options.IDBKeyRange ? { IDBKeyRange: options.IDBKeyRange } : {}),
    });
    // Must equal DexieStore's version(1) schema: Dexie opens a newer database with an older declared
    // version as long as the tables declared here exist there.
    this.db.version(1).stores({ messages: 'id, [channel+id]', attachments: 'id', attachmentBytes: 'id' });
    this.#messages = this.db.table('messages');
  }

  /** The newest `limit` envelopes of a channel, oldest first. */
  async latest(channel: string, limit: number): Promise<Envelope[]> {
    const rows = await this.#messages
      .where('[channel+id]')
      .between([channel, Dexie.minKey], [channel, Dexie.maxKey])
      .reverse()
      .limit(limit)
      .toArray();
    return rows.reverse().map((r) => r.env);
  }

  /** Up to `limit` envelopes strictly before `beforeId`, oldest first (keyset paging, not offsets). */
  async before(channel: string, beforeId: string, limit: number): Promise<Envelope[]> {
    const rows = await this.#messages
      .where('[channel+id]')
      .between([channel, Dexie.minKey], [channel, beforeId], true, false)
      .reverse()
      .limit(limit)
      .toArray();
    return rows.reverse().map((r) => r.env);
  }

  /** Everything from `fromId` (inclusive) to the newest, oldest first: the live tail of a window. */
  async from(channel: string, fromId: string, limit: number): Promise<Envelope[]> {
    const rows = await this.#messages
      .where('[channel+id]')
      .between([channel, fromId], [channel, Dexie.maxKey], true, true)
      .limit(limit)
      .toArray();
    return rows.map((r) => r.env);
  }

  /** From `fromId` (inclusive) to the newest, at most the newest `limit`, oldest first. */
  async fromNewest(channel: string, fromId: string, limit: number): Promise<Envelope[]> {
    const rows = await this.#newest(channel, fromId, limit).toArray();
    return rows.reverse().map((r) => r.env);
  }

  /** The channel's rows from `fromId` (inclusive), newest first, at most `limit`. */
  #newest(channel: string, fromId: string, limit: number) {
    return this.#messages
      .where('[channel+id]')
      .between([channel, fromId], [channel, Dexie.maxKey], true, true)
      .reverse()
      .limit(limit);
  }

  /**
   * `fromNewest`, reading from rows only the envelopes `known` lacks: the window's ids come from the
   * index alone (keys, no values), and an envelope never changes once stored (first write wins, H2), so
   * one already held is taken as it is. A live query re-runs after every write to the channel: reading
   * its whole window each time (up to WINDOW_MAX envelopes) cost a catch-up of 10,000 more main-thread
   * time than storing them (bench:client).
   */
  async fromNewestKnown(channel: string, fromId: string, limit: number, known: ReadonlyMap<string, Envelope>): Promise<Envelope[]> {
    const ids = await this.#newest(channel, fromId, limit).primaryKeys();
    ids.reverse();
    const missing = ids.filter((id) => !known.has(id));
    // The missing ones are mostly neighbours too (a catch-up part, a live message at the end): one range.
    const rows = missing.length > 0 ? await getRowsById(this.#messages, missing) : [];
    const read = new Map<string, Envelope>();
    for (const r of rows) if (r) read.set(r.id, r.env);
    const out: Envelope[] = [];
    for (const id of ids) {
      // Gone between the two reads (cleared, evicted): left out, as a fresh read would.
      const env = known.get(id) ?? read.get(id);
      if (env) out.push(env);
    }
    return out;
  }

  /** How many envelopes the window from `fromId` holds: what a window's live read observes (liveRead). */
  async windowSize(channel: string, fromId: string): Promise<number> {
    return this.#messages.where('[channel+id]').between([channel, fromId], [channel, Dexie.maxKey], true, true).count();
  }

  /** Envelopes around `id` (for jumping to a reply's original). */
  async around(channel: string, id: string, each: number): Promise<Envelope[]> {
    const older = await this.before(channel, id, each);
    const newer = await this.from(channel, id, each);
    return [...older, ...newer];
  }

  async get(id: string): Promise<Envelope | undefined> {
    return (await this.#messages.get(id))?.env;
  }

  /** Messages after `afterId` in a channel, not counting the user's own. Indexed range count + key scan. */
  async unreadCount(channel: string, afterId: string, self: string, cap: number): Promise<number> {
    let n = 0;
    await this.#messages
      .where('[channel+id]')
      .between([channel, afterId || Dexie.minKey], [channel, Dexie.maxKey], false, true)
      .until(() => n >= cap)
      .each((row) => {
        if (row.env.post.author !== self) n++;
      });
    return n;
  }

  /** Id of the newest envelope in a channel, '' when empty. */
  async newestId(channel: string): Promise<string> {
    const k = await this.#messages
      .where('[channel+id]')
      .between([channel, Dexie.minKey], [channel, Dexie.maxKey])
      .reverse()
      .limit(1)
      .primaryKeys();
    return k[0] ?? '';
  }
}

let shared: HistoryReader | null = null;
export const historyReader = (): HistoryReader => (shared ??= new HistoryReader());
