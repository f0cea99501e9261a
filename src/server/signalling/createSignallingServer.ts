// The PeerJS signalling endpoint inside the relay (SPEC.md W1-W11). Two ways in, one router: a `/peerjs`
// WebSocket as PeerJS's own server speaks it (a thin IO shell over `ws`), and a logged-in tRPC session's
// `signal.connect` stream (W11, `attachStream`), which is how peerchat's own clients signal: over the socket
// they already hold. The wire shapes live in ./peerjsWire.ts, the waiting room in ./PendingSignals.ts. The `peer` npm package is
// not used: it has no authentication hook, a 100 MiB maxPayload, unbounded queues, and gives an id to
// whoever claims it first.
//
// The relay routes HTTP upgrades whose path starts with `/peerjs` to `handleUpgrade`; authentication
// happens there, before anything is registered.
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { type RawData, WebSocket, WebSocketServer } from 'ws';
import { LazyListenersWebSocket } from '../LazyListenersWebSocket';
import { clientIpOf } from '../origins';
import type { PeerAuth, PeerGrant, SessionEndListener } from './PeerAuth';
import { type Dropped, type PendingBound, type PendingLimits, PendingSignals } from './PendingSignals';
import {
  MAX_TOKEN_LENGTH,
  MsgType,
  type RoutedMessage,
  SignalClose,
  SignalReason,
  errorFrame,
  expireFrame,
  forwardFrame,
  invalidKeyFrame,
  isPeerId,
  isSupportedClientVersion,
  normalizePeerjsPath,
  openFrame,
  parseClientMessage,
  parseUpgradeUrl,
} from './peerjsWire';
import { TokenBucket } from './TokenBucket';

export interface SignallingRateLimits {
  /** Messages a socket may send in a burst. Opening ~30 data connections at once is ~300 messages. @default 400 */
  burstMessages: number;
  /** Sustained messages per second per socket. @default 50 */
  messagesPerSecond: number;
  /** Bytes a socket may send in a burst. @default 1 MiB */
  burstBytes: number;
  /** Sustained bytes per second per socket. @default 256 KiB */
  bytesPerSecond: number;
}

export const DEFAULT_SIGNALLING_RATE: SignallingRateLimits = {
  burstMessages: 400,
  messagesPerSecond: 50,
  burstBytes: 1024 * 1024,
  bytesPerSecond: 256 * 1024,
};

export interface SignallingServerOptions {
  /** Decides who may register which peer id (the relay's tRPC sessions). */
  auth: PeerAuth;
  /** The PeerJS `key` clients must pass. @default 'peerchat' */
  key?: string;
  /**
   * The PeerJS `path` option clients use. PeerJS connects to `<path>peerjs`, so the default `/` means
   * sockets arrive on `/peerjs?key=..&id=..&token=..&version=..`. @default '/'
   */
  path?: string;
  /** Max bytes of one client frame (ws maxPayload); a larger frame closes the socket with 1009. @default 64 KiB */
  maxPayload?: number;
  /** Max signalling sockets at once (open plus being rejected); beyond it upgrades get HTTP 503. @default 10_000 */
  maxSockets?: number;
  /** Bounds of the queue for online destinations whose socket is not open yet (fair per key and address, W5). */
  pending?: Partial<PendingLimits>;
  /**
   * Header carrying the client's address behind a proxy (the relay's PEERCHAT_CLIENT_IP_HEADER): the
   * waiting room's per-address bound needs the client, not the proxy. @default undefined (the TCP peer)
   */
  clientIpHeader?: string;
  /** Per-socket flood limits. */
  rate?: Partial<SignallingRateLimits>;
  /**
   * Server ping period. A socket that answered nothing (no pong, no message) for a whole period is
   * terminated. Also keeps proxies' 60 s idle timeouts from cutting the socket. @default 25_000
   */
  pingIntervalMs?: number;
  /** A destination socket with more unsent bytes than this is closed as a slow consumer. @default 1 MiB */
  slowConsumerBytes?: number;
  /** How often queued messages are checked for expiry. @default 1_000 */
  sweepIntervalMs?: number;
  /** How long a socket being closed by the relay gets to finish the close handshake. @default 2_000 */
  closeGraceMs?: number;
  /** Clock, injectable for tests. @default Date.now */
  now?: () => number;
  /** Where refused and misbehaving sockets are reported. @default console.warn, except 'rejected' (counted only) */
  log?: (event: SignallingLogEvent, fields: Record<string, unknown>) => void;
}

