// The client's voice room (SPEC.md VR1-VR8): the rooms as the relay's `voice.watch` describes them, whether
// and where we are in one, mute/deafen, the microphone, and the bookkeeping of our calls (one per other
// member, VR5). Driven by PeerchatClient (relay events, session changes); the platform's media comes in as
// `VoiceMedia` (the browser shell: getUserMedia, <audio>, AnalyserNode) and the calls as `VoiceCalls`
// (PeerJS over the session's Peer). Nothing here touches the DOM.
import type { VoiceEvent, VoiceMember, VoiceRoomState } from '../../protocol/relay';
import type { Clock, TimerHandle } from '../../sync/Clock';
import { ADMIT_WAIT_MS, MAX_HELD_CALLS, admitCall, planCalls } from './callPlan';
import type { VoiceCall, VoiceCalls } from './peerjsCalls';

/** What the platform does with audio. Every method may be called at any time and must not throw. */
export interface VoiceMedia {
  /** Opens a microphone (`deviceId` null: the default); rejects if refused or absent. */
  openMicrophone(deviceId: string | null): Promise<MediaStream>;
  /** Stops its tracks. */
  closeMicrophone(stream: MediaStream): void;
  /** Muting disables the track: the calls stay up and carry silence (VR8). */
  setMicrophoneEnabled(stream: MediaStream, enabled: boolean): void;
  /** A member's audio: play it (unless deafened) and measure it. */
  addRemote(peerId: string, stream: MediaStream, receiver?: RTCRtpReceiver): void;
  removeRemote(peerId: string): void;
  setDeafened(deafened: boolean): void;
}

/** The relay procedures voice uses (the gated tRPC client in PeerchatClient). */
export interface VoiceRelay {
  join(channel: string): Promise<VoiceRoomState>;
  leave(): Promise<unknown>;
  state(s: { muted: boolean; deafened: boolean }): Promise<unknown>;
}

export type VoiceErrorReason = 'NOT_ONLINE' | 'NO_MEDIA' | 'MICROPHONE_FAILED' | 'ROOM_FULL' | 'RATE_LIMITED' | 'RELAY_REFUSED' | 'DROPPED';

export interface VoiceSnapshot {
  /** Occupied rooms by channel, members in join order. Empty while not watching (offline). */
  readonly rooms: Readonly<Record<string, readonly VoiceMember[]>>;
  /** Our room: `joining` until the relay confirmed it. */
  readonly joined: { readonly channel: string; readonly state: 'joining' | 'joined' } | null;
  readonly muted: boolean;
  readonly deafened: boolean;
  /** The chosen microphone's deviceId (null: the default). */
  readonly microphone: string | null;
  /** Our calls by the other side's peerId: `connecting` until its audio arrived. */
  readonly calls: Readonly<Record<string, 'connecting' | 'connected'>>;
  /** Incoming calls refused so far (VR5): not from a member, not the one to call, one too many. */
  readonly refusedCalls: number;
  /** The last thing that went wrong (a refused join, a microphone that would not open). */
  readonly error: { readonly reason: VoiceErrorReason; readonly message: string } | null;
}

export interface VoiceControllerOptions {
  clock: Clock;
  /** The shell's media; null (Node, tests without audio) makes `join` fail NO_MEDIA. */
  media: VoiceMedia | null;
  /** Something changed: the client rebuilds its snapshot. */
  changed: () => void;
  log?: (event: string, fields?: Record<string, unknown>) => void;
  /** A relay refusal's reason, if it is one. */
  reasonOf: (err: unknown) => string | null;
}

interface CallEntry {
  call: VoiceCall;
  connected: boolean;
}

/** After a call we placed closed while its peer is still in the room, wait this long before calling again. */
const REDIAL_DELAY_MS = 2_000;

export class VoiceController {
  private rooms = new Map<string, VoiceMember[]>();
  private joined: { channel: string; state: 'joining' | 'joined' } | null = null;
  private muted = false;
  private deafened = false;
  private microphone: string | null = null;
  private stream: MediaStream | null = null;
  /** Our calls by peerId: at most MAX_CALLS (planCalls and admitCall keep it so). */
  private readonly calls = new Map<string, CallEntry>();
  /** Incoming calls waiting for the room event that lists their caller: at most MAX_HELD_CALLS. */
  private readonly held = new Map<VoiceCall, TimerHandle>();
  private refused = 0;
  private error: VoiceSnapshot['error'] = null;
  private session: { sessionId: string; calls: VoiceCalls; off: () => void } | null = null;
  private relay: VoiceRelay | null = null;
  private redial: TimerHandle | null = null;
  /** Bumped by every leave, so a join that finishes after it undoes itself. */
  private gen = 0;
  private snap: VoiceSnapshot | null = null;
  private stopped = false;

