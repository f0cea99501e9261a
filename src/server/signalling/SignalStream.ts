// A tRPC session's signalling stream (`signal.connect`, SPEC.md W11): the SignalPort the signalling
// endpoint routes to, and the async iterator tRPC drains, in one object, as EventHub's EventStream.
//
// A peerchat client signals over the socket it already holds for tRPC instead of a second `/peerjs`
// WebSocket: the second socket was ~3.7 KiB of relay memory per client (Node's socket, ws's receiver and
// sender, bench:relay) and a second handshake per login in a restart's storm.
import type { SignalPort, SignalStreamHandle } from './createSignallingServer';
import { PushStream } from '../PushStream';

const WS_OPEN = 1;

/**
 * Frames a pulled stream (a consumer other than the relay's adapter, which pushes) may hold unread before it
 * is ended. A pushed stream holds none: each frame goes to the socket at once, under its send-buffer bound.
 */
export const SIGNAL_STREAM_MAX_QUEUED = 256;

/** What the stream needs from its connection. */
export interface SignalStreamOwner {
  readonly bufferedAmount: number;
  readonly readyState: number;
  /** The connection's open signalling stream, if any (one per socket: `signal.send` finds it here). */
  signal: SignalStream | null;
}

export class SignalStream extends PushStream<string> implements SignalPort {
  /** Set once registered with the endpoint. */
  private handle: SignalStreamHandle | null = null;

  constructor(
    readonly owner: SignalStreamOwner,
    /** Registers this stream with the endpoint (attachStream); null = refused (this stream was told and ended). */
    private readonly register: (port: SignalPort) => SignalStreamHandle | null,
  ) {
    super(SIGNAL_STREAM_MAX_QUEUED);
  }

  get isOpen(): boolean {
    return !this.ended && this.owner.readyState === WS_OPEN;
  }

  get bufferedAmount(): number {
    return this.owner.bufferedAmount;
  }

  /** A client message for the endpoint; false once this stream has ended. */
  receive(text: string): boolean {
    if (this.ended || !this.handle) return false;
    this.handle.receive(text);
    return true;
  }

  send(frame: string): void {
    this.deliver(frame);
  }

  end(frame: string): void {
    this.deliver(frame);
    this.finish();
  }

  protected begin(): void {
    // The newest stream of a socket wins, as the newest socket of a peer id does (W2).
    this.owner.signal?.finish();
    this.owner.signal = this;
    const handle = this.register(this);
    if (this.ended) return; // refused, or ended while registering
    this.handle = handle;
  }

  /** Unregistered from the endpoint and the socket. */
  protected onFinish(): void {
    if (this.owner.signal === this) this.owner.signal = null;
    const handle = this.handle;
    this.handle = null;
    handle?.closed();
  }
}
