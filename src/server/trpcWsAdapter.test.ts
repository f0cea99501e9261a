// SPEC.md R16: the relay's own tRPC WebSocket adapter speaks tRPC 11's wire protocol exactly (the stock
// wsLink client works unchanged), answers bad frames with an error, and leaves nothing behind.
import assert from 'node:assert/strict';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { initTRPC, tracked, TRPCError } from '@trpc/server';
import { applyWSSHandler } from '@trpc/server/adapters/ws';
import { createTRPCClient, createWSClient, wsLink } from '@trpc/client';
import superjson from 'superjson';
import { WebSocket, WebSocketServer } from 'ws';
import { z } from 'zod';
import { LIMITS, PROTOCOL_VERSION } from '../shared/protocol/relay';
import type { Relay } from './createRelay';
import {
  closed,
  collectEvents,
  eventually,
  loggedIn,
  rawClient,
  rawRequest,
  rawSocket,
  refusal,
  startTestRelay,
} from './testKit';
import { isSerializedAsIs, PreEncoded } from './frameEncoder';
import { createTrpcWsAdapter, PUSH_ITERATOR, type PushSink, type SubscriptionEntry } from './trpcWsAdapter';

let relay: Relay;
before(async () => {
  relay = await startTestRelay();
});
after(async () => {
  await relay.close();
});

/** Frames a raw socket receives, in order; `next()` waits for the next one. */
function inbox(ws: WebSocket) {
  const frames: string[] = [];
  let wake: (() => void) | null = null;
  ws.on('message', (d) => {
    frames.push(d.toString());
    wake?.();
  });
  return {
    frames,
    async take(n: number): Promise<string[]> {
      while (frames.length < n) await new Promise<void>((r) => (wake = r));
      return frames.splice(0, n);
    },
  };
}

const idle = () => {
  const c = relay.counts();
  return c.eventStreams === 0 && c.subscriptions === 0;
};

describe('tRPC ws adapter, stock client', () => {
  it('R16 query, mutation and refusal with data.reason through the stock wsLink client', async () => {
    const raw = rawClient(relay);
    try {
      const info = await raw.client.info.query();
      assert.equal(info.publicKey, relay.info.publicKey);
      const ch = await raw.client.auth.challenge.mutate({ protocol: PROTOCOL_VERSION });
      assert.equal(ch.relayKey, relay.info.publicKey);
      assert.equal(await refusal(raw.client.presence.update.mutate({ voiceRoom: null })), 'NOT_LOGGED_IN');
      assert.equal(await refusal(raw.client.auth.challenge.mutate({ protocol: 999 })), 'PROTOCOL_MISMATCH');
    } finally {
      await raw.close();
    }
  });

  it('R16 subscription start, data and stop; stopping frees the stream', async () => {
    const u = await loggedIn(relay);
    try {
      const events = collectEvents(u.client);
      await events.until(() => events.events.some((e) => e.t === 'presence' && e.op === 'snapshot'));
      assert.equal(relay.counts().eventStreams, 1);
      events.stop();
      await eventually(idle, 'the stream to end');
    } finally {
      await u.close();
    }
  });

  it('R16 connectionParams are accepted when the client sends them', async () => {
    const wsClient = createWSClient({ url: relay.trpcUrl, WebSocket: WebSocket as never, connectionParams: { app: 'test' }, retryDelayMs: () => 100 });
    try {
      const client = createTRPCClient<import('./router').AppRouter>({ links: [wsLink({ client: wsClient, transformer: superjson })] });
      assert.equal((await client.info.query()).publicKey, relay.info.publicKey);
    } finally {
      await wsClient.close();
    }
  });
});

