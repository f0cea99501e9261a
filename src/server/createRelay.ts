// The relay: one HTTP server carrying tRPC over WebSocket (/trpc), the signalling endpoint plugged in by
// path, operations endpoints and the web app. This file owns every socket, timer and server it creates and
// ends them in close(); the decisions live in router.ts and the classes it wires together.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import { getTRPCErrorFromUnknown, type TRPCError } from '@trpc/server';
import type { Registry } from 'prom-client';
import { RateLimiterMemory } from 'rate-limiter-flexible';
import { WebSocketServer } from 'ws';
import type { Ed25519Backend } from '../shared/crypto/ed25519';
import { nodeBackend } from '../shared/crypto/nodeBackend';
import { fingerprint } from '../shared/crypto/signing';
import { toB64url } from '../shared/encoding';
import { CloseCode, LIMITS, POST_TIME_WINDOW_MS, PROTOCOL_VERSION, RelayReason, type ServerInfo } from '../shared/protocol/relay';
import { createInProcessBus, type RelayBus } from './bus';
import { ChallengeBook } from './ChallengeBook';
import { type RelayConfig, type RelayConfigInput, resolveConfig } from './config';
import { createIdMinter, EnvelopeMinter, type Minted } from './EnvelopeMinter';
import { EventHub, type EventHubOptions } from './EventHub';
import { createFrameEncoder, isSerializedAsIs } from './frameEncoder';
import { createLogger, type Logger } from './logger';
import { createMetrics } from './metrics';
import { createPooledRandom } from './pooledRandom';
import { acceptsOrigin, clientIpOf, NO_ORIGIN_GRANT, originGrantOf } from './origins';
import { RecentPosts } from './RecentPosts';
import { reasonOf, relayError } from './relayError';
import { createRelaySocketClass, type RelaySocket } from './RelaySocket';
import { RelayStats } from './RelayStats';
import { type AppRouter, createFastMutations, createRouter, type RouterDeps } from './router';
import { VoiceRooms } from './VoiceRooms';
import { SessionRegistry } from './SessionRegistry';
import { createTrpcWsAdapter } from './trpcWsAdapter';
import type { PeerAuth } from './signalling/PeerAuth';
import { createSignallingServer, type SignallingServer, type SignallingServerOptions } from './signalling/createSignallingServer';
import { normalizePeerjsPath } from './signalling/peerjsWire';
import { createStaticHandler } from './staticFiles';

/** Takes over an HTTP upgrade for its path (e.g. the PeerJS signalling endpoint). Must never throw. */
export type UpgradeHandler = (req: IncomingMessage, socket: Duplex, head: Buffer) => void;
/** Answers plain HTTP requests under its path prefix. */
export type HttpRoute = (req: IncomingMessage, res: ServerResponse) => void;

export interface RelayOptions extends RelayConfigInput {
  /** @default 0 (an ephemeral port) */
  port?: number;
  /** @default '127.0.0.1' */
  host?: string;
  /** @default a logger at level 'info' on stdout */
  logger?: Logger;
  /** Built web app; null serves only the placeholder page. @default null */
  staticDir?: string | null;
  /** Exact WebSocket paths handed to other handlers, e.g. `{ '/peerjs': signalling.handleUpgrade }`. */
  upgradeRoutes?: Record<string, UpgradeHandler>;
  /** HTTP path prefixes handed to other handlers. */
  httpRoutes?: Record<string, HttpRoute>;
  /** Runs during close(), after the `bye` events went out and before sockets are closed. */
  onShutdown?: () => void | Promise<void>;
  /** @default an in-process bus */
  bus?: RelayBus;
  /** Lazy presence: page and sample sizes, the counts interval (PresenceFanout.ts; tests shrink them). */
  presence?: EventHubOptions['presence'];
  /** @default nodeBackend({ maxCachedKeys: 256 }) */
  backend?: Ed25519Backend;
  /** Wall clock for challenges, ids, timestamps and rate windows; tests move it. @default Date.now */
  clock?: () => number;
  /** Add prom-client's process metrics (RSS, event-loop lag) to /metrics. @default false */
  defaultMetrics?: boolean;
  /**
   * Header carrying the client address when behind a proxy (fly.io: 'fly-client-ip'). Unset = the TCP peer;
   * never trust such a header when clients can reach the relay directly. @default undefined
   */
  clientIpHeader?: string;
  /**
   * The signalling endpoint's options (SPEC.md W1-W11; tests shrink its timers). It serves `signal.connect`
   * streams and `/peerjs` sockets at `<peerjs.path>peerjs`. @default its own defaults, warnings to the logger
   */
  signalling?: Partial<Omit<SignallingServerOptions, 'auth' | 'key' | 'path' | 'clientIpHeader'>>;
}

