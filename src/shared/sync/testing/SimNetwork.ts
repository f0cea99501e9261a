// A round-based simulated network for the sync simulator (SPEC.md G12): the transport helper's
// in-memory hub (transport/memoryTransport.ts, rules T1-T5) driven by a scheduler this class owns, so
// nothing moves until the driver says so. `step()` runs one scheduler turn (every link moves up to
// `bytesPerTurn` each way, connects answer, closes reach the other side); `settle()` steps until no work
// is scheduled and every async handler has run. Bytes are counted per peer, payload (CHUNK data) apart
// from control, for the benchmark. Optionally the first frames of every new link arrive out of order, as
// wrtc delivers them (SPEC.md VC2 (d)), so the engine's handling of early frames is testable (G3).
import { CHUNK_OVERHEAD_BYTES, PeerKind } from '../../protocol/peer';
import { type Prng, createPrng } from '../prng';
import { type MemoryHub, type MemoryTransport, createMemoryHub } from '../../transport/memoryTransport';
import type { PeerLink, PeerTransport } from '../../transport/PeerTransport';

export interface ByteStats {
  sentPayload: number;
  sentControl: number;
  recvPayload: number;
  recvControl: number;
  framesSent: number;
  framesRecv: number;
}

export interface SimNetworkOptions {
  /** Bytes each link direction moves per turn (the simulated bandwidth). @default 256 KiB */
  bytesPerTurn?: number;
  /** Links per peer (the hub refuses beyond it). @default 64 */
  maxLinks?: number;
  /**
   * The first this-many frames each side sends on a new link are held for one turn and handed to the
   * link in a seeded random order (what wrtc does to a new channel's first messages). @default 0 (in order)
   */
  reorderFirstFrames?: number;
  /** Seed of that shuffle. @default 1 */
  seed?: number;
}

interface Job {
  fn: () => void;
  cancelled: boolean;
}

const emptyStats = (): ByteStats => ({
  sentPayload: 0,
  sentControl: 0,
  recvPayload: 0,
  recvControl: 0,
  framesSent: 0,
  framesRecv: 0,
});

const yieldToHandlers = (): Promise<void> =>
  new Promise((resolve) => (typeof setImmediate === 'function' ? setImmediate(resolve) : setTimeout(resolve, 0)));

export class SimNetwork {
  private jobs: Job[] = [];
  private readonly hub: MemoryHub;
  private readonly transports = new Map<string, { inner: MemoryTransport; closed: boolean }>();
  private readonly stats = new Map<string, ByteStats>();
  /** Handler exceptions the hub reported (a test can assert there were none). */
  readonly errors: unknown[] = [];
  turns = 0;
  private readonly reorderFirst: number;
  private readonly reorderRng: Prng;

  constructor(opts: SimNetworkOptions = {}) {
    this.reorderFirst = opts.reorderFirstFrames ?? 0;
    this.reorderRng = createPrng(opts.seed ?? 1);
    this.hub = createMemoryHub({
      schedule: (fn) => {
        const job: Job = { fn, cancelled: false };
        this.jobs.push(job);
        return () => {
          job.cancelled = true;
        };
      },
      bytesPerTurn: opts.bytesPerTurn,
      maxLinks: opts.maxLinks,
      onError: (err) => this.errors.push(err),
    });
  }

  /** A peer joins: its transport (bytes it sends and receives are counted). */
  add(peerId: string): PeerTransport {
    const inner = this.hub.transport(peerId);
    const entry = { inner, closed: false };
    this.transports.set(peerId, entry);
    const count = (link: PeerLink): PeerLink => this.counted(peerId, link);
    return {
      get localPeerId() {
        return inner.localPeerId;
      },
      connect: async (remote, opts) => count(await inner.connect(remote, opts)),
      onLink: (handler) => inner.onLink((link) => handler(count(link))),
      close: async () => {
        entry.closed = true;
        await inner.close();
      },
    };
  }

  isOnline(peerId: string): boolean {
    const t = this.transports.get(peerId);
    return t !== undefined && !t.closed;
  }

  /** A peer vanishes: its transport closes, its links die (the other ends see it a turn later). */
  async leave(peerId: string): Promise<void> {
    const t = this.transports.get(peerId);
    if (!t || t.closed) return;
    t.closed = true;
    await t.inner.close();
  }

