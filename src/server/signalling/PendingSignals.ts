// Signalling messages held for a destination that is logged in but whose signalling socket is not open
// yet (a client logs in over tRPC, then opens its PeerJS socket a moment later). Pure: the clock is
// passed in. What cannot wait is reported back so the caller can send EXPIRE to the sender (SPEC.md W5).
//
// Fair bounds (W5): one pool of 1,000 was filled in ~1.3 s from one address (32 logins that never open
// their socket, 3 senders), after which an honest OFFER to a user who had just logged in was refused. So
// besides the total and each destination's bound, what one sender key and one source address may hold is
// bounded, overall and per destination: a flood from one user or one address fills only its own share,
// and everybody else's offers still find room, also at the destination the flood targets.

export interface PendingLimits {
  /** Max messages held for one destination. @default 32 */
  perDestination: number;
  /** Max messages held in total. @default 1000 */
  total: number;
  /** Max messages one sender key (all its sessions) holds, over all destinations. @default 64 */
  perSender: number;
  /** Max messages one source address holds, over all destinations and keys. @default 128 */
  perAddress: number;
  /**
   * Max messages one sender key, or one source address, holds for one destination: half of that
   * destination's room, so one flooder cannot take all of it. An honest connect is an OFFER and a few
   * CANDIDATEs. @default 16
   */
  perSourceAndDestination: number;
  /** How long a message may wait, in ms. @default 10_000 */
  ttlMs: number;
}

export const DEFAULT_PENDING_LIMITS: PendingLimits = {
  perDestination: 32,
  total: 1000,
  perSender: 64,
  perAddress: 128,
  perSourceAndDestination: 16,
  ttlMs: 10_000,
};

/** Which bound refused a message (counted in the signalling stats). */
export type PendingBound = 'total' | 'destination' | 'sender' | 'address' | 'source_destination';

/** Who sent a held message: the authenticated peer id, its key (all sessions of one user) and address. */
export interface PendingSource {
  src: string;
  key: string;
  addr: string;
}

interface Item extends PendingSource {
  frame: string;
  at: number;
}

/** A (sender, destination) pair whose messages were dropped: the sender gets one EXPIRE for it. */
export interface Dropped {
  src: string;
  dst: string;
}

/** Counts per string key; a key at zero is deleted, so the map never outgrows the items held. */
class Counter {
  private readonly m = new Map<string, number>();
  get(k: string): number {
    return this.m.get(k) ?? 0;
  }
  add(k: string, d: number): void {
    const n = (this.m.get(k) ?? 0) + d;
    if (n <= 0) this.m.delete(k);
    else this.m.set(k, n);
  }
  get size(): number {
    return this.m.size;
  }
  clear(): void {
    this.m.clear();
  }
}

export class PendingSignals {
  private readonly limits: PendingLimits;
  private readonly byDst = new Map<string, Item[]>();
  private readonly bySender = new Counter();
  private readonly byAddress = new Counter();
  /** `k:<key>\n<dst>` and `a:<addr>\n<dst>` (peer ids and addresses contain no '\n'). */
  private readonly bySourceAndDst = new Counter();
  private count = 0;

  constructor(limits: Partial<PendingLimits> = {}) {
    this.limits = { ...DEFAULT_PENDING_LIMITS, ...limits };
  }

  get size(): number {
    return this.count;
  }

  /** Distinct keys in the bookkeeping maps (tests: they hold nothing once the messages are gone). */
  get trackedKeys(): number {
    return this.bySender.size + this.byAddress.size + this.bySourceAndDst.size;
  }

  heldFor(dst: string): number {
    return this.byDst.get(dst)?.length ?? 0;
  }

  /** Holds `frame` for `dst`; null when held, else the bound that refused it (the message is dropped). */
  push(dst: string, from: PendingSource, frame: string, now: number): PendingBound | null {
    const l = this.limits;
    const list = this.byDst.get(dst);
    // The source's own bounds first: a flooder learns that it is the one over budget.
    if (this.bySender.get(from.key) >= l.perSender) return 'sender';
    if (this.byAddress.get(from.addr) >= l.perAddress) return 'address';
    if (this.bySourceAndDst.get(`k:${from.key}\n${dst}`) >= l.perSourceAndDestination) return 'source_destination';
    if (this.bySourceAndDst.get(`a:${from.addr}\n${dst}`) >= l.perSourceAndDestination) return 'source_destination';
    if ((list?.length ?? 0) >= l.perDestination) return 'destination';
    if (this.count >= l.total) return 'total';
    const item: Item = { src: from.src, key: from.key, addr: from.addr, frame, at: now };
    if (list) list.push(item);
    else this.byDst.set(dst, [item]);
    this.account(dst, item, 1);
    return null;
  }

  /**
   * Removes and returns, in arrival order, the frames still fresh for `dst` (its socket just opened);
   * stale ones are reported in `dropped`.
   */
  take(dst: string, now: number): { frames: string[]; dropped: Dropped[] } {
    const list = this.byDst.get(dst);
    if (!list) return { frames: [], dropped: [] };
    this.byDst.delete(dst);
    const frames: string[] = [];
    const dropped = new PairSet();
    for (const item of list) {
      this.account(dst, item, -1);
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
      const keep: Item[] = [];
      for (const item of list) {
        if (wanted && now - item.at < this.limits.ttlMs) keep.push(item);
        else {
          dropped.add(item.src, dst);
          this.account(dst, item, -1);
        }
      }
      if (keep.length === list.length) continue;
      if (keep.length === 0) this.byDst.delete(dst);
      else this.byDst.set(dst, keep);
    }
    return dropped.list();
  }

  /** Forgets everything (shutdown). */
  clear(): void {
    this.byDst.clear();
    this.bySender.clear();
    this.byAddress.clear();
    this.bySourceAndDst.clear();
    this.count = 0;
  }

  private account(dst: string, item: Item, d: 1 | -1): void {
    this.count += d;
    this.bySender.add(item.key, d);
    this.byAddress.add(item.addr, d);
    this.bySourceAndDst.add(`k:${item.key}\n${dst}`, d);
    this.bySourceAndDst.add(`a:${item.addr}\n${dst}`, d);
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
