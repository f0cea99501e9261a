// The relay's WebSocket class (ws's `WebSocket` server option). Per-connection state lives in plain fields
// instead of closures and WeakMaps, because per-connection memory decides how many clients fit in 256 MB.
// Socket events go to shared hook functions instead of per-socket listeners (no listener arrays per
// connection). It also meters frames in (flood control, bytes per procedure family) and out (bytes per
// family) in one place every frame passes, before tRPC sees it.
import { CloseCode, LIMITS } from '../shared/protocol/relay';
import type { EventStream } from './EventHub';
import type { SignalStream } from './signalling/SignalStream';
import { LazyListenersWebSocket } from './LazyListenersWebSocket';
import { NO_ORIGIN_GRANT, type OriginGrant } from './origins';
import type { FrameEncoder } from './frameEncoder';
import type { Session } from './SessionRegistry';
import { type Family, familyOf, type RelayStats } from './RelayStats';
import type { SubscriptionEntry } from './trpcWsAdapter';

export interface SocketShared {
  stats: RelayStats;
  encoder: FrameEncoder;
  /**
   * One socket's budget per second (SPEC.md R11): frames beyond it close the socket FLOOD; requests are
   * counted against the same number (a batch of N costs N), and those beyond it are refused, socket kept;
   * more requests than that many full frames (x maxRequestsPerFrame) in a second close it FLOOD.
   */
  maxFramesPerSecond: number;
  /**
   * Most bytes a socket may have unsent (SPEC.md R10). Checked on every write -- procedure replies and
   * refusals as well as events -- so a reader that never reads is cut before its replies pile up.
   */
  maxBufferedBytes: number;
  now: () => number;
  /** The relay closed a socket for a reason (logging). */
  onClosedFor?: (socket: RelaySocket, reason: string) => void;
  /**
   * Socket events handled by direct calls instead of listeners: one shared function per event for every
   * socket, where an `on()` per socket would cost a listener entry (or array) per connection. `message`
   * gets only frames that passed flood control. None may throw.
   */
  hooks: {
    message: (socket: RelaySocket, data: unknown, isBinary: boolean) => void;
    close: (socket: RelaySocket) => void;
    error: (socket: RelaySocket, err: unknown) => void;
  };
}

const PATH_KEY = Buffer.from('"path":"');
const STOP_KEY = Buffer.from('"subscription.stop"');
/** A lone `subscription.stop` frame from wsLink is ~40 bytes; anything larger is counted as any frame. */
const MAX_STOP_FRAME = 128;
/** Bound on the stop frames a socket may still send outside its frame budget. */
const MAX_OWED_STOPS = 4096;
const QUOTE = 0x22;
const DOT = 0x2e;

/** ws keeps the TCP socket it writes to in `_socket` (stable across ws 8; null before open and after close). */
interface WithNetSocket {
  _socket: { cork(): void; uncork(): void } | null;
}

function uncorkReplies(ws: RelaySocket): void {
  ws.repliesCorked = false;
  (ws as unknown as WithNetSocket)._socket?.uncork();
}

export type RelaySocketClass = ReturnType<typeof createRelaySocketClass>;
export type RelaySocket = InstanceType<RelaySocketClass>;