describe('tRPC ws adapter, more requests in one tick than a frame may run', () => {
  /** A stock wsLink client that counts its socket's opens and closes. */
  function countingClient(r: Relay) {
    const counts = { opens: 0, closes: 0 };
    const wsClient = createWSClient({
      url: r.trpcUrl,
      WebSocket: WebSocket as never,
      retryDelayMs: () => 50,
      onOpen: () => counts.opens++,
      onClose: () => counts.closes++,
    });
    const client = createTRPCClient<import('./router').AppRouter>({ links: [wsLink({ client: wsClient, transformer: superjson })] });
    return { client, counts, close: () => wsClient.close() };
  }

  it('R10 R11 1,001 queries in one tick: each gets its result or TOO_MANY_REQUESTS, and wsLink never reconnects', async () => {
    const c = countingClient(relay);
    try {
      // wsLink sends every call made in this tick as one frame.
      const outcomes = await Promise.all(
        Array.from({ length: 1001 }, () => c.client.info.query().then((i) => (i.publicKey === relay.info.publicKey ? 'OK' : 'WRONG'), (e) => refusal(Promise.reject(e)))),
      );
      const tally = new Map<string, number>();
      for (const o of outcomes) tally.set(o, (tally.get(o) ?? 0) + 1);
      assert.deepEqual([...tally.keys()].sort(), ['OK', 'TOO_MANY_REQUESTS']);
      assert.equal(tally.get('OK'), LIMITS.maxRequestsPerFrame);
      // The socket is kept: the next call runs on it.
      assert.equal((await c.client.info.query()).publicKey, relay.info.publicKey);
      assert.deepEqual(c.counts, { opens: 1, closes: 0 });
    } finally {
      await c.close();
    }
  });

  it('R7 R10 1,001 subscriptions in one tick: each is started or refused with a reason, and wsLink never reconnects', async () => {
    const c = countingClient(relay);
    const outcome: string[] = [];
    const subs = Array.from({ length: 1001 }, (_, i) =>
      c.client.events.subscribe(
        { presence: false },
        {
          onStarted: () => (outcome[i] = 'STARTED'),
          onError: (e) => (outcome[i] = (e.data as { reason?: string } | undefined)?.reason ?? 'NO_REASON'),
        },
      ),
    );
    try {
      await eventually(() => outcome.filter(Boolean).length === 1001, 'every subscription to be started or refused');
      const tally = new Map<string, number>();
      for (const o of outcome) tally.set(o, (tally.get(o) ?? 0) + 1);
      // Two streams per connection (R7); the rest of the first 32 are TOO_MANY_SUBSCRIPTIONS; the others were not run.
      assert.equal(tally.get('STARTED'), 2);
      assert.equal(tally.get('TOO_MANY_SUBSCRIPTIONS'), LIMITS.maxRequestsPerFrame - 2);
      assert.equal(tally.get('TOO_MANY_REQUESTS'), 1001 - LIMITS.maxRequestsPerFrame);
      assert.equal((await c.client.info.query()).publicKey, relay.info.publicKey);
      assert.deepEqual(c.counts, { opens: 1, closes: 0 });
    } finally {
      for (const s of subs) s.unsubscribe();
      await c.close();
      await eventually(idle, 'streams to end');
    }
  });
});

