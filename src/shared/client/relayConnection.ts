// A Node tRPC client for the relay: connect, prove the key (challenge + login), and stay logged in across
// reconnects. Tests, the benchmark and the virtual client use it. It takes only the router's TYPE from the
// server (STYLE 3).
//
// Reconnects: the relay's context is per connection, so every new socket must log in again. The challenge
// is a procedure on that socket, so it cannot ride in `connectionParams`. Instead, on every `onOpen` this
// client runs challenge + login, and a gate holds other queries and mutations until that login is
// done. The `events` subscription is resent by wsLink at once; the relay holds it until the login lands
// (SPEC.md R7), so subscriptions resume without the caller doing anything.
import { createTRPCClient, createWSClient, type TRPCClient, type TRPCWebSocketClient, wsLink } from '@trpc/client';
import superjson from 'superjson';
import { WebSocket as NodeWebSocket } from 'ws';
import type { AppRouter } from '../server/router';
import type { Ed25519Backend } from '../shared/crypto/ed25519';
import { toB64url } from '../shared/encoding';
import { CloseCode, type ClientKind, type LoginOutput, PROTOCOL_VERSION } from '../shared/protocol/relay';
import { signLogin } from '../shared/protocol/signed';

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
  /** A re-login failed; the client drops the socket and retries. */
  onError?: (err: unknown) => void;
  /** @default ws's WebSocket */
  WebSocket?: unknown;
}

export interface RelayConnection {
  /** Typed tRPC client. Calls other than auth/info wait for the current connection's login. */
  readonly client: TRPCClient<AppRouter>;
  /** The latest login (a new session, peer id and token after each reconnect). */
  readonly login: LoginOutput;
  /** The public key logged in with (base64url). */
  readonly publicKey: string;
  /** Resolves once the current connection is logged in. */
  ready(): Promise<LoginOutput>;
  /** The underlying WebSocket client (connection state, tests). */
  readonly wsClient: TRPCWebSocketClient;
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

export async function connectRelay(opts: ConnectRelayOptions): Promise<RelayConnection> {
  const publicKey = toB64url(await opts.backend.publicKeyOf(opts.secretKey));
  const base = opts.retryBaseMs ?? 500;
  const cap = opts.retryMaxMs ?? 30_000;
  let pinnedRelayKey = opts.relayKey;
  let gate = deferred<LoginOutput>();
  let latest: LoginOutput | null = null;
  let attemptSeq = 0;
  let closed = false;
  let restartFloor = 0;
  const first = deferred<LoginOutput>();

  // Full jitter (the default backoff has none, so every client would return at the same instant after a
  // relay restart).
  const retryDelayMs = (attempt: number): number => {
    // tRPC sleeps this long even after an intentional close(); a pending timer would hold the process open.
    if (closed) return 0;
    const floor = restartFloor;
    restartFloor = 0;
    const ceiling = Math.min(cap, base * 2 ** attempt);
    return floor + Math.random() * Math.max(ceiling, floor);
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
      const ch = await client.auth.challenge.mutate({ protocol: PROTOCOL_VERSION });
      if (pinnedRelayKey && ch.relayKey !== pinnedRelayKey) throw new Error(`relay key changed: expected ${pinnedRelayKey}, got ${ch.relayKey}`);
      const signature = await signLogin(opts.backend, opts.secretKey, {
        nonce: ch.nonce,
        relayKey: ch.relayKey,
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
        signature,
      });
      if (attempt !== attemptSeq || closed) return; // a newer socket superseded this one
      pinnedRelayKey ??= ch.relayKey;
      const reconnect = latest !== null;
      latest = out;
      gate.resolve(out);
      if (!first.settled) first.resolve(out);
      opts.onLogin?.(out, { reconnect });
    } catch (err) {
      if (attempt !== attemptSeq || closed) return;
      if (!first.settled) {
        first.reject(err);
        return;
      }
      opts.onError?.(err);
      // Drop this socket; wsLink reconnects with backoff and we try again on the next open.
      wsClient.connection?.ws?.close();
    }
  }

  const wsClient = createWSClient({
    url: opts.url,
    WebSocket: (opts.WebSocket ?? NodeWebSocket) as typeof globalThis.WebSocket,
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
    },
  });

  client = createTRPCClient<AppRouter>({ links: [wsLink<AppRouter>({ client: wsClient, transformer: superjson })] });
  const gatedClient = gated(client, '') as TRPCClient<AppRouter>;

  const close = async (): Promise<void> => {
    if (closed) return;
    closed = true;
    if (!gate.settled) gate.reject(new Error('connection closed'));
    if (!first.settled) first.reject(new Error('connection closed'));
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

  const timeoutMs = opts.connectTimeoutMs ?? 10_000;
  const timer = setTimeout(() => first.reject(new Error(`no login within ${timeoutMs} ms`)), timeoutMs);
  try {
    await first.promise;
  } catch (err) {
    await close();
    throw err;
  } finally {
    clearTimeout(timer);
  }

  return {
    client: gatedClient,
    get login() {
      return latest!;
    },
    publicKey,
    ready: () => gate.promise,
    wsClient,
    close,
  };
}
