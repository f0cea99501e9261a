// The peer transport: how the sync engine talks to one other peer. Small on purpose, like
// automerge-repo's NetworkAdapterInterface: the engine is pure and only sees this. Implementations: an
// in-memory pair (tests, simulator), PeerJS over @roamhq/wrtc (Node), PeerJS in the browser. One
// conformance suite (transport/transportConformance.ts) runs on each.

/** A reliable, ordered, binary, message-oriented link to one peer. */
export interface PeerLink {
  /** The remote peer's relay-minted PeerJS id. */
  readonly remotePeerId: string;
  /**
   * Sends one binary frame (at most MAX_FRAME_BYTES). Returns false when the link is closed or its
   * send buffer is above the high-water mark: the caller waits for `onDrain` before sending more.
   */
  send(frame: Uint8Array): boolean;
  /** Bytes queued but not yet sent (RTCDataChannel.bufferedAmount for WebRTC). */
  bufferedAmount(): number;
  onFrame(handler: (frame: Uint8Array) => void): () => void;
  /** Fires once when bufferedAmount falls below the low-water mark after send returned false. */
  onDrain(handler: () => void): () => void;
  onClose(handler: (reason: string) => void): () => void;
  close(reason?: string): void;
  readonly closed: boolean;
}

/** Max bytes of one frame: one 16 KiB chunk plus its header fits (browser data channels close on single messages above ~256 KiB). */
export const MAX_FRAME_BYTES = 64 * 1024;
/** Send-buffer high-water mark: pacing on bufferedAmount (SPEC.md G9). */
export const HIGH_WATER_BYTES = 1024 * 1024;
export const LOW_WATER_BYTES = 256 * 1024;

export interface PeerTransport {
  readonly localPeerId: string;
  /** Opens a link to a peer (online in presence). Rejects with a reason on failure or timeout. */
  connect(remotePeerId: string, opts?: { signal?: AbortSignal; timeoutMs?: number }): Promise<PeerLink>;
  /** Incoming links from other peers. */
  onLink(handler: (link: PeerLink) => void): () => void;
  /** Closes every link and stops accepting. */
  close(): Promise<void>;
}

/**
 * Stable codes for why a connect failed or a link closed (SPEC.md T1-T8). Connect rejects with a
 * TransportError carrying one; `onClose` handlers receive one (or the string given to `close`).
 */
export const TransportReason = {
  /** The remote peer is not online (the relay answered EXPIRE) or refused the link. */
  PEER_UNAVAILABLE: 'PEER_UNAVAILABLE',
  TIMEOUT: 'TIMEOUT',
  ABORTED: 'ABORTED',
  /** This transport is closed. */
  CLOSED: 'CLOSED',
  /** The signalling socket is gone: no new links until a new transport is made. */
  SIGNALLING_LOST: 'SIGNALLING_LOST',
  /** The relay refused the signalling socket (bad token, ended session...); `detail` says why. */
  SIGNALLING_REFUSED: 'SIGNALLING_REFUSED',
  NEGOTIATION_FAILED: 'NEGOTIATION_FAILED',
  TOO_MANY_LINKS: 'TOO_MANY_LINKS',
  /** Default reason of a local `close()`. */
  LOCAL_CLOSE: 'LOCAL_CLOSE',
  /** The other side closed the link (it cannot tell us why: WebRTC carries no close reason). */
  REMOTE_CLOSED: 'REMOTE_CLOSED',
  /** The remote sent something other than a binary frame of at most MAX_FRAME_BYTES. */
  BAD_FRAME: 'BAD_FRAME',
  /** Frames arrived before any `onFrame` handler and exceeded the early-frame bound. */
  OVERFLOW: 'OVERFLOW',
  /** The underlying channel threw on send. */
  SEND_FAILED: 'SEND_FAILED',
} as const;
export type TransportReason = (typeof TransportReason)[keyof typeof TransportReason];

/** How `connect` (and transport creation) fail: a stable `reason`, plus free text for logs. */
export class TransportError extends Error {
  constructor(
    readonly reason: TransportReason,
    readonly detail?: string,
  ) {
    super(detail ? `${reason}: ${detail}` : reason);
    this.name = 'TransportError';
  }
}
