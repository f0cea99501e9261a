// The one peerchat client core (SPEC.md CL1-CL9): the relay connection (login, reconnect with jitter,
// the events stream), the session life cycle (a new PeerJS id per login), the roster, the outbox and one
// sync engine over a store. Every platform thing is injected -- WebSocket, the PeerJS `Peer` factory, the
// store, the Ed25519 backend, clock and randomness -- so the browser app and the virtual client (Node,
// wrtc) run the same code. Nothing here imports from `node:` or uses Buffer.
//
// For a UI: `getSnapshot()` returns an immutable object that changes identity on every change and
// `subscribe(listener)` says when (React: `useSyncExternalStore(c.subscribe, c.getSnapshot)`). Events that
// are not state (envelopes stored, errors) come through `on(event, handler)`. The history itself is read
// from the store: the client only says which ids arrived.
//
// API stability: this file's exported types and the public members of PeerchatClient are what the web
// app codes against. Changes are listed here.
//   (none yet)
import type { Peer } from 'peerjs';
import type { Ed25519Backend } from '../crypto/ed25519';
import type { Channel, ClientKind, Envelope, LoginOutput, PresenceUser, RelayReason, ServerInfo, SignedAttachment, AttachmentMeta } from '../protocol/relay';
import type { HistoryStore } from '../store/HistoryStore';
import type { Clock } from '../sync/Clock';
import type { FetchResult, SyncEngine, SyncTuning } from '../sync/SyncEngine';
import type { PeerjsClientOptions } from '../transport/peerjsOptions';
import type { PeerTransport } from '../transport/PeerTransport';

// ---- reason codes ----

/**
 * Why something the client did failed, on top of the relay's own codes (`RelayReason`, SPEC.md E1).
 * Stable: switch on them, never on message text.
 */
export const ClientReason = {
  /** Post text longer than the relay's `limits.maxTextLength` (checked before sending). */
  TOO_LONG: 'TOO_LONG',
  /** Post with empty (whitespace-only) text and no attachment. */
  EMPTY: 'EMPTY',
  /** Channel not in the relay's channel list. */
  UNKNOWN_CHANNEL: 'UNKNOWN_CHANNEL',
  /** More unconfirmed posts than `MAX_OUTBOX` are waiting. */
  OUTBOX_FULL: 'OUTBOX_FULL',
  /** The relay offered a key other than the pinned one; the client refused to log in (CL4). */
  RELAY_KEY_CHANGED: 'RELAY_KEY_CHANGED',
  /** The socket dropped or could not be opened (transient: the client retries by itself). */
  CONNECTION_LOST: 'CONNECTION_LOST',
  /** No session is running, so no peer can be reached (attachments). */
  NOT_ONLINE: 'NOT_ONLINE',
  /** The PeerJS Peer or transport of a session could not be set up (retried with backoff). */
  SESSION_FAILED: 'SESSION_FAILED',
  /** The client was stopped. */
  STOPPED: 'STOPPED',
  /** An error without a code (a bug, or a store that failed). */
  INTERNAL: 'INTERNAL',
} as const;
export type ClientReason = (typeof ClientReason)[keyof typeof ClientReason];

/** Every code a `ClientError` can carry: the relay's (from a refusal) or the client's own. */
export type ErrorReason = RelayReason | ClientReason;

/** One error, as a value (STYLE 6). */
export interface ClientError {
  readonly reason: ErrorReason;
  /** For humans and logs; never matched on. */
  readonly message: string;
  /** Where it happened: 'login', 'post', 'session', 'sync', 'store', 'events', 'presence', 'attachment'. */
  readonly where: string;
  /** `clock.now()` when it happened. */
  readonly at: number;
}

// ---- connection (CL2, CL4) ----

