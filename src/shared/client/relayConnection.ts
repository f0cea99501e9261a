// The tRPC client for the relay, for every platform: connect, prove the key (challenge + login), and stay
// logged in across reconnects. The client core (PeerchatClient), tests and the benchmark use it. It takes
// only the router's TYPE from the server (STYLE 3) and the WebSocket constructor is injected (the browser's,
// or `ws` in Node 20), so nothing here needs Node.
//
// Reconnects: the relay's context is per connection, so every new socket must log in again. The challenge
// is a procedure on that socket, so it cannot ride in `connectionParams`. Instead, on every `onOpen` this
// client runs challenge + login, and a gate holds other queries and mutations until that login is
// done. The `events` subscription is resent by wsLink at once; the relay holds it until the login lands
// (SPEC.md R7), so subscriptions resume without the caller doing anything.
import { createTRPCClient, createWSClient, type TRPCClient, type TRPCWebSocketClient, wsLink } from '@trpc/client';
import superjson from 'superjson';
import type { AppRouter } from '../../server/router';
import type { Ed25519Backend } from '../crypto/ed25519';
import { toB64url } from '../encoding';
import { CloseCode, type ClientKind, type LoginOutput, PROTOCOL_VERSION, RelayReason } from '../protocol/relay';
import { relayOrigin, signLogin } from '../protocol/signed';

export interface ConnectRelayOptions {
  /** ws://host:port/trpc */
  url: string;
  /** 32-byte Ed25519 seed of the identity to log in with. */
  secretKey: Uint8Array;
  name: string;
  kind: ClientKind;
  backend: Ed25519Backend;
  /** Refuse to log in to a relay with another key (e.g. the key pinned at first contact). @default undefined (trust the first) */
  relayKey?: string;
  /**
   * The first key seen is about to be pinned (no `relayKey` was given): awaited before the login is signed,
   * so the app can persist it. A rejection is passed to `onError` and the login goes ahead.
   */
  onRelayKeyPinned?: (relayKey: string) => void | Promise<void>;
  /**
   * The relay offered another key than the pinned one: nothing was signed, and the connection closes for
   * good (no retry: a changed key is for the user to accept, never silently, SPEC.md CL4).
   */
  onRelayKeyChanged?: (change: { pinned: string; offered: string }) => void;
  /** First reconnect delay scale; attempts back off exponentially with full jitter. @default 500 */
  retryBaseMs?: number;
  /** @default 30_000 */
  retryMaxMs?: number;
  /** Minimum wait after the relay closed for a restart (1012), before jitter. @default 2_000 */
  restartDelayMs?: number;
  /** Client-side PING interval: notices a dead relay the browser's own stack would not. @default 20_000; 0 disables */
  keepAliveMs?: number;
  /** connectRelay rejects if the first login has not succeeded by then. @default 10_000 */
  connectTimeoutMs?: number;
  /** Called after every successful login, the first included. */
  onLogin?: (login: LoginOutput, info: { reconnect: boolean }) => void;
  /**
   * A login failed (with `connectRelay`: one after the first). A refusal that retrying cannot fix
   * (`permanent`: PROTOCOL_MISMATCH, BAD_KEY, BAD_SIGNATURE, BAD_INPUT) closes the connection for good;
   * anything else drops the socket and retries with backoff.
   */
  onError?: (err: unknown, info: { permanent: boolean }) => void;
  /** The next (re)connect attempt starts in `delayMs` (attempt 0 = the first retry). A UI says "reconnecting in N s". */
  onRetryScheduled?: (info: { delayMs: number; attempt: number }) => void;
  /** A socket is being opened (the first or a retry). */
  onConnecting?: () => void;
  /** The socket closed (the login it carried is gone). */
  onDisconnected?: (info: { code: number | null }) => void;
  /** Uniform [0, 1) for the jitter. @default Math.random */
  random?: () => number;
  /** @default globalThis.WebSocket (Node 20 has none: pass `ws`'s) */
  WebSocket?: unknown;
}

