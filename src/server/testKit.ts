// Helpers for the relay's tests (real relay on an ephemeral loopback port, real tRPC clients over ws).
// Not imported by production code.
import { createTRPCClient, createWSClient, TRPCClientError, type TRPCClient, wsLink } from '@trpc/client';
import superjson from 'superjson';
import { WebSocket } from 'ws';
import { randomSecretKey } from '../shared/crypto/ed25519';
import { nodeBackend } from '../shared/crypto/nodeBackend';
import { toB64url } from '../shared/encoding';
import { type ClientKind, type Envelope, type LoginOutput, PROTOCOL_VERSION, type RelayEvent, parseEnvelopeBatch } from '../shared/protocol/relay';
import { relayOrigin, signLogin, signPost, type UnsignedPost } from '../shared/protocol/signed';
import { createRelay, type Relay, type RelayOptions } from './createRelay';
import { silentLogger } from './logger';
import type { AppRouter } from './router';

export const backend = nodeBackend();

export interface Identity {
  secretKey: Uint8Array;
  publicKey: string;
}

export async function identity(): Promise<Identity> {
  const secretKey = randomSecretKey();
  return { secretKey, publicKey: toB64url(await backend.publicKeyOf(secretKey)) };
}

export function startTestRelay(overrides: Partial<RelayOptions> = {}): Promise<Relay> {
  return createRelay({
    secretKey: randomSecretKey(),
    logger: silentLogger,
    ...overrides,
    timing: { shutdownFlushMs: 100, ...overrides.timing },
    limits: { connectionsPerIpPerMinute: 10_000, loginsPerIpPerMinute: 10_000, ...overrides.limits },
  });
}

export interface RawClient {
  client: TRPCClient<AppRouter>;
  close(): Promise<void>;
}

/** The origin each raw client dialled: what `login` signs (SPEC.md L9). */
const originOfClient = new WeakMap<object, string>();
/** The relay key each identity last logged in to: what `makePost` binds a post to (SPEC.md M6). */
const relayKeyOfIdentity = new WeakMap<Identity, string>();

/** A tRPC client with no automatic login and no reconnect jitter: for refusal tests. */
export function rawClient(relay: Relay, opts: { WebSocket?: unknown; url?: string } = {}): RawClient {
  const url = opts.url ?? relay.trpcUrl;
  const wsClient = createWSClient({
    url,
    WebSocket: (opts.WebSocket ?? WebSocket) as typeof globalThis.WebSocket,
    // tRPC sleeps retryDelayMs even after close(), holding the test process open for that long: keep it short.
    retryDelayMs: (attempt) => (attempt === 0 ? 0 : 100),
  });
  const client = createTRPCClient<AppRouter>({ links: [wsLink<AppRouter>({ client: wsClient, transformer: superjson })] });
  originOfClient.set(client, relayOrigin(url)!);
  return { client, close: () => wsClient.close() };
}

/** The origin a login over `client` signs: the URL it dialled (rawClient), as the relay's origin. */
export function originOf(client: TRPCClient<AppRouter>): string {
  const origin = originOfClient.get(client);
  if (!origin) throw new Error('not a rawClient: pass opts.origin');
  return origin;
}

export async function login(
  client: TRPCClient<AppRouter>,
  id: Identity,
  opts: { name?: string; kind?: ClientKind; origin?: string } = {},
): Promise<LoginOutput> {
  const name = opts.name ?? 'tester';
  const kind = opts.kind ?? 'virtual';
  const origin = opts.origin ?? originOf(client);
  const ch = await client.auth.challenge.mutate({ protocol: PROTOCOL_VERSION });
  const signature = await signLogin(backend, id.secretKey, { nonce: ch.nonce, relayKey: ch.relayKey, origin, publicKey: id.publicKey, name, kind });
  const out = await client.auth.login.mutate({ protocol: PROTOCOL_VERSION, publicKey: id.publicKey, name, kind, nonce: ch.nonce, origin, signature });
  relayKeyOfIdentity.set(id, out.info.publicKey);
  return out;
}

