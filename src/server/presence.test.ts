// SPEC.md P1-P12 and R7: lazy presence over the events stream (counts, a members page, watched keys, a
// peer sample), dead-socket detection, and the PeerAuth contract the signalling endpoint relies on.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { WebSocket } from 'ws';
import { comparePresence, LIMITS, type PresenceUser, type RelayEvent } from '../shared/protocol/relay';
import { createInProcessBus, type RelayBus } from './bus';
import type { Relay } from './createRelay';
import { EventHub, EventStream, type StreamOwner } from './EventHub';
import { PreEncoded } from './frameEncoder';
import { MAX_SESSIONS_PER_WATCHED_KEY } from './PresenceFanout';
import { collectEvents, eventually, identity, loggedIn, login, rawClient, refusal, startTestRelay } from './testKit';

let relay: Relay;
const closers: (() => Promise<void>)[] = [];
async function user(name: string, kind: 'browser' | 'virtual' = 'browser') {
  const u = await loggedIn(relay, { name, kind });
  closers.push(u.close);
  return u;
}

type Presence<Op> = Extract<RelayEvent, { t: 'presence'; op: Op }>;
const isPresence = <Op extends string>(op: Op) => (e: RelayEvent | unknown): e is Presence<Op> =>
  (e as RelayEvent).t === 'presence' && (e as { op?: string }).op === op;
// Users that entered or changed on the page, and sessions that left it, over every page event received.
const joins = (evs: RelayEvent[]) => evs.flatMap((e) => (isPresence('page')(e) ? e.users : []));
const leaves = (evs: RelayEvent[]) => evs.flatMap((e) => (isPresence('page')(e) ? e.left : []));
/** The latest counts a stream was told (snapshot or counts event). */
const countsOf = (evs: RelayEvent[]) => {
  for (let i = evs.length - 1; i >= 0; i--) {
    const e = evs[i]!;
    if (isPresence('counts')(e) || isPresence('snapshot')(e)) return e.online;
  }
  return null;
};

before(async () => {
  // Short enough for P4's silent socket to leave in a few seconds, long enough that a loaded machine's
  // honest sockets answer their pings in time (at 100 ms they were cut under load).
  relay = await startTestRelay({ timing: { heartbeatMs: 1000 } });
});
after(async () => {
  await Promise.all(closers.map((c) => c()));
  await relay.close();
});

