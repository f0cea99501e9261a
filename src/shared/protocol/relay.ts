// The relay protocol: every tRPC procedure's input and output, once. Server and clients import these;
// nobody redeclares a shape. Rules are numbered in ./SPEC.md and cited in the tests.
import { z } from 'zod';
import { LIMITS, VOICE_LIMITS } from './limits';

/**
 * Bumped on any incompatible change to this file or to the signed payloads (SPEC.md V1).
 * 2: the login signs the relay's origin (L4, L9); a post signs the relay key and the client's time (M6).
 * 3: the envelope carries the author's login name, countersigned by the relay (M7); lazy presence (P6,
 *    P8-P12): the stream carries counts, one page of members, watched keys and a sample of peers instead of
 *    the whole roster (`presence.view` chooses the page and the watched keys). An older client would strip
 *    the unknown name field and fail the signature, so it must hear PROTOCOL_MISMATCH instead.
 * 4: PeerJS signalling rides the tRPC socket (`signal.connect`, `signal.send`; SPEC.md W11) instead of a
 *    second `/peerjs` WebSocket; an older client would open a socket the relay still serves, but a newer
 *    client must not log in to a relay without `signal.*`.
 */
export const PROTOCOL_VERSION = 4;

/**
 * A post's `sentAt` may differ from the relay's clock by at most this much, either way (SPEC.md M6). Together
 * with the idempotency window (R4, at least twice this) it keeps an old signed post from being relayed again.
 * A protocol constant, not a setting: `verifyEnvelope` checks `ts` against `sentAt` with it.
 */
export const POST_TIME_WINDOW_MS = 5 * 60_000;

/** Stable machine codes carried in `error.data.reason` (SPEC.md E1). Never match on message text. */
export const RelayReason = {
  BAD_INPUT: 'BAD_INPUT',
  PROTOCOL_MISMATCH: 'PROTOCOL_MISMATCH',
  NOT_LOGGED_IN: 'NOT_LOGGED_IN',
  ALREADY_LOGGED_IN: 'ALREADY_LOGGED_IN',
  NO_CHALLENGE: 'NO_CHALLENGE',
  CHALLENGE_EXPIRED: 'CHALLENGE_EXPIRED',
  CHALLENGE_REPLAYED: 'CHALLENGE_REPLAYED',
  BAD_KEY: 'BAD_KEY',
  BAD_SIGNATURE: 'BAD_SIGNATURE',
  WRONG_AUTHOR: 'WRONG_AUTHOR',
  UNKNOWN_CHANNEL: 'UNKNOWN_CHANNEL',
  BAD_ATTACHMENT: 'BAD_ATTACHMENT',
  DUPLICATE_CLIENT_ID: 'DUPLICATE_CLIENT_ID',
  RATE_LIMITED: 'RATE_LIMITED',
  TOO_MANY_SUBSCRIPTIONS: 'TOO_MANY_SUBSCRIPTIONS',
  TOO_LARGE: 'TOO_LARGE',
  /** A request not run: its frame carried more than `maxRequestsPerFrame`, or its socket's second was spent (SPEC.md R11). */
  TOO_MANY_REQUESTS: 'TOO_MANY_REQUESTS',
  SHUTTING_DOWN: 'SHUTTING_DOWN',
  /** The login names another relay's origin, or the post another relay's key (SPEC.md L9, M6). */
  WRONG_RELAY: 'WRONG_RELAY',
  /** The post's `sentAt` is older than the relay's clock minus POST_TIME_WINDOW_MS (SPEC.md M6). */
  STALE_POST: 'STALE_POST',
  /** The post's `sentAt` is later than the relay's clock plus POST_TIME_WINDOW_MS (SPEC.md M6). */
  CLOCK_SKEW: 'CLOCK_SKEW',
  /** `voice.join` to a room that already holds VOICE_LIMITS.maxMembers people (SPEC.md V2). */
  ROOM_FULL: 'ROOM_FULL',
  /** `voice.state` from a session that is in no voice room (SPEC.md V3). */
  NOT_IN_VOICE: 'NOT_IN_VOICE',
  /**
   * `signal.send` on a socket without an open `signal.connect` stream, or `signal.connect` for a peer id that
   * is not this socket's login (SPEC.md W11).
   */
  NO_SIGNAL_STREAM: 'NO_SIGNAL_STREAM',
  INTERNAL: 'INTERNAL',
} as const;
export type RelayReason = (typeof RelayReason)[keyof typeof RelayReason];

