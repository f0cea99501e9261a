// What the engine's two halves (MessageSync, AttachmentSync) share: dependencies, options, the roster
// and link lookups. SyncEngine implements it; the halves never see PeerTransport directly.
import type { Ed25519Backend } from '../crypto/ed25519';
import type { Digest } from '../crypto/hash';
import type { PeerReason } from '../protocol/peer';
import type { ClientKind, Envelope, SignedAttachment } from '../protocol/relay';
import type { EnvelopeVerifier } from '../protocol/signed';
import type { HistoryStore } from '../store/HistoryStore';
import type { Clock } from './Clock';
import type { Conn } from './Conn';
import type { Emitter } from './Emitter';
import type { Prng } from './prng';

/** One online peer, as presence reports it (PresenceUser has these fields). */
export interface RosterPeer {
  peerId: string;
  /** 'virtual' peers serve last (SPEC.md G7). */
  kind: ClientKind;
  /** The peer's public key: a bad peer stays remembered across logins (G13). */
  userId?: string;
}

/** Events for the UI and the virtual client. */
export interface SyncEvents {
  /**
   * Envelopes verified and stored; from = the peer they came from, null for addMessages. `envs` are those
   * envelopes (same order as `ids`), so a listener need not read back what was just written.
   */
  messages: { ids: string[]; envs: readonly Envelope[]; from: string | null };
  /** Verified attachment bytes so far (G8). */
  progress: { id: string; receivedBytes: number; totalBytes: number; from: string };
  /** Attachment content verified and stored. */
  attachment: { id: string; from: string | null };
  /** An attachment that cannot be completed: its signed digests disagree, or the store refused it. */
  attachmentFailed: { id: string; reason: string };
  /** A reconciliation session with a peer ended; need = ids it held that this side lacked. */
  synced: { peerId: string; need: number };
  /** A link closed by this side for a reason; banned = remembered as bad (G13). */
  peerDropped: { peerId: string; reason: string; banned: boolean };
  /**
   * A catch-up (syncNow) with `peers` peers starts, and ends once their sessions ran and what they found was
   * fetched (or had no source left). The client core shows it per channel (SPEC.md CL7). Each start has one end.
   */
  catchUp: { phase: 'start' | 'end'; peers: number };
}

export interface ResolvedSyncOptions {
  fanout: number;
  gossipIntervalMs: number;
  stopAfterHaves: number;
  maxPushTicks: number;
  pullDelayMs: number;
  pullFanout: number;
  catchUpPeers: number;
  maxLinks: number;
  virtualDelayMs: number;
  requestTimeoutMs: number;
  badPeerTtlMs: number;
  resyncIntervalMs: number;
  idleLinkMs: number;
  maxDownloads: number;
  chunkWindow: number;
  wantAttachment: (a: SignedAttachment) => boolean;
  horizon: (() => string | undefined) | undefined;
}

export interface SyncContext {
  readonly store: HistoryStore;
  readonly crypto: Ed25519Backend;
  /** SHA-256 of whole contents and of a published content's chunks (G2, G8). */
  readonly digest: Digest;
  /** Verifies batches of envelopes (G2); the engine's `verifyEnvelopes` option. */
  readonly verify: EnvelopeVerifier;
  readonly relayKey: string;
  readonly clock: Clock;
  readonly rng: Prng;
  readonly opts: ResolvedSyncOptions;
  readonly events: Emitter<SyncEvents>;
  readonly selfKind: ClientKind;
  readonly stopped: boolean;
  isVirtual(peerId: string): boolean;
  /** Online peers from the roster, without this peer and without peers remembered as bad. */
  onlinePeers(): RosterPeer[];
  /** The open link to a peer, if any. */
  conn(peerId: string): Conn | undefined;
  /** Peers with an open link (those `conn` answers for). */
  linkedPeers(): Iterable<string>;
  /** The open link to a peer, opening one if needed; null when that fails or is not allowed. */
  connect(peerId: string): Promise<Conn | null>;
  /** Closes a link for a reason; ban = remember the peer as bad (G13). */
  drop(conn: Conn, reason: PeerReason, ban: boolean): void;
  /** A stored envelope's `prev` (`missing`) is absent: history has a gap, worth a reconciliation soon (G5). */
  holeFound(missing: string): void;
  /**
   * Runs background work: a rejection is reported to the engine's onError (never left unhandled, which
   * would end a Node process).
   */
  spawn(work: Promise<unknown>, where: string): void;
  /** Resolves after `ms` on the engine's clock (or at stop). */
  delay(ms: number): Promise<void>;
}
