// SPEC.md W5: the signalling waiting room is fair. One address runs the flood that filled the old shared
// pool of 1,000 in ~1.3 s (32 logins that never open their signalling socket, 3 senders at their flood
// budget, also aimed at the honest destination) while an honest pair from another address connects over
// real PeerJS + wrtc: alice connects to bob right after bob logged in, before his socket is open, so her
// OFFER must wait in the room; it is delivered at his OPEN and the link carries data both ways.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { DataConnection, Peer } from 'peerjs';
import { WebSocket } from 'ws';
import { eventually, loggedIn } from '../src/server/testKit';
import { createWrtcPeer } from '../src/virtual/wrtcPeer';
import { startRelayWithSignalling } from './fixtures/relayWithSignalling';
import type { Relay } from '../src/server/createRelay';

/** The flood's address: every loopback address reaches the relay; the honest pair stays on 127.0.0.1. */
const FLOOD_ADDR = '127.0.0.2';

let relay: Relay;
const closers: (() => unknown)[] = [];
before(async () => {
  relay = await startRelayWithSignalling();
});
after(async () => {
  for (const c of closers.reverse()) await c();
  await relay.close();
});

async function user(name: string) {
  const u = await loggedIn(relay, { name });
  closers.push(u.close);
  return u;
}

function once<T = unknown>(emitter: Peer | DataConnection, ev: string): Promise<T> {
  return new Promise((resolve) => (emitter as unknown as { once(ev: string, fn: (v: T) => void): void }).once(ev, resolve));
}

/** A logged-in user's raw PeerJS socket from FLOOD_ADDR; resolves once the relay said OPEN. */
async function floodSocket(name: string): Promise<WebSocket> {
  const u = await user(name);
  const url = `ws://127.0.0.1:${relay.port}/peerjs?key=peerchat&id=${u.me.self.peerId}&token=${u.me.peerToken}&version=1.5.5`;
  const ws = new WebSocket(url, { localAddress: FLOOD_ADDR });
  ws.on('error', () => {});
  closers.push(() => ws.terminate());
  await new Promise<void>((resolve, reject) => {
    ws.once('message', (d) => (JSON.parse(d.toString()).type === 'OPEN' ? resolve() : reject(new Error(d.toString()))));
    ws.once('close', () => reject(new Error('flood socket closed')));
  });
  return ws;
}

const junkOffer = (dst: string, i: number) => ({
  type: 'OFFER',
  dst,
  payload: { sdp: { type: 'offer', sdp: 'v=0\r\n' }, type: 'data', connectionId: `dc_flood${i}`, label: `dc_flood${i}`, reliable: true, serialization: 'raw' },
});
// For a destination that will open its socket: PeerJS ignores a candidate for a connection it does not know.
const junkCandidate = (dst: string, i: number) => ({
  type: 'CANDIDATE',
  dst,
  payload: { candidate: { candidate: 'candidate:1 1 udp 1 127.0.0.1 9 typ host', sdpMid: '0', sdpMLineIndex: 0 }, type: 'data', connectionId: `dc_flood${i}` },
});

describe('signalling waiting room under a flood', () => {
  it('W5 a flood from one address cannot refuse an honest OFFER: the honest pair connects', async () => {
    const alice = await user('alice');
    const alicePeer = await createWrtcPeer({ peerId: alice.me.self.peerId, peerToken: alice.me.peerToken, relayUrl: relay.url, info: alice.me.info });
    closers.push(() => alicePeer.destroy());
    const aliceErrors: { type: string }[] = [];
    alicePeer.on('error', (e) => aliceErrors.push(e as { type: string }));
    await once(alicePeer, 'open');

    // Bob has just logged in: online, his signalling socket not open yet. The flood aims at him as well.
    const bob = await user('bob');
    const bobId = bob.me.self.peerId;
    const idle = await Promise.all(Array.from({ length: 32 }, (_, i) => user(`idle${i}`)));
    const senders = await Promise.all([0, 1, 2].map((i) => floodSocket(`flood${i}`)));
    let n = 0;
    const blast = (perSender: number) => {
      for (const ws of senders) {
        for (let k = 0; k < perSender && ws.readyState === WebSocket.OPEN; k++) {
          n++;
          // Every other message at bob, the rest at the 32 logins that never open their socket.
          ws.send(JSON.stringify(n % 2 ? junkCandidate(bobId, n) : junkOffer(idle[(n >> 1) % idle.length]!.me.self.peerId, n)));
        }
      }
    };
    // The old pool was full after this burst (3 x 350 > 1,000); then 40/s per sender, inside W7's budget.
    blast(350);
    const flood = setInterval(() => blast(4), 100);
    closers.push(() => clearInterval(flood));
    await eventually(() => {
      const refused = relay.signalling.stats().waitingRoomRefused;
      return refused.address > 0 && refused.source_destination > 0;
    }, 'the flood reaching its shares');
    const held = relay.signalling.stats().pending;
    assert.ok(held <= 128, `one address holds at most its share (128), held ${held}`);
    const floodAtBob = relay.signalling.pendingFor(bobId);
    assert.equal(floodAtBob, 16, 'one address holds at most half of a destination');

    const ab = alicePeer.connect(bobId, { serialization: 'raw', reliable: true })!;
    await eventually(() => relay.signalling.pendingFor(bobId) > floodAtBob, "alice's OFFER held for bob");
    const bobPeer = await createWrtcPeer({ peerId: bobId, peerToken: bob.me.peerToken, relayUrl: relay.url, info: bob.me.info });
    closers.push(() => bobPeer.destroy());
    bobPeer.on('error', () => {}); // the flood's junk candidates
    const incoming = await new Promise<DataConnection>((resolve) => bobPeer.on('connection', (c) => c.peer === alice.me.self.peerId && resolve(c)));
    await Promise.all([once(ab, 'open'), once(incoming, 'open')]);
    const atBob = once<ArrayBuffer>(incoming, 'data');
    ab.send(new Uint8Array([1, 2, 3]));
    assert.deepEqual(new Uint8Array(await atBob), new Uint8Array([1, 2, 3]));
    const atAlice = once<ArrayBuffer>(ab, 'data');
    incoming.send(new Uint8Array([4, 5]));
    assert.deepEqual(new Uint8Array(await atAlice), new Uint8Array([4, 5]));
    assert.deepEqual(aliceErrors.map((e) => e.type), [], 'no peer-unavailable (EXPIRE) for alice');
    assert.ok(senders.every((ws) => ws.readyState === WebSocket.OPEN), 'the flood stayed inside W7, so only W5 stood in its way');
    clearInterval(flood);
  });
});