describe('tRPC ws adapter, raw frames', () => {
  it('R16 PING is answered PONG (client keepAlive) and PONG is ignored', async () => {
    const ws = await rawSocket(relay);
    const box = inbox(ws);
    ws.send('PONG');
    ws.send('PING');
    assert.deepEqual(await box.take(1), ['PONG']);
    ws.close();
  });

  it('R16 a batch array is answered per request', async () => {
    const ws = await rawSocket(relay);
    const box = inbox(ws);
    const q = (id: number) => ({ id, method: 'query', params: { path: 'info', input: superjson.serialize(undefined) } });
    ws.send(JSON.stringify([q(1), q(2)]));
    const replies = (await box.take(2)).map((f) => JSON.parse(f));
    assert.deepEqual(replies.map((r) => r.id).sort(), [1, 2]);
    for (const r of replies) assert.equal(r.result.data.json.publicKey, relay.info.publicKey);
    ws.close();
  });

  it('R16 malformed JSON, binary and id-less frames get errors with reasons; the socket stays usable', async () => {
    const ws = await rawSocket(relay);
    const box = inbox(ws);
    ws.send('{"id":1,');
    ws.send(Buffer.from([1, 2, 3]));
    ws.send(JSON.stringify({ id: null, method: 'query', params: { path: 'info' } }));
    const errs = (await box.take(3)).map((f) => JSON.parse(f));
    for (const e of errs) {
      assert.equal(e.id, null);
      assert.equal(e.error.json.data.reason, 'BAD_INPUT');
    }
    const info = await rawRequest(ws, 5, 'query', 'info', undefined);
    assert.equal(info.result.data.json.publicKey, relay.info.publicKey);
    ws.close();
  });

  it('R10 R16 requests beyond maxRequestsPerFrame in one frame are refused TOO_MANY_REQUESTS one by one; the socket is kept', async () => {
    const ws = await rawSocket(relay);
    const box = inbox(ws);
    const q = (id: number) => ({ id, method: 'query', params: { path: 'info', input: superjson.serialize(undefined) } });
    const n = LIMITS.maxRequestsPerFrame + 5;
    ws.send(JSON.stringify(Array.from({ length: n }, (_, i) => q(i))));
    const replies = (await box.take(n)).map((f) => JSON.parse(f));
    const byId = new Map(replies.map((r) => [r.id as number, r]));
    assert.equal(byId.size, n, 'every request is answered once');
    for (let i = 0; i < n; i++) {
      const r = byId.get(i)!;
      if (i < LIMITS.maxRequestsPerFrame) assert.equal(r.result.data.json.publicKey, relay.info.publicKey, `request ${i} runs`);
      else assert.equal(r.error.json.data.reason, 'TOO_MANY_REQUESTS', `request ${i} is refused`);
    }
    assert.equal(ws.readyState, WebSocket.OPEN);
    const info = await rawRequest(ws, 999, 'query', 'info', undefined);
    assert.equal(info.result.data.json.publicKey, relay.info.publicKey);
    ws.close();
  });

  it('R16 a duplicate subscription id is refused and the first stream is kept', async () => {
    const u = await loggedIn(relay);
    const ws = await rawSocket(relay);
    const box = inbox(ws);
    const sub = { id: 7, method: 'subscription', params: { path: 'events', input: superjson.serialize({ presence: false }) } };
    ws.send(JSON.stringify(sub));
    assert.equal(JSON.parse((await box.take(1))[0]!).result.type, 'started');
    ws.send(JSON.stringify(sub));
    const dup = JSON.parse((await box.take(1))[0]!);
    assert.equal(dup.id, 7);
    assert.equal(dup.error.json.data.reason, 'BAD_INPUT');
    ws.send(JSON.stringify({ id: 7, method: 'subscription.stop' }));
    assert.deepEqual(JSON.parse((await box.take(1))[0]!), { id: 7, result: { type: 'stopped' } });
    ws.close();
    await u.close();
    await eventually(idle, 'streams to end');
  });

  it('R15 R16 a subscription stopped in the frame that opened it, or cut by a disconnect, leaves nothing behind', async () => {
    const ws = await rawSocket(relay);
    const box = inbox(ws);
    const sub = (id: number) => ({ id, method: 'subscription', params: { path: 'events', input: superjson.serialize({}) } });
    // Stop arrives while the procedure is still running: it must end the stream the procedure then returns.
    ws.send(JSON.stringify([sub(1), { id: 1, method: 'subscription.stop' }]));
    assert.deepEqual(JSON.parse((await box.take(1))[0]!), { id: 1, result: { type: 'stopped' } });
    await eventually(idle, 'the stopped stream to end');
    // Started, waiting for a login that never comes, then the socket goes.
    ws.send(JSON.stringify(sub(2)));
    assert.equal(JSON.parse((await box.take(1))[0]!).result.type, 'started');
    assert.equal(relay.counts().subscriptions, 1);
    ws.terminate();
    await eventually(idle, 'the stream to end with its socket');
    // Subscribe and vanish at once, before the procedure can answer.
    const ws2 = await rawSocket(relay);
    ws2.send(JSON.stringify(sub(3)));
    ws2.terminate();
    await eventually(() => idle() && relay.counts().connections === 0, 'the relay to drain');
  });
});

