// The transport the client's one sync engine sees for its whole life (SPEC.md CL3). Every login brings a
// new PeerJS id, Peer and PeerjsTransport; this facade forwards to whichever is current, so the engine --
// its index, its needs, the peers it banned -- outlives sessions instead of being rebuilt (and reloading
// the store) on every reconnect. Links of a replaced session close, which the engine handles like any
// closed link.
//
// It also holds incoming links that open before the engine registers `onLink` (engine.start() loads its
// index first) and hands them over when it does, instead of dropping them half-open (SPEC.md VC2 b).
import { type PeerLink, type PeerTransport, TransportError, TransportReason } from '../transport/PeerTransport';

/** Links held until the engine listens: beyond this many, later ones are closed (the engine caps links anyway). */
export const MAX_EARLY_LINKS = 64;

export class SessionTransport implements PeerTransport {
  private inner: PeerTransport | null = null;
  private offInner: (() => void) | null = null;
  private peerId = '';
  private held: PeerLink[] | null = [];
  private readonly handlers = new Set<(link: PeerLink) => void>();
  private closed = false;

  constructor(
    /** A link opened or closed (the client recounts links). */
    private readonly onLinksChanged: () => void,
  ) {}

  /** This login's PeerJS id, set at login before the session's transport exists (the engine skips itself in the roster). */
  get localPeerId(): string {
    return this.peerId;
  }

  setPeerId(id: string): void {
    this.peerId = id;
  }

  /** Makes `t` the current session's transport. */
  attach(t: PeerTransport): void {
    this.detach();
    if (this.closed) return;
    this.inner = t;
    this.offInner = t.onLink((link) => this.incoming(link));
  }

  /** The session ended: no new links until the next attach (its caller closes the old transport). */
  detach(): void {
    this.offInner?.();
    this.offInner = null;
    this.inner = null;
  }

  get attached(): boolean {
    return this.inner !== null;
  }

  async connect(remotePeerId: string, opts?: { signal?: AbortSignal; timeoutMs?: number }): Promise<PeerLink> {
    const inner = this.inner;
    if (!inner) throw new TransportError(TransportReason.SIGNALLING_LOST, 'no session');
    return this.watch(await inner.connect(remotePeerId, opts));
  }

  onLink(handler: (link: PeerLink) => void): () => void {
    this.handlers.add(handler);
    const waiting = this.held ?? [];
    this.held = null;
    for (const link of waiting) if (!link.closed) handler(link);
    return () => this.handlers.delete(handler);
  }

  /** Stops forwarding; the session transports are closed by their owner (the client). */
  async close(): Promise<void> {
    this.closed = true;
    this.detach();
    for (const link of this.held ?? []) link.close(TransportReason.CLOSED);
    this.held = [];
    this.handlers.clear();
  }

  /** Links held for an engine that has not listened yet. */
  get heldLinks(): number {
    return this.held?.length ?? 0;
  }

  private incoming(raw: PeerLink): void {
    const link = this.watch(raw);
    if (this.held) {
      if (this.held.length >= MAX_EARLY_LINKS) link.close(TransportReason.TOO_MANY_LINKS);
      else this.held.push(link);
      return;
    }
    for (const h of this.handlers) {
      try {
        h(link);
      } catch {
        // Never throw into the transport's listener (STYLE 7); the engine guards its own handler too.
      }
    }
  }

  private watch(link: PeerLink): PeerLink {
    // A microtask later: the engine attaches (or forgets) its side of the link right after this.
    const changed = (): void => queueMicrotask(this.onLinksChanged);
    link.onClose(changed);
    changed();
    return link;
  }
}
