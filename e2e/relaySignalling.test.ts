// SPEC.md W11, client side: a PeerJS Peer made by relaySignalledPeer signals over the channel it is given
// (no `/peerjs` socket), batches what it says within the relay socket's budget, and reports the stream's
// end as PeerJS reports a lost socket. Real PeerJS over wrtc in Node; the channel is a recording fake.
import assert from 'node:assert/strict';
import { createServer } from 'node:net';
import { after, describe, it } from 'node:test';
import type { Peer } from 'peerjs';
import { SIGNAL_MAX_BATCH } from '../src/shared/protocol/relay';
import { peerjsOptions } from '../src/shared/transport/peerjsOptions';
import {
  type RelaySignalChannel,
  SIGNAL_BATCHES_PER_FLUSH,
  SIGNAL_FLUSH_MS,
  SIGNAL_MAX_QUEUED,
  relaySignalledPeer,
} from '../src/shared/transport/relaySignalling';
import { loadPeerjsForNode } from '../src/virtual/wrtcPeer';

const peers: Peer[] = [];
after(() => {
  for (const p of peers.splice(0)) p.destroy();
});

/** A channel that records what the Peer opens and sends; `say` plays the relay. */
function fakeChannel() {
  const opened: string[] = [];
  let closes = 0;
  const sends: { at: number; texts: string[] }[] = [];
  let on: Parameters<RelaySignalChannel['open']>[1] | null = null;
  const channel: RelaySignalChannel = {
    open(peerId, handlers) {
      opened.push(peerId);
      on = handlers;
      return { close: () => void closes++ };
    },
    send(texts) {
      sends.push({ at: Date.now(), texts });
      return Promise.resolve(null);
    },
  };
  return {
    channel,
    opened,
    sends,
    get closes() {
      return closes;
    },
    say: (msg: object) => on!.message(JSON.stringify(msg)),
    end: () => on!.end('the relay ended it'),
    /** What the Peer has said so far, parsed, in order. */
    said: () => sends.flatMap((s) => s.texts.map((t) => JSON.parse(t))),
  };
}

/** A port on which nothing listens: a Peer that tried `/peerjs` there would fail with a network error. */
async function deadPort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const port = (srv.address() as { port: number }).port;
  await new Promise<void>((r) => srv.close(() => r()));
  return port;
}

const until = async (cond: () => boolean, what: string) => {
  for (let i = 0; i < 500 && !cond(); i++) await new Promise((r) => setTimeout(r, 10));
  assert.ok(cond(), `timed out waiting for ${what}`);
};

async function relaySignalled(peerId: string) {
  const fake = fakeChannel();
  const Base = await loadPeerjsForNode();
  const options = { ...peerjsOptions({ relayUrl: `http://127.0.0.1:${await deadPort()}`, info: { peerjs: { path: '/', key: 'peerchat' }, iceServers: [] }, peerToken: 'tok' }), relaySignal: fake.channel };
  const peer = new (relaySignalledPeer(Base))(peerId, options);
  peers.push(peer);
  const errors: string[] = [];
  peer.on('error', (e) => errors.push(e.type));
  return { peer, fake, errors };
}

