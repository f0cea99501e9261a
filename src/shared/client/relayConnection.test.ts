// SPEC.md L8: a client stays logged in across reconnects (network drop, relay restart) and its events
// stream resumes without the caller resubscribing.
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { WebSocket } from 'ws';
import { randomSecretKey } from '../crypto/ed25519';
import type { Envelope, LoginOutput, RelayEvent } from '../protocol/relay';
import { parseEnvelopeBatch } from '../protocol/relay';
import type { Relay } from '../../server/createRelay';
import { backend, eventually, loggedIn, makePost, startTestRelay } from '../../server/testKit';
import { connectRelay, type RelayConnection, RelayKeyChangedError } from './relayConnection';

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

async function connect(relay: Relay, logins: LoginOutput[]) {
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
    const mine = await conn.client.chat.post.mutate(await makePost(id, { text: 'mine' }));
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