/** A logged-in raw client. */
export async function loggedIn(relay: Relay, opts: { name?: string; kind?: ClientKind } = {}) {
  const id = await identity();
  const raw = rawClient(relay);
  const me = await login(raw.client, id, opts);
  return { ...raw, id, me };
}

/** Awaits a refusal and returns its `data.reason`; fails the test if the call succeeded. */
export async function refusal(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (err) {
    if (err instanceof TRPCClientError) return (err.data as { reason?: string } | undefined)?.reason ?? `NO_REASON:${err.message}`;
    throw err;
  }
  throw new Error('expected a refusal, the call succeeded');
}

/**
 * A signed post by `id`, bound to the relay `id` last logged in to (or `fields.relay`) and to the current
 * time (or `fields.sentAt`).
 */
export function makePost(id: Identity, fields: Partial<UnsignedPost> = {}) {
  const relay = fields.relay ?? relayKeyOfIdentity.get(id);
  if (!relay) throw new Error('makePost: this identity has not logged in here; pass fields.relay');
  return signPost(backend, id.secretKey, {
    channel: 'general',
    clientId: `c${toB64url(randomSecretKey()).slice(0, 20)}`,
    text: 'hello',
    attachments: [],
    replyTo: null,
    author: id.publicKey,
    relay,
    sentAt: Date.now(),
    ...fields,
  });
}

/** Collects `events` of a client; `until` waits for a condition over everything received so far. */
export function collectEvents(client: TRPCClient<AppRouter>, input: { channels?: string[]; presence?: boolean } = {}) {
  const events: RelayEvent[] = [];
  const envelopes: Envelope[] = [];
  let waiters: (() => void)[] = [];
  let error: unknown = null;
  const sub = client.events.subscribe(input, {
    onData(ev) {
      events.push(ev);
      if (ev.t === 'msgs') envelopes.push(...(parseEnvelopeBatch(ev.raw) ?? []));
      const w = waiters;
      waiters = [];
      for (const f of w) f();
    },
    onError(err) {
      error = err;
      const w = waiters;
      waiters = [];
      for (const f of w) f();
    },
  });
  return {
    events,
    envelopes,
    get error() {
      return error;
    },
    async until(cond: () => boolean): Promise<void> {
      while (!cond()) {
        if (error) throw error;
        await new Promise<void>((r) => waiters.push(r));
      }
    },
    stop: () => sub.unsubscribe(),
  };
}

/** Polls `cond` until true (for state only observable from outside, e.g. counts after sockets close). */
export async function eventually(cond: () => boolean | Promise<boolean>, what = 'condition'): Promise<void> {
  for (let i = 0; i < 1000; i++) {
    if (await cond()) return;
    await new Promise((r) => setTimeout(r, 10));
  }
  throw new Error(`timed out waiting for ${what}`);
}

/** A bare ws socket on /trpc, for frame-level tests. Resolves once open. */
export async function rawSocket(relay: Relay, opts: ConstructorParameters<typeof WebSocket>[2] = {}): Promise<WebSocket> {
  const ws = new WebSocket(relay.trpcUrl, opts);
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('error', reject);
  });
  return ws;
}

export function closed(ws: WebSocket): Promise<{ code: number; reason: string }> {
  if (ws.readyState === WebSocket.CLOSED) return Promise.resolve({ code: -1, reason: 'already closed' });
  return new Promise((resolve) => ws.once('close', (code, reason) => resolve({ code, reason: reason.toString() })));
}

/** Sends one tRPC request as a raw frame and resolves with the response that carries its id. */
export function rawRequest(ws: WebSocket, id: number, method: 'query' | 'mutation', path: string, input: unknown): Promise<any> {
  return new Promise((resolve) => {
    const onMessage = (data: Buffer) => {
      const msg = JSON.parse(data.toString());
      if (msg.id === id) {
        ws.off('message', onMessage);
        resolve(msg);
      }
    };
    ws.on('message', onMessage);
    ws.send(JSON.stringify({ id, method, params: { path, input: superjson.serialize(input) } }));
  });
}
