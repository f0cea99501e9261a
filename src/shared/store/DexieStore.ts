// The browser's history store: IndexedDB through Dexie 4. Keys are the relay's ULIDs (SPEC.md H1), so a
// range query is an index range and every peer's database agrees on what "ids from X to Y" means.
// Attachment bytes live in their own tables: listing or reading metadata never loads a blob (SPEC.md H12),
// and since schema version 2 content is kept in 16 KiB rows, so a chunk read is one row (H14).
import { Dexie, type Table } from 'dexie';
import { concatBytes } from '../encoding';
import { LIMITS, type Envelope, type SignedAttachment } from '../protocol/relay';
import {
  type AttachmentRecord,
  type DroppedBytes,
  type HistoryStore,
  type IdRange,
  StoreClosedError,
  StoreQuotaError,
  type StoreUsage,
  clampLimit,
} from './HistoryStore';
import { getRowsById } from './getRowsById';

/** A message row. `channel` is copied out of the envelope so `[channel+id]` can index it. */
interface MessageRow {
  id: string;
  channel: string;
  env: Envelope;
}
interface AttachmentRow {
  id: string;
  meta: SignedAttachment;
}
/**
 * One per attachment whose content is held: its presence is what "held" means (listAttachmentIds reads
 * only these keys). Version 1 rows carry the whole content in `bytes`; rows written since version 2 carry
 * only `size` and the content is in `attachmentChunks`. Both shapes are read, so old data stays readable
 * without a migration that would have to rewrite every blob in one upgrade transaction.
 */
interface BytesRow {
  id: string;
  bytes?: Uint8Array;
  size?: number;
}
/** Content rows (version 2): row `index` holds bytes [index * ROW_BYTES, (index + 1) * ROW_BYTES). */
interface ChunkRow {
  id: string;
  index: number;
  bytes: Uint8Array;
}

/** Content row size: the transfer's chunk size, so serving a chunk reads exactly one row (SPEC.md H14). */
export const ROW_BYTES = LIMITS.chunkBytes;

export interface DexieStoreOptions {
  /** The IndexedDB factory; Node tests pass fake-indexeddb's. @default globalThis.indexedDB */
  indexedDB?: IDBFactory;
  /** Must come from the same implementation as `indexedDB`. @default globalThis.IDBKeyRange */
  IDBKeyRange?: typeof IDBKeyRange;
}

/**
 * Schema history (SPEC.md H12). Never edit a released version: add `version(n + 1)` with the new stores
 * (and an `upgrade` if rows change shape). Dexie opens at the newest and migrates older databases.
 */
function defineSchema(db: Dexie): void {
  db.version(1).stores({
    messages: 'id, [channel+id]',
    attachments: 'id',
    attachmentBytes: 'id',
  });
  // 2: content in ROW_BYTES rows keyed [id+index], for range reads (H14). Version 1 rows stay as they are.
  db.version(2).stores({
    messages: 'id, [channel+id]',
    attachments: 'id',
    attachmentBytes: 'id',
    attachmentChunks: '[id+index]',
  });
}

export class DexieStore implements HistoryStore {
  readonly #db: Dexie;
  readonly #messages: Table<MessageRow, string>;
  readonly #attachments: Table<AttachmentRow, string>;
  readonly #bytes: Table<BytesRow, string>;
  readonly #chunks: Table<ChunkRow, [string, number]>;
  #closed = false;
  readonly #quotaListeners = new Set<(err: StoreQuotaError) => void>();

