// SPEC.md W11: PeerJS signalling over the tRPC socket (`signal.connect`, `signal.send`), alongside `/peerjs`.
import assert from 'node:assert/strict';
import { afterEach, describe, it } from 'node:test';
import { WebSocket } from 'ws';
import { SIGNAL_MAX_BATCH } from '../shared/protocol/relay';
import type { Relay } from './createRelay';
import { eventually, loggedIn, rawClient, refusal, startTestRelay } from './testKit';

type Client = Awaited<ReturnType<typeof loggedIn>>['client'];

/** One `signal.connect` stream: what the relay said on it, and how it ended. */
function stream(client: Client, peerId: string) {
  const inbox: any[] = [];
  let waiters: (() => void)[] = [];
  let end: { error?: string; complete?: true } | null = null;
  const wake = () => {
    const w = waiters;
    waiters = [];
    for (const f of w) f();
  };
  const sub = client.signal.connect.subscribe(
    { peerId },
    {
      onData(text) {
        inbox.push(JSON.parse(text));
        wake();
      },
      onError(err) {
        end = { error: (err.data as { reason?: string } | undefined)?.reason ?? err.message };
        wake();
      },
      onComplete() {
        end ??= { complete: true };
        wake();
      },
      onStopped() {
        end ??= { complete: true };
        wake();
      },
    },
  );
  async function until(cond: () => boolean, what: string): Promise<void> {
    const deadline = Date.now() + 5000;
    while (!cond()) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
      await Promise.race([new Promise<void>((r) => waiters.push(r)), new Promise((r) => setTimeout(r, 50))]);
    }
  }
  return {
    inbox,
    get end() {
      return end;
    },
    /** The next message (in order). */
    async next(): Promise<any> {
      await until(() => inbox.length > 0 || end !== null, 'a signalling message');
      if (inbox.length === 0) throw new Error(`stream ended: ${JSON.stringify(end)}`);
      return inbox.shift();
    },
    ended: () => until(() => end !== null, 'the stream to end').then(() => end!),
    stop: () => sub.unsubscribe(),
  };
}

const offer = (dst: string) =>
  JSON.stringify({
    type: 'OFFER',
    dst,
    payload: { sdp: { type: 'offer', sdp: 'v=0\r\n' }, type: 'data', connectionId: 'dc_abc123', label: 'dc_abc123', reliable: true, serialization: 'raw' },
  });
const answer = (dst: string) =>
  JSON.stringify({ type: 'ANSWER', dst, payload: { sdp: { type: 'answer', sdp: 'v=0\r\n' }, type: 'data', connectionId: 'dc_abc123' } });
const candidate = (dst: string, n = 1) =>
  JSON.stringify({
    type: 'CANDIDATE',
    dst,
    payload: { candidate: { candidate: `candidate:${n} 1 udp 1 127.0.0.1 5000 typ host`, sdpMid: '0', sdpMLineIndex: 0 }, type: 'data', connectionId: 'dc_abc123' },
  });

let relay: Relay;
const quietRelay = () => startTestRelay({ signalling: { log: () => {} } });
const closers: (() => Promise<void>)[] = [];
async function user(r: Relay = relay) {
  const u = await loggedIn(r, { kind: 'browser' });
  closers.push(u.close);
  return u;
}
afterEach(async () => {
  for (const c of closers.splice(0)) await c();
  await relay?.close();
});

/** `u`'s own signalling stream, once its OPEN has come. */
async function opened(u: { client: Client; me: { self: { peerId: string } } }) {
  const st = stream(u.client, u.me.self.peerId);
  assert.deepEqual(await st.next(), { type: 'OPEN' });
  return st;
}

/** A stock PeerJS client's `/peerjs` socket for a login (W1), with its messages in order. */
async function peerjsSocket(r: Relay, me: { self: { peerId: string }; peerToken: string }) {
  const ws = new WebSocket(`ws://127.0.0.1:${r.port}/peerjs?key=${r.config.peerjs.key}&id=${me.self.peerId}&token=${me.peerToken}&version=1.5.5`);
  const inbox: any[] = [];
  ws.on('message', (d) => inbox.push(JSON.parse(d.toString())));
  ws.on('error', () => {});
  closers.push(async () => ws.terminate());
  await eventually(() => inbox.length > 0, 'OPEN on /peerjs');
  return { ws, inbox };
}