describe('presence', () => {
  it('P6 P9 the stream starts with a snapshot (counts, page, own session watched), then page diffs with joins, updates and leaves', async () => {
    const a = await user('alice');
    const events = collectEvents(a.client);
    await events.until(() => events.events.length > 0);
    const first = events.events[0]!;
    assert.equal(first.t === 'presence' && first.op, 'snapshot');
    const snapshot = first as Presence<'snapshot'>;
    assert.ok(snapshot.users.some((u) => u.sessionId === a.me.self.sessionId), 'a small community is all on page 0');
    assert.deepEqual(snapshot.watched, [a.me.self], 'its own key is watched');
    assert.equal(snapshot.page, 0);
    assert.equal(snapshot.online.browser + snapshot.online.virtual, snapshot.users.length, 'counts of everyone online');
    assert.deepEqual([...snapshot.users].sort(comparePresence), snapshot.users, 'in member order');

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

    await events.until(() => countsOf(events.events)?.virtual === snapshot.online.virtual + 1);

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
    const takenBack = () => (ended += 100);
    grant!.onSessionEnd(takenBack);
    grant!.offSessionEnd(takenBack);
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

// ---- P8-P12: lazy presence, coalesced and serialized once (login storms) ----

/** A PresenceUser that no socket owns, for publishing straight onto the bus; each has its own key. */
function fakeUser(i: number, kind: 'browser' | 'virtual' = 'virtual'): PresenceUser {
  return {
    sessionId: `fake-session-${i}`,
    userId: `k${String(i).padStart(42, '0')}`,
    name: `fake ${i}`,
    fingerprint: 'fake',
    kind,
    peerId: `${'0'.repeat(16)}-${String(i).padStart(10, 'a')}`,
    voiceRoom: null,
    since: i,
  };
}

/** A StreamOwner stub for driving the hub without sockets; `self` is its logged-in session. */
function owner(self?: PresenceUser) {
  return { bufferedAmount: 0, session: self ? { user: self } : {}, pendingStreams: null, subscriptions: 1, closeFor() {} } satisfies StreamOwner;
}

async function drain(stream: EventStream): Promise<RelayEvent[]> {
  const out: RelayEvent[] = [];
  while (stream.queued > 0) out.push((await stream.next()).value!);
  return out;
}

function hubWith(presence: NonNullable<ConstructorParameters<typeof EventHub>[1]['presence']> = {}) {
  const bus = createInProcessBus();
  const hub = new EventHub(bus, { maxQueued: 10_000, maxBufferedBytes: 1 << 30, presence: { countsIntervalMs: 0, countsQuietMs: 0, ...presence } });
  return { bus, hub };
}

function presenceStream(hub: EventHub, self?: PresenceUser): EventStream {
  const s = new EventStream(hub, owner(self), null, true);
  s.start();
  return s;
}

describe('P8-P12 lazy presence (EventHub)', () => {
  it('P8 N changes in one turn reach each presence stream as one page event, the same object for all', async () => {
    const { bus, hub } = hubWith();
    const streams = [0, 1, 2].map(() => presenceStream(hub));
    const quiet = new EventStream(hub, owner(), null, false);
    quiet.start();
    hub.flush();
    for (const s of streams) assert.deepEqual((await drain(s)).map((e) => (e as { op: string }).op), ['snapshot']);

    const n = 30;
    for (let i = 0; i < n; i++) bus.publishPresence({ op: 'join', user: fakeUser(i) });
    const changed = { ...fakeUser(3), voiceRoom: 'lounge' };
    bus.publishPresence({ op: 'update', user: changed });
    bus.publishPresence({ op: 'leave', sessionId: fakeUser(4).sessionId }); // joined and left in one turn: cancels
    const newcomer = presenceStream(hub);
    hub.flush();

    const got = await Promise.all(streams.map(drain));
    // The sample is each stream's own (P11); page and counts are shared.
    const shared = got.map((evs) => evs.filter((e) => !isPresence('peers')(e)));
    for (const evs of shared) assert.deepEqual(evs.map((e) => (e as { op: string }).op), ['page', 'counts'], 'one page event and one counts event for the whole turn');
    for (const evs of got) assert.ok(evs.filter(isPresence('peers')).length <= 1, 'at most one sample');
    const page = shared[0]![0] as Presence<'page'>;
    assert.ok(shared.every((evs) => evs[0] === page && evs[1] === shared[0]![1]), 'one event object, serialized once, for every recipient');
    assert.ok(page instanceof PreEncoded);
    assert.equal(PreEncoded.jsonOf(page), JSON.stringify(page), 'its JSON is exactly the event');
    assert.equal(page.users.length, n - 1);
    assert.deepEqual(page.left, []);
    assert.equal(page.users.find((u) => u.sessionId === changed.sessionId)?.voiceRoom, 'lounge');
    assert.deepEqual((shared[0]![1] as Presence<'counts'>).online, { browser: 0, virtual: n - 1 });
    assert.equal((await drain(quiet)).length, 0, 'presence: false gets none');

    const fresh = await drain(newcomer);
    assert.equal(fresh.length, 1, "a newcomer gets one snapshot, not also the turn's page diff or counts");
    const snap = fresh[0] as Presence<'snapshot'>;
    assert.equal(snap.op, 'snapshot');
    assert.equal(snap.users.length, n - 1);
    assert.equal(PreEncoded.jsonOf(snap as unknown as PreEncoded), JSON.stringify(snap));

    bus.publishPresence({ op: 'leave', sessionId: fakeUser(0).sessionId });
    hub.flush();
    for (const s of [...streams, newcomer]) {
      const evs = (await drain(s)).filter(isPresence('page'));
      assert.deepEqual(evs.map((e) => [e.users.length, e.left]), [[0, [fakeUser(0).sessionId]]]);
    }
    hub.close();
  });

  it('P9 a stream is shown one page in member order and the counts of everyone; a join past the page sends no page event', async () => {
    const { bus, hub } = hubWith();
    const W = LIMITS.presencePageSize;
    const n = W * 2 + 20;
    // Virtual clients sort after people whatever their age.
    for (let i = 0; i < n; i++) bus.publishPresence({ op: 'join', user: fakeUser(i, i < 10 ? 'virtual' : 'browser') });
    const s = presenceStream(hub);
    hub.flush();
    const snap = (await drain(s))[0] as Presence<'snapshot'>;
    assert.deepEqual(snap.online, { browser: n - 10, virtual: 10 });
    assert.deepEqual(snap.users.map((u) => u.sessionId), Array.from({ length: W }, (_, i) => fakeUser(i + 10).sessionId), 'people first, longest online first');

    bus.publishPresence({ op: 'join', user: fakeUser(1000, 'browser') });
    hub.flush();
    assert.deepEqual((await drain(s)).map((e) => (e as { op: string }).op), ['counts'], 'a join below the page changes only the counts');

    // A leave on the page pulls the next member up into it.
    bus.publishPresence({ op: 'leave', sessionId: fakeUser(12).sessionId });
    hub.flush();
    const page = (await drain(s)).find(isPresence('page'))!;
    assert.deepEqual(page.left, [fakeUser(12).sessionId]);
    assert.deepEqual(page.users.map((u) => u.sessionId), [fakeUser(10 + W).sessionId]);

    // Another page on request: a reset with exactly that page.
    hub.setPresenceView(s.owner, { page: 1, watch: [] });
    hub.flush();
    const reset = (await drain(s)).find(isPresence('page'))!;
    assert.equal(reset.reset, true);
    assert.equal(reset.page, 1);
    assert.equal(reset.users.length, W);
    assert.equal(reset.users[0]!.sessionId, fakeUser(10 + W + 1).sessionId);
    hub.close();
  });

  it('P10 a stream is shown the sessions of the keys it watches and of its own key, off the page too', async () => {
    const { bus, hub } = hubWith();
    const W = LIMITS.presencePageSize;
    for (let i = 0; i < W + 10; i++) bus.publishPresence({ op: 'join', user: fakeUser(i, 'browser') });
    const me = fakeUser(5000, 'browser');
    bus.publishPresence({ op: 'join', user: me });
    const s = presenceStream(hub, me);
    hub.flush();
    const snap = (await drain(s))[0] as Presence<'snapshot'>;
    assert.ok(!snap.users.some((u) => u.sessionId === me.sessionId), 'off the page');
    assert.deepEqual(snap.watched, [me], 'but watched: its own key');

    const author = fakeUser(W + 5);
    hub.setPresenceView(s.owner, { page: 0, watch: [author.userId] });
    hub.flush();
    const reset = (await drain(s)).find(isPresence('watched'))!;
    assert.equal(reset.reset, true);
    assert.deepEqual(new Set(reset.users.map((u) => u.sessionId)), new Set([me.sessionId, author.sessionId]));

    // A second session of the watched key, an update, then its end: diffs for this stream only.
    const other = presenceStream(hub);
    const second = { ...author, sessionId: 'fake-second', since: 9000 };
    bus.publishPresence({ op: 'join', user: second });
    hub.flush();
    assert.deepEqual((await drain(s)).filter(isPresence('watched')).map((e) => e.users.map((u) => u.sessionId)), [['fake-second']]);
    assert.equal((await drain(other)).filter(isPresence('watched')).length, 0, 'a stream that does not watch it hears nothing');
    bus.publishPresence({ op: 'leave', sessionId: author.sessionId });
    hub.flush();
    const left = (await drain(s)).filter(isPresence('watched'));
    assert.deepEqual(left.map((e) => e.left), [[author.sessionId]]);
    hub.close();
  });

  it('P10 P12 a watcher is shown at most MAX_SESSIONS_PER_WATCHED_KEY sessions of one key', async () => {
    const { bus, hub } = hubWith();
    const many = fakeUser(1, 'browser');
    for (let i = 0; i < MAX_SESSIONS_PER_WATCHED_KEY + 4; i++) bus.publishPresence({ op: 'join', user: { ...many, sessionId: `many-${i}`, since: 100 + i } });
    const s = presenceStream(hub);
    hub.setPresenceView(s.owner, { page: 0, watch: [many.userId] });
    hub.flush();
    assert.equal(((await drain(s))[0] as Presence<'snapshot'>).watched.length, MAX_SESSIONS_PER_WATCHED_KEY);
    bus.publishPresence({ op: 'join', user: { ...many, sessionId: 'many-more', since: 999 } });
    hub.flush();
    assert.deepEqual((await drain(s)).filter(isPresence('watched')), [], 'a join beyond the bound is not sent');
    hub.close();
  });

  it('P11 each stream gets a bounded random sample of peers, topped up while few are online and when a sampled peer leaves', async () => {
    const S = LIMITS.presenceSampleSize;
    const { bus, hub } = hubWith();
    const me = fakeUser(0, 'browser');
    bus.publishPresence({ op: 'join', user: me });
    const s = presenceStream(hub, me);
    hub.flush();
    assert.deepEqual(((await drain(s))[0] as Presence<'snapshot'>).peers, [], 'alone: nobody to link to');
    const peersOf = async () => (await drain(s)).filter(isPresence('peers')).map((e) => e.peers);

    for (let i = 1; i <= 5; i++) bus.publishPresence({ op: 'join', user: fakeUser(i, 'browser') });
    hub.flush();
    const few = await peersOf();
    assert.equal(few.length, 1);
    assert.deepEqual(new Set(few[0]!.map((p) => p.peerId)), new Set([1, 2, 3, 4, 5].map((i) => fakeUser(i).peerId)), 'joins fill a short sample');
    assert.deepEqual(few[0]![0], { peerId: fakeUser(1).peerId, userId: fakeUser(1).userId, kind: 'browser' });

    for (let i = 6; i <= 200; i++) bus.publishPresence({ op: 'join', user: fakeUser(i, 'browser') });
    hub.flush();
    let sample = (await peersOf()).at(-1)!;
    assert.equal(sample.length, S, 'never more than the sample size');
    assert.ok(!sample.some((p) => p.peerId === me.peerId), 'never itself');

    const gone = sample.find((p) => p.peerId !== fakeUser(1).peerId)!;
    const goneId = `fake-session-${Number(gone.peerId.slice(-10).replace(/^a+/, ''))}`;
    bus.publishPresence({ op: 'leave', sessionId: goneId });
    hub.flush();
    const after = (await peersOf()).at(-1)!;
    assert.equal(after.length, S, 'topped up');
    assert.ok(!after.some((p) => p.peerId === gone.peerId), 'without the peer that left');

    bus.publishPresence({ op: 'join', user: fakeUser(300, 'browser') });
    hub.flush();
    assert.deepEqual(await peersOf(), [], 'a full sample ignores joins');

    hub.setPresenceView(s.owner, { page: 0, watch: [], resample: true });
    hub.flush();
    sample = (await peersOf()).at(-1)!;
    assert.equal(sample.length, S, 'a new sample on request');
    hub.close();
  });

  it('P8 while logins keep coming the counts wait for a pause, at most countsMaxDelayMs; the last counts reach everyone countsQuietMs after the storm', async () => {
    let t = 1_000_000;
    const { bus, hub } = hubWith({ countsIntervalMs: 250, countsQuietMs: 50, countsMaxDelayMs: 1000, now: () => t });
    const first = fakeUser(0, 'browser');
    bus.publishPresence({ op: 'join', user: first });
    const streams = [presenceStream(hub, first)];
    hub.flush();
    await drain(streams[0]!);
    // A storm: a login every 10 ms for 1.5 s, each with its stream, one relay turn each.
    const sentAt: number[][] = [[]];
    const start = t;
    const n = 150;
    for (let i = 1; i <= n; i++) {
      t += 10;
      const u = fakeUser(i, 'browser');
      bus.publishPresence({ op: 'join', user: u });
      streams.push(presenceStream(hub, u));
      sentAt.push([]);
      hub.flush();
      for (const [k, s] of streams.entries()) for (const e of await drain(s)) if (isPresence('counts')(e)) sentAt[k]!.push(t - start);
    }
    const stormEnd = t;
    const seen = sentAt[0]!;
    // At 250 ms apart the first stream would have been sent the counts 6 times during these 1.5 s.
    assert.equal(seen.length, 1, `counts sent at ${seen.join(', ')} ms: once per countsMaxDelayMs while the logins keep coming`);
    assert.ok(seen[0]! <= 1000 + 10, `the first change waited ${seen[0]} ms, more than countsMaxDelayMs`);
    // The storm is over: the next turn inside countsQuietMs sends nothing, the first one after it the final counts.
    t = stormEnd + 40;
    hub.flush();
    for (const s of streams) assert.deepEqual((await drain(s)).filter(isPresence('counts')), [], 'no counts before the pause');
    t = stormEnd + 50;
    hub.flush();
    for (const [k, s] of streams.entries()) {
      const counts = (await drain(s)).filter(isPresence('counts'));
      // The last stream's snapshot already held the final counts: it is not sent them again.
      if (k === n) assert.deepEqual(counts, []);
      else assert.deepEqual(counts.map((e) => e.online), [{ browser: n + 1, virtual: 0 }], `stream ${k} has the final counts`);
    }
    hub.close();
  });

  it('P8 P12 a login storm of 1,000 costs each stream a page, a sample and the counts, not the roster', async () => {
    const { bus, hub } = hubWith({ countsIntervalMs: 250 });
    const n = 1000;
    const W = LIMITS.presencePageSize;
    const S = LIMITS.presenceSampleSize;
    const streams: EventStream[] = [];
    let chars = 0;
    let events = 0;
    const count = async () => {
      for (const s of streams)
        for (const e of await drain(s)) {
          events++;
          chars += e instanceof PreEncoded ? PreEncoded.jsonOf(e).length : JSON.stringify(e).length;
        }
    };
    // 100 logins per relay turn, each with its stream, as a relay restart brings them.
    for (let turn = 0; turn < n / 100; turn++) {
      for (let i = turn * 100; i < (turn + 1) * 100; i++) {
        const u = fakeUser(i, 'browser');
        bus.publishPresence({ op: 'join', user: u });
        streams.push(presenceStream(hub, u));
      }
      hub.flush();
      await count();
    }
    const entry = JSON.stringify(fakeUser(999, 'browser')).length;
    const peer = JSON.stringify({ peerId: fakeUser(999).peerId, userId: fakeUser(999).userId, kind: 'browser' }).length;
    // Each stream: one snapshot (page, own session, sample), and at most the page filling up once more
    // (the first page's streams see it fill) plus its sample growing while few were online.
    const perStream = 2 * (W * entry) + 2 * (S * peer) + 2 * entry + 1024;
    assert.ok(chars <= n * perStream, `${chars} chars for ${n} streams, at most ${n * perStream}; the whole roster would be ${n * n * entry}`);
    assert.ok(events <= n * 12, `${events} events: O(1) per stream per turn`);
    hub.close();
  });
});

describe('P8-P11 lazy presence (over the wire)', () => {
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
    const me = await login(c.client, await identity(), { name, kind: 'browser' });
    const events = collectEvents(c.client);
    await events.until(() => events.events.length > 0); // the snapshot: from now on it gets diffs
    return { ...c, me, events, frames };
  }

  it('P8 P9 200 joins in one turn are one page frame per subscriber and the counts once; a newcomer gets one snapshot frame', async () => {
    const a = await counted('a');
    const b = await counted('b');
    await a.events.until(() => countsOf(a.events.events)?.browser === 2);
    const before = [a.frames.length, b.frames.length];

    const n = 200;
    // Older than a and b (since = i): they push both off the first page.
    for (let i = 0; i < n; i++) bus.publishPresence({ op: 'join', user: fakeUser(i, 'browser') });
    for (const w of [a, b]) await w.events.until(() => countsOf(w.events.events)?.browser === n + 2);
    for (const [k, w] of [a, b].entries()) {
      const got = w.frames.slice(before[k]).map((f) => JSON.parse(f).result.data.json);
      assert.deepEqual(got.map((e) => e.op).sort(), ['counts', 'page', 'peers'], 'one page frame, one counts frame, and its sample filled up');
      assert.equal(got.find((e) => e.op === 'peers').peers.length, LIMITS.presenceSampleSize);
      const page = got.find((e) => e.op === 'page');
      assert.equal(page.users.length, LIMITS.presencePageSize);
      assert.deepEqual(new Set(page.left), new Set([a.me.self.sessionId, b.me.self.sessionId]));
    }

    const c = await counted('c');
    assert.equal(c.frames.length, 1, 'the snapshot is one frame');
    const snap = c.events.events[0] as Presence<'snapshot'>;
    assert.equal(snap.users.length, LIMITS.presencePageSize);
    assert.deepEqual(snap.online, { browser: n + 3, virtual: 0 });
    assert.deepEqual(snap.watched, [c.me.self]);
    assert.equal(snap.peers.length, LIMITS.presenceSampleSize);
  });

  it('P10 presence.view takes at most maxPresenceWatch keys (BAD_INPUT beyond) and a page in range; it needs a login', async () => {
    const u = await counted('viewer');
    const key = (i: number) => `w${String(i).padStart(42, '0')}`;
    const many = Array.from({ length: LIMITS.maxPresenceWatch + 1 }, (_, i) => key(i));
    assert.equal(await refusal(u.client.presence.view.mutate({ page: 0, watch: many })), 'BAD_INPUT');
    assert.equal(await refusal(u.client.presence.view.mutate({ page: -1, watch: [] })), 'BAD_INPUT');
    assert.equal(await refusal(u.client.presence.view.mutate({ page: LIMITS.maxPresencePage + 1, watch: [] })), 'BAD_INPUT');
    assert.deepEqual(await u.client.presence.view.mutate({ page: 1, watch: many.slice(1) }), { ok: true });
    await u.events.until(() => u.events.events.some((e) => isPresence('page')(e) && e.reset && e.page === 1));
    const anon = rawClient(r);
    local.push(anon.close);
    assert.equal(await refusal(anon.client.presence.view.mutate({ page: 0, watch: [] })), 'NOT_LOGGED_IN');
  });
});