export type SignallingLogEvent = 'rejected' | 'bad_message' | 'flood' | 'slow_consumer' | 'socket_error' | 'internal';

export interface SignallingStats {
  /** Open, registered signalling sockets. */
  sockets: number;
  /** Messages waiting for a destination's socket. */
  pending: number;
  relayed: number;
  /** EXPIRE messages sent back to senders. */
  expired: number;
  /** Messages the waiting room refused, by the bound that refused them (W5). */
  waitingRoomRefused: Record<PendingBound, number>;
  rejected: { unauthorized: number; invalidKey: number; protocolMismatch: number; badRequest: number; capacity: number };
  replaced: number;
  sessionEnded: number;
  badMessages: number;
  floods: number;
  tooLarge: number;
  slowConsumers: number;
  idleTimeouts: number;
}

/**
 * Where a registered client's frames go: its `/peerjs` WebSocket, or its tRPC session's `signal.connect`
 * stream (SPEC.md W11). Frames are PeerJS server messages as JSON text.
 */
export interface SignalPort {
  /** Can take frames now. */
  readonly isOpen: boolean;
  /** Unsent bytes towards the client (the slow-consumer bound, W8). */
  readonly bufferedAmount: number;
  send(frame: string): void;
  /** Sends `frame` (an ERROR telling why), then ends the port; `code` and `reason` close a WebSocket. */
  end(frame: string, code: number, reason: string): void;
}

/** A registered tRPC stream's way back in (SPEC.md W11). */
export interface SignalStreamHandle {
  /** One client message, the JSON text PeerJS would have sent on its socket. */
  receive(text: string): void;
  /** The stream ended from the client's side (stopped, or its socket closed). Idempotent. */
  closed(): void;
}

export interface SignallingServer {
  /** Handles an HTTP upgrade routed here by the relay (path starts with `/peerjs`). Never throws. */
  handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void;
  /**
   * Registers a logged-in session's signalling stream as `id` (SPEC.md W11): sends OPEN and what waits in
   * the waiting room to `port` at once, and routes as for a socket (the newest registration of an id wins,
   * W2). `grant` is the session's own; `addr` the client's address. Null when refused (the port was told).
   */
  attachStream(id: string, grant: PeerGrant, addr: string, port: SignalPort): SignalStreamHandle | null;
  /** Closes every socket (ERROR SHUTTING_DOWN, close 1012) and stops all timers. */
  close(): Promise<void>;
  stats(): SignallingStats;
  /** Messages waiting for `peerId`'s socket to open (diagnostics, tests). */
  pendingFor(peerId: string): number;
}

/**
 * A registered socket's state. It is its own session-end listener (`sessionEnded()`, a method of the
 * endpoint's Conn class), so registering with the session costs no closure per socket (SPEC.md R18).
 */
interface Conn extends SessionEndListener {
  readonly id: string;
  /** The user behind this peer id: every session of one key shares it (the id's key prefix, P1). */
  readonly key: string;
  /** The client's address (the proxy's header when configured). */
  readonly addr: string;
  readonly port: SignalPort;
  /** The `/peerjs` socket behind `port`, pinged for liveness; null for a tRPC stream (its socket has its own heartbeat). */
  readonly ws: SignalSocket | null;
  alive: boolean;
  /** Set once the relay decided to close this socket: later messages are ignored. */
  closing: boolean;
  readonly messages: TokenBucket;
  readonly bytes: TokenBucket;
  /** The session this socket is registered with, until it is unregistered. */
  grant: PeerGrant | null;
}

/**
 * The user a peer id belongs to: relay-minted ids are `<first 16 hex chars of the key>-<session tag>` (P1),
 * so all sessions of one key share the prefix (ids without a '-', as in tests, are their own user).
 */
function keyOfPeerId(id: string): string {
  const dash = id.indexOf('-');
  return dash < 0 ? id : id.slice(0, dash);
}

interface SocketHooks {
  message(conn: Conn, data: RawData, isBinary: boolean): void;
  /** A ping from the client: answered here, ws's autoPong being off. */
  ping(conn: Conn, data: Buffer): void;
  close(conn: Conn): void;
  error(conn: Conn, err: Error & { code?: string }): void;
  /** Any socket of this endpoint closed, registered or being refused. */
  gone(ws: SignalSocket): void;
  /** SignalPort.end for a socket. */
  end(ws: SignalSocket, frame: string, code: number, reason: string): void;
}