  constructor(private readonly opts: VoiceControllerOptions) {}

  snapshot(): VoiceSnapshot {
    if (this.snap) return this.snap;
    const calls: Record<string, 'connecting' | 'connected'> = {};
    for (const [peerId, e] of this.calls) calls[peerId] = e.connected ? 'connected' : 'connecting';
    this.snap = {
      rooms: Object.fromEntries(this.rooms),
      joined: this.joined && { ...this.joined },
      muted: this.muted || this.deafened,
      deafened: this.deafened,
      microphone: this.microphone,
      calls,
      refusedCalls: this.refused,
      error: this.error,
    };
    return this.snap;
  }

  // ---- user actions ----

  /** Joins `channel`'s room (leaving another one first): opens the microphone, then asks the relay. */
  async join(channel: string): Promise<{ ok: true } | { ok: false; reason: VoiceErrorReason }> {
    if (this.joined?.channel === channel) return { ok: true };
    const relay = this.relay;
    const media = this.opts.media;
    if (!relay || !this.session) return this.fail('NOT_ONLINE', 'not connected to the relay');
    if (!media) return this.fail('NO_MEDIA', 'this client has no audio');
    // Moving rooms: the relay moves us with the join (VR1); our calls of the old room end now.
    const moving = this.joined?.state === 'joined';
    if (this.joined) this.teardown();
    const gen = ++this.gen;
    this.joined = { channel, state: 'joining' };
    this.error = null;
    this.touch();
    let stream: MediaStream;
    try {
      stream = await media.openMicrophone(this.microphone);
    } catch (err) {
      if (gen !== this.gen) return { ok: false, reason: 'DROPPED' };
      this.joined = null;
      return this.fail('MICROPHONE_FAILED', `the microphone did not open: ${String((err as Error)?.message ?? err)}`);
    }
    if (gen !== this.gen || this.stopped) {
      media.closeMicrophone(stream);
      return { ok: false, reason: 'DROPPED' };
    }
    this.stream = stream;
    media.setMicrophoneEnabled(stream, !(this.muted || this.deafened));
    media.setDeafened(this.deafened);
    let room: VoiceRoomState;
    try {
      room = await relay.join(channel);
      if (this.muted || this.deafened) await relay.state({ muted: this.muted || this.deafened, deafened: this.deafened });
    } catch (err) {
      if (gen !== this.gen) return { ok: false, reason: 'DROPPED' };
      this.teardown();
      // A refused move leaves us in the old room on the relay with no calls: leave it too, so others do not
      // keep calling a member who answers nobody.
      if (moving) void relay.leave().catch(() => {});
      const r = this.opts.reasonOf(err);
      return this.fail(r === 'ROOM_FULL' ? 'ROOM_FULL' : r === 'RATE_LIMITED' ? 'RATE_LIMITED' : 'RELAY_REFUSED', r ?? String(err));
    }
    if (gen !== this.gen) return { ok: false, reason: 'DROPPED' };
    this.joined = { channel, state: 'joined' };
    // The join's answer may come before the watch's event: it is the room as of our join.
    if (!this.rooms.get(channel)?.some((m) => m.sessionId === this.session?.sessionId)) this.setRoom(room);
    this.reconcile();
    this.recheckHeld();
    this.touch();
    return { ok: true };
  }

  /** Leaves the room: calls closed, microphone stopped, the relay told (VR7). */
  async leave(): Promise<void> {
    if (!this.joined) return;
    this.teardown();
    this.touch();
    try {
      await this.relay?.leave();
    } catch {
      // Offline: the relay's session end removes us (VR1).
    }
  }

  async setMuted(muted: boolean): Promise<void> {
    this.muted = muted;
    await this.applyState();
  }

  /** Deafen also mutes; undeafening restores the mute chosen before (VR3). */
  async setDeafened(deafened: boolean): Promise<void> {
    this.deafened = deafened;
    this.opts.media?.setDeafened(deafened);
    await this.applyState();
  }

