// Voice rooms on the relay (SPEC.md V1-V6): who is in the voice room of which channel, with their PeerJS id
// and mute/deafen state. The relay carries no audio; members call each other over PeerJS media calls.
//
// Its own small state, not part of presence: presence is a roster every client may not see whole, while
// every member of a room must know every other (each one calls or answers all of them, V5). Bounded by
// construction: a session is in at most one room, a key in at most one room at a time (V1), a room holds
// at most VOICE_LIMITS.maxMembers (V2) and exists only while occupied, so the state is at most one entry
// per online session. Watchers get whole rooms (<= 8 members), coalesced per relay turn: a watcher's
// backlog is at most one event per channel per turn, and a socket that does not read is closed as a slow
// consumer like an `events` stream (R10).
import { CloseCode, VOICE_LIMITS, type VoiceEvent, type VoiceMember, type VoiceRoomState } from '../shared/protocol/relay';
import { PushStream } from './PushStream';
import { offSessionEnd, onSessionEnd, type Session } from './SessionRegistry';

/** What a watch needs from its socket. */
export interface VoiceWatchOwner {
  readonly bufferedAmount: number;
  closeFor(code: number, reason: string): void;
}

export interface VoiceRoomsOptions {
  /** Unsent bytes on a watcher's socket beyond which it is closed SLOW_CONSUMER (the relay's maxBufferedBytes). */
  maxBufferedBytes: number;
}

export type VoiceRefusal = 'ROOM_FULL' | 'NOT_IN_VOICE';

interface Membership {
  channel: string;
  member: VoiceMember;
  session: Session;
  /** Registered in the session's end callbacks: the session ending leaves the room (V1). */
  onEnd: () => void;
}

/** Events a pulled watch (tests, any consumer but the relay's adapter) may hold unread before it is ended. */
export const VOICE_WATCH_MAX_QUEUED = 1024;

/**
 * One `voice.watch` subscription, driven by push from the relay's adapter (no pending promise while idle),
 * bounded by the coalescing (one event per channel per turn) and the owner's buffered bytes. Pulled with
 * `next()` it queues up to VOICE_WATCH_MAX_QUEUED.
 */
export class VoiceWatch extends PushStream<VoiceEvent> {
  constructor(
    private readonly rooms: VoiceRooms,
    readonly owner: VoiceWatchOwner,
    /** null = every channel. */
    readonly channels: ReadonlySet<string> | null,
  ) {
    super(VOICE_WATCH_MAX_QUEUED);
  }

  protected begin(): void {
    this.rooms.attach(this);
  }

  /** Detached; what a pulled watch had queued is dropped (finish(true)). */
  override finish(): void {
    super.finish(true);
  }

  protected onFinish(): void {
    this.rooms.detach(this);
  }
}

export class VoiceRooms {
  /** channel -> members by sessionId, in join order (Map keeps insertion order). Only occupied rooms. */
  private readonly rooms = new Map<string, Map<string, Membership>>();
  private readonly bySession = new Map<string, Membership>();
  /** userId -> that key's membership: one room per user (V1). */
  private readonly byUser = new Map<string, Membership>();
  private readonly watchers = new Set<VoiceWatch>();
  /** One watch per socket (V4): a second is refused, so a socket cannot multiply fan-out. */
  private readonly watched = new WeakSet<VoiceWatchOwner>();
  /** Channels changed in this turn, sent whole at its end. Bounded by the channels. */
  private changed = new Set<string>();
  private flushScheduled: NodeJS.Immediate | null = null;
  private seq = 0;
  /** Room events sent (tests): events x recipients. */
  eventsSent = 0;

  constructor(private readonly opts: VoiceRoomsOptions) {}

  /** People in voice rooms (metrics, tests). */
  get size(): number {
    return this.bySession.size;
  }

  get watcherCount(): number {
    return this.watchers.size;
  }

  room(channel: string): VoiceRoomState {
    const members = this.rooms.get(channel);
    return { channel, members: members ? Array.from(members.values(), (m) => m.member) : [] };
  }

  /**
   * Joins `session` to `channel`'s room (V1, V2). Being in another room, or another session of the same key
   * being in one, is left first: a person is in one room at a time, and a second device takes over.
   * Joining the room one is already in changes nothing.
   */
  join(session: Session, channel: string): { ok: true; room: VoiceRoomState } | { ok: false; reason: VoiceRefusal } {
    const mine = this.bySession.get(session.user.sessionId);
    if (mine?.channel === channel) return { ok: true, room: this.room(channel) };
    const members = this.rooms.get(channel);
    const sameUser = this.byUser.get(session.user.userId);
    // The one who would make room by leaving is not counted: moving within the room's own members is fine.
    const freed = sameUser && sameUser.channel === channel ? 1 : 0;
    if (members && members.size - freed >= VOICE_LIMITS.maxMembers) return { ok: false, reason: 'ROOM_FULL' };
    if (mine) this.remove(mine);
    if (sameUser && sameUser !== mine) this.remove(sameUser);
    const u = session.user;
    const member: VoiceMember = {
      sessionId: u.sessionId,
      userId: u.userId,
      name: u.name,
      fingerprint: u.fingerprint,
      peerId: u.peerId,
      muted: false,
      deafened: false,
      joinSeq: ++this.seq,
    };
    const m: Membership = { channel, member, session, onEnd: () => this.leave(session) };
    // Looked up again: the removals above may have emptied (and so deleted) this very room.
    let room = this.rooms.get(channel);
    if (!room) this.rooms.set(channel, (room = new Map()));
    room.set(u.sessionId, m);
    this.bySession.set(u.sessionId, m);
    this.byUser.set(u.userId, m);
    onSessionEnd(session, m.onEnd);
    this.touch(channel);
    return { ok: true, room: this.room(channel) };
  }

