// SPEC.md L8: a client stays logged in across reconnects (network drop, relay restart) and its events
// stream resumes without the caller resubscribing. L9: it logs in only to the relay it dialled, with the
// key it pinned. M6: it posts on the relay's clock.
import assert from 'node:assert/strict';
import type { AddressInfo } from 'node:net';
import { after, describe, it } from 'node:test';
import { TRPCClientError } from '@trpc/client';
import { WebSocket, WebSocketServer } from 'ws';
import { randomSecretKey } from '../crypto/ed25519';
import type { Envelope, LoginOutput, RelayEvent } from '../protocol/relay';
import { parseEnvelopeBatch } from '../protocol/relay';
import type { Relay } from '../../server/createRelay';
import { backend, eventually, loggedIn, makePost, refusal, startTestRelay } from '../../server/testKit';
import { type ConnectRelayOptions, connectRelay, type RelayConnection, RelayKeyChangedError } from './relayConnection';

const cleanup: (() => Promise<unknown>)[] = [];
after(async () => {
  for (const c of cleanup.reverse()) await c();
});

function watch(conn: RelayConnection) {
  const events: RelayEvent[] = [];
  const envelopes: Envelope[] = [];
  const sub = conn.client.events.subscribe(
    { channels: ['general'] },
    {
      onData(ev) {
        events.push(ev);
        if (ev.t === 'msgs') envelopes.push(...parseEnvelopeBatch(ev.raw)!);
      },
    },
  );
  cleanup.push(async () => sub.unsubscribe());
  return { events, envelopes };
}

async function connect(relay: Relay, logins: LoginOutput[], extra: Pick<ConnectRelayOptions, 'onError' | 'onRelayKeyChanged'> = {}) {
  const secretKey = randomSecretKey();
  const conn = await connectRelay({
    url: relay.trpcUrl,
    secretKey,
    name: 'resilient',
    kind: 'virtual',
    backend,
    WebSocket,
    retryBaseMs: 20,
    restartDelayMs: 50,
    onLogin: (l) => logins.push(l),
    ...extra,
  });
  cleanup.push(() => conn.close());
  return { conn, id: { secretKey, publicKey: conn.publicKey } };
}

