// A token bucket with an injected clock: `burst` tokens at most, refilled at `perSecond`. Per-socket
// flood control for the signalling endpoint (SPEC.md W7).
//
// Why not rate-limiter-flexible here (the relay uses it for its per-key and per-IP limits): this check runs
// synchronously inside the socket's message listener for every frame, and the library's `consume` is
// promise-based, so frames would be decided out of order or need a queue of their own. The bucket also lives
// on the socket and dies with it, where a keyed limiter keeps an entry (and an expiry) per key.

export class TokenBucket {
  private tokens: number;
  private last: number;

  constructor(
    private readonly burst: number,
    private readonly perSecond: number,
    now: number,
  ) {
    this.tokens = burst;
    this.last = now;
  }

  /** Takes `n` tokens if available. False means the caller is over its budget. */
  take(n: number, now: number): boolean {
    const elapsed = Math.max(0, now - this.last);
    this.last = now;
    this.tokens = Math.min(this.burst, this.tokens + (elapsed * this.perSecond) / 1000);
    if (this.tokens < n) return false;
    this.tokens -= n;
    return true;
  }
}