describe('PeerJS over the relay socket (W11, client side)', () => {
  it('W11 the Peer opens the stream for its id, not a /peerjs socket, and is open on the OPEN it carries', async () => {
    const { peer, fake, errors } = await relaySignalled('alice1');
    assert.deepEqual(fake.opened, ['alice1']);
    const opened = new Promise<string>((r) => peer.once('open', r));
    fake.say({ type: 'OPEN' });
    assert.equal(await opened, 'alice1');
    await new Promise((r) => setTimeout(r, 200));
    assert.deepEqual(errors, [], 'no network error: nothing dialled the dead port');
    assert.equal(relaySignalledPeer(await loadPeerjsForNode()), relaySignalledPeer(await loadPeerjsForNode()), 'one subclass per Peer class');
  });

  it("W11 a connect's OFFER and candidates go out through signal.send with PeerJS's own shape", async () => {
    const { peer, fake } = await relaySignalled('alice2');
    fake.say({ type: 'OPEN' });
    const conn = peer.connect('bob2', { reliable: true });
    await until(() => fake.said().some((m) => m.type === 'OFFER'), 'the OFFER');
    const offer = fake.said().find((m) => m.type === 'OFFER');
    assert.equal(offer.dst, 'bob2');
    assert.equal(offer.payload.connectionId, conn.connectionId);
    assert.equal(offer.payload.sdp.type, 'offer');
    assert.ok(!fake.said().some((m) => m.type === 'HEARTBEAT'), 'no heartbeats: the relay socket has its own');
    conn.close();
  });

  it('W11 a burst is sent in batches of at most 32, at most 4 per flush, flushes 50 ms apart; the queue is bounded', async () => {
    const { peer, fake } = await relaySignalled('alice3');
    const socket = peer.socket as unknown as { send(m: object): void };
    // Said before the stream is open: held, not lost.
    for (let i = 0; i < 10; i++) socket.send({ type: 'CANDIDATE', dst: 'bob3', payload: { n: i } });
    await new Promise((r) => setTimeout(r, 100));
    assert.equal(fake.sends.length, 0, 'nothing sent before OPEN');
    fake.say({ type: 'OPEN' });
    for (let i = 10; i < 300; i++) socket.send({ type: 'CANDIDATE', dst: 'bob3', payload: { n: i } });
    await until(() => fake.said().length === 300, 'all 300 sent');
    assert.deepEqual(
      fake.said().map((m) => m.payload.n),
      Array.from({ length: 300 }, (_, i) => i),
      'in order',
    );
    assert.ok(fake.sends.every((s) => s.texts.length <= SIGNAL_MAX_BATCH));
    // Group the calls into flushes (same tick) and check their spacing.
    const flushes: number[][] = [];
    for (const s of fake.sends) {
      const last = flushes.at(-1);
      if (last && s.at - last[0]! < 5) last.push(s.at);
      else flushes.push([s.at]);
    }
    assert.ok(flushes.every((f) => f.length <= SIGNAL_BATCHES_PER_FLUSH), JSON.stringify(flushes.map((f) => f.length)));
    for (let i = 1; i < flushes.length; i++) assert.ok(flushes[i]![0]! - flushes[i - 1]![0]! >= SIGNAL_FLUSH_MS - 2, 'flushes at least 50 ms apart');
    // Past the bound, messages are dropped, the rest still go.
    fake.sends.length = 0;
    fake.end();
    const { peer: p2, fake: f2 } = await relaySignalled('alice4');
    const s2 = p2.socket as unknown as { send(m: object): void };
    for (let i = 0; i < SIGNAL_MAX_QUEUED + 100; i++) s2.send({ type: 'CANDIDATE', dst: 'bob4', payload: { n: i } });
    f2.say({ type: 'OPEN' });
    await until(() => f2.said().length === SIGNAL_MAX_QUEUED, 'the bounded queue sent');
    await new Promise((r) => setTimeout(r, 200));
    assert.equal(f2.said().length, SIGNAL_MAX_QUEUED);
    assert.equal(f2.said().at(-1).payload.n, SIGNAL_MAX_QUEUED - 1);
  });

  it("W11 the stream's end is PeerJS's 'disconnected'; reconnect opens a new stream for the same id; destroy closes it", async () => {
    const { peer, fake } = await relaySignalled('alice5');
    fake.say({ type: 'OPEN' });
    await until(() => peer.open, 'open');
    const lost = new Promise<void>((r) => peer.once('disconnected', () => r()));
    fake.end();
    await lost;
    assert.equal(peer.disconnected, true);
    peer.reconnect();
    assert.deepEqual(fake.opened, ['alice5', 'alice5']);
    fake.say({ type: 'OPEN' });
    await until(() => peer.open, 'open again');
    const closesBefore = fake.closes;
    peer.destroy();
    assert.equal(fake.closes, closesBefore + 1);
  });
});
