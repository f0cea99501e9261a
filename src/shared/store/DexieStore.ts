// The browser's history store: IndexedDB through Dexie 4. Keys are the relay's ULIDs (SPEC.md H1), so a
// range query is an index range and every peer's database agrees on what "ids from X to Y" means.
// Attachment bytes live in their own table: listing or reading metadata never loads a blob (SPEC.md H12).
import { Dexie, type Table } from 'dexie';
import type { Envelope, SignedAttachment } from '../protocol/relay';
import {
  type AttachmentRecord,
  type HistoryStore,
  type IdRange,
  StoreClosedError,
  clampLimit,
} from './HistoryStore';

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
interface BytesRow {
  id: string;
  bytes: Uint8Array;
}

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
}

export class DexieStore implements HistoryStore {
  readonly #db: Dexie;
  readonly #messages: Table<MessageRow, string>;
  readonly #attachments: Table<AttachmentRow, string>;
  readonly #bytes: Table<BytesRow, string>;
  #closed = false;

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
  }

  #open(): void {
    if (this.#closed) throw new StoreClosedError();
  }

  async putMessages(envelopes: readonly Envelope[]): Promise<string[]> {
    this.#open();
    if (envelopes.length === 0) return [];
    return this.#db.transaction('rw', this.#messages, async () => {
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
    });
  }

  async getMessages(ids: readonly string[]): Promise<(Envelope | undefined)[]> {
    this.#open();
    if (ids.length === 0) return [];
    const rows = await this.#messages.bulkGet(ids as string[]);
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
    await this.#db.transaction('rw', this.#attachments, async () => {
      // Existing metadata stays as it was (same rule as messages); bytes are in another table anyway.
      if ((await this.#attachments.where(':id').equals(meta.id).count()) === 0) {
        await this.#attachments.add({ id: meta.id, meta });
      }
    });
  }

  async putAttachmentBytes(id: string, bytes: Uint8Array): Promise<boolean> {
    this.#open();
    return this.#db.transaction('rw', this.#attachments, this.#bytes, async () => {
      const row = await this.#attachments.get(id);
      if (!row || row.meta.meta.size !== bytes.length) return false;
      await this.#bytes.put({ id, bytes: ownBytes(bytes) });
      return true;
    });
  }

  async getAttachment(id: string): Promise<AttachmentRecord | undefined> {
    this.#open();
    return this.#db.transaction('r', this.#attachments, this.#bytes, async () => {
      const row = await this.#attachments.get(id);
      if (!row) return undefined;
      const bytes = await this.#bytes.get(id);
      return { meta: row.meta, bytes: bytes?.bytes };
    });
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

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#db.close();
  }
}

/** IDBKeyRange.bound throws DataError when lower > upper, so empty ranges never reach it. */
function isEmpty(range: IdRange): boolean {
  return range.from !== undefined && range.to !== undefined && range.from >= range.to;
}

/**
 * IndexedDB structured-clones a typed array together with its whole ArrayBuffer: a 16 KiB view into a
 * 64 MiB receive buffer would persist 64 MiB. Copy views so only the content is written (SPEC.md H7).
 */
function ownBytes(bytes: Uint8Array): Uint8Array {
  return bytes.byteOffset === 0 && bytes.byteLength === bytes.buffer.byteLength ? bytes : bytes.slice();
}