export interface RelayCounts {
  connections: number;
  sessions: number;
  eventStreams: number;
  subscriptions: number;
  challenges: number;
  recentPosts: number;
  upgradeSockets: number;
}

export interface Relay {
  /** http://host:port */
  readonly url: string;
  /** ws://host:port/trpc */
  readonly trpcUrl: string;
  readonly port: number;
  readonly info: ServerInfo;
  readonly config: RelayConfig;
  readonly peerAuth: PeerAuth;
  /** The PeerJS signalling endpoint: `signal.connect` streams and `/peerjs` sockets (SPEC.md W1-W11). */
  readonly signalling: SignallingServer;
  readonly server: Server;
  readonly metrics: Registry;
  /** Live resource counts (tests prove nothing is left behind; /healthz shows them). `upgradeSockets`
   * counts sockets handed to `upgradeRoutes`. */
  counts(): RelayCounts;
  /**
   * Routes WebSocket upgrades for `path` (exact, or `path/...`) to `handler`; for endpoints built after the
   * relay because they need `peerAuth` (the relay builds its own signalling endpoint, at `<peerjs.path>peerjs`).
   */
  addUpgradeRoute(path: string, handler: UpgradeHandler): void;
  /** Runs `hook` during close(), after the `bye` events and before sockets are closed. */
  addShutdownHook(hook: () => void | Promise<void>): void;
  /** Graceful: `bye` on every events stream, close 1012 on every socket, then stop listening. Idempotent. */
  close(): Promise<void>;
}

export type { AppRouter };

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Connections the kernel may hold for accept() (capped by net.core.somaxconn). A relay restart makes every
 * client reconnect at once: with Node's default of 511, a storm of 1,000 logins with two sockets each (/trpc,
 * /peerjs, before protocol 4) overflowed the queue (bench:relay: ~2,000 ListenOverflows), and each dropped
 * handshake waits for the kernel's SYN-ACK retransmit, 1 s and then doubling, however idle the relay is by then.
 */
export const LISTEN_BACKLOG = 4096;