/** One class per relay instance, so `shared` is not a per-socket pointer. */
export function createRelaySocketClass(shared: SocketShared) {
  const { stats, encoder, hooks } = shared;

  return class RelaySocket extends LazyListenersWebSocket {
    connId = 0;
    ip = '';
    /** Cleared by the heartbeat sweep, set by any pong (SPEC.md P4). */
    alive = true;
    session: Session | null = null;
    loginTimer: NodeJS.Timeout | null = null;
    /** `events` streams waiting for this connection's login (SPEC.md R7). */
    pendingStreams: EventStream[] | null = null;
    subscriptions = 0;
    /** This socket's `signal.connect` stream, while open (SPEC.md W11). */
    signal: SignalStream | null = null;
    /** Owned by the tRPC adapter (trpcWsAdapter.ts). */
    trpcSubId: string | number | null = null;
    trpcSub: SubscriptionEntry | null = null;
    trpcSubs: Map<string | number, SubscriptionEntry> | null = null;
    trpcAwaitingParams = false;
    /** Which relay origins a login on this socket may name besides the public ones (SPEC.md L9). */
    originGrant: OriginGrant = NO_ORIGIN_GRANT;
    trpcConnectionParams: Record<string, string | undefined> | null = null;
    /** Replies of this turn are being gathered into one write (see sendFrame). */
    repliesCorked = false;
    /** Set once the relay decided to close this socket: later frames are dropped unread. */
    closing: string | null = null;
    private frameWindow = 0;
    private frames = 0;
    /** Requests run in this second's window. */
    private requests = 0;
    /** Requests carried by this second's frames, refused ones included. */
    private asked = 0;
    /** Subscription requests not yet answered by the client's own `subscription.stop` frame. */
    private owedStops = 0;

    /** Closes with a reason code, counting it; frames still in flight are ignored from now on. */
    closeFor(code: number, reason: string): void {
      if (this.closing) return;
      this.closing = reason;
      stats.reject(reason);
      shared.onClosedFor?.(this, reason);
      this.close(code, reason);
      // A peer that ignores the close frame is cut off instead of holding the socket for ws's 30 s default.
      setTimeout(() => this.terminate(), 1000).unref();
    }

    override emit(event: string | symbol, ...args: unknown[]): boolean {
      switch (event) {
        case 'message':
          if (this.admit(args[0] as Buffer, args[1] as boolean)) hooks.message(this, args[0], args[1] as boolean);
          return true;
        case 'pong':
          this.alive = true; // SPEC.md P4
          return true;
        case 'ping':
          // ws's autoPong is off (createRelay): it keeps a closure per socket to count unsent pongs. Here a
          // ping is a frame of the flood budget (SPEC.md R11), and its pong is a write like any other (R10).
          if (this.countFrame()) {
            this.pong(args[0] as Buffer, false);
            this.checkBuffered();
          }
          return true;
        case 'close':
          hooks.close(this);
          break; // ws's server listens too (its client set)
        case 'error':
          hooks.error(this, args[0]);
          // An 'error' nobody listens to would throw (STYLE 7); the hook has seen it.
          if (this.listenerCount('error') === 0) return true;
          break;
      }
      return super.emit(event, ...args);
    }

    /** The tRPC adapter's writer: `path` attributes the bytes; fan-out frames reuse their cached bytes. */
    sendFrame(frame: string | Uint8Array, path: string | undefined): void {
      if (typeof frame === 'string') {
        const cached = encoder.cachedBytes(frame);
        if (cached) {
          // Fan-out fast path: the same UTF-8 bytes for every subscriber, sent as a text frame.
          stats.bytesOut.events += cached.length;
          super.send(cached, { binary: false });
          this.checkBuffered();
          return;
        }
        stats.bytesOut[familyOfPath(path)] += Buffer.byteLength(frame);
      } else {
        stats.bytesOut[familyOfPath(path)] += frame.byteLength;
      }
      // Replies to a frame's requests (a batch of posts) are all ready within one turn; corked until the
      // turn ends, they leave in one write (one writev, one TCP segment) instead of one per reply, as a
      // relay that answers a batch in one frame would -- the wire stays one tRPC message per reply, which
      // is what wsLink reads. Fan-out frames (above) are one per socket and turn already.
      if (!this.repliesCorked) {
        const net = (this as unknown as WithNetSocket)._socket;
        if (net) {
          net.cork();
          this.repliesCorked = true;
          process.nextTick(uncorkReplies, this);
        }
      }
      super.send(frame);
      this.checkBuffered();
    }

    /**
     * The adapter's budget hook: of `n` requests in the frame just admitted, how many may run in this
     * second. Refused ones are not counted, so a refused burst does not spend the next frame's share.
     */
    spendRequests(runnable: number, carried: number): number {
      if (this.closing) return 0;
      // Asking for more than a full budget of full frames in one second is a flood, whatever ran: each
      // refusal is still an answer to encode and write (a wsLink burst after a reconnect stays far below).
      this.asked += carried;
      if (this.asked > shared.maxFramesPerSecond * LIMITS.maxRequestsPerFrame) {
        this.closeFor(CloseCode.FLOOD, 'FLOOD');
        return 0;
      }
      const allowed = Math.max(0, Math.min(runnable, shared.maxFramesPerSecond - this.requests));
      this.requests += allowed;
      return allowed;
    }

    /**
     * The adapter's hook for the subscription requests of a frame: wsLink sends one `subscription.stop` frame
     * per subscription that ends, refused ones included, so those frames are owed to it outside the flood
     * budget (else a refused burst of subscriptions would be answered by a FLOOD close, and wsLink would
     * reconnect and resend). Bounded by what the socket asked for: each such frame was paid for by a request.
     */
    oweStops(n: number): void {
      this.owedStops = Math.min(MAX_OWED_STOPS, this.owedStops + n);
    }

    /** Past the bound, cut: whatever the socket would be sent next would only pile up (SPEC.md R10). */
    private checkBuffered(): void {
      if (this.bufferedAmount > shared.maxBufferedBytes) this.closeFor(CloseCode.SLOW_CONSUMER, 'SLOW_CONSUMER');
    }

    /** Starts a new second's window when the last one is over. */
    private roll(): void {
      const now = shared.now();
      if (now - this.frameWindow >= 1000) {
        this.frameWindow = now;
        this.frames = 0;
        this.requests = 0;
        this.asked = 0;
      }
    }

    /** One frame against this second's budget (SPEC.md R11); past it, the socket is closed FLOOD. */
    private countFrame(): boolean {
      if (this.closing) return false;
      this.roll();
      if (++this.frames <= shared.maxFramesPerSecond) return true;
      this.closeFor(CloseCode.FLOOD, 'FLOOD');
      return false;
    }

    /** Flood control and inbound metering. Never throws: this runs inside ws's receiver. */
    private admit(data: Buffer, isBinary: boolean): boolean {
      if (this.closing) return false;
      this.roll();
      const owedStop = this.owedStops > 0 && !isBinary && Buffer.isBuffer(data) && data.length <= MAX_STOP_FRAME && data.includes(STOP_KEY);
      if (owedStop) this.owedStops--;
      else if (!this.countFrame()) return false;
      if (!Buffer.isBuffer(data)) return true; // ws only yields Buffers with the default binaryType
      // Inbound bytes by the family of the (last) procedure path in the frame, found without parsing it;
      // frames without a path (subscription.stop, PING) count as 'other'.
      let family: Family = 'other';
      if (!isBinary) {
        const at = data.lastIndexOf(PATH_KEY);
        if (at >= 0) {
          let end = at + PATH_KEY.length;
          while (end < data.length && data[end] !== QUOTE && data[end] !== DOT && end - at < 40) end++;
          family = familyOf(data.toString('latin1', at + PATH_KEY.length, end));
        }
      }
      stats.bytesIn[family] += data.length;
      return true;
    }
  };
}

function familyOfPath(path: string | undefined): Family {
  if (!path) return 'other';
  const dot = path.indexOf('.');
  return familyOf(dot < 0 ? path : path.slice(0, dot));
}
