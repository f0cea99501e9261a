// SPEC.md P1-P8 and R7: presence over the events stream, dead-socket detection, and the PeerAuth contract
// the signalling endpoint relies on.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { WebSocket } from 'ws';
import type { PresenceUser, RelayEvent } from '../shared/protocol/relay';
import { createInProcessBus, type RelayBus } from './bus';
import type { Relay } from './createRelay';
import { EventHub, EventStream, type StreamOwner } from './EventHub';
import { PreEncoded } from './frameEncoder';
import { collectEvents, eventually, identity, loggedIn, login, rawClient, refusal, startTestRelay } from './testKit';

let relay: Relay;
const closers: (() => Promise<void>)[] = [];
async function user(name: string, kind: 'browser' | 'virtual' = 'browser') {
  const u = await loggedIn(relay, { name, kind });
  closers.push(u.close);
  return u;
}

// Joined or changed users, and ended sessions, over every diff received.
const joins = (evs: RelayEvent[]) => evs.flatMap((e) => (e.t === 'presence' && e.op === 'diff' ? e.users : []));
const leaves = (evs: RelayEvent[]) => evs.flatMap((e) => (e.t === 'presence' && e.op === 'diff' ? e.left : []));

before(async () => {
  relay = await startTestRelay({ timing: { heartbeatMs: 100 } });
});
after(async () => {
  await Promise.all(closers.map((c) => c()));
  await relay.close();
});