/**
 * What the relay connection is doing, always one of these (SPEC.md CL2):
 * - `connecting`: no login yet since start(); `nextAttemptAt` is set while waiting to retry.
 * - `online`: logged in; posts go out, the events stream runs. (Peers may still be coming up:
 *   `session.peerOpen`.)
 * - `reconnecting`: was online, lost the socket; `nextAttemptAt` = when the next try starts
 *   (`null` while a try is under way), so a UI can say "reconnecting in N s".
 * - `offline`: not trying: not started, stopped, or the relay refused the login for a reason that will not
 *   change by itself (`error`: PROTOCOL_MISMATCH, BAD_KEY, BAD_SIGNATURE, BAD_INPUT). `reconnect()` tries again.
 * - `relay-key-changed`: the relay offered another key than the pinned one. Blocking: the client signed
 *   nothing for it and does not retry until `trustRelayKey(offered)` (CL4).
 */
export type ConnectionState =
  | { readonly state: 'connecting'; readonly attempt: number; readonly nextAttemptAt: number | null; readonly lastError: ClientError | null }
  | { readonly state: 'online'; readonly since: number }
  | { readonly state: 'reconnecting'; readonly attempt: number; readonly nextAttemptAt: number | null; readonly lastError: ClientError | null }
  | { readonly state: 'offline'; readonly error: ClientError | null }
  | {
      readonly state: 'relay-key-changed';
      /** The key pinned at first contact (base64url) and its fingerprint (`XXXX-XXXX`). */
      readonly pinned: string;
      readonly pinnedFingerprint: string;
      /** The key the relay offered now. */
      readonly offered: string;
      readonly offeredFingerprint: string;
    };

// ---- presence (CL6) ----

/** One online session, as presence reports it, told apart for a member list. */
export interface PresenceEntry extends PresenceUser {
  /** This very session (this tab / this process). */
  readonly isSelf: boolean;
  /** Same key as this client but another session (another tab or device). */
  readonly isSameUser: boolean;
}

// ---- the PeerJS session (CL3) ----

export interface SessionState {
  /** This login's relay-minted PeerJS id; null before the first login. A new one after every login. */
  readonly peerId: string | null;
  /** This login's presence session id. */
  readonly sessionId: string | null;
  /** The Peer's signalling socket is open and the transport is up: other peers can reach us. */
  readonly peerOpen: boolean;
  /** Logins so far (1 + reconnects). */
  readonly logins: number;
}

// ---- sync (CL7) ----

/**
 * A hole in a channel's `prev` chain that no peer could fill (SPEC.md CL7): `beforeId` is held, the
 * envelope it links back to (`missingId`, in the same epoch) is not, and a catch-up has ended since it was
 * seen. The UI shows "messages missing" just above `beforeId`. Removed once `missingId` is stored (then the
 * chain may show the next hole further back).
 */
export interface HistoryGap {
  readonly channel: string;
  readonly epoch: string;
  /** The held envelope whose `prev` is missing. */
  readonly beforeId: string;
  /** The id `beforeId`'s `prev` names; not held. */
  readonly missingId: string;
}

/**
 * A channel's catch-up state. Catch-up reconciles the whole history at once (not per channel), so while
 * it runs every channel is `syncing` with the same `peers`; `received` counts what this channel got.
 */
export interface ChannelSyncState {
  /** `idle`: never synced (no peer online yet); `syncing`: a catch-up runs; `synced`: the last one ended. */
  readonly state: 'idle' | 'syncing' | 'synced';
  /** Peers the running catch-up reconciles with (0 unless syncing). */
  readonly peers: number;
  /** Envelopes of this channel stored from peers during the running (or last) catch-up. */
  readonly received: number;
  /** When the last catch-up ended (`clock.now()`), null before the first. */
  readonly lastSyncedAt: number | null;
  /** Holes no peer could fill, newest first (at most MAX_GAPS_PER_CHANNEL). */
  readonly gaps: readonly HistoryGap[];
}

// ---- the outbox (CL5) ----

/**
 * One post of this client that is not confirmed yet, or failed. Confirmed posts leave the outbox once
 * their envelope is stored (the UI then finds it in the store by `post.clientId`).
 */