describe('signalling over the tRPC socket (W11)', () => {
  it('W11 a stream gets OPEN, then what waited for it, in order; messages go both ways with src the sender', async () => {
    relay = await quietRelay();
    const alice = await user();
    const bob = await user();
    const a = await opened(alice);
    // Bob is online with no stream yet: Alice's OFFER and CANDIDATE wait for it (W5).
    await alice.client.signal.send.mutate([offer(bob.me.self.peerId), candidate(bob.me.self.peerId)]);
    await eventually(() => relay.signalling.pendingFor(bob.me.self.peerId) === 2, 'two held for bob');
    const b = await opened(bob);
    const got = await b.next();
    assert.equal(got.type, 'OFFER');
    assert.equal(got.src, alice.me.self.peerId);
    assert.equal((await b.next()).type, 'CANDIDATE');
    await bob.client.signal.send.mutate([answer(alice.me.self.peerId)]);
    const ans = await a.next();
    assert.equal(ans.type, 'ANSWER');
    assert.equal(ans.src, bob.me.self.peerId);
    assert.equal(relay.signalling.stats().sockets, 2);
  });

  it('W11 a stream and a stock /peerjs socket signal each other', async () => {
    relay = await quietRelay();
    const alice = await user();
    const carol = await user();
    const a = await opened(alice);
    const c = await peerjsSocket(relay, carol.me);
    assert.deepEqual(c.inbox.shift(), { type: 'OPEN' });
    await alice.client.signal.send.mutate([offer(carol.me.self.peerId)]);
    await eventually(() => c.inbox.length > 0, 'the OFFER on /peerjs');
    assert.equal(c.inbox[0].src, alice.me.self.peerId);
    c.ws.send(answer(alice.me.self.peerId));
    const ans = await a.next();
    assert.equal(ans.type, 'ANSWER');
    assert.equal(ans.src, carol.me.self.peerId);
  });

  it('W11 refusals: no stream, another peer id, no login, too big a batch', async () => {
    relay = await quietRelay();
    const alice = await user();
    const bob = await user();
    assert.equal(await refusal(alice.client.signal.send.mutate([offer(bob.me.self.peerId)])), 'NO_SIGNAL_STREAM');
    const wrong = stream(alice.client, bob.me.self.peerId);
    assert.deepEqual(await wrong.ended(), { error: 'NO_SIGNAL_STREAM' });
    assert.equal(relay.signalling.stats().sockets, 0, 'nothing registered for the wrong id');
    const anon = rawClient(relay);
    closers.push(anon.close);
    assert.deepEqual(await stream(anon.client, alice.me.self.peerId).ended(), { error: 'NOT_LOGGED_IN' });
    const a = await opened(alice);
    const tooMany = Array.from({ length: SIGNAL_MAX_BATCH + 1 }, (_, i) => candidate(bob.me.self.peerId, i));
    assert.equal(await refusal(alice.client.signal.send.mutate(tooMany)), 'BAD_INPUT');
    assert.equal(relay.signalling.pendingFor(bob.me.self.peerId), 0, 'none of a refused batch was taken');
    // The stream and the socket carry on: a full batch arrives whole and in order.
    const b = await opened(bob);
    await alice.client.signal.send.mutate(tooMany.slice(0, SIGNAL_MAX_BATCH));
    for (let i = 0; i < SIGNAL_MAX_BATCH; i++) assert.equal((await b.next()).payload.candidate.candidate, `candidate:${i} 1 udp 1 127.0.0.1 5000 typ host`);
    assert.equal(a.end, null);
  });

  it('W11 a bad message or a flood ends only the stream, with the ERROR a /peerjs socket gets; the login stays', async () => {
    relay = await quietRelay();
    const alice = await user();
    const bob = await user();
    const a = await opened(alice);
    await alice.client.signal.send.mutate(['{"type":"OFFER","dst":"x"}']).catch(() => {});
    assert.deepEqual(await a.next(), { type: 'ERROR', payload: { msg: 'BAD_MESSAGE' } });
    await a.ended();
    assert.equal(await refusal(alice.client.signal.send.mutate([offer(bob.me.self.peerId)])), 'NO_SIGNAL_STREAM');
    // Logged in still: a new stream opens, and a flood (W7: 400 messages, 50/s) ends that one too.
    const again = await opened(alice);
    const b = await opened(bob);
    const batch = Array.from({ length: SIGNAL_MAX_BATCH }, (_, i) => candidate(bob.me.self.peerId, i));
    for (let i = 0; i < 14 && again.end === null; i++) await alice.client.signal.send.mutate(batch).catch(() => {});
    const flood = again.inbox.find((m) => m.type === 'ERROR');
    assert.deepEqual(flood, { type: 'ERROR', payload: { msg: 'FLOOD' } });
    assert.equal(relay.signalling.stats().floods, 1);
    await alice.client.presence.view.mutate({ page: 0, watch: [] }); // the socket still answers, logged in
    assert.equal(relay.counts().sessions, 2, 'both logins stand');
    assert.equal(b.end, null, "bob's stream is untouched");
  });

  it('W11 W2 the newest stream of a peer id wins: a second on the socket ends the first; a /peerjs socket replaces a stream', async () => {
    relay = await quietRelay();
    const alice = await user();
    const first = await opened(alice);
    const second = await opened(alice);
    assert.deepEqual(await first.ended(), { complete: true });
    assert.equal(relay.signalling.stats().sockets, 1);
    const ws = await peerjsSocket(relay, alice.me);
    assert.deepEqual(ws.inbox[0], { type: 'OPEN' });
    assert.deepEqual(await second.next(), { type: 'ERROR', payload: { msg: 'REPLACED' } });
    await second.ended();
    assert.equal(relay.signalling.stats().sockets, 1);
  });

  it('W11 W3 closing the socket or ending the login unregisters the stream', async () => {
    relay = await quietRelay();
    const alice = await user();
    const a = await opened(alice);
    a.stop();
    await eventually(() => relay.signalling.stats().sockets === 0, 'unsubscribing unregisters');
    const again = await opened(alice);
    assert.equal(relay.signalling.stats().sockets, 1);
    await alice.close();
    await eventually(() => relay.signalling.stats().sockets === 0 && relay.counts().sessions === 0, 'the socket gone, the stream too');
  });

  it('W11 W10 shutdown tells a stream SHUTTING_DOWN', async () => {
    relay = await quietRelay();
    const alice = await user();
    const a = await opened(alice);
    const closing = relay.close();
    assert.deepEqual(await a.next(), { type: 'ERROR', payload: { msg: 'SHUTTING_DOWN' } });
    await closing;
  });
});
