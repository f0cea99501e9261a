// What every PeerLink implementation shares: handler registries, the closed state, early frames, the
// send-side checks, drain arming and "one frame until the remote has spoken" (SPEC.md T1-T4, T11).
// Subclasses supply the wire: `transmit`, `channelBuffered`, `teardown`, and how to watch a draining buffer.
import {
  HIGH_WATER_BYTES,
  LOW_WATER_BYTES,
  MAX_FRAME_BYTES,
  type PeerLink,
  TransportReason,
} from './PeerTransport';

/**
 * Frames that arrive before the first `onFrame` handler are held (an `onLink` handler may attach its
 * handlers a tick late) up to this many bytes; beyond it the link closes with OVERFLOW.
 */
export const EARLY_FRAME_BYTES = HIGH_WATER_BYTES;

export type ErrorReporter = (err: unknown, where: string) => void;

/** Starts a one-shot timer; returns its cancel function. */
export type SetTimer = (fn: () => void, ms: number) => () => void;

const realTimer: SetTimer = (fn, ms) => {
  const t = setTimeout(fn, ms);
  return () => clearTimeout(t);
};

/**
 * T11: how long a new link waits for the remote's first frame before it sends what it queued anyway.
 * An honest remote speaks (its HELLO) at once; this only keeps a link to a remote that never speaks
 * first from holding its frames forever.
 */
export const QUIET_MAX_MS = 5_000;

export interface OneFrameUntilHeard {
  /** @default QUIET_MAX_MS (5 s) */
  quietMaxMs?: number;
  /** Injected for simulations on a virtual clock. @default setTimeout */
  setTimer?: SetTimer;
}

export interface BaseLinkOptions {
  /**
   * T11: send one frame, then queue the rest until the remote's first frame arrives (or `quietMaxMs`
   * passed), then send them in order. Off: every frame goes to the channel at once.
   */
  oneFrameUntilHeard?: OneFrameUntilHeard | false;
}

export abstract class BaseLink implements PeerLink {
  abstract readonly remotePeerId: string;
  private readonly frameHandlers = new Set<(frame: Uint8Array) => void>();
  private readonly drainHandlers = new Set<() => void>();
  private readonly closeHandlers = new Set<(reason: string) => void>();
  /** Held frames until someone listens; null once delivery is direct. */
  private early: Uint8Array[] | null = [];
  private earlyBytes = 0;
  private earlyFlushScheduled = false;
  private drainArmed = false;
  private isClosed = false;
  /** T11 state. `quiet` is null once the remote has spoken (or the rule is off): frames go straight out. */
  private quiet: { sentFirst: boolean; queue: Uint8Array[]; bytes: number; cancelTimer: (() => void) | null } | null;
  private readonly quietMaxMs: number;
  private readonly setTimer: SetTimer;

  constructor(
    protected readonly reportError: ErrorReporter,
    opts: BaseLinkOptions = {},
  ) {
    const rule = opts.oneFrameUntilHeard;
    this.quiet = rule ? { sentFirst: false, queue: [], bytes: 0, cancelTimer: null } : null;
    this.quietMaxMs = (rule ? rule.quietMaxMs : undefined) ?? QUIET_MAX_MS;
    this.setTimer = (rule ? rule.setTimer : undefined) ?? realTimer;
  }

  /** Puts one admitted frame on the wire. False: the channel failed (the subclass has closed the link). */
  protected abstract transmit(frame: Uint8Array): boolean;
  /** Bytes the channel itself has queued but not yet sent. */
  protected abstract channelBuffered(): number;
  /** Releases the underlying channel and every listener/timer the subclass holds. Called once. */
  protected abstract teardown(): void;
  /** Starts watching for the buffer to fall to LOW_WATER_BYTES; call `checkDrain` when it may have. */
  protected abstract startDrainWatch(): void;
  protected abstract stopDrainWatch(): void;

  get closed(): boolean {
    return this.isClosed;
  }

  /**
   * T2 as the caller sees it, T11 included: frames held until the remote speaks count as buffered, so
   * send refuses at the same high-water mark and onDrain means the same thing with the rule on or off.
   */
  send(frame: Uint8Array): boolean {
    if (!this.admit(frame)) return false;
    const q = this.quiet;
    if (!q) return this.transmit(frame);
    if (!q.sentFirst) {
      // One frame alone cannot be reordered: it goes now; the rest wait for the remote's first frame.
      q.sentFirst = true;
      q.cancelTimer = this.setTimer(() => this.heard(), this.quietMaxMs);
      return this.transmit(frame);
    }
    // The caller may reuse its buffer once send returns (T1): hold a copy.
    q.queue.push(frame.slice());
    q.bytes += frame.byteLength;
    return true;
  }

  bufferedAmount(): number {
    return this.isClosed ? 0 : this.channelBuffered() + (this.quiet?.bytes ?? 0);
  }

