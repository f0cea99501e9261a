// The virtual client's history: a bounded in-memory cache. Bounded by AGE (relay ts older than maxAgeMs
// is dropped, SPEC.md H9) and by BYTES (evict the oldest ULID first until the total fits, H10), so a
// headless peer on a small VM keeps the recent past for browsers that were offline, and nothing more.
//
// Layout: entries in Maps, plus ids kept in sorted arrays (global, per channel, attachments) so ranges are
// a binary search and a slice. Eviction is always a prefix of those arrays (oldest first), so it is one
// splice per array, never a scan of the whole store.
import { encodeTime } from 'ulidx';
import type { Envelope, SignedAttachment } from '../protocol/relay';
import {
  type AttachmentRecord,
  type DroppedBytes,
  type Evicted,
  type HistoryStore,
  type IdRange,
  StoreClosedError,
  type StoreUsage,
  clampLimit,
} from './HistoryStore';

export interface MemoryStoreOptions {
  /** Messages and attachments whose relay `ts` is older than this are dropped. @default 86_400_000 (24 h) */
  maxAgeMs?: number;
  /**
   * Budget for what the store holds, counted as the UTF-8 JSON size of every envelope and attachment
   * metadata plus attachment content length. The JS heap it costs is larger (see SPEC.md H10), so size
   * the process for a multiple of this. @default 67_108_864 (64 MiB)
   */
  maxBytes?: number;
  /** Clock in ms since the epoch; ages are measured against it. @default Date.now */
  now?: () => number;
}

/** What the status line shows. */
export interface MemoryStoreStats {
  messages: number;
  /** Attachment records held (metadata, with or without content). */
  attachments: number;
  /** Current total by the maxBytes accounting; always <= maxBytes after a call returns. */
  bytes: number;
}

interface MessageEntry {
  env: Envelope;
  size: number;
}
interface AttachmentEntry {
  meta: SignedAttachment;
  bytes: Uint8Array | undefined;
  metaSize: number;
}

export const MEMORY_STORE_DEFAULTS = {
  maxAgeMs: 24 * 60 * 60 * 1000,
  maxBytes: 64 * 1024 * 1024,
} as const;

export class MemoryStore implements HistoryStore {
  readonly #maxAgeMs: number;
  readonly #maxBytes: number;
  readonly #now: () => number;

  #messages = new Map<string, MessageEntry>();
  /** Every message id, ascending. */
  #ids: string[] = [];
  /** Message ids per channel, ascending; a channel with no messages has no entry. */
  #byChannel = new Map<string, string[]>();
  #attachments = new Map<string, AttachmentEntry>();
  /** Every attachment id (with or without bytes), ascending. */
  #attIds: string[] = [];
  #bytes = 0;
  /** Set once the byte bound has evicted something: from then on, older than the oldest held is unwanted. */
  #evictedForBytes = false;
  #closed = false;
  /** Eviction listeners (H13): one per engine over this store, each removed at the engine's stop. */
  readonly #evictListeners = new Set<(e: Evicted) => void>();

