// What tRPC's own websocket tests stand on, for node:test: a vitest-shaped `vi.fn`/`expect`/`waitFor` (only
// what the ported tests use), and tRPC's `testServerAndClientResource` (packages/client/src/__tests__) cut
// down to its WebSocket half, serving the router through either the stock `applyWSSHandler` or the relay's
// adapter (trpcWsAdapter.ts). Not imported by production code.
import assert from 'node:assert/strict';
import type { IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import {
  createTRPCClient,
  createWSClient as trpcCreateWSClient,
  type CreateTRPCClientOptions,
  type TRPCWebSocketClient,
  type WebSocketClientOptions,
  wsLink,
} from '@trpc/client';
import type { AnyTRPCRouter } from '@trpc/server';
import { applyWSSHandler, type WSSHandlerOptions } from '@trpc/server/adapters/ws';
import { WebSocket, WebSocketServer } from 'ws';
import { createTrpcWsAdapter, type SubscriptionEntry } from './trpcWsAdapter';

// tRPC's test setup makes `ws` the global WebSocket for its clients.
(globalThis as { WebSocket?: unknown }).WebSocket = WebSocket;

export type AdapterKind = 'stock' | 'lean';

// ---- vitest-shaped helpers ---------------------------------------------------------------------------

export interface Mock<A extends unknown[] = any[], R = any> {
  (...args: A): R;
  mock: { calls: A[] };
  mockClear(): void;
}

function fn<F extends (...args: any[]) => any = (...args: any[]) => any>(impl?: F): Mock<Parameters<F>, ReturnType<F>> {
  const m = ((...args: Parameters<F>) => {
    m.mock.calls.push(args);
    return impl?.(...args);
  }) as Mock<Parameters<F>, ReturnType<F>>;
  m.mock = { calls: [] };
  m.mockClear = () => {
    m.mock.calls = [];
  };
  return m;
}

/**
 * Retries `check` until it stops throwing (vitest's `vi.waitFor`): vitest's 50 ms interval (some upstream
 * tests rely on it to let a socket open), and a deadline generous for a loaded machine.
 */
async function waitFor<T>(check: () => T | Promise<T>, opts: { timeout?: number; interval?: number } = {}): Promise<T> {
  const until = Date.now() + (opts.timeout ?? 15_000);
  // First look after one interval: a few upstream tests check state right after a waitFor on something that
  // becomes true a moment earlier (the connection object exists before its socket opens).
  await new Promise((r) => setTimeout(r, opts.interval ?? 50));
  for (;;) {
    try {
      return await check();
    } catch (err) {
      if (Date.now() > until) throw err;
      await new Promise((r) => setTimeout(r, opts.interval ?? 50));
    }
  }
}

export const vi = { fn, waitFor };

/** Plain data for deep comparison: class instances (e.g. errors) compared by their own enumerable fields. */
function matchers(actual: any, negate: boolean) {
  const check = (ok: boolean, msg: string) => assert.ok(negate ? !ok : ok, `${negate ? 'not ' : ''}${msg}`);
  const deepOk = (a: unknown, b: unknown) => {
    try {
      assert.deepStrictEqual(a, b);
      return true;
    } catch {
      return false;
    }
  };
  return {
    toBe: (expected: unknown) => check(Object.is(actual, expected), `expected ${String(actual)} to be ${String(expected)}`),
    toEqual: (expected: unknown) => check(deepOk(normalize(actual), normalize(expected)), `expected ${JSON.stringify(actual)} to equal ${JSON.stringify(expected)}`),
    toBeUndefined: () => check(actual === undefined, `expected ${String(actual)} to be undefined`),
    toHaveLength: (n: number) => check(actual?.length === n, `expected length ${actual?.length} to be ${n}`),
    toHaveProperty: (k: string) => check(actual != null && k in actual, `expected a property ${k}`),
    toContain: (x: unknown) => check(actual?.includes(x), `expected ${JSON.stringify(actual)} to contain ${String(x)}`),
    toHaveBeenCalled: () => check(actual.mock.calls.length > 0, 'expected the mock to have been called'),
    toHaveBeenCalledTimes: (n: number) => check(actual.mock.calls.length === n, `expected ${actual.mock.calls.length} calls to be ${n}`),
    toHaveBeenCalledWith: (...args: unknown[]) =>
      check((actual.mock.calls as unknown[][]).some((c) => deepOk(normalize(c), normalize(args))), `expected a call with ${JSON.stringify(args)}`),
    toThrow: (message: string) => {
      let thrown: unknown = null;
      try {
        actual();
      } catch (err) {
        thrown = err;
      }
      check(thrown instanceof Error && thrown.message.includes(message), `expected a throw with "${message}"`);
    },
  };
}

/** Errors as vitest's snapshots print them (`[Name: message]`), everything else as plain JSON data. */
function normalize(v: unknown): unknown {
  if (v instanceof Error) return { __error: v.name, message: v.message };
  if (Array.isArray(v)) return v.map(normalize);
  if (v && typeof v === 'object') return Object.fromEntries(Object.entries(v).filter(([, x]) => x !== undefined).map(([k, x]) => [k, normalize(x)]));
  return v;
}

/**
 * An inline snapshot (pretty-format: `Object {`, `Array [`, `[Name: message]`) as the value it shows, so a
 * ported `toMatchInlineSnapshot` compares the same thing.
 */
function fromSnapshot(snap: string): unknown {
  const js = snap
    .replace(/\bObject \{/g, '{')
    .replace(/\bArray \[/g, '[')
    .replace(/\[(\w*Error): ([^\]\n]*)\]/g, (_m, name: string, message: string) => JSON.stringify({ __error: name, message }));
  return new Function(`return (${js.trim()});`)();
}

export function expect(actual: any) {
  const snapshot = (snap: string, value: unknown) => assert.deepStrictEqual(normalize(value), normalize(fromSnapshot(snap)));
  return {
    ...matchers(actual, false),
    not: matchers(actual, true),
    toMatchInlineSnapshot: (snap: string) => snapshot(snap, actual),
    rejects: {
      async toMatchInlineSnapshot(snap: string) {
        const err = await (actual as Promise<unknown>).then(
          () => assert.fail('expected a rejection'),
          (e: unknown) => e,
        );
        snapshot(snap, err);
      },
    },
  };
}

/** tRPC's waitError: the promise's rejection, failing if it resolves. */
export async function waitError<E extends Error = Error>(p: Promise<unknown>): Promise<E> {
  try {
    await p;
  } catch (err) {
    return err as E;
  }
  throw new Error('Function did not throw');
}

// ---- the server and client resource ---------------------------------------------------------------------

/** The relay adapter's socket fields on a plain ws socket; `req` is for createContext's options. */
class LeanSocket extends WebSocket {
  trpcSubId: string | number | null = null;
  trpcSub: SubscriptionEntry | null = null;
  trpcSubs: Map<string | number, SubscriptionEntry> | null = null;
  trpcAwaitingParams = false;
  trpcConnectionParams: Record<string, string | undefined> | null = null;
  req: IncomingMessage | null = null;
}

export interface ServerOpts<TRouter extends AnyTRPCRouter> {
  wssServer?: Partial<WSSHandlerOptions<TRouter>>;
  /** Upstream's HTTP handler options: no HTTP server here (the ported tests use none). */
  server?: unknown;
}
export type TRPCServerResourceOpts<TRouter extends AnyTRPCRouter> = ServerOpts<TRouter>;

/** Every tRPC WebSocket client a test makes is closed after it (upstream leaves them to vitest's exit). */
const openClients = new Set<TRPCWebSocketClient>();
export function createWSClient(opts: WebSocketClientOptions): TRPCWebSocketClient {
  const c = trpcCreateWSClient(opts);
  openClients.add(c);
  return c;
}
export async function closeAllClients(): Promise<void> {
  const all = [...openClients];
  openClients.clear();
  await Promise.all(all.map((c) => c.close()));
}

/**
 * Applies the handler for `kind` to `wss`: tRPC's own, or the relay's adapter given what tRPC would pass
 * (createContext gets `{ req, res, info: { connectionParams, ... } }`; keepAlive is not offered by ours).
 */
function applyHandler<TRouter extends AnyTRPCRouter>(kind: AdapterKind, wss: WebSocketServer, opts: WSSHandlerOptions<TRouter>) {
  if (kind === 'stock') return applyWSSHandler(opts);
  const adapter = createTrpcWsAdapter<LeanSocket>({
    router: opts.router,
    createContext: (socket, info) =>
      opts.createContext?.({
        req: socket.req!,
        res: socket,
        info: { connectionParams: info.connectionParams, calls: [], isBatchCall: false, accept: null, type: 'unknown', signal: new AbortController().signal, url: null },
      } as never),
    send: (socket, frame) => socket.send(frame),
    encoder: opts.experimental_encoder,
    dangerouslyDisablePong: opts.dangerouslyDisablePong,
    // The stock adapter has no bound; the tests' batches are small.
    maxBatchSize: 1000,
  });
  wss.on('connection', (ws: LeanSocket, req) => {
    ws.req = req;
    ws.trpcAwaitingParams = adapter.expectsConnectionParams(req.url);
    ws.on('message', (data, isBinary) => adapter.message(ws, data, isBinary));
    ws.on('close', () => adapter.close(ws));
  });
  return {
    broadcastReconnectNotification() {
      for (const c of wss.clients) adapter.reconnectNotification(c as LeanSocket);
    },
  };
}

export function trpcServerResource<TRouter extends AnyTRPCRouter>(kind: AdapterKind, router: TRouter, opts?: ServerOpts<TRouter>) {
  // As upstream: no host, so the port is known synchronously (a host makes ws listen after a lookup turn);
  // the clients connect to 127.0.0.1.
  const make = (port: number) => new WebSocketServer({ port, WebSocket: LeanSocket });
  let wss = make(0);
  let listening = true;
  const wssPort = (wss.address() as AddressInfo).port;
  const handlerOpts = {
    get wss() {
      return wss;
    },
    router,
    ...((opts?.wssServer as object) ?? {}),
    createContext(it: unknown) {
      return (opts?.wssServer?.createContext as ((x: unknown) => unknown) | undefined)?.(it) ?? it;
    },
  } as unknown as WSSHandlerOptions<TRouter>;
  let wssHandler = applyHandler(kind, wss, handlerOpts);
  const ctx = {
    router,
    wssPort,
    wssUrl: `ws://127.0.0.1:${wssPort}`,
    get wss() {
      return wss;
    },
    get wssHandler() {
      return wssHandler;
    },
    destroyConnections() {
      for (const c of wss.clients) c.close();
    },
    async close() {
      if (!listening) throw new Error('Server is not running');
      listening = false;
      ctx.destroyConnections();
      for (const c of wss.clients) c.terminate();
      await new Promise((r) => wss.close(r));
    },
    open() {
      if (listening) throw new Error('Server is already running');
      listening = true;
      wss = make(wssPort);
      wssHandler = applyHandler(kind, wss, handlerOpts);
    },
  };
  return ctx;
}

export interface ClientOpts<TRouter extends AnyTRPCRouter> extends ServerOpts<TRouter> {
  wsClient?: Partial<WebSocketClientOptions>;
  client?: (opts: { wsClient: TRPCWebSocketClient }) => Partial<CreateTRPCClientOptions<TRouter>>;
}

/** tRPC's testServerAndClientResource with a wsLink client (the ported tests use no HTTP link). */
export function testServerAndClientResource<TRouter extends AnyTRPCRouter>(kind: AdapterKind, router: TRouter, opts?: ClientOpts<TRouter>) {
  const server = trpcServerResource(kind, router, opts);
  const wsClient = createWSClient({ url: server.wssUrl, lazy: { enabled: true, closeMs: 0 }, ...opts?.wsClient });
  const client = createTRPCClient<TRouter>({
    links: [wsLink({ client: wsClient, transformer: router._def._config.transformer as never })],
    ...(opts?.client?.({ wsClient }) ?? {}),
  } as CreateTRPCClientOptions<TRouter>);
  return Object.assign(server, {
    wsClient,
    client,
    async [Symbol.asyncDispose]() {
      await closeAllClients();
      if (server.wssHandler && (server as { close(): Promise<void> }).close) {
        try {
          await server.close();
        } catch {
          // closed by the test itself
        }
      }
    },
  });
}