  /** Picks the microphone; while in a room the new one replaces the old on every call. */
  async setMicrophone(deviceId: string | null): Promise<void> {
    this.microphone = deviceId;
    this.touch();
    const media = this.opts.media;
    if (!media || !this.stream) return;
    const gen = this.gen;
    let next: MediaStream;
    try {
      next = await media.openMicrophone(deviceId);
    } catch (err) {
      this.fail('MICROPHONE_FAILED', `the microphone did not open: ${String((err as Error)?.message ?? err)}`);
      return;
    }
    if (gen !== this.gen || !this.stream) {
      media.closeMicrophone(next);
      return;
    }
    const old = this.stream;
    this.stream = next;
    media.setMicrophoneEnabled(next, !(this.muted || this.deafened));
    for (const e of this.calls.values()) e.call.replaceStream(next);
    media.closeMicrophone(old);
    this.touch();
  }

  // ---- driven by PeerchatClient ----

  /** A login: the relay's procedures for this connection. */
  setRelay(relay: VoiceRelay | null): void {
    this.relay = relay;
  }

  /** A session's Peer is up (calls go through it) or gone (null: our calls ended with it, VR7). */
  setSession(s: { sessionId: string; calls: VoiceCalls } | null): void {
    if (this.session) {
      this.session.off();
      this.session = null;
      if (this.joined) this.teardown();
    }
    if (s) {
      const off = s.calls.onIncoming((call) => this.incoming(call));
      this.session = { sessionId: s.sessionId, calls: s.calls, off };
    }
    this.touch();
  }

  /** The relay is gone: its session ended, so did our membership; the rooms are unknown until the next watch. */
  relayLost(): void {
    this.relay = null;
    if (this.joined) this.teardown();
    this.rooms.clear();
    this.touch();
  }

  onWatch(ev: VoiceEvent): void {
    if (ev.op === 'snapshot') {
      this.rooms.clear();
      for (const r of ev.rooms) this.setRoom(r);
    } else this.setRoom(ev.room);
    const j = this.joined;
    const me = this.session?.sessionId;
    // The relay dropped us (another device of ours joined, VR1): end our side too.
    if (j?.state === 'joined' && !this.rooms.get(j.channel)?.some((m) => m.sessionId === me)) {
      this.teardown();
      this.error = { reason: 'DROPPED', message: 'left the room (joined from elsewhere)' };
    }
    this.reconcile();
    this.recheckHeld();
    this.touch();
  }

  /** Ends everything (the client stops). */
  stop(): void {
    this.stopped = true;
    this.teardown();
    this.session?.off();
    this.session = null;
    this.relay = null;
  }

  /** Calls, held calls and timers still owned (a teardown test checks 0). */
  liveResources(): number {
    return this.calls.size + this.held.size + (this.redial ? 1 : 0) + (this.stream ? 1 : 0);
  }

  // ---- internals ----

  private setRoom(r: VoiceRoomState): void {
    if (r.members.length === 0) this.rooms.delete(r.channel);
    else this.rooms.set(r.channel, r.members);
  }

  private members(): VoiceMember[] | null {
    const j = this.joined;
    return j?.state === 'joined' ? (this.rooms.get(j.channel) ?? []) : null;
  }

  private async applyState(): Promise<void> {
    if (this.stream) this.opts.media?.setMicrophoneEnabled(this.stream, !(this.muted || this.deafened));
    this.touch();
    if (!this.joined || !this.relay) return;
    try {
      await this.relay.state({ muted: this.muted || this.deafened, deafened: this.deafened });
    } catch (err) {
      // The local effect stands (our track is off either way); the others see it once a later call lands.
      const r = this.opts.reasonOf(err);
      this.fail(r === 'RATE_LIMITED' ? 'RATE_LIMITED' : 'RELAY_REFUSED', r ?? String(err));
    }
  }

  /** Dials whom we are to call and hangs up who left (VR5). */
  private reconcile(): void {
    const members = this.members();
    const s = this.session;
    if (!members || !s || !this.stream) return;
    const plan = planCalls(s.sessionId, members, new Set(this.calls.keys()));
    for (const peerId of plan.hangUp) this.endCall(peerId);
    for (const m of plan.dial) {
      let call: VoiceCall;
      try {
        call = s.calls.call(m.peerId, this.stream);
      } catch (err) {
        this.opts.log?.('voice_call_failed', { peer: m.peerId, err: String(err) });
        continue;
      }
      this.track(m.peerId, call, true);
    }
  }