  constructor(options: MemoryStoreOptions = {}) {
    this.#maxAgeMs = options.maxAgeMs ?? MEMORY_STORE_DEFAULTS.maxAgeMs;
    this.#maxBytes = options.maxBytes ?? MEMORY_STORE_DEFAULTS.maxBytes;
    this.#now = options.now ?? Date.now;
    if (!(this.#maxAgeMs > 0) || !(this.#maxBytes > 0)) throw new RangeError('maxAgeMs and maxBytes must be > 0');
  }

  stats(): MemoryStoreStats {
    return { messages: this.#messages.size, attachments: this.#attachments.size, bytes: this.#bytes };
  }

  async putMessages(envelopes: readonly Envelope[]): Promise<string[]> {
    this.#begin();
    const cutoff = this.#cutoff();
    const added: string[] = [];
    for (const env of envelopes) {
      if (this.#messages.has(env.id) || env.ts < cutoff) continue; // H2; H9: would be evicted at once
      const size = jsonBytes(env);
      if (size > this.#maxBytes) continue; // H10: would flush the whole cache and then itself
      this.#messages.set(env.id, { env, size });
      this.#bytes += size;
      added.push(env.id);
    }
    if (added.length === 0) return [];
    this.#ids = mergeSorted(this.#ids, [...added].sort());
    const perChannel = new Map<string, string[]>();
    for (const id of added) {
      const channel = this.#messages.get(id)!.env.post.channel;
      let list = perChannel.get(channel);
      if (!list) perChannel.set(channel, (list = []));
      list.push(id);
    }
    for (const [channel, list] of perChannel) {
      this.#byChannel.set(channel, mergeSorted(this.#byChannel.get(channel) ?? [], list.sort()));
    }
    this.#evictForBytes();
    // Only what survived the byte bound is reported new (HistoryStore.putMessages).
    return added.filter((id) => this.#messages.has(id));
  }

  async getMessages(ids: readonly string[]): Promise<(Envelope | undefined)[]> {
    this.#begin();
    return ids.map((id) => this.#messages.get(id)?.env);
  }

  async hasMessages(ids: readonly string[]): Promise<boolean[]> {
    this.#begin();
    return ids.map((id) => this.#messages.has(id));
  }

  async listIds(range: IdRange, channel?: string): Promise<string[]> {
    this.#begin();
    const ids = channel === undefined ? this.#ids : this.#byChannel.get(channel);
    return ids ? sliceRange(ids, range) : [];
  }

  async latest(channel: string, limit: number): Promise<Envelope[]> {
    this.#begin();
    const n = clampLimit(limit);
    const ids = this.#byChannel.get(channel);
    if (!ids || n === 0) return [];
    return ids.slice(-n).map((id) => this.#messages.get(id)!.env);
  }

  async countMessages(): Promise<number> {
    this.#begin();
    return this.#messages.size;
  }

  async putAttachmentMeta(meta: SignedAttachment): Promise<void> {
    this.#begin();
    if (this.#attachments.has(meta.id) || meta.ts < this.#cutoff()) return;
    const metaSize = jsonBytes(meta);
    if (metaSize > this.#maxBytes) return;
    this.#attachments.set(meta.id, { meta, bytes: undefined, metaSize });
    this.#bytes += metaSize;
    this.#attIds = mergeSorted(this.#attIds, [meta.id]);
    this.#evictForBytes();
  }

  async putAttachmentBytes(id: string, bytes: Uint8Array): Promise<boolean> {
    this.#begin();
    const entry = this.#attachments.get(id);
    if (!entry || entry.meta.meta.size !== bytes.length) return false;
    if (entry.bytes) return true;
    if (entry.metaSize + bytes.length > this.#maxBytes) return false;
    entry.bytes = ownBytes(bytes);
    this.#bytes += bytes.length;
    this.#evictForBytes();
    // Eviction is oldest first: content for an old attachment may itself be what had to go.
    return this.#attachments.get(id)?.bytes !== undefined;
  }

  async getAttachment(id: string): Promise<AttachmentRecord | undefined> {
    this.#begin();
    const entry = this.#attachments.get(id);
    return entry && { meta: entry.meta, bytes: entry.bytes };
  }

  async hasAttachmentBytes(id: string): Promise<boolean> {
    this.#begin();
    return this.#attachments.get(id)?.bytes !== undefined;
  }

  async getAttachmentRange(id: string, start: number, end: number): Promise<Uint8Array | undefined> {
    this.#begin();
    // A copy: a caller keeping a view would pin the whole content after eviction, outside the byte bound.
    return this.#attachments.get(id)?.bytes?.slice(Math.max(0, start), Math.max(0, end));
  }

  async listAttachmentIds(range: IdRange): Promise<string[]> {
    this.#begin();
    const limit = clampLimit(range.limit);
    if (limit === 0) return [];
    const out: string[] = [];
    const end = range.to === undefined ? this.#attIds.length : lowerBound(this.#attIds, range.to);
    for (let i = range.from === undefined ? 0 : lowerBound(this.#attIds, range.from); i < end; i++) {
      const id = this.#attIds[i]!;
      if (this.#attachments.get(id)!.bytes === undefined) continue;
      out.push(id);
      if (out.length === limit) break;
    }
    return out;
  }

  async usage(): Promise<StoreUsage> {
    this.#begin();
    let attachmentsHeld = 0;
    let attachmentBytes = 0;
    for (const entry of this.#attachments.values()) {
      if (entry.bytes === undefined) continue;
      attachmentsHeld++;
      attachmentBytes += entry.bytes.length;
    }
    return { messages: this.#messages.size, attachments: this.#attachments.size, attachmentsHeld, attachmentBytes };
  }

  async dropAttachmentBytes(range: IdRange): Promise<DroppedBytes> {
    this.#begin();
    const ids = await this.listAttachmentIds(range); // held ones only, ascending, limit applied
    let bytes = 0;
    for (const id of ids) {
      const entry = this.#attachments.get(id)!;
      bytes += entry.bytes!.length;
      this.#bytes -= entry.bytes!.length;
      entry.bytes = undefined; // metadata stays: not an eviction (H13), the engine still knows the item
    }
    return { ids, bytes };
  }

  onEvict(listener: (evicted: Evicted) => void): () => void {
    this.#evictListeners.add(listener);
    return () => this.#evictListeners.delete(listener);
  }

  horizon(): string {
    this.#begin();
    const byAge = encodeTime(Math.max(0, this.#cutoff()), 10) + '0'.repeat(16);
    if (!this.#evictedForBytes) return byAge;
    const oldest = minDefined(this.#ids[0], this.#attIds[0]);
    return oldest !== undefined && oldest > byAge ? oldest : byAge;
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    // Drop the references so a closed store costs nothing even if its owner keeps it around.
    this.#messages = new Map();
    this.#byChannel = new Map();
    this.#attachments = new Map();
    this.#ids = [];
    this.#attIds = [];
    this.#bytes = 0;
    this.#evictListeners.clear();
  }

  #cutoff(): number {
    return this.#now() - this.#maxAgeMs;
  }

  /** Every call starts here: refuse after close, then drop what aged out, so no answer includes it (H9). */
  #begin(): void {
    if (this.#closed) throw new StoreClosedError();
    this.#evictByAge();
  }

  // The relay mints `id` and `ts` from one clock, so id order is ts order and the aged-out entries are a
  // prefix: walk from the oldest and stop at the first one still young. (Were a relay's clock to step
  // back, an entry could outlive its age by as long as an older-id entry behind it is young.)
  #evictByAge(): void {
    const cutoff = this.#cutoff();
    let m = 0;
    while (m < this.#ids.length && this.#messages.get(this.#ids[m]!)!.env.ts < cutoff) m++;
    let a = 0;
    while (a < this.#attIds.length && this.#attachments.get(this.#attIds[a]!)!.meta.ts < cutoff) a++;
    this.#dropOldest(m, a);
  }

  /** Oldest ULID first across messages and attachments until the total fits (H10). */
  #evictForBytes(): void {
    if (this.#bytes <= this.#maxBytes) return;
    let over = this.#bytes - this.#maxBytes;
    let m = 0;
    let a = 0;
    while (over > 0) {
      const mid = this.#ids[m];
      const aid = this.#attIds[a];
      if (mid === undefined && aid === undefined) break;
      if (aid === undefined || (mid !== undefined && mid < aid)) {
        over -= this.#messages.get(mid!)!.size;
        m++;
      } else {
        const entry = this.#attachments.get(aid)!;
        over -= entry.metaSize + (entry.bytes?.length ?? 0);
        a++;
      }
    }
    this.#evictedForBytes = true;
    this.#dropOldest(m, a);
  }

  /** Removes the `m` oldest messages and `a` oldest attachments, one splice per array. */
  #dropOldest(m: number, a: number): void {
    if (m === 0 && a === 0) return;
    const evicted: Evicted = { messages: [], attachments: [] };
    if (m > 0) {
      const dropped = this.#ids.splice(0, m);
      evicted.messages = dropped;
      // The dropped ids of a channel are a prefix of that channel's list, because they are a prefix of
      // the global order: count per channel, splice each once.
      const perChannel = new Map<string, number>();
      for (const id of dropped) {
        const entry = this.#messages.get(id)!;
        this.#messages.delete(id);
        this.#bytes -= entry.size;
        const channel = entry.env.post.channel;
        perChannel.set(channel, (perChannel.get(channel) ?? 0) + 1);
      }
      for (const [channel, count] of perChannel) {
        const list = this.#byChannel.get(channel)!;
        if (count >= list.length) this.#byChannel.delete(channel);
        else list.splice(0, count);
      }
    }
    if (a > 0) {
      evicted.attachments = this.#attIds.splice(0, a);
      for (const id of evicted.attachments) {
        const entry = this.#attachments.get(id)!;
        this.#attachments.delete(id);
        this.#bytes -= entry.metaSize + (entry.bytes?.length ?? 0);
      }
    }
    // Reported once the store is consistent again; a listener's failure is its own (H13).
    for (const listener of [...this.#evictListeners]) {
      try {
        listener(evicted);
      } catch {
        // Never into the caller's put or get.
      }
    }
  }
}

/** First index whose id is >= key. */
function lowerBound(ids: readonly string[], key: string): number {
  let lo = 0;
  let hi = ids.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (ids[mid]! < key) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

function sliceRange(ids: readonly string[], range: IdRange): string[] {
  const limit = clampLimit(range.limit);
  const start = range.from === undefined ? 0 : lowerBound(ids, range.from);
  const end = range.to === undefined ? ids.length : lowerBound(ids, range.to);
  return end > start ? ids.slice(start, Math.min(end, start + limit)) : [];
}

/** Merges two ascending arrays. New ids are usually the newest, so that case is a plain append. */
function mergeSorted(a: string[], b: readonly string[]): string[] {
  if (b.length === 0) return a;
  if (a.length === 0 || a[a.length - 1]! < b[0]!) {
    for (const x of b) a.push(x);
    return a;
  }
  const out = new Array<string>(a.length + b.length);
  let i = 0;
  let j = 0;
  let k = 0;
  while (i < a.length && j < b.length) out[k++] = a[i]! < b[j]! ? a[i++]! : b[j++]!;
  while (i < a.length) out[k++] = a[i++]!;
  while (j < b.length) out[k++] = b[j++]!;
  return out;
}

function minDefined(a: string | undefined, b: string | undefined): string | undefined {
  if (a === undefined) return b;
  if (b === undefined) return a;
  return a < b ? a : b;
}

/** UTF-8 length of the JSON text: what the value costs on the wire, counted without allocating bytes. */
function jsonBytes(value: unknown): number {
  const s = JSON.stringify(value);
  let n = s.length;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x80) continue;
    if (c < 0x800) {
      n += 1;
    } else if (c >= 0xd800 && c <= 0xdbff) {
      n += 2; // a surrogate pair: 4 bytes for 2 code units (JSON.stringify escapes lone surrogates)
      i++;
    } else {
      n += 2;
    }
  }
  return n;
}

/** A view into a larger buffer would pin that whole buffer in memory: keep a copy of just the content. */
function ownBytes(bytes: Uint8Array): Uint8Array {
  return bytes.byteOffset === 0 && bytes.byteLength === bytes.buffer.byteLength ? bytes : bytes.slice();
}
