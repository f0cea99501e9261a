import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { after, afterEach, describe, it } from 'node:test';
import { WebSocket } from 'ws';
import { createSignallingServer } from './createSignallingServer';
import { FakePeerAuth } from './FakePeerAuth';
import { SignalClose, SignalReason } from './peerjsWire';
import { type TestSignallingRelay, startTestSignallingRelay } from './startTestSignallingRelay';

// Speaks the PeerJS client's wire format by hand (peerjs lib/socket.ts) so each rule can be probed,
// including what a real client would never send.
interface RawClient {
  ws: WebSocket;
  next(): Promise<any>;
  closed: Promise<{ code: number; reason: string }>;
  send(msg: unknown): void;
}

const clients: RawClient[] = [];

function connect(
  port: number,
  q: { id: string; token: string; key?: string; version?: string; path?: string },
  wsOpts: { autoPong?: boolean } = {},
): RawClient {
  const url =
    `ws://127.0.0.1:${port}${q.path ?? '/peerjs'}?key=${q.key ?? 'peerchat'}` +
    `&id=${q.id}&token=${q.token}&version=${q.version ?? '1.5.5'}`;
  const ws = new WebSocket(url, wsOpts);
  const inbox: any[] = [];
  const waiters: ((m: any) => void)[] = [];
  ws.on('message', (data) => {
    const m = JSON.parse(data.toString());
    const w = waiters.shift();
    if (w) w(m);
    else inbox.push(m);
  });
  ws.on('error', () => {});
  const closed = new Promise<{ code: number; reason: string }>((resolve) =>
    ws.on('close', (code, reason) => resolve({ code, reason: reason.toString() })),
  );
  const c: RawClient = {
    ws,
    closed,
    next: () => (inbox.length ? Promise.resolve(inbox.shift()) : new Promise((r) => waiters.push(r))),
    send: (msg) => ws.send(typeof msg === 'string' ? msg : JSON.stringify(msg)),
  };
  clients.push(c);
  return c;
}

async function openClient(relay: TestSignallingRelay, id: string, token = `tok-${id}`): Promise<RawClient> {
  if (!relay.auth.isOnline(id)) relay.auth.login(id, token);
  const c = connect(relay.port, { id, token });
  assert.deepEqual(await c.next(), { type: 'OPEN' });
  return c;
}

const offer = (dst: string, extra: Record<string, unknown> = {}) => ({
  type: 'OFFER',
  dst,
  payload: {
    sdp: { type: 'offer', sdp: 'v=0\r\n' },
    type: 'data',
    connectionId: 'dc_abc123',
    label: 'dc_abc123',
    reliable: true,
    serialization: 'raw',
    ...extra,
  },
});
const candidate = (dst: string) => ({
  type: 'CANDIDATE',
  dst,
  payload: {
    candidate: { candidate: 'candidate:1 1 udp 1 127.0.0.1 5000 typ host', sdpMid: '0', sdpMLineIndex: 0 },
    type: 'data',
    connectionId: 'dc_abc123',
  },
});

let relay: TestSignallingRelay;
afterEach(async () => {
  for (const c of clients.splice(0)) c.ws.terminate();
  await relay?.close();
});

