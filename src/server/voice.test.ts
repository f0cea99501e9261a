// SPEC.md VR1-VR4, VR6: voice rooms on the relay (membership, the cap, mute/deafen, the watch stream, rates).
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { VOICE_LIMITS, type VoiceEvent, type VoiceMember } from '../shared/protocol/relay';
import type { Relay } from './createRelay';
import { loggedIn, login, rawClient, refusal, startTestRelay } from './testKit';

let relay: Relay;
const closers: (() => Promise<void>)[] = [];
async function user(name: string, r: Relay = relay) {
  const u = await loggedIn(r, { name, kind: 'browser' });
  closers.push(u.close);
  return u;
}
type Client = Awaited<ReturnType<typeof user>>['client'];

/** Collects a client's voice.watch events and keeps the rooms they describe. */
function watch(client: Client, input: { channels?: string[] } = {}) {
  const events: VoiceEvent[] = [];
  const rooms = new Map<string, VoiceMember[]>();
  let waiters: (() => void)[] = [];
  let error: unknown = null;
  const wake = () => {
    const w = waiters;
    waiters = [];
    for (const f of w) f();
  };
  const sub = client.voice.watch.subscribe(input, {
    onData(ev) {
      events.push(ev);
      if (ev.op === 'snapshot') {
        rooms.clear();
        for (const r of ev.rooms) rooms.set(r.channel, r.members);
      } else if (ev.room.members.length === 0) rooms.delete(ev.room.channel);
      else rooms.set(ev.room.channel, ev.room.members);
      wake();
    },
    onError(err) {
      error = err;
      wake();
    },
  });
  return {
    events,
    rooms,
    get error() {
      return error;
    },
    members: (channel: string) => rooms.get(channel) ?? [],
    async until(cond: () => boolean): Promise<void> {
      while (!cond()) {
        if (error) throw error;
        await new Promise<void>((r) => waiters.push(r));
      }
    },
    stop: () => sub.unsubscribe(),
  };
}

before(async () => {
  relay = await startTestRelay();
});
after(async () => {
  await Promise.all(closers.map((c) => c()));
  await relay.close();
});

