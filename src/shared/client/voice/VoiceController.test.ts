// SPEC.md VR5, VR7, VR3: the controller's call bookkeeping over fake calls and fake media.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { VoiceMember, VoiceRoomState } from '../../protocol/relay';
import { ManualClock } from '../../sync/testing/ManualClock';
import { ADMIT_WAIT_MS } from './callPlan';
import type { VoiceCall, VoiceCalls } from './peerjsCalls';
import { VoiceController, type VoiceMedia } from './VoiceController';

const member = (i: number): VoiceMember => ({
  sessionId: `s${i}`,
  userId: `k${i}`.padEnd(43, 'A'),
  name: `m${i}`,
  fingerprint: 'F',
  peerId: `${String(i).padStart(16, '0')}-aaaaaaaaaa`,
  muted: false,
  deafened: false,
  joinSeq: i,
});

class FakeCall implements VoiceCall {
  answered = false;
  closed = false;
  private closers: (() => void)[] = [];
  private streams: ((s: MediaStream) => void)[] = [];
  constructor(readonly peerId: string) {}
  answer(): void {
    this.answered = true;
  }
  close(): void {
    if (this.closed) return;
    this.closed = true;
    for (const f of this.closers) f();
  }
  onStream(cb: (s: MediaStream) => void): void {
    this.streams.push(cb);
  }
  onClose(cb: () => void): void {
    this.closers.push(cb);
  }
  replaceStream(): void {}
  remoteStream(): void {
    for (const f of this.streams) f({ id: `remote-${this.peerId}` } as unknown as MediaStream);
  }
}

function setup(selfIndex: number) {
  const clock = new ManualClock();
  const placed: FakeCall[] = [];
  let incoming: ((c: VoiceCall) => void) | null = null;
  const calls: VoiceCalls = {
    call: (peerId) => {
      const c = new FakeCall(peerId);
      placed.push(c);
      return c;
    },
    onIncoming: (h) => {
      incoming = h;
      return () => {
        incoming = null;
      };
    },
  };
  const mics = { open: 0, closed: 0, enabled: [] as boolean[] };
  const remotes = new Set<string>();
  const media: VoiceMedia = {
    openMicrophone: async () => {
      mics.open++;
      return { id: 'mic' } as unknown as MediaStream;
    },
    closeMicrophone: () => {
      mics.closed++;
    },
    setMicrophoneEnabled: (_s, enabled) => mics.enabled.push(enabled),
    addRemote: (peerId) => remotes.add(peerId),
    removeRemote: (peerId) => remotes.delete(peerId),
    setDeafened: () => {},
  };
  const relayCalls: string[] = [];
  let room: VoiceRoomState = { channel: 'general', members: [] };
  const v = new VoiceController({ clock, media, changed: () => {}, reasonOf: () => null });
  v.setRelay({
    join: async (channel) => {
      relayCalls.push(`join ${channel}`);
      return room;
    },
    leave: async () => relayCalls.push('leave'),
    state: async (s) => relayCalls.push(`state ${s.muted} ${s.deafened}`),
  });
  v.setSession({ sessionId: `s${selfIndex}`, calls });
  return {
    v,
    clock,
    placed,
    mics,
    remotes,
    relayCalls,
    setRoom: (r: VoiceRoomState) => (room = r),
    ring: (c: FakeCall) => incoming!(c),
  };
}

describe('voice controller', () => {
  it('VR5 a newcomer calls everyone already in the room; audio arriving marks the call connected', async () => {
    const t = setup(3);
    t.setRoom({ channel: 'general', members: [member(1), member(2), member(3)] });
    assert.deepEqual(await t.v.join('general'), { ok: true });
    assert.deepEqual(t.placed.map((c) => c.peerId).sort(), [member(1).peerId, member(2).peerId].sort());
    t.placed[0]!.remoteStream();
    assert.equal(t.v.snapshot().calls[t.placed[0]!.peerId], 'connected');
    assert.ok(t.remotes.has(t.placed[0]!.peerId));
  });

  it('VR5 a call from an unlisted peer is held unanswered, answered once the room lists it, else refused after the wait', async () => {
    const t = setup(1);
    t.setRoom({ channel: 'general', members: [member(1)] });
    await t.v.join('general');
    const early = new FakeCall(member(2).peerId);
    t.ring(early);
    assert.equal(early.answered, false);
    t.v.onWatch({ op: 'room', room: { channel: 'general', members: [member(1), member(2)] } });
    assert.equal(early.answered, true);

    const stranger = new FakeCall(member(5).peerId);
    t.ring(stranger);
    t.clock.advance(ADMIT_WAIT_MS - 1);
    assert.equal(stranger.closed, false);
    t.clock.advance(1);
    assert.equal(stranger.answered, false);
    assert.equal(stranger.closed, true);
    assert.equal(t.v.snapshot().refusedCalls, 1);

    // A listed member that should not call us (we joined later than it... here: we are 1, it is 2, it may) --
    // and a second call from the same peer while one is up: refused at once.
    const dup = new FakeCall(member(2).peerId);
    t.ring(dup);
    assert.equal(dup.closed, true);
    assert.equal(dup.answered, false);
  });

  it('VR5 a call while in no room is refused at once (no unsolicited audio)', () => {
    const t = setup(1);
    const c = new FakeCall(member(2).peerId);
    t.ring(c);
    assert.equal(c.answered, false);
    assert.equal(c.closed, true);
  });

  it('VR7 leave closes every call and held call, stops the microphone and tells the relay', async () => {
    const t = setup(3);
    t.setRoom({ channel: 'general', members: [member(1), member(2), member(3)] });
    await t.v.join('general');
    const held = new FakeCall(member(6).peerId);
    t.ring(held);
    await t.v.leave();
    assert.ok(t.placed.every((c) => c.closed));
    assert.equal(held.closed, true);
    assert.deepEqual([t.mics.open, t.mics.closed], [1, 1]);
    assert.deepEqual(t.relayCalls, ['join general', 'leave']);
    assert.equal(t.v.liveResources(), 0);
    assert.equal(t.v.snapshot().joined, null);
  });

  it('VR7 losing the relay or the session ends the calls; the relay dropping us from the room does too', async () => {
    const t = setup(2);
    t.setRoom({ channel: 'general', members: [member(1), member(2)] });
    await t.v.join('general');
    t.v.relayLost();
    assert.ok(t.placed.every((c) => c.closed));
    assert.equal(t.v.liveResources(), 0);

    const u = setup(2);
    u.setRoom({ channel: 'general', members: [member(1), member(2)] });
    await u.v.join('general');
    u.v.onWatch({ op: 'room', room: { channel: 'general', members: [member(1)] } }); // another device took our place
    assert.equal(u.v.snapshot().joined, null);
    assert.equal(u.v.snapshot().error?.reason, 'DROPPED');
    assert.equal(u.v.liveResources(), 0);
  });

  it('VR3 deafen mutes the microphone and tells the relay both; undeafen restores the chosen mute', async () => {
    const t = setup(1);
    t.setRoom({ channel: 'general', members: [member(1)] });
    await t.v.join('general');
    await t.v.setDeafened(true);
    assert.equal(t.mics.enabled.at(-1), false);
    assert.deepEqual([t.v.snapshot().muted, t.v.snapshot().deafened], [true, true]);
    await t.v.setDeafened(false);
    assert.equal(t.mics.enabled.at(-1), true);
    await t.v.setMuted(true);
    assert.deepEqual(t.relayCalls.slice(1), ['state true true', 'state false false', 'state true false']);
  });
});