  /** Opens (creating or upgrading) the database `name` lazily, on the first call. */
  constructor(name: string, options: DexieStoreOptions = {}) {
    this.#db = new Dexie(name, {
      ...(options.indexedDB ? { indexedDB: options.indexedDB } : {}),
      ...(options.IDBKeyRange ? { IDBKeyRange: options.IDBKeyRange } : {}),
    });
    defineSchema(this.#db);
    this.#messages = this.#db.table('messages');
    this.#attachments = this.#db.table('attachments');
    this.#bytes = this.#db.table('attachmentBytes');
    this.#chunks = this.#db.table('attachmentChunks');
  }

  #open(): void {
    if (this.#closed) throw new StoreClosedError();
  }

  async putMessages(envelopes: readonly Envelope[]): Promise<string[]> {
    this.#open();
    if (envelopes.length === 0) return [];
    return this.#write(() => this.#db.transaction('rw', this.#messages, async () => {
      // Read the existing keys (not rows) and add only the rest: first write wins (SPEC.md H2), and one
      // transaction means two concurrent puts of the same id cannot both report it as new.
      const wanted = envelopes.map((e) => e.id);
      const existing = new Set(await this.#messages.where(':id').anyOf(wanted).primaryKeys());
      const rows: MessageRow[] = [];
      for (const env of envelopes) {
        if (existing.has(env.id)) continue;
        existing.add(env.id);
        rows.push({ id: env.id, channel: env.post.channel, env });
      }
      if (rows.length > 0) await this.#messages.bulkAdd(rows);
      return rows.map((r) => r.id);
    }));
  }

  async getMessages(ids: readonly string[]): Promise<(Envelope | undefined)[]> {
    this.#open();
    if (ids.length === 0) return [];
    const rows = await this.#db.transaction('r', this.#messages, () => getRowsById(this.#messages, ids));
    return rows.map((r) => r?.env);
  }

  async hasMessages(ids: readonly string[]): Promise<boolean[]> {
    this.#open();
    if (ids.length === 0) return [];
    const held = new Set(await this.#messages.where(':id').anyOf(ids as string[]).primaryKeys());
    return ids.map((id) => held.has(id));
  }

  async listIds(range: IdRange, channel?: string): Promise<string[]> {
    this.#open();
    const limit = clampLimit(range.limit);
    if (limit === 0 || isEmpty(range)) return [];
    const lower = range.from ?? Dexie.minKey;
    const upper = range.to ?? Dexie.maxKey;
    const coll =
      channel === undefined
        ? this.#messages.where(':id').between(lower, upper, true, false)
        : this.#messages.where('[channel+id]').between([channel, lower], [channel, upper], true, false);
    return coll.limit(limit).primaryKeys();
  }

  async latest(channel: string, limit: number): Promise<Envelope[]> {
    this.#open();
    const n = clampLimit(limit);
    if (n === 0) return [];
    const rows = await this.#messages
      .where('[channel+id]')
      .between([channel, Dexie.minKey], [channel, Dexie.maxKey], true, true)
      .reverse()
      .limit(n)
      .toArray();
    return rows.reverse().map((r) => r.env);
  }

  async countMessages(): Promise<number> {
    this.#open();
    return this.#messages.count();
  }

  async putAttachmentMeta(meta: SignedAttachment): Promise<void> {
    this.#open();
    await this.#write(() => this.#db.transaction('rw', this.#attachments, async () => {
      // Existing metadata stays as it was (same rule as messages); bytes are in another table anyway.
      if ((await this.#attachments.where(':id').equals(meta.id).count()) === 0) {
        await this.#attachments.add({ id: meta.id, meta });
      }
    }));
  }

  async putAttachmentBytes(id: string, bytes: Uint8Array): Promise<boolean> {
    this.#open();
    return this.#write(() => this.#db.transaction('rw', this.#attachments, this.#bytes, this.#chunks, async () => {
      const row = await this.#attachments.get(id);
      if (!row || row.meta.meta.size !== bytes.length) return false;
      if (await this.#bytes.get(id)) return true; // held already (the same verified content)
      // Each row is its own copy (slice): IndexedDB structured-clones a typed array with its whole
      // ArrayBuffer, so a view into a large receive buffer would persist all of it (SPEC.md H7).
      const rows: ChunkRow[] = [];
      for (let index = 0; index * ROW_BYTES < bytes.length; index++) {
        rows.push({ id, index, bytes: bytes.slice(index * ROW_BYTES, (index + 1) * ROW_BYTES) });
      }
      await this.#chunks.bulkPut(rows);
      // The header last, in the same transaction: content is held exactly when its header exists.
      await this.#bytes.put({ id, size: bytes.length });
      return true;
    }));
  }

  async getAttachment(id: string): Promise<AttachmentRecord | undefined> {
    this.#open();
    return this.#db.transaction('r', this.#attachments, this.#bytes, this.#chunks, async () => {
      const row = await this.#attachments.get(id);
      if (!row) return undefined;
      const head = await this.#bytes.get(id);
      return { meta: row.meta, bytes: head && (await this.#readRange(head, 0, Infinity)) };
    });
  }

  async getAttachmentRange(id: string, start: number, end: number): Promise<Uint8Array | undefined> {
    this.#open();
    return this.#db.transaction('r', this.#bytes, this.#chunks, async () => {
      const head = await this.#bytes.get(id);
      return head && this.#readRange(head, start, end);
    });
  }

  /** Bytes [start, end) of held content (inside a transaction over bytes and chunks). */
  async #readRange(head: BytesRow, start: number, end: number): Promise<Uint8Array> {
    if (head.bytes) return head.bytes.slice(Math.max(0, start), Math.max(0, end)); // a version 1 row
    const size = head.size ?? 0;
    const from = Math.min(size, Math.max(0, start));
    const to = Math.min(size, Math.max(from, end));
    if (from === to) return new Uint8Array(0);
    const first = Math.floor(from / ROW_BYTES);
    const last = Math.floor((to - 1) / ROW_BYTES);
    const rows = await this.#chunks.where('[id+index]').between([head.id, first], [head.id, last], true, true).toArray();
    const whole = rows.length === 1 ? rows[0]!.bytes : concatBytes(...rows.map((r) => r.bytes));
    return whole.slice(from - first * ROW_BYTES, to - first * ROW_BYTES);
  }

  async hasAttachmentBytes(id: string): Promise<boolean> {
    this.#open();
    return (await this.#bytes.where(':id').equals(id).count()) > 0;
  }

  async listAttachmentIds(range: IdRange): Promise<string[]> {
    this.#open();
    const limit = clampLimit(range.limit);
    if (limit === 0 || isEmpty(range)) return [];
    // Keys only: the bytes table's primary keys are exactly the held ids, no blob is read.
    return this.#bytes
      .where(':id')
      .between(range.from ?? Dexie.minKey, range.to ?? Dexie.maxKey, true, false)
      .limit(limit)
      .primaryKeys();
  }

  async usage(): Promise<StoreUsage> {
    this.#open();
    return this.#db.transaction('r', this.#messages, this.#attachments, this.#bytes, async () => {
      let attachmentsHeld = 0;
      let attachmentBytes = 0;
      // Header rows since version 2 are {id, size}: no content is read. A version 1 row carries its
      // content, which this loads once per row (such databases predate photos in the app).
      await this.#bytes.each((row) => {
        attachmentsHeld++;
        attachmentBytes += row.size ?? row.bytes?.length ?? 0;
      });
      return { messages: await this.#messages.count(), attachments: await this.#attachments.count(), attachmentsHeld, attachmentBytes };
    });
  }

  async dropAttachmentBytes(range: IdRange): Promise<DroppedBytes> {
    this.#open();
    const limit = clampLimit(range.limit);
    if (limit === 0 || isEmpty(range)) return { ids: [], bytes: 0 };
    // One transaction: content is held exactly when its header exists (putAttachmentBytes), so header and
    // rows go together and a reader never sees a header without its rows. Deleting frees room, so this
    // is what a user runs when the quota is exhausted: it must not need any itself.
    return this.#db.transaction('rw', this.#bytes, this.#chunks, async () => {
      const heads = await this.#bytes
        .where(':id')
        .between(range.from ?? Dexie.minKey, range.to ?? Dexie.maxKey, true, false)
        .limit(limit)
        .toArray();
      let bytes = 0;
      for (const head of heads) {
        bytes += head.size ?? head.bytes?.length ?? 0;
        await this.#chunks.where('[id+index]').between([head.id, Dexie.minKey], [head.id, Dexie.maxKey], true, true).delete();
      }
      await this.#bytes.bulkDelete(heads.map((h) => h.id));
      return { ids: heads.map((h) => h.id), bytes };
    });
  }

  /**
   * A write that hit the quota rejects with StoreQuotaError (H16). The transaction aborted, so none of it
   * was stored; Dexie reports the quota as a QuotaExceededError itself, or as the inner error of the
   * transaction's AbortError, or inside a BulkError's failures.
   */
  async #write<T>(run: () => Promise<T>): Promise<T> {
    try {
      return await run();
    } catch (err) {
      if (!isQuotaExceeded(err)) throw err;
      const full = new StoreQuotaError(err);
      for (const listener of [...this.#quotaListeners]) {
        try {
          listener(full);
        } catch {
          // A listener's failure is its own; the caller still gets the rejection.
        }
      }
      throw full;
    }
  }

  onQuota(listener: (err: StoreQuotaError) => void): () => void {
    this.#quotaListeners.add(listener);
    return () => this.#quotaListeners.delete(listener);
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#quotaListeners.clear();
    this.#db.close();
  }
}

/** IDBKeyRange.bound throws DataError when lower > upper, so empty ranges never reach it. */
function isEmpty(range: IdRange): boolean {
  return range.from !== undefined && range.to !== undefined && range.from >= range.to;
}

function isQuotaExceeded(err: unknown, depth = 0): boolean {
  if (!err || typeof err !== 'object' || depth > 4) return false;
  const e = err as { name?: unknown; inner?: unknown; cause?: unknown; failures?: unknown };
  // 'NS_ERROR_DOM_QUOTA_REACHED': older Firefox.
  if (e.name === 'QuotaExceededError' || e.name === 'NS_ERROR_DOM_QUOTA_REACHED') return true;
  if (Array.isArray(e.failures) && e.failures.some((f) => isQuotaExceeded(f, depth + 1))) return true;
  return isQuotaExceeded(e.inner, depth + 1) || isQuotaExceeded(e.cause, depth + 1);
}
