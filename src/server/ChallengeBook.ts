// Login challenges (SPEC.md L1-L3): each nonce is bound to the connection that asked for it, used at most
// once, and expires. Pure: the clock and the nonce source are injected.
import { RelayReason } from '../shared/protocol/relay';

export type ChallengeCheck =
  | { ok: true }
  | {
      ok: false;
      reason: typeof RelayReason.NO_CHALLENGE | typeof RelayReason.CHALLENGE_EXPIRED | typeof RelayReason.CHALLENGE_REPLAYED;
    };

interface Entry {
  connId: number;
  expiresAt: number;
  used: boolean;
}

export interface ChallengeBookOptions {
  ttlMs: number;
  now: () => number;
  /** A fresh unguessable nonce (32 random bytes, base64url). */
  nonce: () => string;
  /** Unused challenges one connection may hold; asking for more drops its oldest. @default 4 */
  maxPerConnection?: number;
  /** Hard bound on remembered nonces (used ones are kept until well past expiry to report replays). @default 100_000 */
  maxEntries?: number;
}

export class ChallengeBook {
  // Insertion order == expiry order (constant TTL), so pruning only ever looks at the front.
  private readonly entries = new Map<string, Entry>();
  private readonly unusedByConn = new Map<number, Set<string>>();
  private readonly maxPerConnection: number;
  private readonly maxEntries: number;

  constructor(private readonly opts: ChallengeBookOptions) {
    this.maxPerConnection = opts.maxPerConnection ?? 4;
    this.maxEntries = opts.maxEntries ?? 100_000;
  }

  get size(): number {
    return this.entries.size;
  }

  issue(connId: number): { nonce: string; expiresAt: number } {
    const now = this.opts.now();
    this.prune(now);
    let unused = this.unusedByConn.get(connId);
    if (!unused) this.unusedByConn.set(connId, (unused = new Set()));
    if (unused.size >= this.maxPerConnection) {
      const oldest = unused.values().next().value!;
      unused.delete(oldest);
      this.entries.delete(oldest);
    }
    const nonce = this.opts.nonce();
    const expiresAt = now + this.opts.ttlMs;
    this.entries.set(nonce, { connId, expiresAt, used: false });
    unused.add(nonce);
    return { nonce, expiresAt };
  }

  /** Spends `nonce` for a login attempt on `connId`. A spent nonce never verifies again, even if that attempt failed. */
  consume(connId: number, nonce: string): ChallengeCheck {
    const e = this.entries.get(nonce);
    if (!e) return { ok: false, reason: RelayReason.NO_CHALLENGE };
    if (e.used) return { ok: false, reason: RelayReason.CHALLENGE_REPLAYED };
    // Another connection's nonce: refused without spending it, so a stolen nonce cannot block its owner.
    if (e.connId !== connId) return { ok: false, reason: RelayReason.NO_CHALLENGE };
    e.used = true;
    const unused = this.unusedByConn.get(connId);
    if (unused) {
      unused.delete(nonce);
      if (unused.size === 0) this.unusedByConn.delete(connId); // logged-in connections hold no Set
    }
    if (this.opts.now() > e.expiresAt) return { ok: false, reason: RelayReason.CHALLENGE_EXPIRED };
    return { ok: true };
  }

  /**
   * A login with `nonce` succeeded on `connId` (SPEC.md L3): that nonce and the connection's unused ones are
   * forgotten at once. A logged-in connection never asks again (L7), and a replay of that nonce elsewhere is
   * still refused (NO_CHALLENGE: it is in no book), so remembering it would only cost ~200 bytes per client.
   */
  loggedIn(connId: number, nonce: string): void {
    if (this.entries.get(nonce)?.connId === connId) this.entries.delete(nonce);
    this.dropConnection(connId);
  }

  /** The connection closed: its unused nonces can never be used; spent ones stay to report replays. */
  dropConnection(connId: number): void {
    const unused = this.unusedByConn.get(connId);
    if (!unused) return;
    for (const n of unused) this.entries.delete(n);
    this.unusedByConn.delete(connId);
  }

  private prune(now: number): void {
    // Kept one extra TTL after expiry so a late attempt hears CHALLENGE_EXPIRED / _REPLAYED, not NO_CHALLENGE.
    for (const [nonce, e] of this.entries) {
      if (e.expiresAt + this.opts.ttlMs > now && this.entries.size < this.maxEntries) break;
      this.entries.delete(nonce);
      this.unusedByConn.get(e.connId)?.delete(nonce);
    }
  }
}