/** WebSocket close codes the relay uses (SPEC.md R9). 4000-4999 are application codes. */
export const CloseCode = {
  /** Going away for a restart: reconnect after a jittered delay. */
  SERVICE_RESTART: 1012,
  LOGIN_TIMEOUT: 4001,
  HEARTBEAT_TIMEOUT: 4002,
  SLOW_CONSUMER: 4008,
  FLOOD: 4009,
  /** The tRPC session this PeerJS socket belongs to has ended. */
  SESSION_ENDED: 4010,
  SIGNAL_AUTH: 4011,
} as const;

export { LIMITS, VOICE_LIMITS } from './limits';

const B64URL = /^[A-Za-z0-9_-]*$/;
export const zPublicKey = z.string().length(43).regex(B64URL, 'base64url');
export const zSignature = z.string().length(86).regex(B64URL, 'base64url');
export const zDigest = z.string().length(43).regex(B64URL, 'base64url');
export const zNonce = z.string().length(43).regex(B64URL, 'base64url');
/** Crockford ULID as minted by ulidx (uppercase). */
export const zUlid = z.string().regex(/^[0-7][0-9A-HJKMNP-TV-Z]{25}$/, 'ULID');
export const zChannelId = z.string().regex(/^[a-z0-9][a-z0-9_-]{0,31}$/, 'channel id');
/** Client-chosen idempotency key for a post (SPEC.md R4). */
export const zClientId = z.string().regex(/^[A-Za-z0-9_-]{8,64}$/, 'client id');
/** Display names: trimmed, no control characters; not unique (always shown with a fingerprint). */
export const zDisplayName = z
  .string()
  .trim()
  .min(1)
  .max(LIMITS.maxNameLength)
  .refine((s) => !/[\u0000-\u001f\u007f-\u009f\u2028\u2029]/.test(s), 'no control characters');
export const zClientKind = z.enum(['browser', 'virtual']);
/**
 * The relay's origin as the client sees it: `http(s)://host[:port]`, lowercase, default port left out, as
 * `relayOrigin(url)` (signed.ts) makes it from the URL the client connected to (SPEC.md L9).
 */
export const zOrigin = z.string().max(256).regex(/^https?:\/\/[a-z0-9.\-\[\]:]+$/, 'origin');
export type ClientKind = z.infer<typeof zClientKind>;
/** PeerJS ids are minted by the relay: `<hex key prefix>-<session tag>` (SPEC.md W1). */
export const zPeerId = z.string().regex(/^[a-f0-9]{16}-[a-z0-9]{10}$/, 'peer id');
export const zVoiceRoom = z.string().regex(/^[a-z0-9][a-z0-9_-]{0,31}$/, 'voice room').nullable();

export const zIceServer = z.object({
  urls: z.union([z.string(), z.array(z.string()).max(8)]),
  username: z.string().max(256).optional(),
  credential: z.string().max(256).optional(),
});
export type IceServer = z.infer<typeof zIceServer>;

export const zChannel = z.object({ id: zChannelId, title: z.string().max(64) });
export type Channel = z.infer<typeof zChannel>;

export const zServerInfo = z.object({
  protocol: z.number().int(),
  name: z.string(),
  publicKey: zPublicKey,
  fingerprint: z.string(),
  /** Relay start id: the per-channel `prev` chains restart in each epoch (SPEC.md R6). */
  epoch: zUlid,
  channels: z.array(zChannel),
  iceServers: z.array(zIceServer),
  peerjs: z.object({ path: z.string(), key: z.string() }),
  limits: z.object({
    maxFrameBytes: z.number(),
    maxTextLength: z.number(),
    maxAttachmentsPerMessage: z.number(),
    maxAttachmentBytes: z.number(),
    maxThumbnailBytes: z.number(),
    chunkBytes: z.number(),
    maxSubscriptionsPerConnection: z.number(),
    postsPerMinute: z.number(),
  }),
});
export type ServerInfo = z.infer<typeof zServerInfo>;

