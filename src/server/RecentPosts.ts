// Idempotent posts (SPEC.md R4) and the replay guard (M6): a retried post with the same (author, clientId)
// and the same content gets the very envelope the first attempt produced, even while the first is still
// being signed; and a post once relayed is never relayed again as new while its `sentAt` could still pass
// the relay's time window.
//
// Why this is enough: the relay accepts a post only while |sentAt - now| <= windowMs, so an accepted post
// can come back acceptable for at most 2 x windowMs after its first acceptance. Entries live at least that
// long (ttlMs >= 2 x windowMs, config.ts). When the count bound pushes an entry out earlier, a small
// tombstone (its key and the moment its window closes) takes its place; when even the tombstones are full
// of open windows, new posts are refused (RATE_LIMITED) rather than forgetting one that could be replayed.
import type { Envelope } from '../shared/protocol/relay';

interface Entry<R> {
  /** postDigest of the first attempt: same digest = same post, byte for byte. */
  digest: string;
  result: Promise<R>;
  at: number;
  /** The relay-clock moment after which this post's `sentAt` can no longer pass the window. */
  windowEnd: number;
}

export type RecentLookup<R = Envelope> =
  | { kind: 'new' }
  | { kind: 'same'; result: Promise<R> }
  | { kind: 'conflict' }
  /** Relayed before and forgotten (count bound) while its window is still open: refuse, never relay again. */
  | { kind: 'spent' };

export interface RecentPostsOptions {
  /** Full entries (with their envelope) kept for idempotent retries. */
  maxEntries: number;
  /** How long a full entry is kept; at least 2 x windowMs (config.ts makes sure). */
  ttlMs: number;
  /** The relay's `sentAt` window (POST_TIME_WINDOW_MS). */
  windowMs: number;
  /** Tombstones of entries evicted early: a key string and a number each (~150 B). @default 100_000 */
  maxTombstones?: number;
  now: () => number;
}

/** `R` is what a post resolved to (the relay keeps its envelope and that envelope's JSON). */
export class RecentPosts<R = Envelope> {
  // Insertion order == age order, so eviction only looks at the front (both maps).
  private readonly entries = new Map<string, Entry<R>>();
  private readonly tombstones = new Map<string, number>();
  private readonly maxTombstones: number;

  constructor(private readonly opts: RecentPostsOptions) {
    this.maxTombstones = opts.maxTombstones ?? 100_000;
  }

  get size(): number {
    return this.entries.size;
  }

  get tombstoneCount(): number {
    return this.tombstones.size;
  }

  lookup(author: string, clientId: string, digest: string): RecentLookup<R> {
    const key = `${author} ${clientId}`;
    const now = this.opts.now();
    const e = this.entries.get(key);
    if (e && now - e.at <= this.opts.ttlMs) return e.digest === digest ? { kind: 'same', result: e.result } : { kind: 'conflict' };
    const end = this.tombstones.get(key);
    if (end !== undefined && end >= now) return { kind: 'spent' };
    return { kind: 'new' };
  }

  /**
   * False when a new entry could only be made by forgetting a post whose window is still open (entries
   * and tombstones full): the caller refuses the post instead of minting it.
   */
  hasRoom(author: string, clientId: string): boolean {
    const now = this.opts.now();
    this.expire(now);
    if (this.entries.size < this.opts.maxEntries || this.tombstones.size < this.maxTombstones) return true;
    if (this.entries.has(`${author} ${clientId}`)) return true;
    return this.entries.values().next().value!.windowEnd < now;
  }

  /** Records an attempt in flight (after `hasRoom`); a failed attempt is forgotten so the client may retry it. */
  remember(author: string, clientId: string, digest: string, sentAt: number, result: Promise<R>): void {
    const key = `${author} ${clientId}`;
    const now = this.opts.now();
    this.expire(now);
    this.entries.delete(key);
    this.tombstones.delete(key);
    this.entries.set(key, { digest, result, at: now, windowEnd: sentAt + this.opts.windowMs });
    result.catch(() => {
      if (this.entries.get(key)?.result === result) this.entries.delete(key);
    });
    while (this.entries.size > this.opts.maxEntries) {
      const [k, e] = this.entries.entries().next().value!;
      this.entries.delete(k);
      if (e.windowEnd >= now) this.tombstones.set(k, e.windowEnd);
    }
    // Only when the caller skipped hasRoom: the bound holds whatever it costs.
    while (this.tombstones.size > this.maxTombstones) this.tombstones.delete(this.tombstones.keys().next().value!);
  }

  private expire(now: number): void {
    for (const [k, e] of this.entries) {
      if (now - e.at <= this.opts.ttlMs) break;
      this.entries.delete(k);
    }
    // Tombstones are added in eviction order, and windows end in roughly that order; a few late ones at
    // the front only delay pruning, never drop an open window.
    for (const [k, end] of this.tombstones) {
      if (end >= now) break;
      this.tombstones.delete(k);
    }
  }
}
