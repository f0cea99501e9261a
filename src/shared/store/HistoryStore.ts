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

/** The most ids a single listIds call returns, whatever the caller asks. */
export const MAX_RANGE_LIMIT = 10_000;

export interface AttachmentRecord {
  meta: SignedAttachment;
  /** Complete, verified content; undefined while only the metadata is known. */
  bytes?: Uint8Array;
}

export interface HistoryStore {
  /** Adds envelopes (already verified); existing ids are left unchanged. Resolves to the ids that were new. */
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
  /** Stores complete content whose digest the caller has checked against meta.sha256. */
  putAttachmentBytes(id: string, bytes: Uint8Array): Promise<void>;
  getAttachment(id: string): Promise<AttachmentRecord | undefined>;
  hasAttachmentBytes(id: string): Promise<boolean>;
  /** Attachment ids whose bytes are held, in ULID order. */
  listAttachmentIds(range: IdRange): Promise<string[]>;

  close(): Promise<void>;
}
