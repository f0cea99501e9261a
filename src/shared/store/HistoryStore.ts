// The history store: what a peer keeps. Keys are the relay's ULIDs, so every peer's database uses the
// same keys and ranges over ULID order mean the same thing everywhere (SPEC.md G1).
//
// Invariant: callers verify before they put (SPEC.md G2). Stores do not verify; they are storage.
// Implementations: DexieStore (browser, IndexedDB) and MemoryStore (virtual client, bounded by age and
// bytes). One conformance suite (store/storeConformance.ts) runs on both.
import type { Envelope, SignedAttachment } from '../protocol/relay';

export interface IdRange {
  /** Inclusive lower bound (ULID); omitted = from the start. */
  from?: string;
  /** Exclusive upper bound (ULID); omitted = to the end. */
  to?: string;
  /** Max ids returned; stores cap it at MAX_RANGE_LIMIT. */
  limit?: number;
}

/** The most ids a single listIds call returns (and envelopes a latest() call), whatever the caller asks. */
export const MAX_RANGE_LIMIT = 10_000;

/** The limit a store applies (SPEC.md H3): absent = MAX_RANGE_LIMIT, capped at it, never negative. */
export function clampLimit(limit: number | undefined): number {
  if (limit === undefined) return MAX_RANGE_LIMIT;
  if (!(limit > 0)) return 0; // also catches NaN
  return Math.min(Math.floor(limit), MAX_RANGE_LIMIT);
}

/**
 * Using a store after close() is a bug in the caller, not a storage condition to handle, so it rejects
 * (SPEC.md H8). Match on `code`, never on the message.
 */
export class StoreClosedError extends Error {
  readonly code = 'STORE_CLOSED' as const;
  constructor() {
    super('history store is closed');
    this.name = 'StoreClosedError';
  }
}

/**
 * The storage ran out of room (the browser's quota: IndexedDB's `QuotaExceededError`) and nothing of the
 * write that hit it was stored (SPEC.md H16). A condition of the device, not a bug: callers keep what they
 * could not store (the outbox keeps an own post) and tell the user. Match on `code`, never on the message.
 */
export class StoreQuotaError extends Error {
  readonly code = 'STORE_QUOTA' as const;
  constructor(cause?: unknown) {
    super('the storage quota is exhausted: nothing of this write was stored', { cause });
    this.name = 'StoreQuotaError';
  }
}

/** True for a StoreQuotaError, also one wrapped by a caller in `cause`. */
export function isStoreQuotaError(err: unknown): boolean {
  for (let e = err, depth = 0; e && depth < 4; e = (e as { cause?: unknown }).cause, depth++) {
    if ((e as { code?: unknown }).code === 'STORE_QUOTA') return true;
  }
  return false;
}

/** What a store holds (SPEC.md H15): what a storage panel shows. */
export interface StoreUsage {
  messages: number;
  /** Attachment metadata records, with or without content. */
  attachments: number;
  /** Attachments whose content is held. */
  attachmentsHeld: number;
  /** Total length of the held content. */
  attachmentBytes: number;
}

/** What `dropAttachmentBytes` freed (SPEC.md H15). */
export interface DroppedBytes {
  /** Attachment ids whose content was dropped, ascending. */
  ids: string[];
  /** Their total content length. */
  bytes: number;
}

/** What one eviction dropped (SPEC.md H13). */
export interface Evicted {
  /** Message ids, ascending. */
  messages: string[];
  /** Attachment ids (metadata and any bytes went together), ascending. */
  attachments: string[];
}

export interface AttachmentRecord {
  meta: SignedAttachment;
  /** Complete, verified content; undefined while only the metadata is known. */
  bytes?: Uint8Array;
}