  /** Timers this link holds (drain polling is counted by the subclass). */
  protected quietTimerCount(): number {
    return this.quiet?.cancelTimer ? 1 : 0;
  }

  onFrame(handler: (frame: Uint8Array) => void): () => void {
    if (this.isClosed) return () => {};
    this.frameHandlers.add(handler);
    if (this.early && !this.earlyFlushScheduled) {
      // Not synchronously: a handler should not run inside its own registration.
      this.earlyFlushScheduled = true;
      queueMicrotask(() => this.flushEarly());
    }
    return () => this.frameHandlers.delete(handler);
  }

  onDrain(handler: () => void): () => void {
    if (this.isClosed) return () => {};
    this.drainHandlers.add(handler);
    return () => this.drainHandlers.delete(handler);
  }

  onClose(handler: (reason: string) => void): () => void {
    if (this.isClosed) return () => {};
    this.closeHandlers.add(handler);
    return () => this.closeHandlers.delete(handler);
  }

  close(reason: string = TransportReason.LOCAL_CLOSE): void {
    this.finish(reason);
  }

  /** Listeners still registered; 0 after close (SPEC.md T4). */
  handlerCount(): number {
    return this.frameHandlers.size + this.drainHandlers.size + this.closeHandlers.size;
  }

  /**
   * The checks every `send` starts with (SPEC.md T2). True: the subclass sends the frame. False: the
   * frame is not queued, and if the link is open `onDrain` will fire once the buffer has drained.
   */
  protected admit(frame: Uint8Array): boolean {
    if (frame.byteLength > MAX_FRAME_BYTES) {
      // A caller bug, not a network condition: no drain would ever make this frame fit.
      throw new RangeError(`frame of ${frame.byteLength} bytes exceeds MAX_FRAME_BYTES (${MAX_FRAME_BYTES})`);
    }
    if (this.isClosed) return false;
    if (this.bufferedAmount() + frame.byteLength > HIGH_WATER_BYTES) {
      if (!this.drainArmed) {
        this.drainArmed = true;
        this.startDrainWatch();
      }
      return false;
    }
    return true;
  }

  /** Fires the drain handlers once the buffer is at or below LOW_WATER_BYTES after a refused send. */
  protected checkDrain(): void {
    if (!this.drainArmed || this.isClosed || this.bufferedAmount() > LOW_WATER_BYTES) return;
    this.drainArmed = false;
    this.stopDrainWatch();
    for (const h of [...this.drainHandlers]) this.call(h, 'onDrain');
  }

  /** Hands one received frame to the handlers (or holds it until the first one registers). */
  protected deliver(frame: Uint8Array): void {
    if (this.isClosed) return;
    // The remote has spoken, so its side of the channel is set up (T11): even if nobody reads yet.
    if (this.quiet) this.heard();
    if (this.isClosed) return;
    if (this.early) {
      this.earlyBytes += frame.byteLength;
      if (this.earlyBytes > EARLY_FRAME_BYTES) return this.finish(TransportReason.OVERFLOW);
      this.early.push(frame);
      return;
    }
    for (const h of [...this.frameHandlers]) {
      if (this.isClosed) return;
      this.call(() => h(frame), 'onFrame');
    }
  }

  /** Closes once: tears the channel down, then tells the close handlers, then forgets every handler. */
  protected finish(reason: string): void {
    if (this.isClosed) return;
    this.isClosed = true;
    this.early = null;
    if (this.quiet) {
      this.quiet.cancelTimer?.();
      this.quiet = null;
    }
    if (this.drainArmed) {
      this.drainArmed = false;
      this.call(() => this.stopDrainWatch(), 'stopDrainWatch');
    }
    this.call(() => this.teardown(), 'teardown');
    const handlers = [...this.closeHandlers];
    this.frameHandlers.clear();
    this.drainHandlers.clear();
    this.closeHandlers.clear();
    for (const h of handlers) this.call(() => h(reason), 'onClose');
  }

  /** T11 over: what was queued goes out in order, and from now on every frame goes straight out. */
  private heard(): void {
    const q = this.quiet;
    if (!q) return;
    this.quiet = null;
    q.cancelTimer?.();
    // Admission counted these bytes against the high-water mark already, so the channel takes them all.
    for (const f of q.queue) {
      if (this.isClosed || !this.transmit(f)) return;
    }
    this.checkDrain();
  }

  private flushEarly(): void {
    const frames = this.early;
    if (!frames) return;
    this.early = null;
    this.earlyBytes = 0;
    for (const f of frames) this.deliver(f);
  }

  /** Handlers belong to the engine; one that throws must not break the link or the transport. */
  private call(fn: () => void, where: string): void {
    try {
      fn();
    } catch (err) {
      this.reportError(err, where);
    }
  }
}