export interface OutgoingPost {
  /** The idempotency key (SPEC.md R4): a retry carries the same one and gets the same envelope. */
  readonly clientId: string;
  readonly channel: string;
  readonly text: string;
  readonly replyTo: string | null;
  readonly attachments: readonly SignedAttachment[];
  /** `clock.now()` when post() was called. */
  readonly createdAt: number;
  /**
   * `sending`: on its way, or waiting for the next login (the socket dropped: it is resent by itself,
   * same clientId); `failed`: the relay refused it or it failed a local check (`error`); `retry()` sends it again.
   */
  readonly status: 'sending' | 'failed';
  /** Sends so far (the automatic resend after a reconnect counts). */
  readonly attempts: number;
  readonly error: ClientError | null;
}

export type PostResult = { readonly ok: true; readonly envelope: Envelope } | { readonly ok: false; readonly error: ClientError };

export interface PendingPost {
  /** The record as it is now (also in the snapshot's `outbox`). */
  readonly record: OutgoingPost;
  readonly clientId: string;
  /**
   * Settles once: the relay's envelope (stored before this resolves), or the failure. Never rejects.
   * A post that failed and is retried later settles its retry's own `result`, not this one.
   */
  readonly result: Promise<PostResult>;
}

// ---- the snapshot (CL1) ----

/** Everything a UI shows about the client, immutable; a new object on every change. */
export interface ClientSnapshot {
  readonly connection: ConnectionState;
  /** This identity. */
  readonly self: {
    readonly publicKey: string;
    readonly fingerprint: string;
    readonly name: string;
    readonly kind: ClientKind;
  };
  /** The relay as last seen: its ServerInfo from the latest login (null before the first). */
  readonly relay: ServerInfo | null;
  /** The pinned relay key (from options, or pinned at first contact); null until known. */
  readonly pinnedRelayKey: string | null;
  /** The relay's channels (empty before the first login). */
  readonly channels: readonly Channel[];
  readonly session: SessionState;
  /** Online sessions, this one included (`isSelf`), in presence order. Empty while not online. */
  readonly presence: readonly PresenceEntry[];
  /** Open peer-to-peer links. */
  readonly links: number;
  /** Per channel id (every channel of `channels`). */
  readonly sync: Readonly<Record<string, ChannelSyncState>>;
  /** Posts not confirmed yet, and failed ones, oldest first. */
  readonly outbox: readonly OutgoingPost[];
  /** The latest errors, newest last (at most MAX_ERRORS). */
  readonly errors: readonly ClientError[];
}

/** Events that are not state. */
export interface ClientEvents {
  /**
   * Verified envelopes were stored: from the relay's stream, from peers (catch-up), or a confirmed post
   * of ours. The UI re-reads those channels from the store. `ids` are new to the store.
   */
  stored: { readonly ids: readonly string[]; readonly channels: readonly string[]; readonly from: 'relay' | 'peer' | 'self' };
  /** Every error, as it happens (also kept in the snapshot's `errors`). */
  error: ClientError;
}

// ---- options (injected platform) ----

/** Creates this login's PeerJS Peer: `new Peer(peerId, options)` in a browser, wrtc in Node. */
export type CreatePeer = (args: {
  /** The relay-minted id of this login. */
  peerId: string;
  /** Built from the relay's ServerInfo and this login's token (never PeerJS's public defaults, T7). */
  options: PeerjsClientOptions;
  /** The relay origin the client was given. */
  relayUrl: string;
  login: LoginOutput;
}) => Peer | Promise<Peer>;

/** A WebSocket constructor: the browser's `WebSocket`, or `ws` in Node 20. */
export type WebSocketCtor = new (url: string, protocols?: string | string[]) => WebSocket;