// ---- login (SPEC.md L1-L6) ----
export const zChallengeInput = z.object({ protocol: z.number().int() });
export const zChallenge = z.object({
  nonce: zNonce,
  expiresAt: z.number(),
  relayKey: zPublicKey,
  /** The relay's clock when it issued the challenge: clients estimate their offset from it for `sentAt` (M6). */
  relayTime: z.number(),
});
export type Challenge = z.infer<typeof zChallenge>;

export const zLoginInput = z.object({
  protocol: z.number().int(),
  publicKey: zPublicKey,
  name: zDisplayName,
  kind: zClientKind,
  nonce: zNonce,
  /**
   * The relay origin the client connected to; signed, and checked against the relay's own (SPEC.md L9).
   * Required since protocol 2; optional in the schema only so that a version-1 client, which never sends
   * it, hears PROTOCOL_MISMATCH rather than BAD_INPUT (L6).
   */
  origin: zOrigin.optional(),
  /** Signs signingBytes('login', loginFields(...)). */
  signature: zSignature,
});
export type LoginInput = z.infer<typeof zLoginInput>;

export const zPresenceUser = z.object({
  sessionId: z.string(),
  userId: zPublicKey,
  name: z.string(),
  fingerprint: z.string(),
  kind: zClientKind,
  peerId: zPeerId,
  voiceRoom: zVoiceRoom,
  since: z.number(),
});
export type PresenceUser = z.infer<typeof zPresenceUser>;

export const zLoginOutput = z.object({
  self: zPresenceUser,
  /** Proof of this login for the PeerJS signalling socket (its `token` option). */
  peerToken: z.string(),
  info: zServerInfo,
});
export type LoginOutput = z.infer<typeof zLoginOutput>;

// ---- attachments (SPEC.md A1-A4) ----
export const zThumbnail = z.object({
  mime: z.enum(['image/jpeg', 'image/png', 'image/webp']),
  /** base64url of at most LIMITS.maxThumbnailBytes bytes. */
  data: z.string().max(Math.ceil((LIMITS.maxThumbnailBytes * 4) / 3)).regex(B64URL, 'base64url'),
});
/**
 * A tiny image placeholder the receiver decodes and shows blurred at the signed size until the full image
 * arrives peer to peer (SPEC.md A6). Only ThumbHash today; `kind` leaves room for another without a
 * protocol bump. The string's bound only caps the frame (twice the base64url of maxPlaceholderBytes); the
 * relay checks the decoded size and refuses BAD_ATTACHMENT with the reason.
 */
export const zPlaceholder = z.object({
  kind: z.literal('thumbhash'),
  data: z.string().min(1).max(2 * Math.ceil((LIMITS.maxPlaceholderBytes * 4) / 3)).regex(B64URL, 'base64url'),
});
export type Placeholder = z.infer<typeof zPlaceholder>;
export const zAttachmentMeta = z.object({
  name: z.string().min(1).max(200),
  mime: z.string().regex(/^[a-z0-9.+-]+\/[a-z0-9.+-]+$/i, 'MIME type').max(100),
  size: z.number().int().min(0).max(LIMITS.maxAttachmentBytes),
  /** SHA-256 of the whole content. */
  sha256: zDigest,
  /** SHA-256 of the concatenated SHA-256 of every 16 KiB chunk: lets a receiver reject a bad chunk early. */
  chunkRoot: zDigest,
  width: z.number().int().min(1).max(65535).optional(),
  height: z.number().int().min(1).max(65535).optional(),
  thumbnail: zThumbnail.optional(),
  placeholder: zPlaceholder.optional(),
});
export type AttachmentMeta = z.infer<typeof zAttachmentMeta>;

export const zSignedAttachment = z.object({
  id: zUlid,
  ts: z.number().int(),
  uploader: zPublicKey,
  meta: zAttachmentMeta,
  relay: zPublicKey,
  rsig: zSignature,
});
export type SignedAttachment = z.infer<typeof zSignedAttachment>;