export async function createRelay(options: RelayOptions): Promise<Relay> {
  const config = resolveConfig(options);
  const log = options.logger ?? createLogger('info');
  // A KeyObject per logged-in key would be ~0.7 KiB of RSS per connection; active authors fit in 256.
  const backend = options.backend ?? nodeBackend({ maxCachedKeys: 256 });
  const bus = options.bus ?? createInProcessBus((err) => log.error('bus_listener_error', { err: String(err) }));
  const now = options.clock ?? Date.now;
  const publicKeyBytes = await backend.publicKeyOf(config.secretKey);
  const relayKey = toB64url(publicKeyBytes);
  const mintId = createIdMinter(now);
  const epoch = mintId().id;

  const info: ServerInfo = {
    protocol: PROTOCOL_VERSION,
    name: config.name,
    publicKey: relayKey,
    fingerprint: fingerprint(publicKeyBytes),
    epoch,
    channels: config.channels,
    iceServers: config.iceServers,
    peerjs: config.peerjs,
    limits: {
      maxFrameBytes: LIMITS.maxFrameBytes,
      maxTextLength: LIMITS.maxTextLength,
      maxAttachmentsPerMessage: LIMITS.maxAttachmentsPerMessage,
      maxAttachmentBytes: config.limits.maxAttachmentBytes,
      maxThumbnailBytes: LIMITS.maxThumbnailBytes,
      chunkBytes: LIMITS.chunkBytes,
      maxSubscriptionsPerConnection: config.limits.maxSubscriptionsPerConnection,
      postsPerMinute: config.limits.postsPerMinute,
    },
  };

  const stats = new RelayStats();
  const encoder = createFrameEncoder();
  // Nonces, session ids, peer tokens and peer id tags: four draws per login, from one pool (pooledRandom.ts).
  const random = createPooledRandom();
  const challenges = new ChallengeBook({
    ttlMs: config.timing.challengeTtlMs,
    now,
    nonce: () => toB64url(random(32)),
  });
  const sessions = new SessionRegistry({
    now,
    random,
    publish: (change) => bus.publishPresence(change),
    onCallbackError: (err) => log.error('session_end_callback_error', { err: String(err) }),
  });
  const hub = new EventHub(bus, {
    maxQueued: config.limits.maxQueuedEvents,
    maxBufferedBytes: config.limits.maxBufferedBytes,
    presence: options.presence,
    afterFanOut: () => encoder.release(),
  });
  const voice = new VoiceRooms({ maxBufferedBytes: config.limits.maxBufferedBytes });
  const signalling = createSignallingServer({
    log: (event, fields) => log.warn(`signalling_${event}`, fields),
    ...options.signalling,
    auth: sessions,
    key: config.peerjs.key,
    path: config.peerjs.path,
    clientIpHeader: options.clientIpHeader,
  });
  const minter = new EnvelopeMinter({
    backend,
    secretKey: config.secretKey,
    relayKey,
    epoch,
    mintId,
    publish: (env, json) => bus.publishEnvelope(env, json),
  });
  const recent = new RecentPosts<Minted>({
    maxEntries: config.limits.idempotencyEntries,
    ttlMs: config.limits.idempotencyTtlMs,
    windowMs: POST_TIME_WINDOW_MS,
    now,
  });
  const publicOrigins = new Set(config.publicOrigins);
  let listenPort = 0; // set once listening; logins only arrive after that
  // rate-limiter-flexible: well kept, fixed windows that are correct at the edges, and memory bounded by
  // expiring keys (unref'd timers) -- a hand-rolled map would need all three.
  const perMinute = (points: number) => new RateLimiterMemory({ points, duration: 60 });
  const limiters = {
    logins: perMinute(config.limits.loginsPerIpPerMinute),
    posts: perMinute(config.limits.postsPerMinute),
    mints: perMinute(config.limits.mintsPerMinute),
    presence: perMinute(config.limits.presenceUpdatesPerMinute),
    voice: perMinute(config.limits.voiceUpdatesPerMinute),
  };
  const connectionLimiter = perMinute(config.limits.connectionsPerIpPerMinute);

  let shuttingDown = false;
  const routerDeps: RouterDeps = {
    config,
    backend,
    relayKey,
    info,
    challenges,
    sessions,
    hub,
    voice,
    minter,
    recent,
    mintId,
    limiters,
    stats,
    log,
    signalling,
    isShuttingDown: () => shuttingDown,
    now,
    acceptsOrigin: (origin, socket) => acceptsOrigin(origin, socket.originGrant, { publicOrigins, port: listenPort }),
    onLogin(socket, session) {
      if (socket.loginTimer) clearTimeout(socket.loginTimer);
      socket.loginTimer = null;
      socket.session = session;
      socket.originGrant = NO_ORIGIN_GRANT; // only a login reads it: drop the Host string
      const waiting = socket.pendingStreams;
      socket.pendingStreams = null;
      if (waiting) for (const stream of waiting) stream.start();
    },
  };
  const router = createRouter(routerDeps);

  // Every refusal is counted by reason; socket-level errors from ws (bad frames) arrive with path undefined.
  const onTrpcError = ({ error, path, type }: { error: TRPCError; path: string | undefined; type: string }): void => {
    const code = (error.cause as { code?: unknown } | undefined)?.code;
    const reason =
      path === undefined && type === 'unknown' && typeof code === 'string' && code.startsWith('WS_ERR_')
        ? code === 'WS_ERR_UNSUPPORTED_MESSAGE_LENGTH'
          ? RelayReason.TOO_LARGE
          : 'BAD_FRAME'
        : reasonOf(error);
    stats.reject(reason);
    if (reason === RelayReason.INTERNAL) log.error('procedure_error', { path, type, err: String(error.cause ?? error) });
    else log.debug('refused', { path, type, reason });
  };
  // Our own adapter, not tRPC's applyWSSHandler: same wire protocol, a fraction of the memory per connection
  // and per subscription (trpcWsAdapter.ts). createContext never throws; procedures that need a login
  // reject in middleware.
  const adapter = createTrpcWsAdapter<RelaySocket>({
    router,
    createContext: (socket) => ({ socket }),
    send: (socket, frame, path) => socket.sendFrame(frame, path),
    encoder,
    onError: onTrpcError,
    onInternalError: (err) => log.error('adapter_error', { err: String(err) }),
    // A batch counts as that many requests against the socket's per-second budget (SPEC.md R10, R11); over
    // either bound each request is refused TOO_MANY_REQUESTS and the socket kept (wsLink would reconnect in a
    // loop if a frame it sends closed the socket).
    maxBatchSize: LIMITS.maxRequestsPerFrame,
    budget: (socket, runnable, carried) => socket.spendRequests(runnable, carried),
    subscriptionRequests: (socket, n) => socket.oweStops(n),
    tooManyRequests: () => relayError(RelayReason.TOO_MANY_REQUESTS),
    // superjson leaves a PreEncoded untouched and adds no meta to a `msgs` event (two strings): their
    // frames skip tRPC's response transform, per delivered frame the hottest part of fan-out.
    serializesAsIs: isSerializedAsIs,
    // chat.post without tRPC's procedure call: the relay's hot path (bench:relay throughput).
    fastMutations: createFastMutations(routerDeps),
    jsonEncoder: true, // the frame encoder is JSON.stringify for every reply
  });

  const SocketClass = createRelaySocketClass({
    stats,
    encoder,
    maxFramesPerSecond: config.limits.maxFramesPerSecond,
    maxBufferedBytes: config.limits.maxBufferedBytes,
    now: Date.now, // flood windows are about real seconds, whatever the test clock says
    onClosedFor: (ws, reason) => log.warn('socket_closed', { conn: ws.connId, ip: ws.ip, reason, session: ws.session?.user.sessionId }),
    hooks: {
      message: adapter.message,
      close: onSocketClose,
      error: (_ws, err) => onTrpcError({ error: getTRPCErrorFromUnknown(err), path: undefined, type: 'unknown' }),
    },
  });
  const wss = new WebSocketServer({
    noServer: true,
    // Bound every frame (SPEC.md R10); ws closes an oversize frame's socket with 1009.
    maxPayload: LIMITS.maxFrameBytes,
    perMessageDeflate: false,
    WebSocket: SocketClass,
    // Both are per-socket closures in ws (its client set's 'close' listener, its pong counter) that every
    // connection would keep while open (~0.4 KiB, bench:relay heap snapshot): the relay keeps its own set
    // (`sockets`), and RelaySocket answers pings itself.
    clientTracking: false,
    autoPong: false,
  });
  /** Open /trpc sockets: the heartbeat's, counts' and shutdown's list. */
  const sockets = new Set<RelaySocket>();
  function onSocketClose(ws: RelaySocket): void {
    sockets.delete(ws);
    adapter.close(ws); // streams end before the session's leave is announced
    if (ws.loginTimer) clearTimeout(ws.loginTimer);
    ws.loginTimer = null;
    challenges.dropConnection(ws.connId);
    if (ws.session) {
      sessions.end(ws.session);
      log.debug('session_ended', { conn: ws.connId, session: ws.session.user.sessionId });
    }
  }
  function onLoginTimeout(ws: RelaySocket): void {
    ws.loginTimer = null;
    if (!ws.session) ws.closeFor(CloseCode.LOGIN_TIMEOUT, 'LOGIN_TIMEOUT');
  }

  let connSeq = 0;
  function onTrpcSocket(ws: RelaySocket, req: IncomingMessage, ip: string): void {
    sockets.add(ws);
    ws.connId = ++connSeq;
    ws.ip = ip;
    ws.loginTimer = setTimeout(onLoginTimeout, config.timing.loginTimeoutMs, ws);
    ws.trpcAwaitingParams = adapter.expectsConnectionParams(req.url);
    ws.originGrant = originGrantOf(req, { publicOrigins: config.publicOrigins, clientIpHeader: options.clientIpHeader });
  }

  // Heartbeat (SPEC.md P4): one sweep for all sockets. A socket that did not answer the previous ping is
  // terminated, so a dead peer leaves presence within two intervals.
  const heartbeat = setInterval(() => {
    for (const ws of sockets) {
      if (!ws.alive) {
        stats.reject('HEARTBEAT_TIMEOUT');
        log.info('socket_closed', { conn: ws.connId, ip: ws.ip, reason: 'HEARTBEAT_TIMEOUT', session: ws.session?.user.sessionId });
        ws.terminate();
        continue;
      }
      ws.alive = false;
      try {
        ws.ping();
      } catch {
        // CONNECTING or already closing: the next sweep decides.
      }
    }
  }, config.timing.heartbeatMs);

  const upgradeSockets = new Set<Duplex>();
  const upgradeRoutes = new Map(Object.entries(options.upgradeRoutes ?? {}));
  upgradeRoutes.set(`${normalizePeerjsPath(config.peerjs.path)}peerjs`, (req, socket, head) => signalling.handleUpgrade(req, socket, head));
  const clientIp = (req: IncomingMessage): string => clientIpOf(req, options.clientIpHeader);

  function routeFor(pathname: string): UpgradeHandler | undefined {
    for (const [path, handler] of upgradeRoutes) {
      if (pathname === path || pathname.startsWith(path.endsWith('/') ? path : `${path}/`)) return handler;
    }
    return undefined;
  }

  function destroyOnError(this: Duplex): void {
    this.destroy();
  }
  // A shared function, not an arrow in onUpgrade: that closure's context would keep the upgrade request
  // (its headers, raw headers and parser state, ~2 KiB) alive as long as the socket (bench:relay heap
  // snapshot: one IncomingMessage retained per /peerjs socket).
  function forgetUpgradeSocket(this: Duplex): void {
    upgradeSockets.delete(this);
  }

  function refuseUpgrade(socket: Duplex, status: number, text: string): void {
    if (socket.writable) socket.end(`HTTP/1.1 ${status} ${text}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
    socket.destroy();
  }

  async function onUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): Promise<void> {
    // An error on a socket nobody listens to would crash the process (STYLE 7). ws adds its own listener
    // once it takes the socket; this one covers the rate-limit wait before that.
    socket.on('error', destroyOnError);
    if (shuttingDown) return refuseUpgrade(socket, 503, 'Service Unavailable');
    const pathname = (req.url ?? '/').split('?')[0]!;
    const route = pathname === '/trpc' ? null : routeFor(pathname);
    if (pathname !== '/trpc' && !route) return refuseUpgrade(socket, 404, 'Not Found');
    const ip = clientIp(req);
    try {
      await connectionLimiter.consume(ip);
    } catch {
      stats.reject(RelayReason.RATE_LIMITED);
      return refuseUpgrade(socket, 429, 'Too Many Requests');
    }
    if (shuttingDown || socket.destroyed) return refuseUpgrade(socket, 503, 'Service Unavailable');
    if (route) {
      // Sockets handed to other endpoints are tracked so close() can cut any their owner leaves open.
      upgradeSockets.add(socket);
      // on, not once: 'close' comes once anyway, and once() wraps the listener in a closure and a state
      // object per socket (~0.1 KiB per client).
      socket.on('close', forgetUpgradeSocket);
      return route(req, socket, head);
    }
    wss.handleUpgrade(req, socket, head, (ws) => {
      socket.off('error', destroyOnError);
      onTrpcSocket(ws as RelaySocket, req, ip);
    });
  }

  const metrics = createMetrics(
    {
      stats,
      connections: () => sockets.size,
      eventStreams: () => hub.size,
      onlineByKind: () => sessions.countByKind(),
      messagesRelayed: () => hub.deliveries,
      presenceEvents: () => hub.presenceEvents,
      presenceFlushes: () => hub.presenceFlushes,
    },
    { defaultMetrics: options.defaultMetrics },
  );

  const serveStatic = createStaticHandler(options.staticDir ?? null);
  const httpRoutes = Object.entries(options.httpRoutes ?? {});
  const infoJson = JSON.stringify(info);
  const startedAt = now();

  function counts(): RelayCounts {
    let subscriptions = 0;
    for (const c of sockets) subscriptions += c.subscriptions;
    return {
      connections: sockets.size,
      sessions: sessions.size,
      eventStreams: hub.size,
      subscriptions,
      challenges: challenges.size,
      recentPosts: recent.size,
      upgradeSockets: upgradeSockets.size,
    };
  }

  async function onRequest(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const pathname = (req.url ?? '/').split('?')[0]!;
    if (pathname === '/healthz') {
      res.writeHead(shuttingDown ? 503 : 200, { 'content-type': 'application/json', 'cache-control': 'no-store' });
      res.end(JSON.stringify({ ok: !shuttingDown, name: config.name, protocol: PROTOCOL_VERSION, epoch, uptimeMs: now() - startedAt, ...counts() }));
      return;
    }
    if (pathname === '/metrics') {
      const body = await metrics.metrics();
      res.writeHead(200, { 'content-type': metrics.contentType, 'cache-control': 'no-store' });
      res.end(body);
      return;
    }
    if (pathname === '/.well-known/peerchat.json') {
      // Other origins' web apps may look this relay up (SPEC.md R13).
      const cors = { 'access-control-allow-origin': '*', 'access-control-allow-methods': 'GET, OPTIONS' };
      if (req.method === 'OPTIONS') {
        res.writeHead(204, { ...cors, 'access-control-max-age': '86400' }).end();
        return;
      }
      res.writeHead(200, { ...cors, 'content-type': 'application/json', 'cache-control': 'no-cache' });
      res.end(infoJson);
      return;
    }
    if (pathname === '/trpc') {
      res.writeHead(426, { upgrade: 'websocket', 'content-type': 'text/plain' }).end('WebSocket only');
      return;
    }
    for (const [prefix, handler] of httpRoutes) {
      if (pathname === prefix || pathname.startsWith(prefix.endsWith('/') ? prefix : `${prefix}/`)) return handler(req, res);
    }
    await serveStatic(req, res, pathname);
  }

  const server = createServer((req, res) => {
    onRequest(req, res).catch((err) => {
      log.error('http_error', { err: String(err) });
      if (!res.headersSent) res.writeHead(500);
      res.end();
    });
  });
  server.on('upgrade', (req, socket, head) => {
    onUpgrade(req, socket, head).catch((err) => {
      log.error('upgrade_error', { err: String(err) });
      socket.destroy();
    });
  });
  server.on('clientError', (_err, socket) => socket.destroy());

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen({ port: options.port ?? 0, host: options.host ?? '127.0.0.1', backlog: LISTEN_BACKLOG }, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;
  listenPort = port;
  const host = !options.host || options.host === '0.0.0.0' || options.host === '::' ? '127.0.0.1' : options.host;
  log.info('relay_started', { port, name: config.name, publicKey: relayKey, fingerprint: info.fingerprint, epoch, mode: config.mode });

  const shutdownHooks: (() => void | Promise<void>)[] = options.onShutdown ? [options.onShutdown] : [];
  shutdownHooks.push(() => signalling.close());
  let closing: Promise<void> | null = null;
  async function shutdown(): Promise<void> {
    shuttingDown = true;
    clearInterval(heartbeat);
    // Tell every stream first, so clients reconnect after a jittered delay instead of all at once.
    hub.broadcast({ t: 'bye', reason: RelayReason.SHUTTING_DOWN, retryAfterMs: config.timing.shutdownRetryAfterMs });
    for (const hook of shutdownHooks) {
      try {
        await hook();
      } catch (err) {
        log.error('shutdown_hook_error', { err: String(err) });
      }
    }
    // Streams hand `bye` to their sockets at once (push); one turn lets any pulled stream catch up too.
    await new Promise((r) => setImmediate(r));
    // Real time here, never the injectable clock: a frozen test clock must not hang shutdown.
    const flushUntil = Date.now() + config.timing.shutdownFlushMs;
    while (Date.now() < flushUntil && [...sockets].some((c) => c.bufferedAmount > 0)) await sleep(10);
    for (const c of sockets) c.close(CloseCode.SERVICE_RESTART, 'SHUTTING_DOWN');
    const closeUntil = Date.now() + 1000;
    while (Date.now() < closeUntil && sockets.size > 0) await sleep(10);
    for (const c of sockets) c.terminate();
    for (const s of upgradeSockets) s.destroy();
    hub.close();
    voice.close();
    await new Promise<void>((resolve) => {
      wss.close(() => resolve());
    });
    await new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    });
    log.info('relay_stopped', { port });
  }

  return {
    url: `http://${host}:${port}`,
    trpcUrl: `ws://${host}:${port}/trpc`,
    port,
    info,
    config,
    peerAuth: sessions,
    signalling,
    server,
    metrics,
    counts,
    addUpgradeRoute(path, handler) {
      if (path === '/trpc') throw new Error('/trpc is the relay\'s own route');
      upgradeRoutes.set(path, handler);
    },
    addShutdownHook(hook) {
      shutdownHooks.push(hook);
    },
    close() {
      closing ??= shutdown();
      return closing;
    },
  };
}
