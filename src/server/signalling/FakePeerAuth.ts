// A PeerAuth for tests: logins are added and ended by hand. The real one is the relay's session table.
import { type PeerAuth, type PeerGrant, runSessionEnd, type SessionEndCallback } from './PeerAuth';

interface Session {
  sessionId: string;
  token: string;
  onEnd: Set<SessionEndCallback>;
}

export class FakePeerAuth implements PeerAuth {
  private readonly sessions = new Map<string, Session>();
  private seq = 0;

  /** Logs `peerId` in with `token`; ends any earlier session of that id. */
  login(peerId: string, token: string): void {
    this.logout(peerId);
    this.sessions.set(peerId, { sessionId: `s${++this.seq}`, token, onEnd: new Set() });
  }

  /** Ends the session: runs every onSessionEnd callback once. */
  logout(peerId: string): void {
    const s = this.sessions.get(peerId);
    if (!s) return;
    this.sessions.delete(peerId);
    for (const cb of s.onEnd) runSessionEnd(cb);
    s.onEnd.clear();
  }

  /** Callbacks registered and not yet run or removed, over all sessions (leak checks). */
  listenerCount(): number {
    let n = 0;
    for (const s of this.sessions.values()) n += s.onEnd.size;
    return n;
  }

  authorize(peerId: string, token: string): PeerGrant | null {
    const s = this.sessions.get(peerId);
    if (!s || s.token !== token) return null;
    return {
      sessionId: s.sessionId,
      onSessionEnd(cb) {
        s.onEnd.add(cb);
      },
      offSessionEnd(cb) {
        s.onEnd.delete(cb);
      },
    };
  }

  isOnline(peerId: string): boolean {
    return this.sessions.has(peerId);
  }
}
