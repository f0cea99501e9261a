// Idempotent posts (SPEC.md M7): a retried post with the same (author, clientId) and the same content gets
// the very envelope the first attempt produced, even while the first is still being signed. Bounded by
// count and age; after that a retry is a new message (clients retry within seconds, not minutes).
import type { Envelope } from '../shared/protocol/relay';

interface Entry {
  /** postDigest of the first attempt: same digest = same post, byte for byte. */
  digest: string;
  result: Promise<Envelope>;
  at: number;
}

export type RecentLookup =
  | { kind: 'new' }
  | { kind: 'same'; result: Promise<Envelope> }
  | { kind: 'conflict' };

export class RecentPosts {
  // Insertion order == age order, so eviction only looks at the front.
  private readonly entries = new Map<string, Entry>();

  constructor(
    private readonly opts: { maxEntries: number; ttlMs: number; now: () => number },
  ) {}

  get size(): number {
    return this.entries.size;
  }

  lookup(author: string, clientId: string, digest: string): RecentLookup {
    const e = this.entries.get(`${author} ${clientId}`);
    if (!e || this.opts.now() - e.at > this.opts.ttlMs) return { kind: 'new' };
    return e.digest === digest ? { kind: 'same', result: e.result } : { kind: 'conflict' };
  }

  /** Records an attempt in flight; a failed attempt is forgotten so the client may retry it. */
  remember(author: string, clientId: string, digest: string, result: Promise<Envelope>): void {
    const key = `${author} ${clientId}`;
    const now = this.opts.now();
    this.entries.delete(key);
    this.entries.set(key, { digest, result, at: now });
    result.catch(() => {
      if (this.entries.get(key)?.result === result) this.entries.delete(key);
    });
    for (const [k, e] of this.entries) {
      if (this.entries.size <= this.opts.maxEntries && now - e.at <= this.opts.ttlMs) break;
      this.entries.delete(k);
    }
  }
}