export interface PeerchatClientOptions {
  /** The relay's origin, e.g. `location.origin` or `http://127.0.0.1:8080`; tRPC is at `<origin>/trpc`. */
  relayUrl: string;
  /** 32-byte Ed25519 seed of this identity. */
  secretKey: Uint8Array;
  /** Display name in presence (sent trimmed, L4). */
  name: string;
  /** 'browser' for people; 'virtual' serves last and forwards no gossip (G7). @default 'browser' */
  kind?: ClientKind;
  /** Where verified history is kept. The caller owns it (the client never closes it). */
  store: HistoryStore;
  backend: Ed25519Backend;
  createPeer: CreatePeer;
  /** @default globalThis.WebSocket */
  WebSocket?: WebSocketCtor;
  /**
   * The relay key trusted from an earlier visit (base64url). A relay offering another key is refused
   * before anything is signed (state `relay-key-changed`). @default undefined: the first key seen is pinned
   */
  pinnedRelayKey?: string;
  /**
   * Called once when a key is pinned at first contact, or re-pinned by `trustRelayKey`, before the login
   * is signed: the app persists it and passes it as `pinnedRelayKey` next time. A rejection is reported
   * (`error`) and the login goes ahead (the pin holds for this run).
   */
  onRelayKeyPinned?: (relayKey: string) => void | Promise<void>;
  /** Channels whose live messages are received. @default every channel */
  channels?: string[];
  /** Sync engine tuning (one engine for the client's life, CL3). */
  sync?: SyncTuning & { seed?: number };
  /** WebRTC links the transport may hold (open plus opening). @default sync.maxLinks (32) + 8 for refusals in flight */
  maxLinks?: number;
  /** Connect timeout of the peer transport. @default 20_000 */
  connectTimeoutMs?: number;
  /**
   * Wraps each session's raw transport before the engine sees it: platform quirks (Node's wrtc), test
   * adversaries and spies.
   */
  wrapTransport?: (t: PeerTransport) => PeerTransport;
  /** Relay reconnect tuning: first delay scale (full jitter, x2 per attempt). @default 500 */
  retryBaseMs?: number;
  /** @default 30_000 */
  retryMaxMs?: number;
  /** Least wait after a relay restart (close 1012), before jitter. @default 2_000 */
  restartDelayMs?: number;
  /** Client-side PING interval on the relay socket. @default 20_000; 0 disables */
  keepAliveMs?: number;
  /** First delay before retrying a failed session setup or a lost signalling socket (full jitter, x2). @default 500 */
  sessionRetryBaseMs?: number;
  /** @default 30_000 */
  sessionRetryMaxMs?: number;
  /** Time (SPEC.md G12). @default systemClock */
  clock?: Clock;
  /** Uniform [0, 1): reconnect jitter. @default Math.random */
  random?: () => number;
  /** Random bytes: client ids. @default crypto.getRandomValues */
  randomBytes?: (n: number) => Uint8Array;
  /** Structured log of notable events (login, session, errors). @default silent */
  log?: (event: string, fields?: Record<string, unknown>) => void;
}

/** Unconfirmed posts held at most; beyond, post() fails OUTBOX_FULL (a person never gets there). */
export const MAX_OUTBOX = 200;
/** Errors kept in the snapshot. */
export const MAX_ERRORS = 20;
/** Gaps listed per channel (the newest ones; older holes show once these are filled). */
export const MAX_GAPS_PER_CHANNEL = 50;

type Listener = () => void;

/**
 * The client. `new PeerchatClient(opts)` does nothing until `start()`. Every resource it makes (relay
 * socket, subscriptions, Peers, transports, timers, the engine) is ended by `stop()` (STYLE 10); the store
 * is the caller's.
 */
export class PeerchatClient {
  /** This identity's public key (base64url); known after `start()` resolved. */
  get publicKey(): string {
    throw new Error('not implemented');
  }

  constructor(opts: PeerchatClientOptions) {
    void opts;
    throw new Error('not implemented');
  }

  /**
   * Starts connecting (state `connecting`) and resolves at once, without waiting for the relay: a UI shows
   * the stored history while the relay is down. Loads the engine's index when the relay key is already
   * pinned. Idempotent.
   */
  async start(): Promise<void> {
    throw new Error('not implemented');
  }