  /** Leaves whatever room the session is in; false if it was in none. */
  leave(session: Session): boolean {
    const m = this.bySession.get(session.user.sessionId);
    if (!m) return false;
    this.remove(m);
    return true;
  }

  /**
   * Sets mute/deafen (V3). Deafened implies muted: who cannot hear the room does not talk into it. Returns
   * whether anything changed (unchanged state announces nothing).
   */
  setState(session: Session, s: { muted: boolean; deafened: boolean }): { ok: true; changed: boolean } | { ok: false; reason: VoiceRefusal } {
    const m = this.bySession.get(session.user.sessionId);
    if (!m) return { ok: false, reason: 'NOT_IN_VOICE' };
    const muted = s.muted || s.deafened;
    if (m.member.muted === muted && m.member.deafened === s.deafened) return { ok: true, changed: false };
    m.member = { ...m.member, muted, deafened: s.deafened };
    this.touch(m.channel);
    return { ok: true, changed: true };
  }

  /** Would `setState` change anything (so an unchanged call costs no rate-limit point)? */
  isUnchanged(session: Session, s: { muted: boolean; deafened: boolean }): boolean {
    const m = this.bySession.get(session.user.sessionId);
    return !!m && m.member.muted === (s.muted || s.deafened) && m.member.deafened === s.deafened;
  }

  channelOf(session: Session): string | null {
    return this.bySession.get(session.user.sessionId)?.channel ?? null;
  }

  /** A new watch for `owner`, or null if that socket already has one (V4). */
  watch(owner: VoiceWatchOwner, channels: ReadonlySet<string> | null): VoiceWatch | null {
    if (this.watched.has(owner)) return null;
    this.watched.add(owner);
    return new VoiceWatch(this, owner, channels);
  }

  /** The watch starts: its snapshot now, every later change whole (a room in both is the same state twice, harmless). */
  attach(w: VoiceWatch): void {
    this.watchers.add(w);
    const rooms: VoiceRoomState[] = [];
    for (const channel of this.rooms.keys()) if (!w.channels || w.channels.has(channel)) rooms.push(this.room(channel));
    this.push(w, { op: 'snapshot', rooms });
  }

  detach(w: VoiceWatch): void {
    this.watchers.delete(w);
    this.watched.delete(w.owner);
  }

  close(): void {
    if (this.flushScheduled) clearImmediate(this.flushScheduled);
    this.flushScheduled = null;
    for (const w of [...this.watchers]) w.finish();
  }

  private remove(m: Membership): void {
    const room = this.rooms.get(m.channel);
    room?.delete(m.member.sessionId);
    if (room && room.size === 0) this.rooms.delete(m.channel); // rooms exist only while occupied (V1)
    this.bySession.delete(m.member.sessionId);
    if (this.byUser.get(m.member.userId) === m) this.byUser.delete(m.member.userId);
    offSessionEnd(m.session, m.onEnd);
    this.touch(m.channel);
  }

  private touch(channel: string): void {
    this.changed.add(channel);
    // setImmediate, as the EventHub: every change of one turn (a join that first leaves another room, a
    // burst of sockets closing) reaches each watcher as one event per room.
    this.flushScheduled ??= setImmediate(() => this.flush());
  }

  /** Sends this turn's changed rooms (exposed for tests). */
  flush(): void {
    if (this.flushScheduled) clearImmediate(this.flushScheduled);
    this.flushScheduled = null;
    const changed = this.changed;
    if (changed.size === 0) return;
    this.changed = new Set();
    for (const channel of changed) {
      const event: VoiceEvent = { op: 'room', room: this.room(channel) };
      for (const w of this.watchers) if (!w.channels || w.channels.has(channel)) this.push(w, event);
    }
  }

  private push(w: VoiceWatch, event: VoiceEvent): void {
    // Checked at fan-out, so one stuck reader cannot make the relay buffer without bound (STYLE 11).
    if (w.owner.bufferedAmount > this.opts.maxBufferedBytes) {
      w.finish();
      w.owner.closeFor(CloseCode.SLOW_CONSUMER, 'SLOW_CONSUMER');
      return;
    }
    this.eventsSent++;
    w.deliver(event);
  }
}
