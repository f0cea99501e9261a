// An in-memory PeerTransport for tests and the simulator: peers registered on one hub link to each
// other without any network. It behaves like the WebRTC transport where the engine can tell
// (SPEC.md T1-T5): frames are copied on send and delivered later, in order; `bufferedAmount` counts
// bytes sent but not yet delivered and drains at `bytesPerTurn` per scheduler turn, so send returns
// false above the high-water mark and `onDrain` fires; close drops what is in flight and reaches the
// other side a turn later; an unknown or closed peer id is PEER_UNAVAILABLE. Links that open while nobody
// subscribed are held (T10). Two options model wrtc for tests: `reorderFirstFrames` does to a new link's
// first frames what wrtc was seen to do, and `oneFrameUntilHeard` is the rule that undoes it (T11).
import { BaseLink, type ErrorReporter, type OneFrameUntilHeard } from './BaseLink';
import { IncomingLinks } from './IncomingLinks';
import { type PeerLink, type PeerTransport, TransportError, TransportReason } from './PeerTransport';

export interface MemoryHubOptions {
  /**
   * Runs `fn` later and returns a cancel function. Inject a virtual clock's scheduler for a
   * deterministic simulation. @default setTimeout(fn, 0)
   */
  schedule?: (fn: () => void) => () => void;
  /** Bytes each link direction delivers per scheduler turn: the simulated bandwidth. @default 256 KiB */
  bytesPerTurn?: number;
  /** Max links per transport; beyond it connect rejects TOO_MANY_LINKS / the callee refuses. @default 64 */
  maxLinks?: number;
  /** Where exceptions thrown by handlers go. @default console.error */
  onError?: ErrorReporter;
  /**
   * Reverses the frames of a link direction's first delivery turn when the receiving side has not
   * sent anything yet: what wrtc does to the first messages of a channel the receiver is still setting
   * up (measured 1-2 links in 200; SPEC.md T11). For tests of the rule that undoes it. @default false
   */
  reorderFirstFrames?: boolean;
  /** T11 on every link (as the PeerJS transport does). Off keeps a simulation's turn counts. @default false */
  oneFrameUntilHeard?: OneFrameUntilHeard | false;
}

export interface MemoryTransport extends PeerTransport {
  /** Links open on this transport. */
  linkCount(): number;
}

export interface MemoryHub {
  /** Creates the transport of `peerId` (online until its `close()`). */
  transport(peerId: string): MemoryTransport;
  /**
   * Open links, their handlers, and scheduled deliveries/notifications still alive on the hub: 0 once
   * every link is closed and its close has been seen (T4). `onLink` handlers are not counted.
   */
  liveResources(): number;
}

