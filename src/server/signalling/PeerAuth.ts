// The contract between the relay's sessions (tRPC logins) and the PeerJS signalling endpoint.
// The relay mints each login's PeerJS id and token; the signalling socket must present both (SPEC.md W1-W3).

/**
 * Told once when a session ends. An object with a method rather than a closure: the signalling endpoint
 * passes each socket's own state, so a registration costs no closure and no context per socket (SPEC.md R18).
 */
export interface SessionEndListener {
  sessionEnded(): void;
}
/** What runs when a session ends: a function, or an object told through `sessionEnded()`. */
export type SessionEndCallback = (() => void) | SessionEndListener;

export function runSessionEnd(cb: SessionEndCallback): void {
  if (typeof cb === 'function') cb();
  else cb.sessionEnded();
}

export interface PeerGrant {
  /** The tRPC session that owns this peer id. */
  readonly sessionId: string;
  /**
   * Registers a callback run once when the session ends (logout, socket closed, heartbeat lost); in a
   * microtask if it already has.
   */
  onSessionEnd(cb: SessionEndCallback): void;
  /** Takes a callback back (nothing if it is not registered or already ran). */
  offSessionEnd(cb: SessionEndCallback): void;
}

export interface PeerAuth {
  /**
   * Returns a grant when `token` is the live login token minted for exactly this `peerId`, else null.
   * A client can therefore only register the peer id bound to its own logged-in key.
   */
  authorize(peerId: string, token: string): PeerGrant | null;
  /** True while a logged-in session owns this peer id (whether or not its signalling socket is open). */
  isOnline(peerId: string): boolean;
}
