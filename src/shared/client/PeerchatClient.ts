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
// app codes against. Changes are listed here (additions only so far).
//   - ClientError.cause (optional): the original error, for logs and shells.
//   - getters for shells and tests: transport, relay, listenerCount.
//   - ChannelSyncState.gaps are listed whenever no catch-up runs (not only after one ended).
//   - voice (SPEC.md VR1-VR8): the `voiceMedia` option, `client.voice` (join/leave/mute/deafen/microphone)
//     and the snapshot's `voice`.
import type { DataConnection, Peer } from 'peerjs';
import type { Unsubscribable } from '@trpc/server/observable';
import type { Ed25519Backend } from '../crypto/ed25519';
import { fingerprint } from '../crypto/signing';
import { fromB64url, toB64url } from '../encoding';
import {
  type AttachmentMeta,
  type Channel,
  type ClientKind,
  type Envelope,
  LIMITS,
  type LoginOutput,
  type Post,
  type PresenceCounts,
  type PresenceUser,
  type RelayEvent,
  RelayReason,
  type SamplePeer,
  comparePresence,
  type ServerInfo,
  type SignedAttachment,
  parseEnvelopeBatch,
} from '../protocol/relay';
import { type EnvelopeVerifier, contentDigests, signPost } from '../protocol/signed';
import { type HistoryStore, isStoreQuotaError } from '../store/HistoryStore';
import { type Clock, type TimerHandle, systemClock } from '../sync/Clock';
import { Emitter } from '../sync/Emitter';
import { type FetchResult, SyncEngine, type SyncTuning } from '../sync/SyncEngine';
import { type PeerjsClientOptions, peerjsOptions } from '../transport/peerjsOptions';
import type { RelaySignalChannel } from '../transport/relaySignalling';
import { type PeerjsTransport, createPeerjsTransport } from '../transport/peerjsTransport';
import type { PeerTransport } from '../transport/PeerTransport';
import { GapTracker } from './GapTracker';
import { type RelayConnection, RelayKeyChangedError, createRelayConnection, relayReasonOf } from './relayConnection';
import { peerjsCalls } from './voice/peerjsCalls';
import { VoiceController, type VoiceMedia, type VoiceSnapshot } from './voice/VoiceController';
import { SessionTransport } from './SessionTransport';

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
  /**
   * The store is out of room (the browser's storage quota, SPEC.md H16): what arrived was not kept. An own
   * post that the relay accepted stays in the outbox, failed with this reason, until `retry` stores it.
   */
  QUOTA_EXCEEDED: 'QUOTA_EXCEEDED',
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
  /** The original error, if any (e.g. the TRPCClientError of a refusal), for logs and shells. */
  readonly cause?: unknown;
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

/**
 * The member list as the relay shows it (SPEC.md P9): counts of everyone online, and which page of them
 * `presence` holds. A small community (online <= pageSize) fits on page 0: `presence` is everyone.
 */