describe('relayConnection', () => {
  it('L8 logs in, and after a network drop logs in again (new session) and resumes the events stream', async () => {
    const relay = await startTestRelay();
    cleanup.push(() => relay.close());
    const logins: LoginOutput[] = [];
    const { conn, id } = await connect(relay, logins);
    assert.equal(conn.login.self.name, 'resilient');
    assert.equal(conn.login.info.publicKey, relay.info.publicKey);
    const seen = watch(conn);
    const poster = await loggedIn(relay);
    cleanup.push(poster.close);

    const p1 = await poster.client.chat.post.mutate(await makePost(poster.id, { text: 'before' }));
    await eventually(() => seen.envelopes.some((e) => e.id === p1.id), 'first message');

    const ws = conn.wsClient.connection!.ws as unknown as { _socket: { destroy(): void } };
    ws._socket.destroy();
    await eventually(() => logins.length === 2, 're-login');
    assert.notEqual(logins[1]!.self.sessionId, logins[0]!.self.sessionId);
    assert.equal(conn.login, logins[1]);
    // Gated calls work on the new connection.
    const mine = await conn.client.chat.post.mutate(await makePost(id, { text: 'mine', relay: relay.info.publicKey }));
    assert.equal(mine.post.author, conn.publicKey);

    const p2 = await poster.client.chat.post.mutate(await makePost(poster.id, { text: 'after' }));
    await eventually(() => seen.envelopes.some((e) => e.id === p2.id), 'message after reconnect');
    // The resumed stream started over with a fresh presence snapshot.
    assert.equal(seen.events.filter((e) => e.t === 'presence' && e.op === 'snapshot').length, 2);
  });

  it('L8 after a relay restart (bye, 1012) it returns to the new relay on the same address', async () => {
    const secretKey = randomSecretKey();
    const relay1 = await startTestRelay({ secretKey });
    const logins: LoginOutput[] = [];
    const { conn } = await connect(relay1, logins);
    const seen = watch(conn);
    await eventually(() => seen.events.length > 0, 'snapshot');
    await relay1.close();
    assert.ok(seen.events.some((e) => e.t === 'bye'));
    const relay2 = await startTestRelay({ secretKey, port: relay1.port });
    cleanup.push(() => relay2.close());
    await eventually(() => logins.length === 2, 're-login on the new relay');
    assert.equal(logins[1]!.info.epoch, relay2.info.epoch);
    const poster = await loggedIn(relay2);
    cleanup.push(poster.close);
    const p = await poster.client.chat.post.mutate(await makePost(poster.id, { text: 'new epoch' }));
    await eventually(() => seen.envelopes.some((e) => e.id === p.id), 'message from the new relay');
  });

  it("L9 a man in the middle forwarding relay B's challenge cannot log its victim in at B", async () => {
    const b = await startTestRelay();
    cleanup.push(() => b.close());
    const mitm = await transparentProxy(b.trpcUrl);
    cleanup.push(mitm.close);
    // The victim dials the attacker's address and, without a pin, would trust whatever key it is shown.
    const err = await connectRelay({ url: mitm.url, secretKey: randomSecretKey(), name: 'victim', kind: 'browser', backend, WebSocket }).then(
      () => null,
      (e: unknown) => e,
    );
    assert.ok(err instanceof TRPCClientError, String(err));
    assert.equal((err.data as { reason?: string }).reason, 'WRONG_RELAY');
    assert.ok(mitm.forwarded() >= 2, 'the challenge and the login did pass through the attacker');
    assert.equal(b.counts().sessions, 0, 'nobody was logged in at B');
  });

  it('L9 after a reconnect to a relay with another key on the same address, the client reports RELAY_KEY_CHANGED and does not log in', async () => {
    const relay1 = await startTestRelay();
    const logins: LoginOutput[] = [];
    const changes: { pinned: string; offered: string }[] = [];
    await connect(relay1, logins, { onRelayKeyChanged: (c) => changes.push(c) });
    await relay1.close();
    const relay2 = await startTestRelay({ port: relay1.port });
    cleanup.push(() => relay2.close());
    await eventually(() => changes.some((c) => c.pinned === relay1.info.publicKey && c.offered === relay2.info.publicKey), 'RELAY_KEY_CHANGED');
    assert.equal(logins.length, 1);
    assert.equal(relay2.counts().sessions, 0);
  });

  it("M6 a client whose clock is an hour off posts on the relay's clock (estimated at login)", async () => {
    const relay = await startTestRelay({ clock: () => Date.now() + 3_600_000 });
    cleanup.push(() => relay.close());
    const { conn, id } = await connect(relay, []);
    assert.ok(Math.abs(conn.relayNow() - (Date.now() + 3_600_000)) < 5_000, 'offset estimated from the challenge');
    const env = await conn.client.chat.post.mutate(await makePost(id, { text: 'on time', sentAt: conn.relayNow(), relay: relay.info.publicKey }));
    assert.equal(env.post.text, 'on time');
    assert.equal(await refusal(conn.client.chat.post.mutate(await makePost(id, { text: 'local clock', relay: relay.info.publicKey }))), 'STALE_POST');
    });

  it('CL4 a relay whose key is not the pinned one is refused before a login is signed', async () => {
    const relay = await startTestRelay();
    cleanup.push(() => relay.close());
    const other = await loggedIn(relay);
    cleanup.push(other.close);
    const pinned = other.me.self.userId; // any other valid key
    const signed: string[] = [];
    const spy = { ...backend, sign: async (sk: Uint8Array, m: Uint8Array) => (signed.push(new TextDecoder().decode(m)), backend.sign(sk, m)) };
    await assert.rejects(
      connectRelay({ url: relay.trpcUrl, secretKey: randomSecretKey(), name: 'pinned', kind: 'virtual', backend: spy, WebSocket, relayKey: pinned }),
      (err: unknown) => err instanceof RelayKeyChangedError && err.pinned === pinned && err.offered === relay.info.publicKey,
    );
    assert.deepEqual(signed, []);
    assert.equal(relay.counts().sessions, 1, 'only the other client');
  });
});


/** A WebSocket proxy that passes every frame both ways unchanged: a relay forwarding another's challenge. */
async function transparentProxy(upstreamUrl: string) {
  const wss = new WebSocketServer({ port: 0, host: '127.0.0.1' });
  await new Promise<void>((resolve) => wss.once('listening', () => resolve()));
  let forwarded = 0;
  wss.on('connection', (client) => {
    const up = new WebSocket(upstreamUrl);
    const early: { data: unknown; isBinary: boolean }[] = [];
    up.on('error', () => client.terminate());
    client.on('error', () => up.terminate());
    client.on('message', (data, isBinary) => {
      forwarded++;
      if (up.readyState === WebSocket.OPEN) up.send(data as Buffer, { binary: isBinary });
      else early.push({ data, isBinary });
    });
    up.on('open', () => {
      for (const m of early) up.send(m.data as Buffer, { binary: m.isBinary });
    });
    up.on('message', (data, isBinary) => client.readyState === WebSocket.OPEN && client.send(data as Buffer, { binary: isBinary }));
    client.on('close', () => up.close());
    up.on('close', () => client.close());
  });
  return {
    url: `ws://127.0.0.1:${(wss.address() as AddressInfo).port}/trpc`,
    forwarded: () => forwarded,
    close: async () => {
      for (const c of wss.clients) c.terminate();
      await new Promise<void>((resolve) => wss.close(() => resolve()));
    },
  };
}