describe('voice rooms', () => {
  it('VR1 join shows to watchers with key, name and peerId; leave and a closed socket leave; empty rooms vanish', async () => {
    const w = await user('watcher');
    const events = watch(w.client);
    await events.until(() => events.events.length > 0);
    assert.equal(events.events[0]!.op, 'snapshot');

    const a = await user('alice');
    const room = await a.client.voice.join.mutate({ channel: 'general' });
    assert.deepEqual(room.members.map((m) => m.sessionId), [a.me.self.sessionId]);
    await events.until(() => events.members('general').length === 1);
    const m = events.members('general')[0]!;
    assert.equal(m.userId, a.id.publicKey);
    assert.equal(m.name, 'alice');
    assert.equal(m.peerId, a.me.self.peerId);
    assert.deepEqual([m.muted, m.deafened], [false, false]);

    const b = await user('bob');
    await b.client.voice.join.mutate({ channel: 'general' });
    await events.until(() => events.members('general').length === 2);
    // Join order, and the later joiner has the higher joinSeq (it is the one that calls, VR5).
    const [first, second] = events.members('general');
    assert.equal(first!.sessionId, a.me.self.sessionId);
    assert.ok(second!.joinSeq > first!.joinSeq);

    assert.deepEqual(await a.client.voice.leave.mutate(), { left: true });
    assert.deepEqual(await a.client.voice.leave.mutate(), { left: false });
    await events.until(() => events.members('general').length === 1);

    await b.close(); // the socket closes: its session ends and leaves the room
    await events.until(() => !events.rooms.has('general'));
    const last = events.events.at(-1)!;
    assert.deepEqual(last, { op: 'room', room: { channel: 'general', members: [] } });
    events.stop();
  });

  it('VR1 a session is in one room at a time, and another session of the same key takes its place', async () => {
    const w = await user('watcher');
    const events = watch(w.client);
    const a = await user('alice');
    await a.client.voice.join.mutate({ channel: 'general' });
    await a.client.voice.join.mutate({ channel: 'random' });
    await events.until(() => events.members('random').length === 1 && !events.rooms.has('general'));

    // The same key on a second device joins: the first session is dropped from the room.
    const second = rawClient(relay);
    closers.push(second.close);
    const me2 = await login(second.client, a.id, { name: 'alice', kind: 'browser' });
    await second.client.voice.join.mutate({ channel: 'random' });
    await events.until(() => events.members('random').length === 1 && events.members('random')[0]!.sessionId === me2.self.sessionId);
    assert.equal(await refusal(a.client.voice.state.mutate({ muted: true, deafened: false })), 'NOT_IN_VOICE');
    assert.equal(await refusal(a.client.voice.join.mutate({ channel: 'nope' })), 'UNKNOWN_CHANNEL');
    await second.client.voice.leave.mutate();
    events.stop();
  });

  it('VR2 a room holds 8: the 9th join is ROOM_FULL and leaves that person where they were', async () => {
    const w = await user('watcher');
    const events = watch(w.client, { channels: ['media'] });
    const members = [];
    for (let i = 0; i < VOICE_LIMITS.maxMembers; i++) {
      const u = await user(`m${i}`);
      await u.client.voice.join.mutate({ channel: 'media' });
      members.push(u);
    }
    await events.until(() => events.members('media').length === VOICE_LIMITS.maxMembers);
    const ninth = await user('ninth');
    await ninth.client.voice.join.mutate({ channel: 'random' });
    assert.equal(await refusal(ninth.client.voice.join.mutate({ channel: 'media' })), 'ROOM_FULL');
    // Still in its own room: a state change is accepted there.
    assert.deepEqual(await ninth.client.voice.state.mutate({ muted: true, deafened: false }), { changed: true });
    // A place frees up: now the join goes through.
    await members[0]!.client.voice.leave.mutate();
    await ninth.client.voice.join.mutate({ channel: 'media' });
    await events.until(() => events.members('media').some((m) => m.sessionId === ninth.me.self.sessionId));
    assert.equal(events.members('media').length, VOICE_LIMITS.maxMembers);
    for (const u of [...members, ninth]) await u.client.voice.leave.mutate();
    await events.until(() => !events.rooms.has('media'));
    events.stop();
  });

  it('VR3 deafened implies muted; an unchanged state announces nothing', async () => {
    const w = await user('watcher');
    const events = watch(w.client);
    const a = await user('alice');
    assert.equal(await refusal(a.client.voice.state.mutate({ muted: true, deafened: false })), 'NOT_IN_VOICE');
    await a.client.voice.join.mutate({ channel: 'general' });
    await events.until(() => events.members('general').length === 1);
    assert.deepEqual(await a.client.voice.state.mutate({ muted: false, deafened: true }), { changed: true });
    await events.until(() => events.members('general')[0]?.deafened === true);
    assert.equal(events.members('general')[0]!.muted, true);
    const seen = events.events.length;
    assert.deepEqual(await a.client.voice.state.mutate({ muted: true, deafened: true }), { changed: false });
    await a.client.voice.state.mutate({ muted: false, deafened: false });
    await events.until(() => events.members('general')[0]?.muted === false);
    // Exactly one event for the one real change after `seen`: the unchanged call sent none.
    assert.equal(events.events.length, seen + 1);
    await a.client.voice.leave.mutate();
    events.stop();
  });

  it('VR4 the watch needs a login, is one per socket, filters channels and coalesces one turn into one event', async () => {
    const raw = rawClient(relay);
    closers.push(raw.close);
    const early = watch(raw.client);
    await assert.rejects(early.until(() => false), (err: { data?: { reason?: string } }) => err.data?.reason === 'NOT_LOGGED_IN');

    const w = await user('watcher');
    const general = watch(w.client, { channels: ['general'] });
    await general.until(() => general.events.length > 0);
    const again = watch(w.client);
    await assert.rejects(again.until(() => false), (err: { data?: { reason?: string } }) => err.data?.reason === 'TOO_MANY_SUBSCRIPTIONS');

    const a = await user('alice');
    await a.client.voice.join.mutate({ channel: 'random' }); // not watched by `general`
    // Join and mute in one frame, one relay turn: the watcher gets the room once, as it ended the turn.
    const [room] = await Promise.all([a.client.voice.join.mutate({ channel: 'general' }), a.client.voice.state.mutate({ muted: true, deafened: false })]);
    assert.equal(room.channel, 'general');
    await general.until(() => general.members('general').length === 1);
    const roomEvents = general.events.filter((e) => e.op === 'room');
    assert.equal(roomEvents.length, 1);
    assert.equal(general.members('general')[0]!.muted, true);
    assert.ok(!general.rooms.has('random'));
    await a.client.voice.leave.mutate();
    general.stop();
  });

  it('VR6 join and state changes are rate-limited per key; leave is not', async () => {
    const limited = await startTestRelay({ limits: { voiceUpdatesPerMinute: 3 } });
    try {
      const a = await user('alice', limited);
      await a.client.voice.join.mutate({ channel: 'general' }); // 1
      await a.client.voice.state.mutate({ muted: true, deafened: false }); // 2
      await a.client.voice.state.mutate({ muted: true, deafened: false }); // unchanged: free
      await a.client.voice.join.mutate({ channel: 'general' }); // already there: free
      await a.client.voice.join.mutate({ channel: 'random' }); // 3 (a new membership starts unmuted)
      assert.equal(await refusal(a.client.voice.state.mutate({ muted: true, deafened: false })), 'RATE_LIMITED');
      assert.equal(await refusal(a.client.voice.join.mutate({ channel: 'general' })), 'RATE_LIMITED');
      assert.deepEqual(await a.client.voice.leave.mutate(), { left: true });
    } finally {
      await limited.close();
    }
  });
});