export interface MembersState {
  /** Online sessions by kind (people, virtual clients), throttled by the relay (P8). */
  readonly online: PresenceCounts;
  /** The page shown: sessions [page x pageSize, page x pageSize + pageSize) in comparePresence order. */
  readonly page: number;
  readonly pageSize: number;
  /** How many sessions of the page are in `presence` (watched ones off the page are not counted). */
  readonly shown: number;
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
 * envelope it links back to (`missingId`, in the same epoch) is not, and no catch-up is running (one that
 * runs may still fill it). The UI shows "messages missing" just above `beforeId`. Removed once `missingId` is stored (then the
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
  /**
   * Online sessions the relay shows us (SPEC.md P9-P10): the members page and the sessions of watched keys,
   * this one included (`isSelf`), in comparePresence order. Empty while not online.
   */
  readonly presence: readonly PresenceEntry[];
  /** Counts and the page (P9). */
  readonly members: MembersState;
  /** Open peer-to-peer links. */
  readonly links: number;
  /** Per channel id (every channel of `channels`). */
  readonly sync: Readonly<Record<string, ChannelSyncState>>;
  /** Posts not confirmed yet, and failed ones, oldest first. */
  readonly outbox: readonly OutgoingPost[];
  /** The latest errors, newest last (at most MAX_ERRORS). */
  readonly errors: readonly ClientError[];
  /** Voice rooms and our part in one (SPEC.md VR1-VR8). */
  readonly voice: VoiceSnapshot;
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
  /**
   * Verified chunks of an attachment arrived from a peer (the engine's `progress`, G8): for a progress bar.
   * Emitted per chunk; a view filters by `id`.
   */
  attachmentProgress: { readonly id: string; readonly receivedBytes: number; readonly totalBytes: number };
  /** An attachment's bytes were fetched from a peer, checked and stored: a view waiting for it reads them now. */
  attachmentStored: { readonly id: string };
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
  /**
   * How the engine verifies batches of envelopes (G2), e.g. over a pool of Web Workers.
   * @default `verifyEnvelopes` over `backend`, in this thread
   */
  verifyEnvelopes?: EnvelopeVerifier;
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
  /**
   * The platform's audio for voice rooms (the browser shell's getUserMedia/<audio>/AnalyserNode).
   * @default null: rooms are watched (kind 'browser') but `voice.join` fails NO_MEDIA
   */
  voiceMedia?: VoiceMedia;
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

/** Automatic resends of one post after lost sockets before it counts as failed (CONNECTION_LOST). */
export const MAX_AUTO_RESENDS = 5;
/** Refusals of a post's relay binding or age (SPEC.md M6): a user's retry signs it anew, for now. */
const RESIGN_REASONS: ReadonlySet<string> = new Set(['STALE_POST', 'CLOCK_SKEW', 'WRONG_RELAY']);
/** Envelopes from the relay held while no engine exists yet (before the relay key is known); beyond, oldest dropped. */
const MAX_PENDING_ENVELOPES = 10_000;
/** Newest envelopes per channel examined for holes at the first login (older holes show as catch-up reaches them). */
const GAP_SCAN_LIMIT = 1_000;

interface Session {
  login: LoginOutput;
  peer: Peer;
  transport: PeerjsTransport;
  /** Signalling re-registrations tried since the socket was last open (backoff). */
  signallingAttempts: number;
  signallingTimer: TimerHandle | null;
  /** Removes the listeners the client put on `peer`. */
  off: () => void;
}

interface OutboxEntry {
  record: OutgoingPost;
  /** Signed once: every resend carries the very same post, so the relay answers with the same envelope (R4). */
  signed: Promise<Post> | null;
  settle: (r: PostResult) => void;
  result: Promise<PostResult>;
  sending: boolean;
  /** Waiting for the next login to be resent. */
  waiting: boolean;
  autoResends: number;
  /**
   * The relay's envelope for this post when storing it failed (QUOTA_EXCEEDED): a retry stores this one
   * instead of posting again (after R4's 10 minutes the relay would no longer know the post).
   */
  relayed?: Envelope;
}

interface ChannelCounters {
  received: number;
  lastSyncedAt: number | null;
}

/** Distinct unavailable peers logged per session (CL8); beyond, they are not logged at all. */
export const MAX_UNAVAILABLE_LOGGED = 256;

/** Quota errors are reported at most once per this many ms (SPEC.md H16): a full store fails every write. */
export const QUOTA_REPORT_MS = 5_000;

const FRESH_STATE: ConnectionState = { state: 'offline', error: null };

/**
 * This login's PeerJS signalling over the relay socket the client holds (SPEC.md W11): the Peer's server
 * connection is a `signal.connect` stream, its messages `signal.send` batches.
 */
function relaySignalChannel(conn: RelayConnection): RelaySignalChannel {
  return {
    open(peerId, on) {
      const sub = conn.client.signal.connect.subscribe(
        { peerId },
        {
          onData: (text) => on.message(text),
          onError: (err) => on.end(String(err)),
          onComplete: () => on.end('the relay ended the signalling stream'),
          onStopped: () => on.end('the relay ended the signalling stream'),
        },
      );
      return { close: () => sub.unsubscribe() };
    },
    send: (texts) => conn.client.signal.send.mutate(texts),
  };
}

/**
 * The client. `new PeerchatClient(opts)` does nothing until `start()`. Every resource it makes (relay
 * socket, subscriptions, Peers, transports, timers, the engine) is ended by `stop()` (STYLE 10); the store
 * is the caller's.
 */
export class PeerchatClient {
  private readonly opts: PeerchatClientOptions;
  private readonly kind: ClientKind;
  private readonly clock: Clock;
  private readonly random: () => number;
  private readonly randomBytes: (n: number) => Uint8Array;
  private readonly log: (event: string, fields?: Record<string, unknown>) => void;
  private key = '';
  private keyFingerprint = '';
  /** Resolves once start() has derived the public key: a post made before that waits for it. */
  private readonly keyReady: Promise<void>;
  private keyKnown!: () => void;
  private started = false;
  private stopped = false;

  // relay
  private conn: RelayConnection | null = null;
  private connGen = 0;
  private eventsSub: Unsubscribable | null = null;
  private voiceSub: Unsubscribable | null = null;
  /** The login whose connection carries `voiceSub`: one watch per login (VR4). */
  private voiceWatchLogin = -1;
  private readonly voiceCtl: VoiceController;
  private pinned: string | null;
  private connection: ConnectionState = FRESH_STATE;
  private loginOut: LoginOutput | null = null;
  private logins = 0;
  /** What the presence stream shows (SPEC.md P9-P11); cleared while not online. */
  private pageUsers = new Map<string, PresenceUser>();
  private watchedUsers = new Map<string, PresenceUser>();
  private online: PresenceCounts = { browser: 0, virtual: 0 };
  /** The relay's peer sample: the engine's roster (P11). */
  private peers: readonly SamplePeer[] = [];
  /** The view we ask for, sent after every login and on change (presence.view). */
  private view = { page: 0, watch: [] as string[] };
  private viewSending = false;
  private viewAgain: { resample: boolean } | null = null;

  // engine and sessions
  private eng: SyncEngine | null = null;
  private facade: SessionTransport | null = null;
  private pendingEnvs: Envelope[] = [];
  private current: Session | null = null;
  private lastTransport: PeerjsTransport | null = null;
  private building: Peer | null = null;
  private sessionGen = 0;
  private sessionAbort = new AbortController();
  private chain: Promise<void> = Promise.resolve();
  private readonly timers = new Set<TimerHandle>();

  // what the UI sees
  private readonly outbox = new Map<string, OutboxEntry>();
  private readonly selfIds = new Set<string>();
  private errors: ClientError[] = [];
  /** Catch-ups running now, and started ever (to tell whether a roster change started one). */
  private catchUps = 0;
  private catchUpStarts = 0;
  private catchUpPeers = 0;
  private readonly counters = new Map<string, ChannelCounters>();
  private gaps: GapTracker;
  private gapScanDone = false;
  private readonly listeners = new Set<Listener>();
  private readonly events = new Emitter<ClientEvents>();
  private offQuota: (() => void) | null = null;
  private lastQuotaReport = -Infinity;
  private snapshot: ClientSnapshot | null = null;
  /** The last snapshot's presence, kept while it is unchanged (CL1). */
  private lastPresence: readonly PresenceEntry[] = [];
  private notifyQueued = false;

  constructor(opts: PeerchatClientOptions) {
    this.opts = opts;
    this.kind = opts.kind ?? 'browser';
    this.clock = opts.clock ?? systemClock;
    this.random = opts.random ?? Math.random;
    this.randomBytes = opts.randomBytes ?? ((n) => crypto.getRandomValues(new Uint8Array(n)));
    this.log = opts.log ?? (() => {});
    this.pinned = opts.pinnedRelayKey ?? null;
    this.gaps = new GapTracker(opts.store, () => this.horizon());
    this.voiceCtl = new VoiceController({
      clock: this.clock,
      media: opts.voiceMedia ?? null,
      changed: () => this.changed(),
      log: this.log,
      reasonOf: relayReasonOf,
    });
    this.keyReady = new Promise((resolve) => {
      this.keyKnown = resolve;
    });
  }

  /** This identity's public key (base64url); known after `start()` resolved. */
  get publicKey(): string {
    return this.key;
  }

  /**
   * Starts connecting (state `connecting`) and resolves at once, without waiting for the relay: a UI shows
   * the stored history while the relay is down. Loads the engine's index when the relay key is already
   * pinned. Idempotent.
   */
  async start(): Promise<void> {
    if (this.started || this.stopped) return;
    this.started = true;
    this.offQuota = this.opts.store.onQuota?.((err) => this.quotaExceeded(err)) ?? null;
    const pub = await this.opts.backend.publicKeyOf(this.opts.secretKey);
    this.key = toB64url(pub);
    this.keyFingerprint = fingerprint(pub);
    this.keyKnown();
    if (this.stopped) return;
    if (this.pinned) this.ensureEngine(this.pinned);
    this.setConnection({ state: 'connecting', attempt: 0, nextAttemptAt: null, lastError: null });
    await this.openConnection();
  }

  /** Ends everything the client owns (idempotent). Pending posts settle with STOPPED. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    this.offQuota?.();
    this.offQuota = null;
    this.keyKnown(); // a post waiting for start() gives up now
    this.connGen++;
    this.bumpSession();
    for (const t of this.timers) this.clock.clearTimeout(t);
    this.timers.clear();
    this.eventsSub?.unsubscribe();
    this.eventsSub = null;
    this.voiceSub?.unsubscribe();
    this.voiceSub = null;
    this.voiceCtl.stop();
    this.building?.destroy();
    await this.chain;
    await this.closeSession();
    await this.eng?.stop();
    await this.facade?.close();
    const conn = this.conn;
    this.conn = null;
    await conn?.close();
    this.clearPresence();
    this.pendingEnvs = [];
    const stopped = this.error(ClientReason.STOPPED, 'the client was stopped', 'post', undefined, false);
    for (const entry of this.outbox.values()) entry.settle({ ok: false, error: stopped });
    this.connection = { state: 'offline', error: null };
    this.changed();
  }

  /** The current state; the same object until something changes (for `useSyncExternalStore`). */
  getSnapshot = (): ClientSnapshot => {
    this.snapshot ??= this.buildSnapshot();
    return this.snapshot;
  };

  /** Calls `listener` (no arguments) after every snapshot change; returns the unsubscribe. */
  subscribe = (listener: Listener): (() => void) => {
    this.listeners.add(listener);
    return () => {
      this.listeners.delete(listener);
    };
  };

  /** Event handlers; returns the unsubscribe. A throwing handler is contained. */
  on<K extends keyof ClientEvents>(event: K, handler: (e: ClientEvents[K]) => void): () => void {
    return this.events.on(event, handler);
  }

  /**
   * Signs and sends a post. Returns at once with the outbox record (status `sending`, a fresh clientId);
   * `result` settles with the envelope (after it is stored) or the reason. Local checks (EMPTY, TOO_LONG,
   * UNKNOWN_CHANNEL once the channels are known, OUTBOX_FULL) fail it without sending. A post cut off by a
   * dropped socket stays `sending` and is resent after the next login with the same clientId (CL5).
   */
  post(channel: string, text: string, opts: { replyTo?: string | null; attachments?: SignedAttachment[] } = {}): PendingPost {
    const clientId = `p${toB64url(this.randomBytes(15))}`;
    const record: OutgoingPost = {
      clientId,
      channel,
      text,
      replyTo: opts.replyTo ?? null,
      attachments: opts.attachments ?? [],
      createdAt: this.clock.now(),
      status: 'sending',
      attempts: 0,
      error: null,
    };
    const entry = this.newEntry(record);
    const refusal = this.checkPost(record);
    if (refusal?.reason === ClientReason.OUTBOX_FULL) {
      // Not kept: the outbox is bounded, and this one never left.
      entry.record = { ...record, status: 'failed', error: refusal };
      entry.settle({ ok: false, error: refusal });
      return this.pendingOf(entry);
    }
    this.outbox.set(clientId, entry);
    if (refusal) this.fail(entry, refusal);
    else void this.send(entry);
    this.changed();
    return this.pendingOf(entry);
  }

  /** Sends a failed post again, same clientId and signature (the relay answers with the same envelope if it had it). */
  retry(clientId: string): PendingPost | null {
    const entry = this.outbox.get(clientId);
    if (!entry) return null;
    if (entry.record.status === 'failed') {
      const fresh = this.newEntry(entry.record);
      if (entry.relayed) {
        // The relay has it already: only storing failed. Store that envelope; nothing is posted again.
        fresh.signed = entry.signed;
        fresh.relayed = entry.relayed;
        fresh.sending = true;
        fresh.record = { ...fresh.record, status: 'sending' };
        this.outbox.set(clientId, fresh);
        void this.keep(fresh, entry.relayed);
        this.changed();
        return this.pendingOf(fresh);
      }
      const refusal = this.checkPost(entry.record, true);
      // Refused for its relay binding or its age (M6): signed anew for now; otherwise the same bytes (R4).
      const stale = entry.record.error && RESIGN_REASONS.has(entry.record.error.reason);
      fresh.signed = stale ? null : entry.signed;
      this.outbox.set(clientId, fresh);
      if (refusal) this.fail(fresh, refusal);
      else void this.send(fresh);
      this.changed();
      return this.pendingOf(fresh);
    }
    // Still sending (maybe waiting for a login): the resend after the next login is already due.
    if (entry.waiting && !entry.sending && this.conn && this.connection.state === 'online') void this.send(entry);
    return this.pendingOf(entry);
  }

  /** Drops a failed post from the outbox. */
  discard(clientId: string): void {
    const entry = this.outbox.get(clientId);
    if (!entry || entry.record.status !== 'failed') return;
    this.outbox.delete(clientId);
    this.changed();
  }

  /**
   * After `relay-key-changed`: the user decided to trust `offered`. Pins it (calls `onRelayKeyPinned`),
   * rebuilds the engine for the new key (envelopes are verified against the key they were signed by) and
   * connects again.
   */
  async trustRelayKey(offered: string): Promise<void> {
    const c = this.connection;
    if (this.stopped || c.state !== 'relay-key-changed' || c.offered !== offered) return;
    try {
      await this.opts.onRelayKeyPinned?.(offered);
    } catch (err) {
      this.error(ClientReason.INTERNAL, `persisting the relay key failed: ${String(err)}`, 'login', err);
    }
    if (this.stopped) return;
    this.pinned = offered;
    // The engine verifies against one key: a new key is a new engine (the one time it reloads its index).
    this.bumpSession();
    await this.chain;
    await this.closeSession();
    await this.eng?.stop();
    await this.facade?.close();
    this.eng = null;
    this.facade = null;
    this.catchUps = 0;
    this.ensureEngine(offered);
    this.setConnection({ state: 'connecting', attempt: 0, nextAttemptAt: null, lastError: null });
    await this.openConnection();
  }

  /** From `offline` (or while waiting in `reconnecting`/`connecting`): try now. */
  reconnect(): void {
    const s = this.connection.state;
    if (!this.started || this.stopped || s === 'online' || s === 'relay-key-changed') return;
    if (s === 'offline') this.setConnection({ state: 'connecting', attempt: 0, nextAttemptAt: null, lastError: null });
    void this.openConnection();
  }

  /** Sets this session's voice room in presence (part 2). */
  async setVoiceRoom(room: string | null): Promise<{ ok: true } | { ok: false; error: ClientError }> {
    const conn = this.conn;
    if (!conn || this.connection.state !== 'online') return { ok: false, error: this.error(ClientReason.CONNECTION_LOST, 'not online', 'presence') };
    try {
      await conn.client.presence.update.mutate({ voiceRoom: room });
      return { ok: true };
    } catch (err) {
      return { ok: false, error: this.errorOf(err, 'presence') };
    }
  }

  /**
   * Has the relay sign an attachment's metadata (it sees digests, never bytes), stores the content and
   * offers it to peers (G6). Post a message carrying the result to announce it.
   */
  async publishAttachment(
    bytes: Uint8Array,
    meta: Pick<AttachmentMeta, 'name' | 'mime'> & Partial<AttachmentMeta>,
  ): Promise<{ ok: true; attachment: SignedAttachment } | { ok: false; error: ClientError }> {
    const conn = this.conn;
    const engine = this.eng;
    if (!conn || !engine) return { ok: false, error: this.error(ClientReason.NOT_ONLINE, 'not connected', 'attachment') };
    // The relay's own cap from its info (A5): refused before hashing the content, as the relay would.
    const cap = this.loginOut?.info.limits.maxAttachmentBytes ?? LIMITS.maxAttachmentBytes;
    if (bytes.length > cap) {
      return { ok: false, error: this.error(RelayReason.TOO_LARGE, `${bytes.length} bytes; this relay takes attachments up to ${cap}`, 'attachment') };
    }
    let signed: SignedAttachment;
    try {
      signed = await conn.client.attachment.mint.mutate({ ...meta, ...contentDigests(bytes) });
    } catch (err) {
      return { ok: false, error: this.errorOf(err, 'attachment') };
    }
    let r: Awaited<ReturnType<SyncEngine['publishAttachment']>>;
    try {
      r = await engine.publishAttachment(signed, bytes);
    } catch (err) {
      // The store is full (H16; already reported by its quota listener) or failed: a value, never a throw.
      const quota = isStoreQuotaError(err);
      if (!quota) this.storeFailed(err, 'attachment');
      else if (!this.opts.store.onQuota) this.quotaExceeded(err);
      const reason = quota ? ClientReason.QUOTA_EXCEEDED : ClientReason.INTERNAL;
      return { ok: false, error: this.error(reason, quota ? 'the storage is full: the file was not kept' : String(err), 'attachment', err, false) };
    }
    if (!r.ok) return { ok: false, error: this.error(ClientReason.INTERNAL, `publish failed: ${r.reason}`, 'attachment') };
    return { ok: true, attachment: signed };
  }

  /** An attachment's bytes, from the store or fetched from peers now (its metadata must be stored). */
  fetchAttachment(id: string, opts: { signal?: AbortSignal } = {}): Promise<FetchResult> {
    const engine = this.eng;
    if (!engine) return Promise.resolve({ ok: false, reason: 'NOT_ONLINE' });
    return engine.fetchAttachment(id, opts);
  }

  /** This client's voice room: join, leave, mute, deafen, microphone (SPEC.md VR1-VR8); state in the snapshot. */
  get voice(): Pick<VoiceController, 'join' | 'leave' | 'setMuted' | 'setDeafened' | 'setMicrophone'> {
    return this.voiceCtl;
  }

  /** Asks peers for what this side lacks now (also done after every login). */
  syncNow(): void {
    if (this.eng && this.current) this.eng.spawn(this.eng.syncNow(), 'sync');
  }

  // ---- for shells and tests (not for UI components) ----

  /** The sync engine (null until the relay key is known). One for the client's life, across logins. */
  get engine(): SyncEngine | null {
    return this.eng;
  }

  /** The running session's PeerJS Peer (null between sessions). */
  get peer(): Peer | null {
    return this.current?.peer ?? null;
  }

  /** The running session's transport, else the last one (a test checks it let go of everything). */
  get transport(): PeerjsTransport | null {
    return this.current?.transport ?? this.lastTransport;
  }

  /** The relay connection (null before start and after stop). */
  get relay(): RelayConnection | null {
    return this.conn;
  }

  /** What is still held: sockets, subscriptions, Peers, transports' resources, timers. 0 after stop(). */
  liveResources(): number {
    let n = this.timers.size;
    if (this.current) n += 1 + (this.current.peer.destroyed ? 0 : 1);
    if (this.building && !this.building.destroyed) n++;
    n += this.transport?.liveResources() ?? 0;
    if (this.eventsSub) n++;
    if (this.voiceSub) n++;
    n += this.voiceCtl.liveResources();
    if (this.eng && !this.eng.stopped) n++;
    n += this.facade?.heldLinks ?? 0;
    const ws = this.conn?.wsClient.connection?.ws;
    if (ws && ws.readyState !== 3 /* CLOSED */) n++;
    return n;
  }

  /** Listeners subscribed now (a teardown test checks that unsubscribing leaves none). */
  get listenerCount(): number {
    return this.listeners.size;
  }

  // ---- relay ----

  private async openConnection(): Promise<void> {
    const gen = ++this.connGen;
    this.eventsSub?.unsubscribe();
    this.eventsSub = null;
    const old = this.conn;
    this.conn = null;
    if (old) await old.close();
    if (gen !== this.connGen || this.stopped) return;
    const live = (): boolean => gen === this.connGen && !this.stopped;
    let conn: RelayConnection;
    try {
      conn = await createRelayConnection({
        url: trpcUrlOf(this.opts.relayUrl),
        secretKey: this.opts.secretKey,
        name: this.opts.name.trim(),
        kind: this.kind,
        backend: this.opts.backend,
        relayKey: this.pinned ?? undefined,
        retryBaseMs: this.opts.retryBaseMs,
        retryMaxMs: this.opts.retryMaxMs,
        restartDelayMs: this.opts.restartDelayMs,
        keepAliveMs: this.opts.keepAliveMs,
        random: this.random,
        WebSocket: this.opts.WebSocket,
        onRelayKeyPinned: async (key) => {
          if (!live()) return;
          await this.opts.onRelayKeyPinned?.(key);
          this.pinned = key;
          this.ensureEngine(key);
          this.changed();
        },
        onRelayKeyChanged: ({ pinned, offered }) => {
          if (!live()) return;
          this.error(ClientReason.RELAY_KEY_CHANGED, `the relay's key changed from ${pinned} to ${offered}`, 'login');
          this.clearPresence();
          this.setConnection({
            state: 'relay-key-changed',
            pinned,
            pinnedFingerprint: fingerprintOf(pinned),
            offered,
            offeredFingerprint: fingerprintOf(offered),
          });
        },
        onLogin: (login, { reconnect }) => {
          if (live()) this.onLogin(login, reconnect);
        },
        onError: (err, { permanent }) => {
          if (!live()) return;
          const e = this.errorOf(err, 'login');
          if (permanent) this.setConnection({ state: 'offline', error: e });
          else this.noteConnectError(e);
        },
        onRetryScheduled: ({ delayMs, attempt }) => {
          if (!live()) return;
          const c = this.connection;
          const nextAttemptAt = this.clock.now() + delayMs;
          if (c.state === 'connecting' || c.state === 'reconnecting') this.setConnection({ ...c, attempt: attempt + 1, nextAttemptAt });
        },
        onConnecting: () => {
          if (!live()) return;
          const c = this.connection;
          if ((c.state === 'connecting' || c.state === 'reconnecting') && c.nextAttemptAt !== null) this.setConnection({ ...c, nextAttemptAt: null });
        },
        onDisconnected: () => {
          if (!live()) return;
          this.clearPresence();
          // The relay ended our session, so our voice membership too (VR7); the watch is opened again by
          // the next login (before it, the relay would refuse it).
          this.voiceSub?.unsubscribe();
          this.voiceSub = null;
          this.voiceCtl.relayLost();
          const c = this.connection;
          if (c.state === 'online') {
            this.setConnection({
              state: 'reconnecting',
              attempt: 0,
              nextAttemptAt: null,
              lastError: this.error(ClientReason.CONNECTION_LOST, 'the relay socket closed', 'login'),
            });
          } else this.changed();
        },
      });
    } catch (err) {
      // Only a missing WebSocket or a failing backend get here: nothing to retry.
      if (live()) this.setConnection({ state: 'offline', error: this.errorOf(err, 'login') });
      return;
    }
    if (!live()) {
      await conn.close();
      return;
    }
    this.conn = conn;
    this.watchVoice();
    this.eventsSub = conn.client.events.subscribe(
      { channels: this.opts.channels, presence: true },
      {
        onData: (ev) => {
          if (live()) this.onEvent(ev);
        },
        onError: (err) => {
          if (live()) this.errorOf(err, 'events');
        },
      },
    );
  }

  private noteConnectError(e: ClientError): void {
    const c = this.connection;
    if (c.state === 'connecting' || c.state === 'reconnecting') this.setConnection({ ...c, lastError: e });
  }

  private onEvent(ev: RelayEvent): void {
    try {
      if (ev.t === 'msgs') {
        const envs = parseEnvelopeBatch(ev.raw);
        if (!envs) {
          this.error(ClientReason.INTERNAL, 'the relay sent an unreadable batch', 'events');
          return;
        }
        void this.ingest(envs);
        return;
      }
      if (ev.t === 'presence') {
        this.onPresence(ev);
        this.changed();
        return;
      }
      if (ev.t === 'bye') this.log('relay_bye', { retryAfterMs: ev.retryAfterMs });
    } catch (err) {
      // Never throw into the subscription's listener (STYLE 7).
      this.error(ClientReason.INTERNAL, String(err), 'events', err);
    }
  }

  /**
   * Applies one presence event (SPEC.md P6, P8-P11). A snapshot replaces everything; page and watched
   * diffs remove `left`, then add or replace `users` (a reset replaces the set); the peer sample is the
   * engine's roster.
   */
  private onPresence(ev: Extract<RelayEvent, { t: 'presence' }>): void {
    switch (ev.op) {
      case 'snapshot':
        this.online = ev.online;
        this.pageUsers = new Map(ev.users.map((u) => [u.sessionId, u]));
        this.watchedUsers = new Map(ev.watched.map((u) => [u.sessionId, u]));
        this.setPeers(ev.peers);
        return;
      case 'page':
      case 'watched': {
        const set = ev.op === 'page' ? this.pageUsers : this.watchedUsers;
        if (ev.reset) set.clear();
        for (const id of ev.left) set.delete(id);
        for (const u of ev.users) set.set(u.sessionId, u);
        // A page holds at most a page, and watched keys at most 8 sessions each plus our own (P10); a relay
        // that sends more is cut back (bounded, STYLE 11).
        const max = ev.op === 'page' ? LIMITS.presencePageSize : (LIMITS.maxPresenceWatch + 1) * 8;
        while (set.size > max) set.delete(set.keys().next().value!);
        return;
      }
      case 'counts':
        this.online = ev.online;
        return;
      case 'peers':
        this.setPeers(ev.peers);
        return;
    }
  }

  private setPeers(peers: readonly SamplePeer[]): void {
    this.peers = peers.slice(0, LIMITS.presenceSampleSize);
    if (this.current) this.eng?.setRoster(this.peers);
  }

  private clearPresence(): void {
    this.pageUsers.clear();
    this.watchedUsers.clear();
    this.online = { browser: 0, virtual: 0 };
    this.peers = [];
  }

  // ---- the member list's view (SPEC.md P9-P11) ----

  /** Shows page `page` of the members (clamped to the protocol's range); the relay sends it at once. */
  setMemberPage(page: number): void {
    const p = Math.max(0, Math.min(LIMITS.maxPresencePage, Math.floor(page) || 0));
    if (p === this.view.page) return;
    this.view = { ...this.view, page: p };
    void this.sendView(false);
  }

  /**
   * Keys whose sessions the relay should show even when they are off the page (authors in view); our own
   * key is always watched. At most `LIMITS.maxPresenceWatch`, first ones kept.
   */
  watchUsers(keys: readonly string[]): void {
    const watch = [...new Set(keys)].filter((k) => k !== this.key).slice(0, LIMITS.maxPresenceWatch);
    if (watch.length === this.view.watch.length && watch.every((k, i) => k === this.view.watch[i])) return;
    this.view = { ...this.view, watch };
    void this.sendView(false);
  }

  /** Asks the relay for a new peer sample (P11), e.g. when none of the sampled peers could be reached. */
  resamplePeers(): void {
    void this.sendView(true);
  }

  /** One view call in flight at a time; changes meanwhile are sent once it ends (the latest view wins). */
  private async sendView(resample: boolean): Promise<void> {
    if (this.viewSending) {
      this.viewAgain = { resample: resample || !!this.viewAgain?.resample };
      return;
    }
    const conn = this.conn;
    if (!conn || this.connection.state !== 'online') return; // sent after the next login
    this.viewSending = true;
    try {
      await conn.client.presence.view.mutate({ page: this.view.page, watch: this.view.watch, ...(resample && { resample: true }) });
    } catch (err) {
      this.errorOf(err, 'presence');
    } finally {
      this.viewSending = false;
      const again = this.viewAgain;
      this.viewAgain = null;
      if (again && !this.stopped) void this.sendView(again.resample);
    }
  }

  /** Opens the voice watch of this login's connection, once (rooms are what people in a browser see). */
  private watchVoice(): void {
    const conn = this.conn;
    if (this.kind !== 'browser' || !conn || this.connection.state !== 'online' || this.voiceWatchLogin === this.logins) return;
    this.voiceWatchLogin = this.logins;
    this.voiceSub?.unsubscribe();
    this.voiceCtl.setRelay({
      join: (channel) => conn.client.voice.join.mutate({ channel }),
      leave: () => conn.client.voice.leave.mutate(),
      state: (st) => conn.client.voice.state.mutate(st),
    });
    this.voiceSub = conn.client.voice.watch.subscribe(
      { channels: this.opts.channels },
      {
        onData: (ev) => {
          try {
            if (this.conn === conn) this.voiceCtl.onWatch(ev);
          } catch (err) {
            this.error(ClientReason.INTERNAL, String(err), 'voice', err); // never into the listener (STYLE 7)
          }
        },
        onError: (err) => {
          if (this.conn === conn) this.errorOf(err, 'voice');
        },
      },
    );
  }

  private onLogin(login: LoginOutput, reconnect: boolean): void {
    this.logins++;
    this.loginOut = login;
    this.log('login', { peerId: login.self.peerId, reconnect });
    this.ensureEngine(login.info.publicKey);
    this.setConnection({ state: 'online', since: this.clock.now() });
    // A new socket shows page 0 and nothing watched until told otherwise (P9).
    if (this.view.page !== 0 || this.view.watch.length > 0) void this.sendView(false);
    this.watchVoice(); // on a reconnect `conn` is this login's; the first login's waits for `this.conn`
    if (!this.gapScanDone) {
      this.gapScanDone = true;
      void this.scanGaps(login.info.channels.map((c) => c.id));
    }
    const gen = this.bumpSession();
    const signal = this.sessionAbort.signal;
    this.chain = this.chain
      .then(() => this.openSession(gen, login, signal))
      .catch((err) => {
        this.error(ClientReason.SESSION_FAILED, String(err), 'session', err);
      });
    // Posts cut off by the lost socket go out again, same clientId (CL5).
    for (const entry of this.outbox.values()) if (entry.waiting && !entry.sending) void this.send(entry);
  }

  // ---- engine ----

  private ensureEngine(relayKey: string): void {
    if (this.eng || this.stopped) return;
    const facade = new SessionTransport(() => this.changed());
    const engine = new SyncEngine({
      ...this.opts.sync,
      store: this.opts.store,
      crypto: this.opts.backend,
      ...(this.opts.verifyEnvelopes ? { verifyEnvelopes: this.opts.verifyEnvelopes } : {}),
      relayKey,
      transport: facade,
      selfKind: this.kind,
      clock: this.clock,
      onError: (err, where) => this.storeFailed(err, `sync:${where}`),
    });
    this.eng = engine;
    this.facade = facade;
    engine.on('messages', (e) => {
      // Decided now: the post that stored these may clear its mark before onStored resumes.
      const self = e.from === null && e.ids.length > 0 && e.ids.every((id) => this.selfIds.has(id));
      void this.onStored(e.ids, e.envs, e.from, self);
    });
    engine.on('catchUp', (e) => this.onCatchUp(e.phase, e.peers));
    engine.on('progress', (e) => this.events.emit('attachmentProgress', { id: e.id, receivedBytes: e.receivedBytes, totalBytes: e.totalBytes }));
    engine.on('attachment', (e) => this.events.emit('attachmentStored', { id: e.id }));
    engine.on('peerDropped', () => this.changed());
    engine.on('synced', () => this.changed());
    // Loads the index now (the store is there before the relay is); links wait in the facade meanwhile.
    engine.spawn(engine.start(), 'start');
    const waiting = this.pendingEnvs;
    this.pendingEnvs = [];
    if (waiting.length > 0) void this.ingest(waiting);
  }

  /**
   * Live envelopes go to the engine (which verifies before storing, G2); before it exists they wait,
   * bounded. Resolves to the store's error when storing failed (a quota error among them), else null.
   */
  private async ingest(envs: Envelope[]): Promise<unknown> {
    const engine = this.eng;
    if (!engine) {
      this.pendingEnvs.push(...envs);
      if (this.pendingEnvs.length > MAX_PENDING_ENVELOPES) this.pendingEnvs.splice(0, this.pendingEnvs.length - MAX_PENDING_ENVELOPES);
      return null;
    }
    try {
      const r = await engine.addMessages(envs);
      if (r.rejected.length > 0) {
        this.error(ClientReason.INTERNAL, `${r.rejected.length} envelopes from the relay failed verification (${r.rejected[0]!.reason})`, 'events');
      }
      return null;
    } catch (err) {
      if (!this.stopped) this.storeFailed(err, 'store');
      return err ?? new Error('store failed');
    }
  }

  /** `envs` come with the event: reading back each stored batch cost a catch-up 10,000 single-row reads. */
  private async onStored(ids: string[], envs: readonly Envelope[], from: string | null, self: boolean): Promise<void> {
    try {
      const channels = [...new Set(envs.map((e) => e.post.channel))];
      if (from !== null && this.catchUps > 0) {
        for (const e of envs) this.counter(e.post.channel).received++;
      }
      await this.gaps.note(envs);
      if (this.stopped) return;
      this.events.emit('stored', { ids, channels, from: from !== null ? 'peer' : self ? 'self' : 'relay' });
      this.changed();
    } catch (err) {
      if (!this.stopped) this.error(ClientReason.INTERNAL, String(err), 'store', err);
    }
  }

  private onCatchUp(phase: 'start' | 'end', peers: number): void {
    if (phase === 'start') {
      if (this.catchUps === 0) for (const c of this.counters.values()) c.received = 0;
      this.catchUps++;
      this.catchUpStarts++;
      this.catchUpPeers = peers;
    } else {
      this.catchUps = Math.max(0, this.catchUps - 1);
      if (this.catchUps === 0) {
        const now = this.clock.now();
        for (const id of this.channelIds()) this.counter(id).lastSyncedAt = now;
        this.catchUpPeers = 0;
      }
    }
    this.changed();
  }

  private async scanGaps(channels: string[]): Promise<void> {
    try {
      for (const ch of channels) {
        if (this.stopped) return;
        await this.gaps.note(await this.opts.store.latest(ch, GAP_SCAN_LIMIT));
      }
      this.changed();
    } catch (err) {
      if (!this.stopped) this.error(ClientReason.INTERNAL, String(err), 'store', err);
    }
  }

  private horizon(): string | undefined {
    return this.opts.sync?.horizon?.() ?? this.opts.store.horizon?.();
  }

  // ---- sessions (a new PeerJS id per login) ----

  private bumpSession(): number {
    this.sessionAbort.abort();
    this.sessionAbort = new AbortController();
    return ++this.sessionGen;
  }

  /** Replaces the session with one for `login`, retrying setup with backoff until it works or a newer login supersedes it. */
  private async openSession(gen: number, login: LoginOutput, signal: AbortSignal): Promise<void> {
    await this.closeSession();
    this.facade?.setPeerId(login.self.peerId);
    for (let attempt = 0; gen === this.sessionGen && !this.stopped; attempt++) {
      try {
        await this.buildSession(gen, login);
        return;
      } catch (err) {
        if (gen !== this.sessionGen || this.stopped) return;
        this.error(ClientReason.SESSION_FAILED, `session setup failed (attempt ${attempt}): ${String(err)}`, 'session', err);
        await this.sleep(this.sessionBackoff(attempt), signal);
      }
    }
  }

  private async buildSession(gen: number, login: LoginOutput): Promise<void> {
    const conn = this.conn;
    if (!conn) throw new Error('no relay connection'); // retried; the connection is made before any login
    const options: PeerjsClientOptions = {
      ...peerjsOptions({ relayUrl: this.opts.relayUrl, info: login.info, peerToken: login.peerToken }),
      relaySignal: relaySignalChannel(conn),
    };
    const peer = await this.opts.createPeer({ peerId: login.self.peerId, options, relayUrl: this.opts.relayUrl, login });
    this.building = peer;
    // Peers that saw us join in presence connect at once; the relay holds their OFFERs until our socket is
    // open and delivers them right after OPEN (P5), in the same read, before createPeerjsTransport's
    // listener exists. PeerJS answers them anyway, so the remote would get an open link nobody here reads.
    // Keep those connections and hand them to the transport once it listens (VC2 a).
    const early: DataConnection[] = [];
    const onEarly = (c: DataConnection): void => {
      // As many listeners as when ours was added: the transport is not listening yet.
      if (peer.listenerCount('connection') === before) early.push(c);
    };
    peer.on('connection', onEarly);
    const before = peer.listenerCount('connection');
    let transport: PeerjsTransport;
    try {
      if (this.stopped || gen !== this.sessionGen) throw new Error('superseded');
      transport = await createPeerjsTransport({
        peer,
        maxLinks: this.opts.maxLinks ?? (this.opts.sync?.maxLinks ?? 32) + 8,
        connectTimeoutMs: this.opts.connectTimeoutMs,
        onError: (err, where) => this.log('transport_error', { where, err: String(err) }),
      });
    } catch (err) {
      peer.destroy();
      throw err;
    } finally {
      this.building = null;
      peer.off('connection', onEarly);
    }
    if (this.stopped || gen !== this.sessionGen || !this.eng || !this.facade) {
      await transport.close();
      peer.destroy();
      return;
    }
    // The transport's own listener now takes them (they are still negotiating: ICE takes far longer than this tick).
    for (const c of early) peer.emit('connection', c);
    const session: Session = {
      login,
      peer,
      transport,
      signallingAttempts: 0,
      signallingTimer: null,
      off: () => {
        peer.off('disconnected', onDisconnected);
        peer.off('open', onOpen);
        peer.off('error', onError);
      },
    };
    const onDisconnected = (): void => this.onSignallingLost(session);
    const onOpen = (): void => {
      session.signallingAttempts = 0;
      this.changed();
    };
    // PeerJS reports refusals and failed connections here; the transport turns them into reasons.
    // `peer-unavailable` comes once per connect attempt and per relay EXPIRE, so a peer that just left
    // would fill the log while the engine's tries and PeerJS's retries run out: logged once per message
    // (which names the peer) per session, at most MAX_UNAVAILABLE_LOGGED peers, harmless either way (CL8).
    const unavailable = new Set<string>();
    const onError = (err: { type?: string; message?: string }): void => {
      if (err?.type === 'peer-unavailable') {
        const key = String(err.message ?? '');
        if (unavailable.has(key) || unavailable.size >= MAX_UNAVAILABLE_LOGGED) return;
        unavailable.add(key);
      }
      this.log('peer_error', { type: err?.type, message: err?.message });
    };
    peer.on('disconnected', onDisconnected);
    peer.on('open', onOpen);
    peer.on('error', onError);
    this.current = session;
    this.lastTransport = transport;
    // Voice calls ride on this session's Peer (its config holds the relay's ICE servers, VR5).
    this.voiceCtl.setSession({ sessionId: login.self.sessionId, calls: peerjsCalls(peer) });
    this.facade.attach(this.opts.wrapTransport ? this.opts.wrapTransport(transport) : transport);
    // Roster first, then catch up: the catch-up sees who is online (G5). The roster may itself start one
    // (an engine that found nobody at start waits for peers); else this login asks now.
    const engine = this.eng;
    const starts = this.catchUpStarts;
    engine.setRoster(this.peers);
    if (this.catchUpStarts === starts) engine.spawn(engine.syncNow(), 'sync');
    this.log('session', { peerId: login.self.peerId });
    this.changed();
  }

  private async closeSession(): Promise<void> {
    const s = this.current;
    if (!s) return;
    this.current = null;
    this.voiceCtl.setSession(null); // our calls end with this Peer (VR7)
    this.facade?.detach();
    s.off();
    if (s.signallingTimer) {
      this.clock.clearTimeout(s.signallingTimer);
      this.timers.delete(s.signallingTimer);
    }
    // The engine's links over this session close; it carries on (index, needs, bans) with the next one.
    await s.transport.close();
    // Destroying the Peer closes every PeerJS connection and its RTCPeerConnection.
    s.peer.destroy();
    this.changed();
  }

  /**
   * The signalling socket closed while the relay login may still stand (a network blip, a ping timeout):
   * open links keep working (T5), and the same id and token can register again, with backoff. While the
   * relay connection itself is down the session has ended (the relay ends it with the socket): nothing
   * to do but wait for the next login, which replaces this session.
   */
  private onSignallingLost(s: Session): void {
    this.changed();
    if (this.stopped || this.current !== s || s.peer.destroyed || s.signallingTimer) return;
    const t = this.clock.setTimeout(() => {
      this.timers.delete(t);
      s.signallingTimer = null;
      if (this.stopped || this.current !== s || s.peer.destroyed || !s.peer.disconnected) return;
      if (this.connection.state !== 'online') return this.onSignallingLost(s); // try again later, unless a new login came
      this.log('signalling_reconnect', { attempt: s.signallingAttempts });
      // A refusal makes PeerJS emit 'disconnected' again, which schedules the next try.
      s.peer.reconnect();
    }, this.sessionBackoff(s.signallingAttempts++));
    s.signallingTimer = t;
    this.timers.add(t);
  }

  private sessionBackoff(attempt: number): number {
    const base = this.opts.sessionRetryBaseMs ?? 500;
    const cap = this.opts.sessionRetryMaxMs ?? 30_000;
    // Full jitter, like the relay connection: peers that lost the relay together do not return together.
    return this.random() * Math.min(cap, base * 2 ** attempt);
  }

  private sleep(ms: number, signal: AbortSignal): Promise<void> {
    return new Promise((resolve) => {
      if (signal.aborted) return resolve();
      const done = (): void => {
        this.clock.clearTimeout(t);
        this.timers.delete(t);
        signal.removeEventListener('abort', done);
        resolve();
      };
      const t = this.clock.setTimeout(done, ms);
      this.timers.add(t);
      signal.addEventListener('abort', done, { once: true });
    });
  }

  // ---- the outbox ----

  private newEntry(record: OutgoingPost): OutboxEntry {
    let settle!: (r: PostResult) => void;
    const result = new Promise<PostResult>((resolve) => {
      settle = resolve;
    });
    const entry: OutboxEntry = { record, signed: null, settle: () => {}, result, sending: false, waiting: false, autoResends: 0 };
    let settled = false;
    entry.settle = (r) => {
      if (settled) return;
      settled = true;
      settle(r);
    };
    return entry;
  }

  private pendingOf(entry: OutboxEntry): PendingPost {
    return { record: entry.record, clientId: entry.record.clientId, result: entry.result };
  }

  /** The checks a post fails without being sent. */
  private checkPost(p: OutgoingPost, retrying = false): ClientError | null {
    if (this.stopped) return this.error(ClientReason.STOPPED, 'the client was stopped', 'post', undefined, false);
    if (!retrying && this.outbox.size >= MAX_OUTBOX) return this.error(ClientReason.OUTBOX_FULL, `${MAX_OUTBOX} posts are waiting`, 'post');
    if (p.text.trim() === '' && p.attachments.length === 0) return this.error(ClientReason.EMPTY, 'nothing to post', 'post');
    const max = this.loginOut?.info.limits.maxTextLength ?? LIMITS.maxTextLength;
    if (p.text.length > max) return this.error(ClientReason.TOO_LONG, `text of ${p.text.length} characters; at most ${max}`, 'post');
    const channels = this.loginOut?.info.channels;
    if (channels && !channels.some((c) => c.id === p.channel)) return this.error(ClientReason.UNKNOWN_CHANNEL, `no channel ${p.channel}`, 'post');
    return null;
  }

  private fail(entry: OutboxEntry, error: ClientError): void {
    entry.sending = false;
    entry.waiting = false;
    entry.record = { ...entry.record, status: 'failed', error };
    entry.settle({ ok: false, error });
    this.changed();
  }

  private async send(entry: OutboxEntry): Promise<void> {
    if (entry.sending || this.stopped) return;
    entry.sending = true;
    entry.waiting = false;
    entry.record = { ...entry.record, status: 'sending', attempts: entry.record.attempts + 1 };
    this.changed();
    const r = entry.record;
    const loginsAtStart = this.logins;
    let env: Envelope;
    try {
      await this.keyReady;
      const conn = this.conn;
      if (!conn) throw new Error('no relay connection');
      // A post is bound to the relay and to its clock (SPEC.md M6), so it is signed once logged in, with
      // the relay's time as estimated at login; every resend is then byte-identical (R4).
      const login = await conn.ready();
      entry.signed ??= signPost(this.opts.backend, this.opts.secretKey, {
        channel: r.channel,
        clientId: r.clientId,
        text: r.text,
        attachments: [...r.attachments],
        replyTo: r.replyTo,
        author: this.key,
        relay: login.info.publicKey,
        sentAt: conn.relayNow(),
      });
      const post = await entry.signed;
      // Waits for this connection's login (the gate in relayConnection).
      env = await conn.client.chat.post.mutate(post);
    } catch (err) {
      entry.sending = false;
      if (this.outbox.get(r.clientId) !== entry) return;
      if (this.stopped) return this.fail(entry, this.error(ClientReason.STOPPED, 'the client was stopped', 'post', undefined, false));
      if (relayReasonOf(err) !== null) return this.fail(entry, this.errorOf(err, 'post'));
      // The socket dropped (or there was none): resent after the next login, same clientId and signature.
      if (++entry.autoResends > MAX_AUTO_RESENDS) {
        return this.fail(entry, this.error(ClientReason.CONNECTION_LOST, `no answer after ${MAX_AUTO_RESENDS} resends`, 'post', err));
      }
      entry.waiting = true;
      entry.record = { ...entry.record, error: this.error(ClientReason.CONNECTION_LOST, String((err as Error)?.message ?? err), 'post', err, false) };
      this.changed();
      // A login that landed while this send was under way skipped it (it was sending): resend now. Otherwise
      // the next login does (an error seen before the socket's close is reported must not resend at once).
      if (this.logins !== loginsAtStart && this.connection.state === 'online') void this.send(entry);
      return;
    }
    await this.keep(entry, env);
  }

  /**
   * Stores an own post's envelope; only then does it leave the outbox (CL5). When the store is full
   * (H16) the post stays, failed QUOTA_EXCEEDED with the envelope kept, so nothing the user wrote is
   * lost: `retry` stores it once there is room.
   */
  private async keep(entry: OutboxEntry, env: Envelope): Promise<void> {
    const r = entry.record;
    this.selfIds.add(env.id);
    const failure = await this.ingest([env]);
    this.selfIds.delete(env.id);
    entry.sending = false;
    if (failure !== null && !this.stopped && this.outbox.get(r.clientId) === entry) {
      entry.relayed = env;
      const quota = isStoreQuotaError(failure);
      return this.fail(
        entry,
        this.error(
          quota ? ClientReason.QUOTA_EXCEEDED : ClientReason.INTERNAL,
          quota ? 'sent, but the storage is full: not saved here' : `sent, but not saved here: ${String(failure)}`,
          'post',
          failure,
          false, // already reported by storeFailed / the quota listener
        ),
      );
    }
    if (this.outbox.get(r.clientId) === entry) this.outbox.delete(r.clientId);
    entry.settle({ ok: true, envelope: env });
    this.changed();
  }

  // ---- errors ----

  /**
   * A failure of the store (or of engine work, which is mostly the store). A quota error is reported by
   * the store's onQuota listener when it has one (every full write, also inside the engine's frame
   * handling, passes there); stores without one are reported here.
   */
  private storeFailed(err: unknown, where: string): void {
    if (!isStoreQuotaError(err)) {
      this.error(ClientReason.INTERNAL, String(err), where, err);
      return;
    }
    if (!this.opts.store.onQuota) this.quotaExceeded(err);
  }

  /**
   * Storage full (H16): one `QUOTA_EXCEEDED` error per QUOTA_REPORT_MS at most, however many writes
   * hit it (a catch-up hits it once per batch).
   */
  private quotaExceeded(err: unknown): void {
    if (this.stopped) return;
    const now = this.clock.now();
    if (now - this.lastQuotaReport < QUOTA_REPORT_MS) return;
    this.lastQuotaReport = now;
    this.error(ClientReason.QUOTA_EXCEEDED, "this browser's storage for the app is full: new messages and attachments are not kept", 'store', err);
  }

  /** Records an error (snapshot + event) and returns it. */
  private error(reason: ErrorReason, message: string, where: string, cause?: unknown, report = true): ClientError {
    const e: ClientError = { reason, message, where, at: this.clock.now(), ...(cause !== undefined && { cause }) };
    if (!report) return e;
    this.errors = [...this.errors, e].slice(-MAX_ERRORS);
    this.log('error', { reason, where, message });
    this.events.emit('error', e);
    this.changed();
    return e;
  }

  private errorOf(err: unknown, where: string): ClientError {
    const reason = relayReasonOf(err);
    if (err instanceof RelayKeyChangedError) return this.error(ClientReason.RELAY_KEY_CHANGED, err.message, where, err);
    if (reason !== null) return this.error(reason as ErrorReason, (err as Error).message ?? reason, where, err);
    const isSocket = typeof err === 'object' && err !== null && (err as { name?: string }).name === 'TRPCClientError';
    return this.error(isSocket ? ClientReason.CONNECTION_LOST : ClientReason.INTERNAL, String((err as Error)?.message ?? err), where, err);
  }

  // ---- the snapshot ----

  private setConnection(c: ConnectionState): void {
    this.connection = c;
    this.changed();
  }

  private channelIds(): string[] {
    return (this.loginOut?.info.channels ?? []).map((c) => c.id);
  }

  private counter(channel: string): ChannelCounters {
    let c = this.counters.get(channel);
    if (!c) this.counters.set(channel, (c = { received: 0, lastSyncedAt: null }));
    return c;
  }

  /** The snapshot is rebuilt on the next read, and listeners hear of it a microtask later (several changes, one call). */
  private changed(): void {
    this.snapshot = null;
    if (this.notifyQueued) return;
    this.notifyQueued = true;
    queueMicrotask(() => {
      this.notifyQueued = false;
      for (const l of [...this.listeners]) {
        try {
          l();
        } catch {
          // A listener's failure is the listener's problem (STYLE 7).
        }
      }
    });
  }

  private buildSnapshot(): ClientSnapshot {
    const login = this.loginOut;
    const s = this.current;
    const online = this.connection.state === 'online';
    const shownUsers = new Map(this.pageUsers);
    for (const [id, u] of this.watchedUsers) shownUsers.set(id, u);
    const built: PresenceEntry[] = online
      ? [...shownUsers.values()].sort(comparePresence).map((u) => {
          const isSelf = u.sessionId === login?.self.sessionId;
          return { ...u, isSelf, isSameUser: !isSelf && u.userId === this.key };
        })
      : [];
    // The same array while presence is the same (CL1): a catch-up changes the snapshot per stored batch,
    // and a new presence array each time made the app write its name cache and re-render every message
    // row as often (bench:client: 86 name writes while catching up 10,000).
    const presence = samePresence(this.lastPresence, built) ? this.lastPresence : (this.lastPresence = built);
    const members: MembersState = {
      online: online ? this.online : { browser: 0, virtual: 0 },
      page: this.view.page,
      pageSize: LIMITS.presencePageSize,
      shown: online ? this.pageUsers.size : 0,
    };
    const sync: Record<string, ChannelSyncState> = {};
    const syncing = this.catchUps > 0;
    for (const id of this.channelIds()) {
      const c = this.counter(id);
      sync[id] = {
        state: syncing ? 'syncing' : c.lastSyncedAt !== null ? 'synced' : 'idle',
        peers: syncing ? this.catchUpPeers : 0,
        received: c.received,
        lastSyncedAt: c.lastSyncedAt,
        // Only once no catch-up runs: until then a peer may still fill it.
        gaps: syncing ? [] : this.gaps.gaps(id, MAX_GAPS_PER_CHANNEL),
      };
    }
    return {
      connection: this.connection,
      self: { publicKey: this.key, fingerprint: this.keyFingerprint, name: this.opts.name.trim(), kind: this.kind },
      relay: login?.info ?? null,
      pinnedRelayKey: this.pinned,
      channels: login?.info.channels ?? [],
      session: {
        peerId: login?.self.peerId ?? null,
        sessionId: login?.self.sessionId ?? null,
        peerOpen: !!s && online && s.peer.open && !s.peer.disconnected && !this.stopped,
        logins: this.logins,
      },
      presence,
      members,
      links: this.eng && !this.eng.stopped ? this.eng.stats().links : 0,
      sync,
      outbox: [...this.outbox.values()].map((e) => e.record),
      errors: this.errors,
      voice: this.voiceCtl.snapshot(),
    };
  }
}

/** Whether two presence lists hold the same entries with the same fields (values are plain data). */
function samePresence(a: readonly PresenceEntry[], b: readonly PresenceEntry[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) {
    const x = a[i] as unknown as Record<string, unknown>;
    const y = b[i] as unknown as Record<string, unknown>;
    const keys = Object.keys(x);
    if (keys.length !== Object.keys(y).length) return false;
    for (const k of keys) if (x[k] !== y[k]) return false;
  }
  return true;
}

/** ws(s)://host/trpc for an http(s) relay origin. */
export function trpcUrlOf(relayUrl: string): string {
  const u = new URL('/trpc', relayUrl);
  u.protocol = u.protocol === 'https:' || u.protocol === 'wss:' ? 'wss:' : 'ws:';
  return u.toString();
}

function fingerprintOf(key: string): string {
  const bytes = fromB64url(key);
  return bytes ? fingerprint(bytes) : '?';
}
