// A slow uplink for the simulator: a transport wrapper whose links send at most `bytesPerSecond` on the
// simulation's clock (SimNetwork's own bandwidth is per scheduler turn, and a round settles as many turns
// as it likes, so in clock time the hub is infinitely fast). The link keeps the transport contract the
// engine relies on (SPEC.md T2): frames wait in order in `bufferedAmount`, `send` refuses (and queues
// nothing) above HIGH_WATER_BYTES, and `onDrain` fires once the buffer is back at LOW_WATER_BYTES.
// Used by the slow-honest-peer and duplicate-link scenarios (SPEC.md G13, G8).
import { HIGH_WATER_BYTES, LOW_WATER_BYTES, type PeerLink, type PeerTransport } from '../../transport/PeerTransport';
import type { Clock, TimerHandle } from '../Clock';

export interface ThrottledLink {
  link: PeerLink;
  /** Bytes this side handed to the link so far. */
  sentBytes: number;
}

export interface ThrottledTransport extends PeerTransport {
  /** Every link this transport made or accepted, in order (a scenario may close one). */
  readonly links: ThrottledLink[];
}

export function throttleTransport(inner: PeerTransport, clock: Clock, bytesPerSecond: number): ThrottledTransport {
  const links: ThrottledLink[] = [];
  const wrap = (link: PeerLink): PeerLink => {
    const entry: ThrottledLink = { link, sentBytes: 0 };
    entry.link = throttleLink(link, clock, bytesPerSecond, (n) => (entry.sentBytes += n));
    links.push(entry);
    return entry.link;
  };
  return {
    links,
    get localPeerId() {
      return inner.localPeerId;
    },
    connect: async (remote, opts) => wrap(await inner.connect(remote, opts)),
    onLink: (handler) => inner.onLink((link) => handler(wrap(link))),
    close: () => inner.close(),
  };
}

function throttleLink(link: PeerLink, clock: Clock, bytesPerSecond: number, onSent: (bytes: number) => void): PeerLink {
  const queue: Uint8Array[] = [];
  let queued = 0;
  let timer: TimerHandle | null = null;
  let refused = false;
  const drainHandlers = new Set<() => void>();

  const stop = (): void => {
    if (timer !== null) clock.clearTimeout(timer);
    timer = null;
    queue.length = 0;
    queued = 0;
    drainHandlers.clear();
  };
  link.onClose(stop);

  // The head frame leaves once its bytes had time to cross the link.
  const schedule = (): void => {
    if (timer !== null || queue.length === 0 || link.closed) return;
    timer = clock.setTimeout(() => {
      timer = null;
      if (link.closed) return stop();
      const frame = queue[0]!;
      // The hub behind may be full too (it drains per scheduler turn): then wait for it.
      if (!link.send(frame)) return;
      queue.shift();
      queued -= frame.length;
      if (refused && queued <= LOW_WATER_BYTES) {
        refused = false;
        for (const h of [...drainHandlers]) h();
      }
      schedule();
    }, (queue[0]!.length / bytesPerSecond) * 1000);
  };
  link.onDrain(schedule);

  return {
    get remotePeerId() {
      return link.remotePeerId;
    },
    get closed() {
      return link.closed;
    },
    send(frame) {
      if (link.closed) return false;
      if (queued + frame.length > HIGH_WATER_BYTES) {
        refused = true;
        return false;
      }
      queue.push(frame.slice());
      queued += frame.length;
      onSent(frame.length);
      schedule();
      return true;
    },
    bufferedAmount: () => queued + link.bufferedAmount(),
    onFrame: (h) => link.onFrame(h),
    onDrain: (h) => {
      drainHandlers.add(h);
      return () => drainHandlers.delete(h);
    },
    onClose: (h) => link.onClose(h),
    close: (reason) => {
      stop();
      link.close(reason);
    },
  };
}