// ---- messages (SPEC.md M1-M8) ----
export const zPost = z.object({
  channel: zChannelId,
  clientId: zClientId,
  text: z.string().max(LIMITS.maxTextLength),
  attachments: z.array(zSignedAttachment).max(LIMITS.maxAttachmentsPerMessage),
  replyTo: zUlid.nullable(),
  author: zPublicKey,
  /** The relay this post is meant for (its public key): another relay refuses it (SPEC.md M6). */
  relay: zPublicKey,
  /** The author's estimate of the relay's clock when signing, ms (SPEC.md M6). */
  sentAt: z.number().int().nonnegative(),
  /** Author's signature over signingBytes('post', postFields(post)). */
  sig: zSignature,
});
export type Post = z.infer<typeof zPost>;

export const zPrevLink = z.object({ id: zUlid, hash: zDigest });
export const zEnvelope = z.object({
  id: zUlid,
  ts: z.number().int(),
  epoch: zUlid,
  /** The previous envelope of this channel in this epoch; null for the first (SPEC.md R6). */
  prev: zPrevLink.nullable(),
  post: zPost,
  /**
   * The author's display name as the relay verified it at the author's login, covered by `rsig` (SPEC.md
   * M7): a name that travels with the history and cannot be changed by the peers that carry it. Absent in
   * envelopes minted before protocol 3, which still verify.
   */
  authorName: zDisplayName.optional(),
  relay: zPublicKey,
  /** Relay's countersignature over signingBytes('envelope', envelopeFields(env)). */
  rsig: zSignature,
});
export type Envelope = z.infer<typeof zEnvelope>;

// ---- presence (SPEC.md P1-P12) ----
export const zPresenceUpdateInput = z.object({ voiceRoom: zVoiceRoom });

/**
 * What this connection's presence streams show (SPEC.md P9-P11): one page of members, the sessions of the
 * watched keys (its own key is always watched), and, with `resample`, a fresh sample of peers. Replaces the
 * previous view; applies to the connection's presence streams now and to those it opens later.
 */
export const zPresenceViewInput = z.object({
  page: z.number().int().min(0).max(LIMITS.maxPresencePage),
  watch: z.array(zPublicKey).max(LIMITS.maxPresenceWatch),
  resample: z.boolean().optional(),
});
export type PresenceViewInput = z.infer<typeof zPresenceViewInput>;

/** Online sessions by kind: people (browsers) and virtual clients (SPEC.md P9). */
export interface PresenceCounts {
  browser: number;
  virtual: number;
}

/** A peer to link to: enough for the sync engine's roster (peer id, kind, and the key bans are kept by). */
export interface SamplePeer {
  peerId: string;
  userId: string;
  kind: ClientKind;
}

/**
 * The member order (SPEC.md P9): people before virtual clients, then longest online first, then by session
 * id. Stable: a session keeps its place while it is online, and a join lands at the end of its kind, so in a
 * login storm the first pages fill once and then stay put.
 */
export function comparePresence(a: PresenceUser, b: PresenceUser): number {
  if (a.kind !== b.kind) return a.kind === 'browser' ? -1 : 1;
  if (a.since !== b.since) return a.since - b.since;
  return a.sessionId < b.sessionId ? -1 : a.sessionId > b.sessionId ? 1 : 0;
}

// ---- the event stream: one multiplexed subscription per client (SPEC.md R7) ----
export const zEventsInput = z.object({
  /** Channels to receive messages from; omitted = every channel. */
  channels: z.array(zChannelId).max(LIMITS.maxChannels).optional(),
  /**
   * Receive presence (snapshot, then page, watched, counts and peers events; SPEC.md P6-P12); default true.
   * Clients that never look at presence (load generators, bots) skip it.
   */
  presence: z.boolean().optional(),
});

