// Holes in the per-channel `prev` chains (SPEC.md CL7, R6): an envelope whose `prev` names an id this store
// does not hold. Fed every batch the client stores (and, once, each channel's newest envelopes at start);
// a hole closes when its missing envelope is stored. Whether a hole is shown is the client's call (only
// once no catch-up is running: until then a peer may still fill it).
import type { Envelope } from '../protocol/relay';
import type { HistoryStore } from '../store/HistoryStore';
import type { HistoryGap } from './PeerchatClient';

/** Holes remembered at most, over all channels; beyond, the oldest missing ids are forgotten first. */
export const MAX_TRACKED_GAPS = 1_000;

export class GapTracker {
  /** missingId -> the hole. Map order is insertion order; eviction takes the lowest ids. */
  private readonly holes = new Map<string, HistoryGap>();
  /** Batches are examined one after another, so a hole found and its filler stored at once cannot cross. */
  private chain: Promise<void> = Promise.resolve();

  constructor(
    private readonly store: HistoryStore,
    /** Lowest id worth having (bounded stores, H11): a `prev` below it is not a hole. */
    private readonly horizon: () => string | undefined,
  ) {}

  /** Looks at newly stored envelopes: fills holes they close, records the ones their `prev` opens. */
  note(envs: readonly Envelope[]): Promise<void> {
    const run = this.chain.then(() => this.examine(envs));
    this.chain = run.catch(() => {});
    return run;
  }

  /** The holes of one channel, newest first, at most `limit`. */
  gaps(channel: string, limit: number): HistoryGap[] {
    const out: HistoryGap[] = [];
    for (const g of this.holes.values()) if (g.channel === channel) out.push(g);
    out.sort((a, b) => (a.beforeId < b.beforeId ? 1 : a.beforeId > b.beforeId ? -1 : 0));
    return out.slice(0, limit);
  }

  get size(): number {
    return this.holes.size;
  }

  private async examine(envs: readonly Envelope[]): Promise<void> {
    for (const env of envs) this.holes.delete(env.id);
    const lower = this.horizon() ?? '';
    const inBatch = new Set(envs.map((e) => e.id));
    const open = envs.filter((e) => e.prev && e.prev.id >= lower && !inBatch.has(e.prev.id) && !this.holes.has(e.prev.id));
    if (open.length === 0) return;
    const held = await this.store.hasMessages(open.map((e) => e.prev!.id));
    open.forEach((env, i) => {
      if (held[i]) return;
      this.holes.set(env.prev!.id, { channel: env.post.channel, epoch: env.epoch, beforeId: env.id, missingId: env.prev!.id });
    });
    if (this.holes.size > MAX_TRACKED_GAPS) {
      const byAge = [...this.holes.keys()].sort();
      for (const id of byAge.slice(0, this.holes.size - MAX_TRACKED_GAPS)) this.holes.delete(id);
    }
  }
}
