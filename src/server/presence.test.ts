// SPEC.md P1-P7 and R7: presence over the events stream, dead-socket detection, and the PeerAuth contract
// the signalling endpoint relies on.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { WebSocket } from 'ws';
import type { PresenceUser, RelayEvent } from '../shared/protocol/relay';
import type { Relay } from './createRelay';
import { collectEvents, eventually, identity, loggedIn, login, rawClient, refusal, startTestRelay } from './testKit';

let relay: Relay;
const closers: (() => Promise<void>)[] = [];
async function user(name: string, kind: 'browser' | 'virtual' = 'browser') {
  const u = await loggedIn(relay, { name, kind });
  closers.push(u.close);
  return u;
}

const joins = (evs: RelayEvent[]) => evs.flatMap((e) => (e.t === 'presence' && e.op === 'join' ? [e.user] : []));
const leaves = (evs: RelayEvent[]) => evs.flatMap((e) => (e.t === 'presence' && e.op === 'leave' ? [e.sessionId] : []));

before(async () => {
  relay = await startTestRelay({ timing: { heartbeatMs: 100 } });
});
after(async () => {
  await Promise.all(closers.map((c) => c()));
  await relay.close();
});

describe('presence', () => {
  it('P6 the stream starts with a snapshot, then joins, updates and leaves', async () => {
    const a = await user('alice');
    const events = collectEvents(a.client);
    await events.until(() => events.events.length > 0);
    const first = events.events[0]!;
    assert.equal(first.t === 'presence' && first.op, 'snapshot');
    const snapshot = (first as { users: PresenceUser[] }).users;
    assert.ok(snapshot.some((u) => u.sessionId === a.me.self.sessionId));

    const b = await user('bob', 'virtual');
    await events.until(() => joins(events.events).some((u) => u.sessionId === b.me.self.sessionId));
    const joined = joins(events.events).find((u) => u.sessionId === b.me.self.sessionId)!;
    assert.deepEqual(joined, b.me.self);
    assert.equal(joined.kind, 'virtual');
    assert.equal(joined.name, 'bob');

    await b.client.presence.update.mutate({ voiceRoom: 'lounge' });
    await events.until(() =>
      events.events.some((e) => e.t === 'presence' && e.op === 'update' && e.user.sessionId === b.me.self.sessionId && e.user.voiceRoom === 'lounge'),
    );

    await b.close();
    await events.until(() => leaves(events.events).includes(b.me.self.sessionId));
    events.stop();
  });

  it('P2 two logins of one key are two presence entries with distinct peer ids', async () => {
    const id = await identity();
    const c1 = rawClient(relay);
    const c2 = rawClient(relay);
    closers.push(c1.close, c2.close);
    const l1 = await login(c1.client, id);
    const l2 = await login(c2.client, id);
    assert.equal(l1.self.userId, l2.self.userId);
    assert.notEqual(l1.self.sessionId, l2.self.sessionId);
    assert.notEqual(l1.self.peerId, l2.self.peerId);
    assert.equal(l1.self.peerId.slice(0, 16), l2.self.peerId.slice(0, 16));
    const events = collectEvents(c1.client);
    await events.until(() => events.events.length > 0);
    const snap = events.events[0] as { users: PresenceUser[] };
    const mine = snap.users.filter((u) => u.userId === id.publicKey).map((u) => u.sessionId);
    assert.deepEqual(new Set(mine), new Set([l1.self.sessionId, l2.self.sessionId]));
    events.stop();
  });

  it('P4 a socket that stops answering pings leaves presence within the heartbeat window', async () => {
    const a = await user('watcher');
    const events = collectEvents(a.client);
    await events.until(() => events.events.length > 0);
    // A peer whose network died: it never answers a ping and never closes.
    class Silent extends WebSocket {
      constructor(url: string) {
        super(url, { autoPong: false });
      }
    }
    const silent = rawClient(relay, { WebSocket: Silent });
    closers.push(silent.close);
    const me = await login(silent.client, await identity(), { name: 'ghost' });
    await events.until(() => joins(events.events).some((u) => u.sessionId === me.self.sessionId));
    await events.until(() => leaves(events.events).includes(me.self.sessionId));
    assert.equal(relay.peerAuth.isOnline(me.self.peerId), false);
    events.stop();
  });

  it('P4 a socket destroyed without a close frame leaves presence', async () => {
    const a = await user('watcher2');
    const events = collectEvents(a.client);
    await events.until(() => events.events.length > 0);
    let raw: WebSocket | null = null;
    class Grab extends WebSocket {
      constructor(url: string) {
        super(url);
        raw = this;
      }
    }
    const victim = rawClient(relay, { WebSocket: Grab });
    closers.push(victim.close);
    const me = await login(victim.client, await identity(), { name: 'cut' });
    await events.until(() => joins(events.events).some((u) => u.sessionId === me.self.sessionId));
    (raw as unknown as { _socket: { destroy(): void } })._socket.destroy();
    await events.until(() => leaves(events.events).includes(me.self.sessionId));
    events.stop();
  });

  it("P3 P5 peerAuth grants a peer id only with that session's own token, and ends with the session", async () => {
    const a = await user('a');
    const b = await user('b');
    const auth = relay.peerAuth;
    assert.equal(auth.authorize(a.me.self.peerId, b.me.peerToken), null, "b's token cannot claim a's id");
    assert.equal(auth.authorize(b.me.self.peerId, a.me.peerToken), null, "a's token cannot claim b's id");
    assert.equal(auth.authorize(a.me.self.peerId, `${a.me.peerToken}x`), null);
    assert.equal(auth.authorize(a.me.self.peerId, ''), null);
    assert.equal(auth.authorize('0000000000000000-aaaaaaaaaa', a.me.peerToken), null);
    const grant = auth.authorize(a.me.self.peerId, a.me.peerToken);
    assert.equal(grant?.sessionId, a.me.self.sessionId);
    assert.equal(auth.isOnline(a.me.self.peerId), true);
    let ended = 0;
    grant!.onSessionEnd(() => ended++);
    const disposed = grant!.onSessionEnd(() => ended += 100);
    disposed();
    await a.close();
    await eventually(() => ended === 1, 'session end callback');
    assert.equal(auth.isOnline(a.me.self.peerId), false);
    assert.equal(auth.authorize(a.me.self.peerId, a.me.peerToken), null);
  });

  it('R7 events may be opened before login and start at login; a third subscription is refused', async () => {
    const c = rawClient(relay);
    closers.push(c.close);
    const early = collectEvents(c.client);
    const id = await identity();
    const me = await login(c.client, id, { name: 'early' });
    await early.until(() => early.events.length > 0);
    const snap = early.events[0] as { op: string; users: PresenceUser[] };
    assert.equal(snap.op, 'snapshot');
    assert.ok(snap.users.some((u) => u.sessionId === me.self.sessionId));
    const second = collectEvents(c.client, { presence: false });
    const third = collectEvents(c.client, { presence: false });
    await assert.rejects(third.until(() => false), (err: { data?: { reason?: string } }) => err.data?.reason === 'TOO_MANY_SUBSCRIPTIONS');
    second.stop();
    early.stop();
  });

  it('R7 unknown channels in the filter are refused UNKNOWN_CHANNEL; presence.update validates the room', async () => {
    const u = await user('v');
    const sub = collectEvents(u.client, { channels: ['nope'] });
    await assert.rejects(sub.until(() => false), (err: { data?: { reason?: string } }) => err.data?.reason === 'UNKNOWN_CHANNEL');
    assert.equal(await refusal(u.client.presence.update.mutate({ voiceRoom: 'Bad Room!' })), 'BAD_INPUT');
  });
});