/**
 * The endpoint's WebSocket class (ws's `WebSocket` server option). A registered socket's events go to shared
 * functions instead of four listeners per socket: those closures, their context and the listener entries
 * were ~0.4 KiB per client (bench:relay heap snapshot), as RelaySocket.ts found for /trpc. Sockets without a
 * `conn` (being refused) keep ws's ordinary listeners.
 */
function createSignalSocketClass(hooks: SocketHooks) {
  return class SignalSocket extends LazyListenersWebSocket implements SignalPort {
    conn: Conn | null = null;

    get isOpen(): boolean {
      return this.readyState === WebSocket.OPEN;
    }

    end(frame: string, code: number, reason: string): void {
      hooks.end(this, frame, code, reason);
    }

    override emit(event: string | symbol, ...args: unknown[]): boolean {
      if (event === 'close') hooks.gone(this);
      const conn = this.conn;
      if (conn) {
        switch (event) {
          case 'message':
            hooks.message(conn, args[0] as RawData, args[1] as boolean);
            return true;
          case 'ping':
            hooks.ping(conn, args[0] as Buffer);
            return true;
          case 'pong':
            conn.alive = true;
            return true;
          case 'close':
            hooks.close(conn);
            break; // sendAndClose's timer listens too
          case 'error':
            hooks.error(conn, args[0] as Error);
            // An 'error' nobody listens to would throw (STYLE 7); the hook has seen it.
            if (this.listenerCount('error') === 0) return true;
            break;
        }
      }
      return super.emit(event, ...args);
    }
  };
}
type SignalSocket = InstanceType<ReturnType<typeof createSignalSocketClass>>;

/** Refusals are only counted by default: logging each would let anyone flood the log. */
const defaultLog: NonNullable<SignallingServerOptions['log']> = (event, fields) => {
  if (event !== 'rejected') console.warn(`[signalling] ${event}`, fields);
};

/**
 * Refused sockets completing their handshake at once, at most; beyond it a refusal is a bare HTTP 401
 * (cheaper, and the client learns less).
 */
const MAX_REFUSING = 256;

