// Who gets an incoming link (SPEC.md T10). A link can open while nobody listens: the engine's `start`
// may still be loading its index, or a PeerJS offer arrived right after the signalling OPEN. Such a
// link is held, not dropped: a dropped one stays open on the remote side with nobody reading, and the
// remote times out waiting for our HELLO (and, before T10, banned us for it).
import type { ErrorReporter } from './BaseLink';
import { type PeerLink, TransportReason } from './PeerTransport';

/**
 * Incoming links held while no `onLink` handler is registered. Beyond this many, later ones are closed
 * with TOO_MANY_LINKS. Each also counts against the transport's `maxLinks`, and its frames against its
 * own early-frame bound (T1), so what one waiting transport can hold is bounded twice over.
 */
export const MAX_UNCLAIMED_LINKS = 32;

export class IncomingLinks {
  private readonly handlers = new Set<(link: PeerLink) => void>();
  /** Held links, each with the disposer of the close listener that drops it from here. */
  private unclaimed: { link: PeerLink; off: () => void }[] = [];
  private handoffQueued = false;

  constructor(private readonly report: ErrorReporter) {}

  /** Links held for the next handler (for liveResources and tests). */
  unclaimedCount(): number {
    return this.unclaimed.length;
  }

  /** A link opened: to every handler, or held until there is one. */
  arrived(link: PeerLink): void {
    if (this.handlers.size > 0) return this.hand(link);
    if (this.unclaimed.length >= MAX_UNCLAIMED_LINKS) return link.close(TransportReason.TOO_MANY_LINKS);
    const entry = {
      link,
      off: link.onClose(() => {
        this.unclaimed = this.unclaimed.filter((e) => e !== entry);
      }),
    };
    this.unclaimed.push(entry);
  }

  subscribe(handler: (link: PeerLink) => void): () => void {
    this.handlers.add(handler);
    if (this.unclaimed.length > 0 && !this.handoffQueued) {
      // A microtask later, like early frames (T1): a handler should not run inside its own registration.
      this.handoffQueued = true;
      queueMicrotask(() => this.handOff());
    }
    return () => this.handlers.delete(handler);
  }

  /** Forgets handlers and held links (the transport closes the links itself). */
  clear(): void {
    this.handlers.clear();
    for (const e of this.unclaimed) e.off();
    this.unclaimed = [];
  }

  private handOff(): void {
    this.handoffQueued = false;
    // The handler may have unsubscribed meanwhile: then they wait for the next one.
    if (this.handlers.size === 0) return;
    const waiting = this.unclaimed;
    this.unclaimed = [];
    for (const e of waiting) {
      e.off();
      if (!e.link.closed) this.hand(e.link);
    }
  }

  private hand(link: PeerLink): void {
    for (const h of [...this.handlers]) {
      try {
        h(link);
      } catch (err) {
        this.report(err, 'onLink');
      }
    }
  }
}