  private incoming(call: VoiceCall): void {
    if (this.stopped) return call.close();
    const verdict = admitCall(this.session?.sessionId ?? null, this.members(), call.peerId, new Set(this.calls.keys()));
    if (verdict.answer) return this.answer(call);
    if (this.mayWait(verdict.reason) && this.held.size < MAX_HELD_CALLS) {
      // Maybe a newcomer whose join has not reached us yet: hold it, unanswered, for a moment.
      const t = this.opts.clock.setTimeout(() => {
        if (!this.held.delete(call)) return;
        this.refuse(call, 'NOT_A_MEMBER');
      }, ADMIT_WAIT_MS);
      this.held.set(call, t);
      call.onClose(() => {
        const timer = this.held.get(call);
        if (timer === undefined) return;
        this.opts.clock.clearTimeout(timer);
        this.held.delete(call);
      });
      return;
    }
    this.refuse(call, verdict.reason);
  }

  private recheckHeld(): void {
    for (const [call, t] of [...this.held]) {
      const v = admitCall(this.session?.sessionId ?? null, this.members(), call.peerId, new Set(this.calls.keys()));
      if (!v.answer && this.mayWait(v.reason)) continue;
      this.opts.clock.clearTimeout(t);
      this.held.delete(call);
      if (v.answer) this.answer(call);
      else this.refuse(call, v.reason);
    }
  }

  /** A caller not listed yet, or a call that came while our own join was still on its way: worth a wait. */
  private mayWait(reason: string): boolean {
    return reason === 'NOT_A_MEMBER' || (reason === 'NOT_IN_VOICE' && this.joined?.state === 'joining');
  }

  private answer(call: VoiceCall): void {
    if (!this.stream) return this.refuse(call, 'NOT_IN_VOICE');
    call.answer(this.stream);
    this.track(call.peerId, call, false);
  }

  private refuse(call: VoiceCall, reason: string): void {
    this.refused++;
    this.opts.log?.('voice_call_refused', { peer: call.peerId, reason });
    call.close();
    this.touch();
  }

  private track(peerId: string, call: VoiceCall, placedByUs: boolean): void {
    const entry: CallEntry = { call, connected: false };
    this.calls.set(peerId, entry);
    call.onStream((stream, receiver) => {
      if (this.calls.get(peerId) !== entry) return;
      this.opts.media?.addRemote(peerId, stream, receiver);
      if (!entry.connected) {
        entry.connected = true;
        this.touch();
      }
    });
    call.onClose(() => {
      if (this.calls.get(peerId) !== entry) return;
      this.calls.delete(peerId);
      this.opts.media?.removeRemote(peerId);
      this.touch();
      // Still both in the room: a call we placed failed (ICE, a lost signalling socket); try again soon.
      if (placedByUs && this.members() && !this.redial) {
        this.redial = this.opts.clock.setTimeout(() => {
          this.redial = null;
          this.reconcile();
        }, REDIAL_DELAY_MS);
      }
    });
    this.touch();
  }

  private endCall(peerId: string): void {
    const e = this.calls.get(peerId);
    if (!e) return;
    this.calls.delete(peerId);
    e.call.close();
    this.opts.media?.removeRemote(peerId);
  }

  /** Our side of leaving: every call and held call closed, the microphone stopped (VR7). */
  private teardown(): void {
    this.gen++;
    this.joined = null;
    for (const peerId of [...this.calls.keys()]) this.endCall(peerId);
    for (const [call, t] of this.held) {
      this.opts.clock.clearTimeout(t);
      call.close();
    }
    this.held.clear();
    if (this.redial) this.opts.clock.clearTimeout(this.redial);
    this.redial = null;
    if (this.stream) this.opts.media?.closeMicrophone(this.stream);
    this.stream = null;
  }

  private fail(reason: VoiceErrorReason, message: string): { ok: false; reason: VoiceErrorReason } {
    this.error = { reason, message };
    this.opts.log?.('voice_error', { reason, message });
    this.touch();
    return { ok: false, reason };
  }

  private touch(): void {
    this.snap = null;
    this.opts.changed();
  }
}