describe('presence', () => {
  it('P6 the stream starts with a snapshot, then diffs with joins, updates and leaves', async () => {
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
      joins(events.events).some((u) => u.sessionId === b.me.self.sessionId && u.voiceRoom === 'lounge'),
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

// ---- P8: coalesced presence, serialized once (login storms) ----

/** A PresenceUser that no socket owns, for publishing straight onto the bus. */
function fakeUser(i: number): PresenceUser {
  return {
    sessionId: `fake-session-${i}`,
    userId: 'A'.repeat(43),
    name: `fake ${i}`,
    fingerprint: 'fake',
    kind: 'virtual',
    peerId: `${'0'.repeat(16)}-${String(i).padStart(10, 'a')}`,
    voiceRoom: null,
    since: i,
  };
}

/** A StreamOwner stub for driving the hub without sockets. */
function owner() {
  return { bufferedAmount: 0, session: {}, pendingStreams: null, subscriptions: 1, closeFor() {} } satisfies StreamOwner;
}

async function drain(stream: EventStream): Promise<unknown[]> {
  const out: unknown[] = [];
  while (stream.queued > 0) out.push((await stream.next()).value);
  return out;
}

describe('P8 coalesced presence (EventHub)', () => {
  it('P8 N changes in one turn reach each presence stream as one diff event, the same object for all', async () => {
    const bus = createInProcessBus();
    const hub = new EventHub(bus, { maxQueued: 100, maxBufferedBytes: 1 << 20 });
    const streams = [0, 1, 2].map(() => new EventStream(hub, owner(), null, true));
    const quiet = new EventStream(hub, owner(), null, false);
    for (const s of [...streams, quiet]) s.start();
    hub.flush();
    for (const s of streams) assert.equal((await drain(s)).length, 1, 'the snapshot');

    const n = 50;
    for (let i = 0; i < n; i++) bus.publishPresence({ op: 'join', user: fakeUser(i) });
    const changed = { ...fakeUser(3), voiceRoom: 'lounge' };
    bus.publishPresence({ op: 'update', user: changed });
    bus.publishPresence({ op: 'leave', sessionId: fakeUser(4).sessionId }); // joined and left in one turn: cancels
    const newcomer = new EventStream(hub, owner(), null, true);
    newcomer.start();
    hub.flush();

    const got = await Promise.all(streams.map(drain));
    for (const evs of got) assert.equal(evs.length, 1, 'one presence event per stream for the whole turn');
    const diff = got[0]![0] as Extract<RelayEvent, { op: 'diff' }>;
    assert.ok(got.every((evs) => evs[0] === diff), 'one event object, serialized once, for every recipient');
    assert.ok(diff instanceof PreEncoded);
    assert.equal(PreEncoded.jsonOf(diff), JSON.stringify(diff), 'its JSON is exactly the event');
    assert.equal(diff.op, 'diff');
    assert.equal(diff.users.length, n - 1);
    assert.deepEqual(diff.left, []);
    assert.equal(diff.users.find((u) => u.sessionId === changed.sessionId)?.voiceRoom, 'lounge');
    assert.equal(await drain(quiet).then((e) => e.length), 0, 'presence: false gets none');

    const fresh = await drain(newcomer);
    assert.equal(fresh.length, 1, "a newcomer gets one snapshot, not also the turn's diff");
    const snap = fresh[0] as Extract<RelayEvent, { op: 'snapshot' }>;
    assert.equal(snap.op, 'snapshot');
    assert.equal(snap.users.length, n - 1);
    assert.equal(PreEncoded.jsonOf(snap as unknown as PreEncoded), JSON.stringify(snap));

    bus.publishPresence({ op: 'leave', sessionId: fakeUser(0).sessionId });
    hub.flush();
    for (const s of [...streams, newcomer]) {
      const evs = (await drain(s)) as Extract<RelayEvent, { op: 'diff' }>[];
      assert.deepEqual(evs.map((e) => [e.op, e.users.length, e.left]), [['diff', 0, [fakeUser(0).sessionId]]]);
    }
    hub.close();
  });
});

describe('P8 coalesced presence (over the wire)', () => {
  let r: Relay;
  let bus: RelayBus;
  const local: (() => Promise<void>)[] = [];
  before(async () => {
    bus = createInProcessBus();
    r = await startTestRelay({ bus });
  });
  after(async () => {
    await Promise.all(local.map((c) => c()));
    await r.close();
  });

  /** A logged-in client whose socket counts the presence frames it receives. */
  async function counted(name: string) {
    const frames: string[] = [];
    class Counting extends WebSocket {
      constructor(url: string) {
        super(url);
        this.on('message', (data: Buffer) => {
          const text = data.toString();
          if (text.includes('"t":"presence"')) frames.push(text);
        });
      }
    }
    const c = rawClient(r, { WebSocket: Counting });
    local.push(c.close);
    const me = await login(c.client, await identity(), { name });
    const events = collectEvents(c.client);
    await events.until(() => events.events.length > 0); // the snapshot: from now on it gets diffs
    return { ...c, me, events, frames };
  }

  /** Publishes a marker change in a later turn and waits for it: every earlier frame has arrived by then. */
  async function settle(watchers: { events: ReturnType<typeof collectEvents> }[], i: number): Promise<void> {
    await new Promise((res) => setImmediate(res));
    bus.publishPresence({ op: 'join', user: fakeUser(i) });
    await Promise.all(watchers.map((w) => w.events.until(() => joins(w.events.events).some((u) => u.sessionId === fakeUser(i).sessionId))));
  }

  it('P8 200 joins in one turn are one presence frame per subscriber; a newcomer gets one snapshot frame', async () => {
    const a = await counted('a');
    const b = await counted('b');
    await settle([a, b], 10_000);
    const before = [a.frames.length, b.frames.length];

    const n = 200;
    for (let i = 0; i < n; i++) bus.publishPresence({ op: 'join', user: fakeUser(i) });
    await settle([a, b], 10_001);
    assert.deepEqual([a.frames.length - before[0]!, b.frames.length - before[1]!], [2, 2], 'the 200 joins, then the marker');
    for (const w of [a, b]) {
      const diff = JSON.parse(w.frames.at(-2)!).result.data.json;
      assert.equal(diff.users.length, n);
    }

    const c = await counted('c');
    await settle([c], 10_002);
    assert.equal(c.frames.length, 2, 'the snapshot, then the marker');
    const snap = c.events.events[0] as Extract<RelayEvent, { op: 'snapshot' }>;
    assert.equal(snap.op, 'snapshot');
    const ids = new Set(snap.users.map((u) => u.sessionId));
    for (const u of [a.me.self, b.me.self, c.me.self, fakeUser(0), fakeUser(n - 1)]) assert.ok(ids.has(u.sessionId));
  });
});
