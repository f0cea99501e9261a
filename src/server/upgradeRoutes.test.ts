// SPEC.md R1: sockets handed to an upgrade route (the PeerJS endpoint) keep nothing of their upgrade
// request alive: memory per client (bench:relay) counts every such socket for as long as it is open.
import assert from 'node:assert/strict';
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { it } from 'node:test';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { WebSocket, WebSocketServer } from 'ws';
import { startTestRelay } from './testKit';

setFlagsFromString('--expose-gc'); // node:test's children do not get the flag
const gc = runInNewContext('gc') as () => void;

it('R1 an upgrade-route socket does not keep its upgrade request (headers, parser) alive while open', async () => {
  const wss = new WebSocketServer({ noServer: true });
  const requests: WeakRef<IncomingMessage>[] = [];
  const held: WebSocket[] = [];
  const relay = await startTestRelay({
    upgradeRoutes: {
      '/held': (req: IncomingMessage, socket: Duplex, head: Buffer) => {
        requests.push(new WeakRef(req));
        // The handler keeps the socket and nothing of the request, as the signalling endpoint does.
        wss.handleUpgrade(req, socket, head, (ws) => held.push(ws));
      },
    },
  });
  const clients = await Promise.all(
    Array.from({ length: 5 }, async () => {
      const ws = new WebSocket(`${relay.url.replace('http', 'ws')}/held`);
      await new Promise((r, j) => ws.once('open', r).once('error', j));
      return ws;
    }),
  );
  try {
    assert.equal(held.length, 5);
    // Collected only once nothing holds it: a few turns and full GCs for the request's own timers to let go.
    let alive = requests.length;
    for (let i = 0; i < 20 && alive > 0; i++) {
      await new Promise((r) => setTimeout(r, 20));
      gc();
      alive = requests.filter((w) => w.deref() !== undefined).length;
    }
    assert.equal(alive, 0, `${alive} of ${requests.length} upgrade requests still reachable from open sockets`);
  } finally {
    for (const c of clients) c.terminate();
    for (const ws of held) ws.terminate();
    wss.close();
    await relay.close();
  }
});
