// SPEC.md R18 (memory per connection) and R11 (pings in the frame budget), on the relay's /trpc sockets.
import assert from 'node:assert/strict';
import type { Socket } from 'node:net';
import { it } from 'node:test';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { WebSocket } from 'ws';
import { CloseCode } from '../shared/protocol/relay';
import superjson from 'superjson';
import { closed, eventually, rawSocket, startTestRelay } from './testKit';

setFlagsFromString('--expose-gc'); // node:test's children do not get the flag
const gc = runInNewContext('gc') as () => void;

/** The server side of an upgraded TCP socket: ws keeps it under its `websocket` symbol. */
function serverSocketOf(net: Socket): WebSocket {
  const key = Object.getOwnPropertySymbols(net).find((s) => s.description === 'websocket');
  assert.ok(key, 'no websocket on the server socket');
  return (net as unknown as Record<symbol, WebSocket>)[key]!;
}

/** A test relay and the TCP socket of every upgrade it gets, in order (their server sides: serverSocketOf). */
async function relayWithServerSockets() {
  const relay = await startTestRelay();
  const nets: Socket[] = [];
  relay.server.on('upgrade', (req) => nets.push(req.socket as Socket));
  return { relay, nets };
}

/** Own properties of `o` that are functions: closures the object keeps alive for as long as it lives. */
function ownFunctions(o: object): string[] {
  return Reflect.ownKeys(o)
    .filter((k) => typeof (o as Record<PropertyKey, unknown>)[k] === 'function')
    .map(String);
}

it('R18 an open /trpc socket keeps no listener, no listener table and no closure of its own, and is collected once closed', async () => {
  const { relay, nets } = await relayWithServerSockets();
  try {
    const ws = await rawSocket(relay);
    await eventually(() => relay.counts().connections === 1, 'the socket registered');
    // In a function of its own: a local of this async function would keep the socket alive itself.
    const ref = ((server: WebSocket) => {
      assert.deepEqual(server.eventNames(), [], 'listeners on the server socket');
      // EventEmitter's own `{ __proto__: null }` table is a V8 dictionary, ~0.2 KiB even when empty.
      assert.equal((server as unknown as { _events: unknown })._events, undefined, 'an (empty) listener table on the server socket');
      assert.deepEqual(ownFunctions(server), [], 'closures on the server socket');
      return new WeakRef(server);
    })(serverSocketOf(nets[0]!));
    ws.close();
    await closed(ws);
    await eventually(() => relay.counts().connections === 0, 'the socket unregistered');
    nets.length = 0;
    let alive = true;
    for (let i = 0; i < 50 && alive; i++) {
      await new Promise((r) => setTimeout(r, 20));
      gc();
      alive = ref.deref() !== undefined;
    }
    assert.equal(alive, false, 'the closed socket is still reachable');
  } finally {
    await relay.close();
  }
});

it('R18 the upgrade request (an IncomingMessage and its headers) is not kept once the socket is open', async () => {
  const relay = await startTestRelay();
  try {
    let ref: WeakRef<object> | undefined;
    relay.server.on('upgrade', (req) => (ref = new WeakRef(req)));
    const ws = await rawSocket(relay);
    await eventually(() => relay.counts().connections === 1, 'the socket registered');
    let alive = true;
    for (let i = 0; i < 50 && alive; i++) {
      await new Promise((r) => setTimeout(r, 20));
      gc();
      alive = ref?.deref() !== undefined;
    }
    assert.equal(alive, false, 'the upgrade request is still reachable from the open socket');
    ws.close();
    await closed(ws);
  } finally {
    await relay.close();
  }
});

it('R11 a ping is one frame of the budget: answered with a pong of its payload; a ping flood closes 4009', async () => {
  const relay = await startTestRelay({ limits: { maxFramesPerSecond: 10 } });
  try {
    const ws = await rawSocket(relay);
    const pong = new Promise<Buffer>((resolve) => ws.once('pong', resolve));
    ws.ping(Buffer.from('are you there'));
    assert.equal((await pong).toString(), 'are you there');

    const flood = await rawSocket(relay);
    const end = closed(flood);
    for (let i = 0; i < 30; i++) flood.ping();
    assert.equal((await end).code, CloseCode.FLOOD);
    assert.equal(ws.readyState, WebSocket.OPEN, 'the other socket carries on');
  } finally {
    await relay.close();
  }
});

it('R18 a socket with one subscription holds it without a Map; a second one gets the Map', async () => {
  const { relay, nets } = await relayWithServerSockets();
  try {
    const ws = await rawSocket(relay);
    const started = (id: number) =>
      new Promise<void>((resolve) => {
        const onMessage = (data: Buffer) => {
          const m = JSON.parse(data.toString());
          if (m.id === id && m.result?.type === 'started') {
            ws.off('message', onMessage);
            resolve();
          }
        };
        ws.on('message', onMessage);
        ws.send(JSON.stringify({ id, method: 'subscription', params: { path: 'events', input: superjson.serialize({ channels: ['general'] }) } }));
      });
    await started(1);
    const server = serverSocketOf(nets[0]!) as unknown as { trpcSubId: unknown; trpcSubs: Map<unknown, unknown> | null };
    assert.equal(server.trpcSubId, 1);
    assert.equal(server.trpcSubs, null, 'a Map for the one subscription');
    await started(2);
    assert.equal((server.trpcSubs as Map<unknown, unknown> | null)?.size, 1, 'the second subscription is in the Map');
    ws.close();
    await closed(ws);
  } finally {
    await relay.close();
  }
});
