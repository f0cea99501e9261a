// The relay's WebSocket class (ws's `WebSocket` server option). Per-connection state lives in plain fields
// instead of closures and WeakMaps, because per-connection memory decides how many clients fit in 256 MB.
// It also meters frames in (flood control, bytes per procedure family) and out (bytes per family) in one
// place every frame passes, before tRPC sees it.
import { WebSocket } from 'ws';
import { CloseCode } from '../shared/protocol/relay';
import type { EventStream } from './EventHub';
import type { FrameEncoder } from './frameEncoder';
import type { Session } from './SessionRegistry';
import { type Family, familyOf, type RelayStats } from './RelayStats';

export interface SocketShared {
  stats: RelayStats;
  encoder: FrameEncoder;
  /** Frames per second one socket may send (SPEC.md R11). */
  maxFramesPerSecond: number;
  now: () => number;
  /** The relay closed a socket for a reason (logging). */
  onClosedFor?: (socket: RelaySocket, reason: string) => void;
}

const PATH_KEY = Buffer.from('"path":"');
const ID_PREFIX = Buffer.from('{"id":');
const QUOTE = 0x22;
const DOT = 0x2e;
const COMMA = 0x2c;
/** Request id -> family entries kept per socket (only for byte attribution; overflow just resets it). */
const MAX_TRACKED_IDS = 16;

export type RelaySocketClass = ReturnType<typeof createRelaySocketClass>;
export type RelaySocket = InstanceType<RelaySocketClass>;

/** One class per relay instance, so `shared` is not a per-socket pointer. */
export function createRelaySocketClass(shared: SocketShared) {
  const { stats, encoder } = shared;

  return class RelaySocket extends WebSocket {
    connId = 0;
    ip = '';
    /** Cleared by the heartbeat sweep, set by any pong (SPEC.md P4). */
    alive = true;
    session: Session | null = null;
    loginTimer: NodeJS.Timeout | null = null;
    /** `events` streams waiting for this connection's login (SPEC.md R7). */
    pendingStreams: EventStream[] | null = null;
    subscriptions = 0;
    /** Set once the relay decided to close this socket: later frames are dropped unread. */
    closing: string | null = null;
    private frameWindow = 0;
    private frames = 0;
    private families: Map<string, Family> | null = null;

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
      if (event === 'message' && !this.admit(args[0] as Buffer, args[1] as boolean)) return false;
      return super.emit(event, ...args);
    }

    /** Flood control and inbound metering. Never throws: this runs inside ws's receiver. */
    private admit(data: Buffer, isBinary: boolean): boolean {
      if (this.closing) return false;
      const now = shared.now();
      if (now - this.frameWindow >= 1000) {
        this.frameWindow = now;
        this.frames = 0;
      }
      if (++this.frames > shared.maxFramesPerSecond) {
        this.closeFor(CloseCode.FLOOD, 'FLOOD');
        return false;
      }
      if (!Buffer.isBuffer(data)) return true; // ws only yields Buffers with the default binaryType
      let family: Family = 'other';
      if (!isBinary) {
        try {
          const id = requestId(data);
          const at = data.lastIndexOf(PATH_KEY);
          if (at >= 0) {
            let end = at + PATH_KEY.length;
            while (end < data.length && data[end] !== QUOTE && data[end] !== DOT && end - at < 40) end++;
            family = familyOf(data.toString('latin1', at + PATH_KEY.length, end));
            if (id !== null) this.track(id, family);
          } else if (id !== null) {
            family = this.families?.get(id) ?? 'other'; // e.g. subscription.stop
          }
        } catch {
          family = 'other';
        }
      }
      stats.bytesIn[family] += data.length;
      return true;
    }

    private track(id: string, family: Family): void {
      if (!this.families) this.families = new Map();
      else if (this.families.size >= MAX_TRACKED_IDS) this.families.clear();
      this.families.set(id, family);
    }

    override send(data: unknown, options?: unknown, cb?: unknown): void {
      if (typeof data === 'string') {
        const cached = encoder.cachedBytes(data);
        if (cached) {
          // Fan-out fast path: the same UTF-8 bytes for every subscriber, sent as a text frame.
          stats.bytesOut.events += cached.length;
          return super.send(cached, { binary: false }, typeof options === 'function' ? (options as never) : (cb as never));
        }
        stats.bytesOut[this.outFamily(data)] += Buffer.byteLength(data);
      }
      return super.send(data as never, options as never, cb as never);
    }

    /** Attributes a response to the request's family; forgets finished requests. */
    private outFamily(text: string): Family {
      const families = this.families;
      if (!families || !text.startsWith('{"id":')) return 'other';
      const end = text.indexOf(',', 6);
      if (end < 0) return 'other';
      const id = text.slice(6, end);
      const family = families.get(id);
      if (!family) return 'other';
      // Queries and mutations answer once; a subscription ends with "stopped" or an error.
      if (family !== 'events' || text.startsWith('"error"', end + 1) || (text.length < 80 && text.includes('"stopped"'))) {
        families.delete(id);
      }
      return family;
    }
  };
}

/** The raw JSON token of a single request's `id` (`3`, `"x"`), or null. */
function requestId(data: Buffer): string | null {
  if (data.length < ID_PREFIX.length || data.compare(ID_PREFIX, 0, ID_PREFIX.length, 0, ID_PREFIX.length) !== 0) return null;
  const end = data.indexOf(COMMA, ID_PREFIX.length);
  if (end < 0 || end - ID_PREFIX.length > 32) return null;
  return data.toString('latin1', ID_PREFIX.length, end);
}