export function createSignallingServer(opts: SignallingServerOptions): SignallingServer {
  const auth = opts.auth;
  const key = opts.key ?? 'peerchat';
  const socketPath = `${normalizePeerjsPath(opts.path ?? '/')}peerjs`;
  const maxSockets = opts.maxSockets ?? 10_000;
  const rate = { ...DEFAULT_SIGNALLING_RATE, ...opts.rate };
  const pingIntervalMs = opts.pingIntervalMs ?? 25_000;
  const slowConsumerBytes = opts.slowConsumerBytes ?? 1024 * 1024;
  const closeGraceMs = opts.closeGraceMs ?? 2_000;
  const sweepIntervalMs = opts.sweepIntervalMs ?? 1_000;
  const now = opts.now ?? Date.now;
  const log = opts.log ?? defaultLog;
  const pending = new PendingSignals(opts.pending);

  const wss = new WebSocketServer({
    noServer: true,
    maxPayload: opts.maxPayload ?? 64 * 1024,
    // Compression would let a small frame inflate past maxPayload's intent and costs memory per socket.
    perMessageDeflate: false,
    // Both are closures per socket in ws (its client set's 'close' listener, its pong counter), kept as long
    // as the socket is open: `open` is the endpoint's own set, and pings are answered by the ping hook.
    clientTracking: false,
    autoPong: false,
    WebSocket: createSignalSocketClass({
      message(conn, data, isBinary) {
        try {
          onMessage(conn, data, isBinary);
        } catch (err) {
          log('internal', { id: conn.id, err: String(err) });
          kick(conn, SignalReason.INTERNAL, 1011);
        }
      },
      ping(conn, data) {
        // A ping is a message of the flood budget (SPEC.md W7); its pong a write as any other.
        if (conn.closing) return;
        conn.alive = true;
        if (!conn.messages.take(1, now())) {
          stats.floods++;
          log('flood', { id: conn.id });
          return kick(conn, SignalReason.FLOOD, SignalClose.FLOOD);
        }
        safely(() => conn.ws?.pong(data, false));
      },
      close(conn) {
        conn.closing = true;
        unregister(conn);
      },
      gone(ws) {
        open.delete(ws);
        if (open.size === 0) allClosed?.();
      },
      error(conn, err) {
        if (err.code === 'WS_ERR_UNSUPPORTED_MESSAGE_LENGTH') stats.tooLarge++;
        else log('socket_error', { id: conn.id, err: err.message });
      },
      end: (ws, frame, code, reason) => sendAndClose(ws, frame, code, reason),
    }),
  });
  /** Registered sockets by peer id (one per id, SPEC.md W2). */
  const conns = new Map<string, Conn>();
  /** Sockets accepted only to be told why they are refused (SPEC.md W1); closed within closeGraceMs. */
  const refusing = new Set<WebSocket>();
  /** Every upgraded socket until it closed, registered or refused: what close() waits for. */
  const open = new Set<SignalSocket>();
  let allClosed: (() => void) | null = null;
  let shuttingDown = false;

  const stats: Omit<SignallingStats, 'sockets' | 'pending'> = {
    relayed: 0,
    expired: 0,
    waitingRoomRefused: { total: 0, destination: 0, sender: 0, address: 0, source_destination: 0 },
    rejected: { unauthorized: 0, invalidKey: 0, protocolMismatch: 0, badRequest: 0, capacity: 0 },
    replaced: 0,
    sessionEnded: 0,
    badMessages: 0,
    floods: 0,
    tooLarge: 0,
    slowConsumers: 0,
    idleTimeouts: 0,
  };

  const pingTimer = setInterval(() => {
    for (const conn of conns.values()) {
      const ws = conn.ws;
      if (!ws) continue;
      if (!conn.alive) {
        stats.idleTimeouts++;
        ws.terminate();
        continue;
      }
      conn.alive = false;
      safely(() => ws.ping());
    }
  }, pingIntervalMs);

  let sweepTimer: ReturnType<typeof setInterval> | undefined;
  function armSweep(): void {
    if (sweepTimer || pending.size === 0) return;
    sweepTimer = setInterval(() => {
      sendExpires(pending.sweep(now(), (dst) => auth.isOnline(dst)));
      if (pending.size === 0) {
        clearInterval(sweepTimer);
        sweepTimer = undefined;
      }
    }, sweepIntervalMs);
  }

  function safely(fn: () => void): void {
    try {
      fn();
    } catch (err) {
      log('internal', { err: String(err) });
    }
  }

  function rejectHttp(socket: Duplex, status: number, text: string): void {
    socket.on('error', () => {});
    socket.once('finish', () => socket.destroy());
    socket.end(`HTTP/1.1 ${status} ${text}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
  }

  /** Tells the client why (a PeerJS `server-error` whose message is `reason`), then closes. */
  function sendAndClose(ws: WebSocket, frame: string, code: number, reason: string): void {
    if (ws.readyState === WebSocket.CLOSED) return;
    if (ws.readyState === WebSocket.OPEN) {
      ws.send(frame);
      ws.close(code, reason);
    }
    // A peer that never answers the close handshake must not hold the socket for ws's 30 s default.
    const t = setTimeout(() => ws.terminate(), closeGraceMs);
    ws.once('close', () => clearTimeout(t));
  }

  function kick(conn: Conn, reason: (typeof SignalReason)[keyof typeof SignalReason], code: number): void {
    if (conn.closing) return;
    conn.closing = true;
    // Unregistered at once: nothing is routed to a socket on its way out.
    unregister(conn);
    safely(() => conn.port.end(errorFrame(reason), code, reason));
  }

  function unregister(conn: Conn): void {
    conn.grant?.offSessionEnd(conn);
    conn.grant = null;
    if (conns.get(conn.id) === conn) conns.delete(conn.id);
  }

  /** One class per endpoint, so `sessionEnded` reaches this endpoint's state without a closure per socket. */
  class EndpointConn implements Conn {
    alive = true;
    closing = false;
    grant: PeerGrant | null = null;
    readonly key: string;
    readonly messages: TokenBucket;
    readonly bytes: TokenBucket;

    constructor(
      readonly id: string,
      readonly addr: string,
      readonly port: SignalPort,
      readonly ws: SignalSocket | null,
      t: number,
    ) {
      this.key = keyOfPeerId(id);
      this.messages = new TokenBucket(rate.burstMessages, rate.messagesPerSecond, t);
      this.bytes = new TokenBucket(rate.burstBytes, rate.bytesPerSecond, t);
    }

    sessionEnded(): void {
      stats.sessionEnded++;
      kick(this, SignalReason.SESSION_ENDED, SignalClose.SESSION_ENDED);
    }
  }

  function refuse(ws: WebSocket, frame: string, code: number, reason: string): void {
    refusing.add(ws);
    ws.once('close', () => refusing.delete(ws));
    ws.on('error', () => {});
    // Nothing a refused socket says is read.
    safely(() => sendAndClose(ws, frame, code, reason));
  }

  function sendExpires(dropped: Dropped[]): void {
    for (const { src, dst } of dropped) {
      const sender = conns.get(src);
      if (sender && !sender.closing && sender.port.isOpen) {
        sender.port.send(expireFrame(dst, src));
        stats.expired++;
      }
    }
  }

  function handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    try {
      upgrade(req, socket, head);
    } catch (err) {
      log('internal', { err: String(err) });
      rejectHttp(socket, 500, 'Internal Server Error');
    }
  }

  function upgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    if (shuttingDown) return rejectHttp(socket, 503, 'Service Unavailable');
    const parsed = parseUpgradeUrl(req.url, socketPath);
    if (!parsed.ok && parsed.reason === 'NOT_FOUND') return rejectHttp(socket, 404, 'Not Found');
    if (conns.size + refusing.size >= maxSockets) {
      stats.rejected.capacity++;
      return rejectHttp(socket, 503, 'Service Unavailable');
    }

    // Every refusal below completes the handshake and answers with a PeerJS message: a browser shows
    // an HTTP 401 on upgrade only as a generic network error, and in Node a `ws` client without an
    // 'error' listener crashes on it. An ERROR message becomes a `server-error` carrying our reason.
    let refusal: { frame: string; reason: string } | null = null;
    let grant: PeerGrant | null = null;
    if (!parsed.ok) {
      stats.rejected.badRequest++;
      refusal = { frame: errorFrame(SignalReason.UNAUTHORIZED), reason: SignalReason.UNAUTHORIZED };
    } else {
      const { params } = parsed;
      if (params.key !== key) {
        stats.rejected.invalidKey++;
        refusal = { frame: invalidKeyFrame(), reason: 'INVALID_KEY' };
      } else if (!isSupportedClientVersion(params.version)) {
        stats.rejected.protocolMismatch++;
        refusal = { frame: errorFrame(SignalReason.PROTOCOL_MISMATCH), reason: SignalReason.PROTOCOL_MISMATCH };
      } else if (
        !isPeerId(params.id) ||
        params.token.length === 0 ||
        params.token.length > MAX_TOKEN_LENGTH ||
        !(grant = auth.authorize(params.id, params.token))
      ) {
        stats.rejected.unauthorized++;
        refusal = { frame: errorFrame(SignalReason.UNAUTHORIZED), reason: SignalReason.UNAUTHORIZED };
      }
    }
    if (refusal) {
      log('rejected', { reason: refusal.reason, addr: req.socket.remoteAddress });
      if (refusing.size >= MAX_REFUSING) return rejectHttp(socket, 401, 'Unauthorized');
    }

    const id = parsed.ok ? parsed.params.id : '';
    wss.handleUpgrade(req, socket, head, (ws) => {
      open.add(ws as SignalSocket);
      if (refusal || !grant) return refuse(ws, refusal?.frame ?? errorFrame(SignalReason.UNAUTHORIZED), SignalClose.UNAUTHORIZED, refusal?.reason ?? SignalReason.UNAUTHORIZED);
      if (shuttingDown) return refuse(ws, errorFrame(SignalReason.SHUTTING_DOWN), SignalClose.SERVICE_RESTART, SignalReason.SHUTTING_DOWN);
      const conn = new EndpointConn(id, clientIpOf(req, opts.clientIpHeader), ws as SignalSocket, ws as SignalSocket, now());
      (ws as SignalSocket).conn = conn; // from here its events go to the shared hooks (createSignalSocketClass)
      attach(conn, grant);
    });
  }

  function attachStream(id: string, grant: PeerGrant, addr: string, port: SignalPort): SignalStreamHandle | null {
    if (shuttingDown) {
      port.end(errorFrame(SignalReason.SHUTTING_DOWN), SignalClose.SERVICE_RESTART, SignalReason.SHUTTING_DOWN);
      return null;
    }
    const conn = new EndpointConn(id, addr, port, null, now());
    attach(conn, grant);
    return {
      receive(text) {
        try {
          onMessage(conn, text, false);
        } catch (err) {
          log('internal', { id: conn.id, err: String(err) });
          kick(conn, SignalReason.INTERNAL, 1011);
        }
      },
      closed() {
        conn.closing = true;
        unregister(conn);
      },
    };
  }

  function attach(conn: Conn, grant: PeerGrant): void {
    const { id, port } = conn;

    // The session may have ended while the handshake was in flight (SPEC.md W3).
    if (!auth.isOnline(id)) {
      stats.sessionEnded++;
      kick(conn, SignalReason.SESSION_ENDED, SignalClose.SESSION_ENDED);
      return;
    }
    const previous = conns.get(id);
    conns.set(id, conn);
    if (previous) {
      // Same login reconnecting (a valid token is the only way here): the newest socket wins (W2).
      stats.replaced++;
      kick(previous, SignalReason.REPLACED, SignalClose.REPLACED);
    }
    conn.grant = grant;
    grant.onSessionEnd(conn);

    port.send(openFrame());
    const { frames, dropped } = pending.take(id, now());
    for (const frame of frames) {
      port.send(frame);
      stats.relayed++;
    }
    sendExpires(dropped);
  }

  function onMessage(conn: Conn, data: RawData | string, isBinary: boolean): void {
    if (conn.closing) return;
    conn.alive = true;
    const size =
      typeof data === 'string' ? Buffer.byteLength(data) : Array.isArray(data) ? data.reduce((n, b) => n + b.byteLength, 0) : data.byteLength;
    const t = now();
    if (!conn.messages.take(1, t) || !conn.bytes.take(size, t)) {
      stats.floods++;
      log('flood', { id: conn.id });
      return kick(conn, SignalReason.FLOOD, SignalClose.FLOOD);
    }
    // PeerJS only ever sends JSON text.
    const parsed = isBinary ? null : parseClientMessage(data.toString());
    if (!parsed || !parsed.ok) {
      stats.badMessages++;
      log('bad_message', { id: conn.id, bytes: size });
      return kick(conn, SignalReason.BAD_MESSAGE, SignalClose.BAD_MESSAGE);
    }
    if (parsed.msg.type === MsgType.HEARTBEAT) return;
    route(conn, parsed.msg);
  }

  /** SPEC.md W4-W5: forward with the authenticated `src`, hold for a moment, or EXPIRE at once. */
  function route(from: Conn, msg: RoutedMessage): void {
    const frame = forwardFrame(from.id, msg);
    const target = conns.get(msg.dst);
    if (target && !target.closing && target.port.isOpen) {
      if (target.port.bufferedAmount > slowConsumerBytes) {
        // Megabytes of unread signalling: that socket is not being read (W8).
        stats.slowConsumers++;
        log('slow_consumer', { id: target.id });
        kick(target, SignalReason.SLOW_CONSUMER, SignalClose.SLOW_CONSUMER);
      } else {
        target.port.send(frame);
        stats.relayed++;
        return;
      }
    }
    // PeerJS's own server never answers an undeliverable LEAVE either.
    if (msg.type === MsgType.LEAVE) return;
    if (auth.isOnline(msg.dst)) {
      const refused = pending.push(msg.dst, { src: from.id, key: from.key, addr: from.addr }, frame, now());
      if (refused === null) {
        armSweep();
        return;
      }
      stats.waitingRoomRefused[refused]++;
    }
    from.port.send(expireFrame(msg.dst, from.id));
    stats.expired++;
  }

  async function close(): Promise<void> {
    if (shuttingDown) return;
    shuttingDown = true;
    clearInterval(pingTimer);
    if (sweepTimer) clearInterval(sweepTimer);
    sweepTimer = undefined;
    pending.clear();
    for (const conn of conns.values()) kick(conn, SignalReason.SHUTTING_DOWN, SignalClose.SERVICE_RESTART);
    // Done once every socket (registered or being refused) has closed; each close above ends within
    // closeGraceMs.
    if (open.size > 0) await new Promise<void>((resolve) => (allClosed = resolve));
    await new Promise<void>((resolve) => wss.close(() => resolve()));
  }

  return {
    handleUpgrade,
    attachStream,
    close,
    pendingFor: (peerId) => pending.heldFor(peerId),
    stats: () => ({
      ...stats,
      rejected: { ...stats.rejected },
      waitingRoomRefused: { ...stats.waitingRoomRefused },
      sockets: conns.size,
      pending: pending.size,
    }),
  };
}