export type RelayEvent =
  /**
   * Envelopes relayed in the same tick, coalesced, serialized once as a JSON array for every subscriber
   * (fan-out cost, SPEC.md R7). Parse with `parseEnvelopeBatch`.
   */
  | { t: 'msgs'; raw: string }
  /**
   * The first presence event of a stream (SPEC.md P6): the counts, the page (`users`, in comparePresence
   * order), the online sessions of the watched keys and the peer sample.
   */
  | { t: 'presence'; op: 'snapshot'; online: PresenceCounts; page: number; users: PresenceUser[]; watched: PresenceUser[]; peers: SamplePeer[] }
  /**
   * The page changed (SPEC.md P8, P9): `users` entered it or changed (replace by sessionId), `left` are no
   * longer on it (gone, or pushed off by a join above them). `reset`: `users` is the whole page (after a
   * `presence.view` that changed the page). A sessionId is in at most one of the two lists.
   */
  | { t: 'presence'; op: 'page'; page: number; users: PresenceUser[]; left: string[]; reset: boolean }
  /** Sessions of watched keys joined or changed (`users`) or ended (`left`); `reset`: the whole set (P10). */
  | { t: 'presence'; op: 'watched'; users: PresenceUser[]; left: string[]; reset: boolean }
  /** The online counts, at most one event per `countsIntervalMs` (SPEC.md P8). */
  | { t: 'presence'; op: 'counts'; online: PresenceCounts }
  /** A new peer sample, replacing the last (SPEC.md P11). */
  | { t: 'presence'; op: 'peers'; peers: SamplePeer[] }
  /** The relay is shutting down: reconnect after `retryAfterMs` plus jitter. */
  | { t: 'bye'; reason: typeof RelayReason.SHUTTING_DOWN; retryAfterMs: number };

export const zEnvelopeBatch = z.array(zEnvelope).max(10_000);
export function parseEnvelopeBatch(raw: string): Envelope[] | null {
  try {
    const parsed = zEnvelopeBatch.safeParse(JSON.parse(raw));
    return parsed.success ? parsed.data : null;
  } catch {
    return null;
  }
}

// ---- signalling over the tRPC socket (SPEC.md W11) ----

/**
 * One PeerJS client message (OFFER, ANSWER, CANDIDATE, LEAVE) is the JSON text PeerJS would send on its own
 * socket; `signal.connect` streams the relay's messages back the same way. The relay parses and bounds each
 * as a `/peerjs` socket's frame (W4, W6-W8).
 */
export const SIGNAL_MAX_MESSAGE_CHARS = 64 * 1024;
/**
 * Most messages of one `signal.send`. A client sends what it has gathered in one call (an OFFER and the
 * candidates that follow it within a few ms), so a burst of ~300 messages -- 30 links opened at once -- is a
 * few requests of the socket's per-second budget rather than 300 frames (R11).
 */
export const SIGNAL_MAX_BATCH = 32;
export const zSignalConnectInput = z.object({
  /** The login's PeerJS id the client's Peer was made for: a stream resent on a later login's socket is refused. */
  peerId: z.string().min(1).max(64),
});
export const zSignalBatch = z.array(z.string().max(SIGNAL_MAX_MESSAGE_CHARS)).min(1).max(SIGNAL_MAX_BATCH);

// ---- voice rooms (SPEC.md V1-V6) ----
// Kept apart from presence on purpose: the roster is becoming a lazy member list, while a voice room must
// be known whole to everyone in it (each member calls every other, V5).


export const zVoiceJoinInput = z.object({ channel: zChannelId });
export const zVoiceStateInput = z.object({ muted: z.boolean(), deafened: z.boolean() });
export const zVoiceWatchInput = z.object({
  /** Rooms of these channels; omitted = every channel. */
  channels: z.array(zChannelId).max(LIMITS.maxChannels).optional(),
});

export const zVoiceMember = z.object({
  sessionId: z.string(),
  userId: zPublicKey,
  name: z.string(),
  fingerprint: z.string(),
  /** The PeerJS id of this member's session: the only id whose calls the others answer for it (V5). */
  peerId: zPeerId,
  /** Deafened implies muted (the relay sets it, V3). */
  muted: z.boolean(),
  deafened: z.boolean(),
  /** Relay-wide join order: of two members, the later joiner calls the earlier one (V5). */
  joinSeq: z.number().int(),
});
export type VoiceMember = z.infer<typeof zVoiceMember>;

export const zVoiceRoomState = z.object({
  channel: zChannelId,
  /** In join order; empty = the room is gone (nobody in it). */
  members: z.array(zVoiceMember).max(VOICE_LIMITS.maxMembers),
});
export type VoiceRoomState = z.infer<typeof zVoiceRoomState>;

/** The `voice.watch` stream (SPEC.md V4): one snapshot of the occupied rooms, then each changed room whole. */
export type VoiceEvent = { op: 'snapshot'; rooms: VoiceRoomState[] } | { op: 'room'; room: VoiceRoomState };
