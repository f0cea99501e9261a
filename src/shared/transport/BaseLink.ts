// What every PeerLink implementation shares: handler registries, the closed state, early frames, the
// send-side checks and drain arming (SPEC.md T1-T4). Subclasses supply the wire: `send`, `bufferedAmount`,
// `teardown`, and how to watch a draining buffer.
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

  constructor(protected readonly reportError: ErrorReporter) {}

  abstract send(frame: Uint8Array): boolean;
  abstract bufferedAmount(): number;
  /** Releases the underlying channel and every listener/timer the subclass holds. Called once. */
  protected abstract teardown(): void;
  /** Starts watching for the buffer to fall to LOW_WATER_BYTES; call `checkDrain` when it may have. */
  protected abstract startDrainWatch(): void;
  protected abstract stopDrainWatch(): void;

  get closed(): boolean {
    return this.isClosed;
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
