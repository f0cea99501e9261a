// Logged-in sessions: who is online (presence, SPEC.md P1-P5) and which PeerJS id and token each login owns.
// It implements the PeerAuth contract the signalling endpoint uses, so a signalling socket can only claim
// the peer id the relay minted for its own login.
import { timingSafeEqual } from 'node:crypto';
import { toB64url, toHex } from '../shared/encoding';
import { fingerprint } from '../shared/crypto/signing';
import { fromB64url } from '../shared/encoding';
import type { ClientKind, PresenceUser } from '../shared/protocol/relay';
import type { PresenceChange } from './bus';
import { type PeerAuth, type PeerGrant, runSessionEnd, type SessionEndCallback } from './signalling/PeerAuth';

export interface Session {
  /** Mutable only through the registry (voiceRoom). */
  readonly user: PresenceUser;
  readonly peerToken: string;
  readonly connId: number;
  ended: boolean;
  /**
   * Signalling sockets and other owners to stop when this session ends (onSessionEnd, offSessionEnd): null
   * while none, one callback as itself (a session's signalling socket: nearly every session holds exactly
   * one, and a Set for it was ~0.15 KiB per client), a Set for more; null once ended.
   */
  endCallbacks: SessionEndCallback | Set<SessionEndCallback> | null;
}

/** Runs `cb` when `session` ends; nothing if it already has (callers check `ended` first). */
export function onSessionEnd(session: Session, cb: SessionEndCallback): void {
  if (session.ended) return;
  const had = session.endCallbacks;
  if (had === null) session.endCallbacks = cb;
  else if (had instanceof Set) had.add(cb);
  else if (had !== cb) session.endCallbacks = new Set([had, cb]);
}

/** Undoes onSessionEnd (nothing if `cb` is not registered or the session ended). */
export function offSessionEnd(session: Session, cb: SessionEndCallback): void {
  const had = session.endCallbacks;
  if (had === cb) session.endCallbacks = null;
  else if (had instanceof Set) had.delete(cb);
}

export interface SessionRegistryOptions {
  now: () => number;
  random: (bytes: number) => Uint8Array;
  /** Where presence changes go (the bus). */
  publish: (change: PresenceChange) => void;
  /** A session-end callback threw; it is isolated from the others. */
  onCallbackError?: (err: unknown) => void;
}

const TAG_ALPHABET = 'abcdefghijklmnopqrstuvwxyz0123456789';

export class SessionRegistry implements PeerAuth {
  private readonly bySession = new Map<string, Session>();
  private readonly byPeer = new Map<string, Session>();

  constructor(private readonly opts: SessionRegistryOptions) {}

  get size(): number {
    return this.bySession.size;
  }

  /** Online sessions by client kind (metrics). */
  countByKind(): Record<ClientKind, number> {
    const out: Record<ClientKind, number> = { browser: 0, virtual: 0 };
    for (const s of this.bySession.values()) out[s.user.kind]++;
    return out;
  }

  list(): PresenceUser[] {
    return Array.from(this.bySession.values(), (s) => s.user);
  }

  /** Called after a verified login. Every login is its own session, even for one key (SPEC.md P2). */
  open(a: { userId: string; name: string; kind: ClientKind; connId: number }): Session {
    const key = fromB64url(a.userId)!;
    const user: PresenceUser = {
      sessionId: toB64url(this.opts.random(12)),
      userId: a.userId,
      name: a.name,
      fingerprint: fingerprint(key),
      kind: a.kind,
      peerId: `${toHex(key.subarray(0, 8))}-${this.tag(10)}`,
      voiceRoom: null,
      since: this.opts.now(),
    };
    const session: Session = {
      user,
      peerToken: toB64url(this.opts.random(32)),
      connId: a.connId,
      ended: false,
      endCallbacks: null,
    };
    this.bySession.set(user.sessionId, session);
    this.byPeer.set(user.peerId, session);
    this.opts.publish({ op: 'join', user });
    return session;
  }

  setVoiceRoom(session: Session, voiceRoom: string | null): void {
    if (session.ended || session.user.voiceRoom === voiceRoom) return;
    session.user.voiceRoom = voiceRoom;
    this.opts.publish({ op: 'update', user: session.user });
  }

  /** Idempotent. Runs the session's end callbacks, then announces the leave. */
  end(session: Session): void {
    if (session.ended) return;
    session.ended = true;
    this.bySession.delete(session.user.sessionId);
    this.byPeer.delete(session.user.peerId);
    const had = session.endCallbacks;
    session.endCallbacks = null;
    const callbacks = had === null ? [] : had instanceof Set ? had : [had];
    for (const cb of callbacks) {
      try {
        runSessionEnd(cb);
      } catch (err) {
        this.opts.onCallbackError?.(err);
      }
    }
    this.opts.publish({ op: 'leave', sessionId: session.user.sessionId });
  }

  // ---- PeerAuth ----

  authorize(peerId: string, token: string): PeerGrant | null {
    if (typeof peerId !== 'string' || typeof token !== 'string') return null;
    const s = this.byPeer.get(peerId);
    if (!s || s.ended) return null;
    const a = Buffer.from(token);
    const b = Buffer.from(s.peerToken);
    // Constant-time: a token must not be guessable byte by byte from response timing.
    if (a.length !== b.length || !timingSafeEqual(a, b)) return null;
    return new SessionGrant(s);
  }

  isOnline(peerId: string): boolean {
    return this.byPeer.has(peerId);
  }

  private tag(n: number): string {
    let out = '';
    while (out.length < n) {
      for (const b of this.opts.random(n * 2)) {
        // Rejection sampling: 252 = 7 * 36, so every character is equally likely.
        if (b < 252 && out.length < n) out += TAG_ALPHABET[b % 36];
      }
    }
    return out;
  }
}

/**
 * A signalling socket's hold on its session: one field, methods on the prototype. The socket keeps it for
 * as long as it is open, so it must not be a bundle of closures (SPEC.md R18).
 */
class SessionGrant implements PeerGrant {
  constructor(private readonly session: Session) {}

  get sessionId(): string {
    return this.session.user.sessionId;
  }

  onSessionEnd(cb: SessionEndCallback): void {
    if (this.session.ended) queueMicrotask(() => runSessionEnd(cb));
    else onSessionEnd(this.session, cb);
  }

  offSessionEnd(cb: SessionEndCallback): void {
    offSessionEnd(this.session, cb);
  }
}
