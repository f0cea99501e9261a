// Signalling messages held for a destination that is logged in but whose signalling socket is not open
// yet (a client logs in over tRPC, then opens its PeerJS socket a moment later). Pure: the clock is
// passed in. Bounded per destination and in total (SPEC.md W5); what cannot wait is reported back so the
// caller can send EXPIRE to the sender.

export interface PendingLimits {
  /** Max messages held for one destination. @default 32 */
  perDestination: number;
  /** Max messages held in total. @default 1000 */
  total: number;
  /** How long a message may wait, in ms. @default 10_000 */
  ttlMs: number;
}

export const DEFAULT_PENDING_LIMITS: PendingLimits = { perDestination: 32, total: 1000, ttlMs: 10_000 };

interface Item {
  src: string;
  frame: string;
  at: number;
}

/** A (sender, destination) pair whose messages were dropped: the sender gets one EXPIRE for it. */
export interface Dropped {
  src: string;
  dst: string;
}

export class PendingSignals {
  private readonly byDst = new Map<string, Item[]>();
  private count = 0;

  constructor(private readonly limits: PendingLimits = DEFAULT_PENDING_LIMITS) {}

  get size(): number {
    return this.count;
  }

  /** Holds `frame` for `dst`. False when a bound is reached: the message is dropped. */
  push(dst: string, src: string, frame: string, now: number): boolean {
    const list = this.byDst.get(dst);
    if (this.count >= this.limits.total || (list?.length ?? 0) >= this.limits.perDestination) return false;
    const item = { src, frame, at: now };
    if (list) list.push(item);
    else this.byDst.set(dst, [item]);
    this.count++;
    return true;
  }

  /**
   * Removes and returns, in arrival order, the frames still fresh for `dst` (its socket just opened);
   * stale ones are reported in `dropped`.
   */
  take(dst: string, now: number): { frames: string[]; dropped: Dropped[] } {
    const list = this.byDst.get(dst);
    if (!list) return { frames: [], dropped: [] };
    this.byDst.delete(dst);
    this.count -= list.length;
    const frames: string[] = [];
    const dropped = new PairSet();
    for (const item of list) {
      if (now - item.at < this.limits.ttlMs) frames.push(item.frame);
      else dropped.add(item.src, dst);
    }
    return { frames, dropped: dropped.list() };
  }

  /**
   * Drops every message older than the TTL, and every message for a destination `stillWanted` rejects
   * (its session ended). Returns each (src, dst) pair once.
   */
  sweep(now: number, stillWanted: (dst: string) => boolean = () => true): Dropped[] {
    const dropped = new PairSet();
    for (const [dst, list] of this.byDst) {
      const wanted = stillWanted(dst);
      const keep = wanted ? list.filter((item) => now - item.at < this.limits.ttlMs) : [];
      if (keep.length === list.length) continue;
      for (const item of list) if (!keep.includes(item)) dropped.add(item.src, dst);
      this.count -= list.length - keep.length;
      if (keep.length === 0) this.byDst.delete(dst);
      else this.byDst.set(dst, keep);
    }
    return dropped.list();
  }

  /** Forgets everything (shutdown). */
  clear(): void {
    this.byDst.clear();
    this.count = 0;
  }
}

class PairSet {
  private readonly seen = new Map<string, Dropped>();
  add(src: string, dst: string): void {
    // Peer ids cannot contain '\n', so this key is unambiguous.
    const key = `${src}\n${dst}`;
    if (!this.seen.has(key)) this.seen.set(key, { src, dst });
  }
  list(): Dropped[] {
    return [...this.seen.values()];
  }
}