  /** Open links over all peers (each end counted). */
  get openLinks(): number {
    let n = 0;
    for (const t of this.transports.values()) n += t.inner.linkCount();
    return n;
  }

  /** Links, handlers and scheduled work still alive on the hub (0 once everything closed: T4). */
  liveResources(): number {
    return this.hub.liveResources();
  }

  bytes(peerId: string): ByteStats {
    return { ...(this.stats.get(peerId) ?? emptyStats()) };
  }

  resetStats(): void {
    this.stats.clear();
  }

  /** One turn: the work scheduled before this call runs (what it schedules waits for the next turn). */
  step(): void {
    this.turns++;
    const jobs = this.jobs;
    this.jobs = [];
    for (const job of jobs) if (!job.cancelled) job.fn();
  }

  /**
   * Turns until no work is scheduled and handlers are idle; returns the turns taken. `onStep` runs
   * after each turn (the benchmark makes peers leave mid-transfer there).
   */
  async settle(opts: { maxSteps?: number; onStep?: (step: number) => void } = {}): Promise<number> {
    const max = opts.maxSteps ?? 100_000;
    let n = 0;
    for (;;) {
      await yieldToHandlers();
      if (!this.busy()) {
        await yieldToHandlers();
        if (!this.busy()) return n;
      }
      if (n >= max) throw new Error(`network did not settle in ${max} turns`);
      this.step();
      n++;
      opts.onStep?.(n);
    }
  }

  private busy(): boolean {
    return this.jobs.some((j) => !j.cancelled);
  }

  private count(peerId: string, frame: Uint8Array, dir: 'sent' | 'recv'): void {
    let s = this.stats.get(peerId);
    if (!s) this.stats.set(peerId, (s = emptyStats()));
    const payload = frame[1] === PeerKind.CHUNK ? Math.max(0, frame.length - CHUNK_OVERHEAD_BYTES) : 0;
    if (dir === 'sent') {
      s.sentPayload += payload;
      s.sentControl += frame.length - payload;
      s.framesSent++;
    } else {
      s.recvPayload += payload;
      s.recvControl += frame.length - payload;
      s.framesRecv++;
    }
  }

  /** Runs `fn` on the next turn (the driver's scheduler, like every delivery). */
  private later(fn: () => void): void {
    this.jobs.push({ fn, cancelled: false });
  }

  /**
   * The same link, counting what it accepts to send and what it hands to each frame handler; with
   * reorderFirstFrames, its first frames are held one turn and sent shuffled.
   */
  private counted(peerId: string, link: PeerLink): PeerLink {
    const net = this;
    let early: Uint8Array[] | null = this.reorderFirst > 0 ? [] : null;
    let earlyCount = 0;
    let earlyBytes = 0;
    const flushEarly = (): void => {
      const held = early;
      early = null;
      earlyBytes = 0;
      if (!held || link.closed) return;
      for (const f of net.reorderRng.shuffle(held)) if (link.send(f)) net.count(peerId, f, 'sent');
    };
    return {
      get remotePeerId() {
        return link.remotePeerId;
      },
      get closed() {
        return link.closed;
      },
      send(frame) {
        if (early && !link.closed && earlyCount < net.reorderFirst) {
          if (early.length === 0) net.later(flushEarly);
          early.push(frame.slice());
          earlyCount++;
          earlyBytes += frame.length;
          if (earlyCount === net.reorderFirst) net.later(flushEarly);
          return true;
        }
        // Frames after the held ones wait behind them, so only the first ones are permuted.
        if (early && !link.closed) {
          const copy = frame.slice();
          net.later(() => {
            if (link.send(copy)) net.count(peerId, copy, 'sent');
          });
          return true;
        }
        const ok = link.send(frame);
        if (ok) net.count(peerId, frame, 'sent');
        return ok;
      },
      bufferedAmount: () => link.bufferedAmount() + earlyBytes,
      onFrame: (h) =>
        link.onFrame((frame) => {
          net.count(peerId, frame, 'recv');
          h(frame);
        }),
      onDrain: (h) => link.onDrain(h),
      onClose: (h) => link.onClose(h),
      close: (reason) => link.close(reason),
    };
  }
}