  /** Ends everything the client owns (idempotent). Pending posts settle with STOPPED. */
  async stop(): Promise<void> {
    throw new Error('not implemented');
  }

  /** The current state; the same object until something changes (for `useSyncExternalStore`). */
  getSnapshot = (): ClientSnapshot => {
    throw new Error('not implemented');
  };

  /** Calls `listener` (no arguments) after every snapshot change; returns the unsubscribe. */
  subscribe = (listener: Listener): (() => void) => {
    void listener;
    throw new Error('not implemented');
  };

  /** Event handlers; returns the unsubscribe. A throwing handler is contained. */
  on<K extends keyof ClientEvents>(event: K, handler: (e: ClientEvents[K]) => void): () => void {
    void event;
    void handler;
    throw new Error('not implemented');
  }

  /**
   * Signs and sends a post. Returns at once with the outbox record (status `sending`, a fresh clientId);
   * `result` settles with the envelope (after it is stored) or the reason. Local checks (EMPTY, TOO_LONG,
   * UNKNOWN_CHANNEL once the channels are known, OUTBOX_FULL) fail it without sending. A post cut off by a
   * dropped socket stays `sending` and is resent after the next login with the same clientId (CL5).
   */
  post(channel: string, text: string, opts: { replyTo?: string | null; attachments?: SignedAttachment[] } = {}): PendingPost {
    void channel;
    void text;
    void opts;
    throw new Error('not implemented');
  }

  /** Sends a failed post again, same clientId and signature (the relay answers with the same envelope if it had it). */
  retry(clientId: string): PendingPost | null {
    void clientId;
    throw new Error('not implemented');
  }

  /** Drops a failed post from the outbox. */
  discard(clientId: string): void {
    void clientId;
    throw new Error('not implemented');
  }

  /**
   * After `relay-key-changed`: the user decided to trust `offered`. Pins it (calls `onRelayKeyPinned`),
   * rebuilds the engine for the new key (envelopes are verified against the key they were signed by) and
   * connects again.
   */
  async trustRelayKey(offered: string): Promise<void> {
    void offered;
    throw new Error('not implemented');
  }

  /** From `offline` (or while waiting in `reconnecting`/`connecting`): try now. */
  reconnect(): void {
    throw new Error('not implemented');
  }

  /** Sets this session's voice room in presence (part 2). */
  async setVoiceRoom(room: string | null): Promise<{ ok: true } | { ok: false; error: ClientError }> {
    void room;
    throw new Error('not implemented');
  }

  /**
   * Has the relay sign an attachment's metadata (it sees digests, never bytes), stores the content and
   * offers it to peers (G6). Post a message carrying the result to announce it.
   */
  async publishAttachment(
    bytes: Uint8Array,
    meta: Pick<AttachmentMeta, 'name' | 'mime'> & Partial<AttachmentMeta>,
  ): Promise<{ ok: true; attachment: SignedAttachment } | { ok: false; error: ClientError }> {
    void bytes;
    void meta;
    throw new Error('not implemented');
  }

  /** An attachment's bytes, from the store or fetched from peers now (its metadata must be stored). */
  fetchAttachment(id: string, opts: { signal?: AbortSignal } = {}): Promise<FetchResult> {
    void id;
    void opts;
    throw new Error('not implemented');
  }

  /** Asks peers for what this side lacks now (also done after every login). */
  syncNow(): void {
    throw new Error('not implemented');
  }

  // ---- for shells and tests (not for UI components) ----

  /** The sync engine (null until the relay key is known). One for the client's life, across logins. */
  get engine(): SyncEngine | null {
    throw new Error('not implemented');
  }

  /** The running session's PeerJS Peer (null between sessions). */
  get peer(): Peer | null {
    throw new Error('not implemented');
  }

  /** What is still held: sockets, subscriptions, Peers, transports' resources, timers. 0 after stop(). */
  liveResources(): number {
    throw new Error('not implemented');
  }
}