describe('tRPC ws adapter, same frames as tRPC 11.22.1', () => {
  // A small router that uses what the relay does not: tracked events, lastEventId, observable-free finite
  // streams, thrown errors with a formatter. Both adapters serve it; their answers must be identical.
  const t = initTRPC.create({
    transformer: superjson,
    isDev: false,
    errorFormatter: ({ shape }) => ({ ...shape, data: { ...shape.data, reason: 'X' } }),
  });
  const router = t.router({
    hello: t.procedure.input(z.object({ name: z.string() })).query(({ input }) => ({ hi: input.name, at: new Date(0) })),
    boom: t.procedure.mutation(() => {
      throw new TRPCError({ code: 'FORBIDDEN', message: 'no' });
    }),
    count: t.procedure.input(z.object({ lastEventId: z.string().optional() }).optional()).subscription(async function* ({ input }) {
      const from = Number(input?.lastEventId ?? 0);
      for (let i = from + 1; i <= from + 3; i++) yield tracked(String(i), { i });
    }),
    plain: t.procedure.subscription(async function* () {
      yield 1;
      yield 2;
    }),
    // Pulled by the stock adapter, pushed by the lean one: the values `serializesAsIs` takes take the
    // adapter's direct frame path, the Date does not.
    pushed: t.procedure.subscription(() => new PushValues([{ t: 'msgs', raw: '[{"a":"é \\"q\\""}]' }, new PreEncoded({ t: 'presence', op: 'diff', users: [], left: ['x'] }), { at: new Date(0) }])),
  });

  class PushValues implements AsyncIterableIterator<unknown> {
    constructor(private readonly values: unknown[]) {}
    next(): Promise<IteratorResult<unknown>> {
      const v = this.values.shift();
      return Promise.resolve(v === undefined ? { value: undefined, done: true } : { value: v, done: false });
    }
    return(): Promise<IteratorResult<unknown>> {
      this.values.length = 0;
      return Promise.resolve({ value: undefined, done: true });
    }
    [Symbol.asyncIterator](): this {
      return this;
    }
    [PUSH_ITERATOR](sink: PushSink): void {
      setImmediate(() => {
        for (const v of this.values.splice(0)) sink.data(v);
        sink.end();
      });
    }
  }

  class LeanSocket extends WebSocket {
    trpcSubId: string | number | null = null;
    trpcSub: SubscriptionEntry | null = null;
    trpcSubs: Map<string | number, SubscriptionEntry> | null = null;
    trpcAwaitingParams = false;
    trpcConnectionParams: Record<string, string | undefined> | null = null;
  }

  async function serve(kind: 'stock' | 'lean') {
    const wss = new WebSocketServer({ port: 0, host: '127.0.0.1', WebSocket: LeanSocket });
    await new Promise((r) => wss.once('listening', r));
    if (kind === 'stock') applyWSSHandler({ wss, router });
    else {
      const adapter = createTrpcWsAdapter<LeanSocket>({ router, createContext: () => ({}), send: (s, f) => s.send(f), maxBatchSize: 10, serializesAsIs: isSerializedAsIs });
      wss.on('connection', (ws: LeanSocket, req) => {
        ws.trpcAwaitingParams = adapter.expectsConnectionParams(req.url);
        ws.on('message', (d, b) => adapter.message(ws, d, b));
        ws.on('close', () => adapter.close(ws));
      });
    }
    return { url: `ws://127.0.0.1:${(wss.address() as AddressInfo).port}`, close: () => new Promise((r) => wss.close(r)) };
  }

  /** Sends each frame and collects every answer until `expected` frames arrived; answers grouped by id. */
  async function exchange(url: string, frames: (string | Buffer)[], expected: number) {
    const ws = new WebSocket(url);
    await new Promise((r) => ws.once('open', r));
    const box = inbox(ws);
    for (const f of frames) ws.send(f);
    const got = await box.take(expected);
    ws.close();
    const byId = new Map<string, string[]>();
    for (const f of got) {
      const id = f.startsWith('{') ? String(JSON.parse(f).id) : f;
      byId.set(id, [...(byId.get(id) ?? []), f]);
    }
    return [...byId].sort(([a], [b]) => a.localeCompare(b));
  }

  it('R16 answers byte for byte like the stock adapter', async () => {
    const stock = await serve('stock');
    const lean = await serve('lean');
    const req = (id: unknown, method: string, path: string, input?: unknown, extra: object = {}) =>
      JSON.stringify({ id, method, params: { path, input: superjson.serialize(input), ...extra } });
    const frames = [
      req(1, 'query', 'hello', { name: 'ann' }),
      req(2, 'query', 'hello', { name: 3 }),
      req('3', 'mutation', 'boom'),
      req(4, 'query', 'nope'),
      req(5, 'subscription', 'count', undefined, { lastEventId: '10' }),
      req(6, 'subscription', 'plain'),
      req(7, 'mutation', 'hello', { name: 'x' }),
      JSON.stringify([JSON.parse(req(8, 'query', 'hello', { name: 'b' })), JSON.parse(req(9, 'query', 'hello', { name: 'c' }))]),
      '{"id":10,',
      JSON.stringify({ id: 11, jsonrpc: '2.0', method: 'query', params: { path: 'hello', input: superjson.serialize({ name: 'j' }) } }),
      'PING',
      req(12, 'subscription', 'pushed'),
    ];
    // 1,2,3,4,7,8,9,10(null),11 = 9 single answers; 5: started + 3 data + stopped; 6: started + 2 + stopped; PONG;
    // 12: started + 3 data + stopped
    const expected = 9 + 5 + 4 + 1 + 5;
    try {
      const a = await exchange(stock.url, frames, expected);
      const b = await exchange(lean.url, frames, expected);
      assert.deepEqual(b, a);
    } finally {
      await stock.close();
      await lean.close();
    }
  });
});
