// The contract between the relay's sessions (tRPC logins) and the PeerJS signalling endpoint.
// The relay mints each login's PeerJS id and token; the signalling socket must present both (SPEC.md W1-W3).

export interface PeerGrant {
  /** The tRPC session that owns this peer id. */
  sessionId: string;
  /** Registers a callback run once when the session ends (logout, socket closed, heartbeat lost). */
  onSessionEnd(cb: () => void): () => void;
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