export function createMemoryHub(opts: MemoryHubOptions = {}): MemoryHub {
  const bytesPerTurn = opts.bytesPerTurn ?? 256 * 1024;
  const maxLinks = opts.maxLinks ?? 64;
  const report: ErrorReporter = opts.onError ?? ((err, where) => console.error(`[memoryTransport] ${where}`, err));
  const reorderFirstFrames = opts.reorderFirstFrames ?? false;
  const oneFrameUntilHeard = opts.oneFrameUntilHeard ?? false;
  const rawSchedule = opts.schedule ?? ((fn: () => void) => {
    const t = setTimeout(fn, 0);
    return () => clearTimeout(t);
  });
  const transports = new Map<string, MemoryTransportImpl>();
  let scheduled = 0;

  /** Every deferred step goes through here so leftover work is countable (T4). */
  function schedule(fn: () => void): () => void {
    scheduled++;
    let done = false;
    const cancel = rawSchedule(() => {
      if (done) return;
      done = true;
      scheduled--;
      try {
        fn();
      } catch (err) {
        report(err, 'scheduled');
      }
    });
    return () => {
      if (done) return;
      done = true;
      scheduled--;
      cancel();
    };
  }

  class MemoryLink extends BaseLink {
    other: MemoryLink | null = null;
    /** Something was put on the wire by this side (reorderFirstFrames). */
    hasSent = false;
    private pumped = false;
    private outbox: Uint8Array[] = [];
    private outBytes = 0;
    private cancelPump: (() => void) | null = null;

    constructor(
      readonly remotePeerId: string,
      private readonly owner: MemoryTransportImpl,
    ) {
      super(report, { oneFrameUntilHeard });
    }

    protected transmit(frame: Uint8Array): boolean {
      // Copied like a real channel does: the caller may reuse its buffer.
      this.outbox.push(frame.slice());
      this.outBytes += frame.byteLength;
      this.hasSent = true;
      if (!this.cancelPump) this.cancelPump = schedule(() => this.pump());
      return true;
    }

    protected channelBuffered(): number {
      return this.outBytes;
    }

    private pump(): void {
      this.cancelPump = null;
      let budget = bytesPerTurn;
      const turn: Uint8Array[] = [];
      while (this.outbox.length > 0 && budget > 0 && !this.closed) {
        const frame = this.outbox.shift()!;
        this.outBytes -= frame.byteLength;
        budget -= frame.byteLength;
        turn.push(frame);
      }
      const first = !this.pumped;
      this.pumped = true;
      if (reorderFirstFrames && first && this.other && !this.other.hasSent) turn.reverse();
      for (const frame of turn) {
        if (this.closed) break;
        this.other?.receive(frame);
      }
      if (this.outbox.length > 0 && !this.closed) this.cancelPump = schedule(() => this.pump());
      this.checkDrain();
    }

    receive(frame: Uint8Array): void {
      this.deliver(frame);
    }

    /** The other side closed: seen here one turn later, like a real network. */
    remoteClosed(): void {
      this.finish(TransportReason.REMOTE_CLOSED);
    }

    // The drain is checked after every pump turn; nothing else to watch.
    protected startDrainWatch(): void {}
    protected stopDrainWatch(): void {}

    protected teardown(): void {
      this.cancelPump?.();
      this.cancelPump = null;
      this.outbox = [];
      this.outBytes = 0;
      this.owner.links.delete(this);
      const other = this.other;
      this.other = null;
      if (other && !other.closed) {
        other.other = null;
        schedule(() => other.remoteClosed());
      }
    }
  }

  class MemoryTransportImpl implements MemoryTransport {
    readonly links = new Set<MemoryLink>();
    private readonly incoming = new IncomingLinks(report);
    private readonly pendingConnects = new Set<(err: TransportError) => void>();
    isClosed = false;

    constructor(readonly localPeerId: string) {}

    linkCount(): number {
      return this.links.size;
    }

    /** Handlers registered on this transport's open links. */
    linkHandlerCount(): number {
      let n = 0;
      for (const l of this.links) n += l.handlerCount();
      return n;
    }

    connect(remotePeerId: string, o: { signal?: AbortSignal; timeoutMs?: number } = {}): Promise<PeerLink> {
      return new Promise<PeerLink>((resolve, reject) => {
        if (this.isClosed) return reject(new TransportError(TransportReason.CLOSED));
        if (o.signal?.aborted) return reject(new TransportError(TransportReason.ABORTED));
        if (this.links.size + this.pendingConnects.size >= maxLinks) {
          return reject(new TransportError(TransportReason.TOO_MANY_LINKS));
        }
        const fail = (err: TransportError) => {
          cleanup();
          reject(err);
        };
        const onAbort = () => fail(new TransportError(TransportReason.ABORTED));
        // One turn for the "network" to answer; the in-memory answer is always quick, so timeoutMs
        // has nothing to bound.
        const cancel = schedule(() => {
          cleanup();
          const target = transports.get(remotePeerId);
          if (!target || target.isClosed || target === this) {
            return reject(new TransportError(TransportReason.PEER_UNAVAILABLE, remotePeerId));
          }
          if (target.links.size >= maxLinks) {
            return reject(new TransportError(TransportReason.PEER_UNAVAILABLE, 'remote has too many links'));
          }
          const mine = new MemoryLink(remotePeerId, this);
          const theirs = new MemoryLink(this.localPeerId, target);
          mine.other = theirs;
          theirs.other = mine;
          this.links.add(mine);
          target.links.add(theirs);
          target.emitLink(theirs);
          resolve(mine);
        });
        const cleanup = () => {
          cancel();
          this.pendingConnects.delete(fail);
          o.signal?.removeEventListener('abort', onAbort);
        };
        this.pendingConnects.add(fail);
        o.signal?.addEventListener('abort', onAbort, { once: true });
      });
    }

    emitLink(link: MemoryLink): void {
      this.incoming.arrived(link);
    }

    onLink(handler: (link: PeerLink) => void): () => void {
      if (this.isClosed) return () => {};
      return this.incoming.subscribe(handler);
    }

    async close(): Promise<void> {
      if (this.isClosed) return;
      this.isClosed = true;
      if (transports.get(this.localPeerId) === this) transports.delete(this.localPeerId);
      for (const fail of [...this.pendingConnects]) fail(new TransportError(TransportReason.CLOSED));
      for (const link of [...this.links]) link.close(TransportReason.CLOSED);
      this.incoming.clear();
    }
  }

  return {
    transport(peerId: string): MemoryTransport {
      const existing = transports.get(peerId);
      if (existing && !existing.isClosed) throw new Error(`peer id ${peerId} is already on this hub`);
      const t = new MemoryTransportImpl(peerId);
      transports.set(peerId, t);
      return t;
    },
    liveResources(): number {
      let n = scheduled;
      for (const t of transports.values()) n += t.links.size + t.linkHandlerCount();
      return n;
    },
  };
}
