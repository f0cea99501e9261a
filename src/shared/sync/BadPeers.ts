// Peers dropped for misbehaving, remembered for a while (SPEC.md G13): no link is opened to them or
// accepted from them until their entry expires. Keyed by peer id and by user key, since a peer id
// changes with every login but the key does not.

/** Entries kept; the oldest is forgotten first. */
export const BAD_PEERS_MAX = 1024;

export class BadPeers {
  private readonly until = new Map<string, number>();

  constructor(
    private readonly now: () => number,
    private readonly ttlMs: number,
  ) {}

  add(peerId: string, userId?: string): void {
    const t = this.now() + this.ttlMs;
    for (const key of userId ? [peerId, `user:${userId}`] : [peerId]) {
      this.until.delete(key);
      if (this.until.size >= BAD_PEERS_MAX) this.until.delete(this.until.keys().next().value!);
      this.until.set(key, t);
    }
  }

  has(peerId: string, userId?: string): boolean {
    return this.live(peerId) || (userId !== undefined && this.live(`user:${userId}`));
  }

  get size(): number {
    return this.until.size;
  }

  private live(key: string): boolean {
    const t = this.until.get(key);
    if (t === undefined) return false;
    if (t > this.now()) return true;
    this.until.delete(key);
    return false;
  }
}
