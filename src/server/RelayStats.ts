// Plain counters updated on hot paths (a property increment), read by /metrics at scrape time.

/** Procedure families, the label of the byte counters: the first segment of a tRPC path. */
export const FAMILIES = ['info', 'auth', 'chat', 'attachment', 'presence', 'events', 'other'] as const;
export type Family = (typeof FAMILIES)[number];

export function familyOf(name: string): Family {
  return (FAMILIES as readonly string[]).includes(name) ? (name as Family) : 'other';
}

const zero = (): Record<Family, number> =>
  Object.fromEntries(FAMILIES.map((f) => [f, 0])) as Record<Family, number>;

export class RelayStats {
  readonly bytesIn = zero();
  readonly bytesOut = zero();
  /** Refusals by RelayReason, plus socket-level ones (FLOOD, SLOW_CONSUMER, LOGIN_TIMEOUT, HEARTBEAT_TIMEOUT, ...). */
  readonly rejections = new Map<string, number>();
  posts = 0;

  reject(reason: string): void {
    this.rejections.set(reason, (this.rejections.get(reason) ?? 0) + 1);
  }
}