/** Login refusals that the same client retrying will meet again: the connection gives up (CL2 `offline`). */
export const PERMANENT_LOGIN_REASONS: ReadonlySet<string> = new Set([
  RelayReason.PROTOCOL_MISMATCH,
  RelayReason.BAD_KEY,
  RelayReason.BAD_SIGNATURE,
  RelayReason.BAD_INPUT,
]);

/** Thrown (and given to onRelayKeyChanged) when the relay's key is not the pinned one (CL4). */
export class RelayKeyChangedError extends Error {
  readonly reason = 'RELAY_KEY_CHANGED' as const;
  constructor(
    readonly pinned: string,
    readonly offered: string,
  ) {
    super(`relay key changed: expected ${pinned}, got ${offered}`);
    this.name = 'RelayKeyChangedError';
  }
}

/** `data.reason` of a relay refusal (SPEC.md E1), else null (a socket error, a bug). */
export function relayReasonOf(err: unknown): string | null {
  if (typeof err !== 'object' || err === null) return null;
  const data = (err as { data?: unknown }).data;
  const reason = typeof data === 'object' && data !== null ? (data as { reason?: unknown }).reason : undefined;
  return typeof reason === 'string' ? reason : null;
}

export interface RelayConnection {
  /** Typed tRPC client. Calls other than auth/info wait for the current connection's login. */
  readonly client: TRPCClient<AppRouter>;
  /** The latest login (a new session, peer id and token after each reconnect). */
  readonly login: LoginOutput;
  /** The public key logged in with (base64url). */
  readonly publicKey: string;
  /**
   * The relay's clock as estimated from the latest challenge (its `relayTime` against the round trip's
   * midpoint): what a post's `sentAt` should be (SPEC.md M6), so a client whose own clock is off still posts.
   */
  relayNow(): number;
  /** Resolves once the current connection is logged in. */
  ready(): Promise<LoginOutput>;
  /** The underlying WebSocket client (connection state, tests). */
  readonly wsClient: TRPCWebSocketClient;
  /** Whether it gave up for good (closed, a permanent refusal, a changed relay key). */
  readonly closed: boolean;
  close(): Promise<void>;
}

interface Deferred<T> {
  promise: Promise<T>;
  resolve: (v: T) => void;
  reject: (e: unknown) => void;
  settled: boolean;
}