// Envelopes and metadata are immutable values: a store may hand back the very object it was given
// (MemoryStore does), so callers must not mutate what they put or get.
export interface HistoryStore {
  /**
   * Adds envelopes (already verified); existing ids are left unchanged. Resolves to the ids that were new
   * and are now held, in input order, each once. A bounded store may refuse or at once evict some (SPEC.md H9, H10):
   * those are not in the result, so the caller does not re-announce what it does not have.
   */
  putMessages(envelopes: readonly Envelope[]): Promise<string[]>;
  /** Same order as `ids`; undefined where absent. */
  getMessages(ids: readonly string[]): Promise<(Envelope | undefined)[]>;
  hasMessages(ids: readonly string[]): Promise<boolean[]>;
  /** Message ids in ULID order within the range, optionally only one channel's. */
  listIds(range: IdRange, channel?: string): Promise<string[]>;
  /** The newest `limit` messages of a channel, oldest first (what a chat view shows). */
  latest(channel: string, limit: number): Promise<Envelope[]>;
  countMessages(): Promise<number>;

  /** Stores signed metadata (verified); keeps existing bytes. */
  putAttachmentMeta(meta: SignedAttachment): Promise<void>;
  /**
   * Stores complete content whose digest the caller has checked against meta.sha256. Resolves to whether
   * the bytes are now held: false when the metadata is unknown, the length differs from meta.size, or a
   * bounded store cannot keep them (SPEC.md H6).
   */
  putAttachmentBytes(id: string, bytes: Uint8Array): Promise<boolean>;
  getAttachment(id: string): Promise<AttachmentRecord | undefined>;
  hasAttachmentBytes(id: string): Promise<boolean>;
  /**
   * Bytes `[start, end)` of held content, clipped to its size like `subarray` (bounds below 0 count as 0;
   * `start >= end` gives empty bytes); undefined when the bytes are not held. Reads only that range, so
   * serving one chunk never loads the whole attachment (SPEC.md H14). Optional: a sync engine falls back
   * to `getAttachment` on a store without it. The result is the caller's own copy.
   */
  getAttachmentRange?(id: string, start: number, end: number): Promise<Uint8Array | undefined>;
  /** Attachment ids whose bytes are held, in ULID order. */
  listAttachmentIds(range: IdRange): Promise<string[]>;

  /** Counts of what the store holds (SPEC.md H15). Reads no content. */
  usage(): Promise<StoreUsage>;
  /**
   * Drops the content of attachments whose id is in `range` (at most `clampLimit(range.limit)` of them, in
   * ULID order; ids are minted from the relay's clock, so `{ to: <ULID of a moment> }` is "older than
   * then"), keeping their metadata and every message (SPEC.md H15). Afterwards those ids read as metadata
   * only (`bytes: undefined`, `hasAttachmentBytes` false, not listed), as before their content arrived, so
   * a sync engine fetches them from peers again when wanted. Resolves to what was dropped; calling it
   * until `ids` is empty drops the whole range.
   */
  dropAttachmentBytes(range: IdRange): Promise<DroppedBytes>;

  /**
   * Bounded stores only: the lowest id this store wants now. It refuses or would evict first anything
   * below it, so a sync engine should not fetch ids below it (SPEC.md H11). Absent = keeps everything.
   */
  horizon?(): string;

  /**
   * Stores that drop entries on their own (bounded stores) report each eviction, synchronously, before the
   * call that caused it resolves, so an index over the store can drop exactly those ids instead of
   * reloading (SPEC.md H13). Returns the unsubscribe. Absent = the store never drops anything itself.
   */
  onEvict?(listener: (evicted: Evicted) => void): () => void;

  /**
   * Stores that can run out of room (IndexedDB's quota) call these listeners, synchronously, with every
   * StoreQuotaError before the write rejects with it (SPEC.md H16), so one place (the client) hears of
   * every full write, also those inside a sync engine's frame handling. Returns the unsubscribe.
   */
  onQuota?(listener: (err: StoreQuotaError) => void): () => void;

  /** Releases the store. Idempotent; any later call rejects with StoreClosedError (SPEC.md H8). */
  close(): Promise<void>;
}