describe('signalling endpoint', () => {
  it('W1 a socket with the live token of its peer id gets OPEN and is registered', async () => {
    relay = await startTestSignallingRelay();
    await openClient(relay, 'alice');
    assert.equal(relay.signalling.stats().sockets, 1);
  });

  it('W1 a wrong token gets ERROR UNAUTHORIZED, close 4011, and registers nothing', async () => {
    relay = await startTestSignallingRelay();
    relay.auth.login('alice', 'right');
    const c = connect(relay.port, { id: 'alice', token: 'wrong' });
    assert.deepEqual(await c.next(), { type: 'ERROR', payload: { msg: SignalReason.UNAUTHORIZED } });
    assert.equal((await c.closed).code, SignalClose.UNAUTHORIZED);
    assert.equal(relay.signalling.stats().sockets, 0);
    assert.equal(relay.signalling.stats().rejected.unauthorized, 1);
    // alice is online but has no socket: a message to her waits instead of reaching the impostor.
    const bob = await openClient(relay, 'bob');
    bob.send(offer('alice'));
    await waitFor(() => relay.signalling.stats().pending === 1);
    assert.equal(relay.signalling.stats().relayed, 0);
  });

  it('W1 an id nobody logged in with, or an invalid id, is refused', async () => {
    relay = await startTestSignallingRelay();
    const c = connect(relay.port, { id: 'ghost', token: 'x' });
    assert.equal((await c.next()).payload.msg, SignalReason.UNAUTHORIZED);
    assert.equal((await c.closed).code, SignalClose.UNAUTHORIZED);
    const d = connect(relay.port, { id: '-bad--id', token: 'x' });
    assert.equal((await d.closed).code, SignalClose.UNAUTHORIZED);
    assert.equal(relay.signalling.stats().rejected.unauthorized, 2);
  });

  it('W9 a wrong key gets INVALID-KEY and a non-1.x client PROTOCOL_MISMATCH', async () => {
    relay = await startTestSignallingRelay();
    relay.auth.login('alice', 't');
    const k = connect(relay.port, { id: 'alice', token: 't', key: 'other' });
    assert.equal((await k.next()).type, 'INVALID-KEY');
    assert.equal((await k.closed).code, SignalClose.UNAUTHORIZED);
    const v = connect(relay.port, { id: 'alice', token: 't', version: '2.0.0' });
    assert.deepEqual(await v.next(), { type: 'ERROR', payload: { msg: SignalReason.PROTOCOL_MISMATCH } });
    assert.equal(relay.signalling.stats().sockets, 0);
  });

  it('W9 only the exact signalling path is served', async () => {
    relay = await startTestSignallingRelay();
    relay.auth.login('alice', 't');
    const c = connect(relay.port, { id: 'alice', token: 't', path: '/peerjs/peerjs' });
    const status = await new Promise<number>((resolve) => c.ws.on('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0)));
    assert.equal(status, 404);
  });

  it('W2 a second socket with the valid token replaces the first', async () => {
    relay = await startTestSignallingRelay();
    const first = await openClient(relay, 'alice', 'tok');
    const second = connect(relay.port, { id: 'alice', token: 'tok' });
    assert.equal((await second.next()).type, 'OPEN');
    assert.deepEqual(await first.next(), { type: 'ERROR', payload: { msg: SignalReason.REPLACED } });
    assert.equal((await first.closed).code, SignalClose.REPLACED);
    const bob = await openClient(relay, 'bob');
    bob.send(offer('alice'));
    assert.equal((await second.next()).src, 'bob');
    assert.equal(relay.signalling.stats().sockets, 2);
    assert.equal(relay.auth.listenerCount(), 2, 'the replaced socket dropped its session callback');
  });

  it('W3 the socket closes with 4010 when its login session ends', async () => {
    relay = await startTestSignallingRelay();
    const c = await openClient(relay, 'alice');
    relay.auth.logout('alice');
    assert.deepEqual(await c.next(), { type: 'ERROR', payload: { msg: SignalReason.SESSION_ENDED } });
    assert.equal((await c.closed).code, SignalClose.SESSION_ENDED);
    assert.equal(relay.signalling.stats().sockets, 0);
  });

  it('W4 OFFER, ANSWER and CANDIDATE are relayed with src set to the authenticated sender', async () => {
    relay = await startTestSignallingRelay();
    const alice = await openClient(relay, 'alice');
    const bob = await openClient(relay, 'bob');
    alice.send({ ...offer('bob'), src: 'mallory' });
    const got = await bob.next();
    assert.equal(got.type, 'OFFER');
    assert.equal(got.src, 'alice');
    assert.deepEqual(got.payload, offer('bob').payload);
    bob.send({
      type: 'ANSWER',
      dst: 'alice',
      payload: { sdp: { type: 'answer', sdp: 'v=0\r\n' }, type: 'data', connectionId: 'dc_abc123' },
    });
    const answer = await alice.next();
    assert.equal(answer.type, 'ANSWER');
    assert.equal(answer.src, 'bob');
    alice.send(candidate('bob'));
    const cand = await bob.next();
    assert.equal(cand.type, 'CANDIDATE');
    assert.equal(cand.payload.candidate.candidate, candidate('bob').payload.candidate.candidate);
    assert.equal(relay.signalling.stats().relayed, 3);
  });

  it('W5 a message to an offline peer is answered with EXPIRE at once', async () => {
    relay = await startTestSignallingRelay();
    const alice = await openClient(relay, 'alice');
    alice.send(offer('nobody'));
    assert.deepEqual(await alice.next(), { type: 'EXPIRE', src: 'nobody', dst: 'alice' });
  });

  it('W5 messages for an online peer without a socket wait and arrive in order after OPEN', async () => {
    relay = await startTestSignallingRelay();
    const alice = await openClient(relay, 'alice');
    relay.auth.login('bob', 'tb');
    alice.send(offer('bob'));
    alice.send(candidate('bob'));
    alice.send({ type: 'HEARTBEAT' });
    // The HEARTBEAT was read after the two messages: both are queued by now.
    await waitFor(() => relay.signalling.stats().pending === 2);
    const bob = connect(relay.port, { id: 'bob', token: 'tb' });
    assert.equal((await bob.next()).type, 'OPEN');
    assert.equal((await bob.next()).type, 'OFFER');
    assert.equal((await bob.next()).type, 'CANDIDATE');
    assert.equal(relay.signalling.stats().pending, 0);
  });

  it('W5 the wait is bounded per destination and in time; the sender gets EXPIRE', async () => {
    let clock = 1_000;
    relay = await startTestSignallingRelay({ now: () => clock, pending: { perDestination: 2, ttlMs: 10_000 }, sweepIntervalMs: 10 });
    const alice = await openClient(relay, 'alice');
    relay.auth.login('bob', 'tb');
    alice.send(offer('bob'));
    alice.send(candidate('bob'));
    alice.send(candidate('bob'));
    assert.deepEqual(await alice.next(), { type: 'EXPIRE', src: 'bob', dst: 'alice' });
    assert.equal(relay.signalling.stats().pending, 2);
    clock += 10_000;
    assert.deepEqual(await alice.next(), { type: 'EXPIRE', src: 'bob', dst: 'alice' });
    assert.equal(relay.signalling.stats().pending, 0);
  });

  for (const [name, garbage] of [
    ['text that is not JSON', '{nope'],
    ['an unknown type', { type: 'OPEN' }],
    ['an OFFER with a serializer PeerJS does not know', offer('bob', { serialization: 'constructor' })],
    ['an OFFER without dst', { ...offer('bob'), dst: undefined }],
    ['a CANDIDATE without a candidate', { type: 'CANDIDATE', dst: 'bob', payload: { type: 'data', connectionId: 'dc_1' } }],
  ] as const) {
    it(`W6 ${name} closes that socket only (4013) and is counted`, async () => {
      relay = await startTestSignallingRelay();
      const alice = await openClient(relay, 'alice');
      const bob = await openClient(relay, 'bob');
      alice.send(garbage);
      assert.deepEqual(await alice.next(), { type: 'ERROR', payload: { msg: SignalReason.BAD_MESSAGE } });
      assert.equal((await alice.closed).code, SignalClose.BAD_MESSAGE);
      assert.equal(relay.signalling.stats().badMessages, 1);
      assert.equal(bob.ws.readyState, WebSocket.OPEN);
      bob.send(offer('nobody'));
      assert.equal((await bob.next()).type, 'EXPIRE');
    });
  }

  it('W6 a binary frame is garbage', async () => {
    relay = await startTestSignallingRelay();
    const alice = await openClient(relay, 'alice');
    alice.ws.send(new Uint8Array([1, 2, 3]));
    assert.equal((await alice.closed).code, SignalClose.BAD_MESSAGE);
  });

  it('W6 a frame above maxPayload closes the socket with 1009', async () => {
    relay = await startTestSignallingRelay();
    const alice = await openClient(relay, 'alice');
    alice.send(offer('bob', { label: 'x'.repeat(70 * 1024) }));
    assert.equal((await alice.closed).code, 1009);
    await waitFor(() => relay.signalling.stats().tooLarge === 1);
  });

  it('W7 a socket over its message budget is closed with FLOOD (4009)', async () => {
    relay = await startTestSignallingRelay({ now: () => 0, rate: { burstMessages: 5 } });
    const alice = await openClient(relay, 'alice');
    for (let i = 0; i < 6; i++) alice.send({ type: 'HEARTBEAT' });
    assert.deepEqual(await alice.next(), { type: 'ERROR', payload: { msg: SignalReason.FLOOD } });
    assert.equal((await alice.closed).code, SignalClose.FLOOD);
    assert.equal(relay.signalling.stats().floods, 1);
  });

  it('W7 a ping is one message of the budget: answered with a pong of its payload; a ping flood closes 4009', async () => {
    relay = await startTestSignallingRelay({ now: () => 0, rate: { burstMessages: 5 } });
    const alice = await openClient(relay, 'alice');
    const pong = new Promise<Buffer>((resolve) => alice.ws.once('pong', resolve));
    alice.ws.ping(Buffer.from('still here'));
    assert.equal((await pong).toString(), 'still here');
    for (let i = 0; i < 5; i++) alice.ws.ping();
    assert.deepEqual(await alice.next(), { type: 'ERROR', payload: { msg: SignalReason.FLOOD } });
    assert.equal((await alice.closed).code, SignalClose.FLOOD);
  });

  it('R18 a registered socket keeps no listener, no listener table and no closure of its own; close() waits for every socket', async () => {
    const auth = new FakePeerAuth();
    const signalling = createSignallingServer({ log: () => {}, auth });
    const nets: Socket[] = [];
    const server = createServer((_req, res) => res.writeHead(404).end());
    server.on('upgrade', (req, socket, head) => {
      nets.push(socket as Socket);
      signalling.handleUpgrade(req, socket, head);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      auth.login('alice', 't');
      const alice = connect((server.address() as AddressInfo).port, { id: 'alice', token: 't' });
      assert.deepEqual(await alice.next(), { type: 'OPEN' });
      const key = Object.getOwnPropertySymbols(nets[0]!).find((k) => k.description === 'websocket')!;
      const ws = (nets[0] as unknown as Record<symbol, WebSocket>)[key]!;
      assert.deepEqual(ws.eventNames(), [], 'listeners on the server socket');
      assert.equal((ws as unknown as { _events: unknown })._events, undefined, 'an (empty) listener table on the server socket');
      assert.deepEqual(Reflect.ownKeys(ws).filter((k) => typeof (ws as unknown as Record<PropertyKey, unknown>)[k] === 'function'), [], 'closures on it');
      // A client that ignores the close handshake: close() still ends only once its socket is gone.
      (alice.ws as unknown as { _socket: { pause(): void } })._socket.pause();
      let done = false;
      const closing = signalling.close().then(() => (done = true));
      await new Promise((r) => setTimeout(r, 50));
      assert.equal(done, false, 'close() resolved while a socket was still open');
      alice.ws.terminate();
      await closing;
    } finally {
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });

  it('W8 a socket that answers no ping is terminated', async () => {
    relay = await startTestSignallingRelay({ pingIntervalMs: 20 });
    relay.auth.login('alice', 't');
    const alice = connect(relay.port, { id: 'alice', token: 't' }, { autoPong: false });
    assert.equal((await alice.next()).type, 'OPEN');
    assert.equal((await alice.closed).code, 1006);
    assert.equal(relay.signalling.stats().idleTimeouts, 1);
  });

  it('W8 a destination that does not read its socket is closed as a slow consumer', async () => {
    relay = await startTestSignallingRelay({
      slowConsumerBytes: 256 * 1024,
      rate: { burstMessages: 1e6, messagesPerSecond: 1e6, burstBytes: 1e9, bytesPerSecond: 1e9 },
    });
    const alice = await openClient(relay, 'alice');
    const bob = await openClient(relay, 'bob');
    // Bob stops reading: TCP backs up, then the relay's send buffer for him grows.
    (bob.ws as unknown as { _socket: { pause(): void } })._socket.pause();
    const big = offer('bob', { sdp: { type: 'offer', sdp: 'a'.repeat(40 * 1024) } });
    while (relay.signalling.stats().slowConsumers === 0) {
      for (let i = 0; i < 20; i++) alice.send(big);
      await new Promise((r) => setTimeout(r, 5));
    }
    assert.equal(relay.signalling.stats().sockets, 1, 'bob is unregistered; alice stays');
    assert.equal(alice.ws.readyState, WebSocket.OPEN);
  });

  it('W10 close() tells every socket SHUTTING_DOWN, closes 1012, and refuses new upgrades', async () => {
    relay = await startTestSignallingRelay();
    const alice = await openClient(relay, 'alice');
    const closing = relay.signalling.close();
    assert.deepEqual(await alice.next(), { type: 'ERROR', payload: { msg: SignalReason.SHUTTING_DOWN } });
    assert.equal((await alice.closed).code, SignalClose.SERVICE_RESTART);
    await closing;
    relay.auth.login('bob', 't');
    const bob = connect(relay.port, { id: 'bob', token: 't' });
    const status = await new Promise<number>((resolve) => bob.ws.on('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0)));
    assert.equal(status, 503);
  });
});

after(() => {
  for (const c of clients.splice(0)) c.ws.terminate();
});

/** Polls a condition the server reaches asynchronously; the test runner's timeout bounds it. */
async function waitFor(cond: () => boolean): Promise<void> {
  while (!cond()) await new Promise((r) => setTimeout(r, 5));
}