function deferred<T>(): Deferred<T> {
  let resolve!: (v: T) => void;
  let reject!: (e: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  const d: Deferred<T> = {
    promise,
    settled: false,
    resolve: (v) => {
      d.settled = true;
      resolve(v);
    },
    reject: (e) => {
      d.settled = true;
      reject(e);
    },
  };
  promise.catch(() => {}); // a rejected gate nobody waits on is not an unhandled rejection
  return d;
}

/** Paths that run before login. */
const UNGATED = new Set(['info', 'auth.challenge', 'auth.login']);

/**
 * Connects and logs in, and resolves once the first login succeeded (rejects, leaving nothing behind, when
 * it fails or takes longer than `connectTimeoutMs`). Tests, benchmarks and the CLI use this; the client
 * core uses `createRelayConnection`, which never waits.
 */
export async function connectRelay(opts: ConnectRelayOptions): Promise<RelayConnection> {
  let failFirst: ((err: unknown) => void) | null = null;
  const failed = new Promise<never>((_, reject) => {
    failFirst = reject;
  });
  failed.catch(() => {});
  const conn = await createRelayConnection({
    ...opts,
    onError: (err, info) => {
      if (failFirst) failFirst(err);
      else opts.onError?.(err, info);
    },
    onRelayKeyChanged: (change) => {
      if (failFirst) failFirst(new RelayKeyChangedError(change.pinned, change.offered));
      else opts.onRelayKeyChanged?.(change);
    },
  });
  const timeoutMs = opts.connectTimeoutMs ?? 10_000;
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no login within ${timeoutMs} ms`)), timeoutMs);
  });
  try {
    await Promise.race([conn.ready(), failed, late]);
  } catch (err) {
    await conn.close();
    throw err;
  } finally {
    clearTimeout(timer);
    failFirst = null;
  }
  return conn;
}

/**
 * Opens the connection and keeps it logged in, retrying with full-jitter backoff for as long as it is not
 * closed; resolves at once (the hooks say what happens). Gives up only on a permanent refusal or a changed
 * relay key (`closed` is then true).
 */
export async function createRelayConnection(opts: ConnectRelayOptions): Promise<RelayConnection> {
  const publicKey = toB64url(await opts.backend.publicKeyOf(opts.secretKey));
  const base = opts.retryBaseMs ?? 500;
  const cap = opts.retryMaxMs ?? 30_000;
  const random = opts.random ?? Math.random;
  let pinnedRelayKey = opts.relayKey;
  // What the login signs as the relay it meant to reach: the URL we dial, as the relay's origin (L9).
  const dialled = relayOrigin(opts.url);
  if (!dialled) throw new Error(`not a relay URL: ${opts.url}`);
  const origin: string = dialled; // narrowed once: logIn below is hoisted, so it would not see the check
  let clockOffsetMs = 0;
  let gate = deferred<LoginOutput>();
  let latest: LoginOutput | null = null;
  let attemptSeq = 0;
  let closed = false;
  let restartFloor = 0;

  // Full jitter (the default backoff has none, so every client would return at the same instant after a
  // relay restart).
  const retryDelayMs = (attempt: number): number => {
    // tRPC sleeps this long even after an intentional close(); a pending timer would hold the process open.
    if (closed) return 0;
    const floor = restartFloor;
    restartFloor = 0;
    const ceiling = Math.min(cap, base * 2 ** attempt);
    const delayMs = floor + random() * Math.max(ceiling, floor);
    opts.onRetryScheduled?.({ delayMs, attempt });
    return delayMs;
  };

  /**
   * Holds non-auth queries and mutations until the current connection is logged in; subscriptions pass
   * straight through (R7). A proxy over tRPC's own client proxy, so `client` keeps its exact type.
   */
  const gated = (target: unknown, path: string): unknown => {
    if ((typeof target !== 'object' && typeof target !== 'function') || target === null) return target;
    return new Proxy(target, {
      get(t, key) {
        const value = (t as Record<PropertyKey, unknown>)[key];
        if (typeof key !== 'string') return value;
        if ((key === 'query' || key === 'mutate') && !UNGATED.has(path)) {
          return async (...args: unknown[]) => {
            await gate.promise;
            return (value as (...a: unknown[]) => unknown)(...args);
          };
        }
        if (key === 'subscribe') return value;
        return gated(value, path ? `${path}.${key}` : key);
      },
    });
  };

  let client!: TRPCClient<AppRouter>;

  async function logIn(attempt: number): Promise<void> {
    try {
      const askedAt = Date.now();
      const ch = await client.auth.challenge.mutate({ protocol: PROTOCOL_VERSION });
      const receivedAt = Date.now();
      if (attempt !== attemptSeq || closed) return;
      // Checked before anything is signed: a login signature for another relay's key is never made (CL4).
      if (pinnedRelayKey && ch.relayKey !== pinnedRelayKey) {
        // Told first: closing rejects whatever waits for a login, and the reason must already be known.
        opts.onRelayKeyChanged?.({ pinned: pinnedRelayKey, offered: ch.relayKey });
        void close();
        return;
      }
      if (!pinnedRelayKey) {
        try {
          await opts.onRelayKeyPinned?.(ch.relayKey);
        } catch (err) {
          opts.onError?.(err, { permanent: false });
        }
        if (attempt !== attemptSeq || closed) return;
        pinnedRelayKey = ch.relayKey;
      }
      const signature = await signLogin(opts.backend, opts.secretKey, {
        nonce: ch.nonce,
        relayKey: ch.relayKey,
        origin,
        publicKey,
        name: opts.name,
        kind: opts.kind,
      });
      const out = await client.auth.login.mutate({
        protocol: PROTOCOL_VERSION,
        publicKey,
        name: opts.name,
        kind: opts.kind,
        nonce: ch.nonce,
        origin,
        signature,
      });
      if (attempt !== attemptSeq || closed) return; // a newer socket superseded this one
      clockOffsetMs = ch.relayTime - (askedAt + receivedAt) / 2;
      const reconnect = latest !== null;
      latest = out;
      gate.resolve(out);
      opts.onLogin?.(out, { reconnect });
    } catch (err) {
      if (attempt !== attemptSeq || closed) return;
      const reason = relayReasonOf(err);
      const permanent = reason !== null && PERMANENT_LOGIN_REASONS.has(reason);
      // Told first, as above.
      opts.onError?.(err, { permanent });
      if (permanent) void close();
      // Drop this socket; wsLink reconnects with backoff and we try again on the next open.
      else wsClient.connection?.ws?.close();
    }
  }

  // Told when each socket is made, so the state can say "connecting now" rather than "in N s".
  const BaseWs = (opts.WebSocket ?? globalThis.WebSocket) as typeof globalThis.WebSocket | undefined;
  if (!BaseWs) throw new TypeError('no WebSocket: pass one (in Node 20, ws\'s)');
  const WatchedWs = function (this: unknown, ...args: ConstructorParameters<typeof WebSocket>) {
    opts.onConnecting?.();
    return new BaseWs(...args);
  } as unknown as typeof globalThis.WebSocket;
  // tRPC reads CLOSED/OPEN off the instance, but keep the statics for anyone reading them off the class.
  Object.assign(WatchedWs, { CONNECTING: 0, OPEN: 1, CLOSING: 2, CLOSED: 3 });

  const wsClient = createWSClient({
    url: opts.url,
    WebSocket: WatchedWs,
    retryDelayMs,
    keepAlive: (opts.keepAliveMs ?? 20_000) > 0 ? { enabled: true, intervalMs: opts.keepAliveMs ?? 20_000, pongTimeoutMs: 5_000 } : undefined,
    onOpen() {
      const attempt = ++attemptSeq;
      if (gate.settled) gate = deferred();
      // After the open handler: wsLink resends pending subscriptions once open() resolves.
      queueMicrotask(() => void logIn(attempt));
    },
    onClose(cause) {
      if (cause?.code === CloseCode.SERVICE_RESTART) restartFloor = opts.restartDelayMs ?? 2_000;
      // Calls made from now on wait for the next login.
      if (gate.settled) gate = deferred();
      if (!closed) opts.onDisconnected?.({ code: cause?.code ?? null });
    },
  });

  client = createTRPCClient<AppRouter>({ links: [wsLink<AppRouter>({ client: wsClient, transformer: superjson })] });
  const gatedClient = gated(client, '') as TRPCClient<AppRouter>;

  const close = async (): Promise<void> => {
    if (closed) return;
    closed = true;
    if (!gate.settled) gate.reject(new Error('connection closed'));
    const ws = wsClient.connection?.ws as (WebSocket & { terminate?: () => void }) | undefined;
    await wsClient.close();
    // wsClient.close() only starts the closing handshake; resolve once the socket is really gone, so the
    // caller's "nothing left behind" holds (a relay that never answers the close frame gets 1 s).
    if (ws && ws.readyState !== ws.CLOSED) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(() => {
          ws.terminate?.();
          resolve();
        }, 1_000);
        ws.addEventListener('close', () => {
          clearTimeout(timer);
          resolve();
        }, { once: true });
      });
    }
  };

  return {
    client: gatedClient,
    get login() {
      return latest!;
    },
    publicKey,
    relayNow: () => Math.round(Date.now() + clockOffsetMs),
    ready: () => gate.promise,
    wsClient,
    get closed() {
      return closed;
    },
    close,
  };
}
