// The PeerJS signalling wire protocol as the relay speaks it (SPEC.md W1-W10). The client half is the
// `peerjs` 1.5 package itself (lib/socket.ts, lib/enums.ts, lib/negotiator.ts); this file is the one
// place the relay declares those shapes. Every client message is validated here before it is routed:
// a PeerJS client trusts what the server forwards (an OFFER with an unknown `serialization` makes it
// call `new undefined(...)` inside its socket listener, which crashes a Node peer), so the relay only
// forwards payloads of the shapes PeerJS itself produces.
import { z } from 'zod';
import { CloseCode } from '../../shared/protocol/relay';

/** Message types of the PeerJS server protocol (peerjs lib/enums.ts ServerMessageType). */
export const MsgType = {
  OPEN: 'OPEN',
  ERROR: 'ERROR',
  ID_TAKEN: 'ID-TAKEN',
  INVALID_KEY: 'INVALID-KEY',
  HEARTBEAT: 'HEARTBEAT',
  OFFER: 'OFFER',
  ANSWER: 'ANSWER',
  CANDIDATE: 'CANDIDATE',
  LEAVE: 'LEAVE',
  EXPIRE: 'EXPIRE',
} as const;

/**
 * Stable reason codes the relay puts in ERROR `payload.msg`. The PeerJS client surfaces them as a
 * `PeerError` of type `server-error` whose `message` is exactly this code.
 */
export const SignalReason = {
  UNAUTHORIZED: 'UNAUTHORIZED',
  PROTOCOL_MISMATCH: 'PROTOCOL_MISMATCH',
  SESSION_ENDED: 'SESSION_ENDED',
  REPLACED: 'REPLACED',
  BAD_MESSAGE: 'BAD_MESSAGE',
  FLOOD: 'FLOOD',
  SLOW_CONSUMER: 'SLOW_CONSUMER',
  SHUTTING_DOWN: 'SHUTTING_DOWN',
  INTERNAL: 'INTERNAL',
} as const;
export type SignalReason = (typeof SignalReason)[keyof typeof SignalReason];

/**
 * WebSocket close codes of the signalling socket (SPEC.md W1-W10). Shared codes come from the relay
 * protocol; REPLACED and BAD_MESSAGE exist only here.
 */
export const SignalClose = {
  SERVICE_RESTART: CloseCode.SERVICE_RESTART,
  SLOW_CONSUMER: CloseCode.SLOW_CONSUMER,
  FLOOD: CloseCode.FLOOD,
  SESSION_ENDED: CloseCode.SESSION_ENDED,
  /** Authentication failed, bad key or protocol version: nothing was registered. */
  UNAUTHORIZED: CloseCode.SIGNAL_AUTH,
  /** A newer authorized socket for the same peer id took over. */
  REPLACED: 4012,
  /** The socket sent something that is not a PeerJS client message. */
  BAD_MESSAGE: 4013,
} as const;

/** PeerJS id syntax (peerjs lib/utils/validateId.ts), with a length bound the client lacks. */
const PEER_ID = /^[A-Za-z0-9]+(?:[ _-][A-Za-z0-9]+)*$/;
export const MAX_PEER_ID_LENGTH = 64;
export const MAX_TOKEN_LENGTH = 512;
export function isPeerId(s: unknown): s is string {
  return typeof s === 'string' && s.length <= MAX_PEER_ID_LENGTH && PEER_ID.test(s);
}

/** PeerJS connection ids: `dc_`/`mc_` + Math.random().toString(36).slice(2) (lib/utils/randomToken.ts). */
const zConnectionId = z.string().regex(/^[a-z]{2}_[a-z0-9]{1,32}$/, 'connection id');
const zConnectionType = z.enum(['data', 'media']);
/** One SDP: a data channel's is ~1 KiB, audio+video ~6 KiB; 48 KiB leaves room under maxPayload. */
const zSdpText = z.string().max(48 * 1024);

const zOfferPayload = z.object({
  type: zConnectionType,
  connectionId: zConnectionId,
  sdp: z.object({ type: z.literal('offer'), sdp: zSdpText }),
  // Opaque to the relay; bounded by the frame size.
  metadata: z.unknown().optional(),
  label: z.string().max(128).optional(),
  reliable: z.boolean().optional(),
  // The receiving PeerJS indexes its serializer table with this value: only names it knows pass.
  serialization: z.enum(['raw', 'binary', 'binary-utf8', 'json']).optional(),
});
const zAnswerPayload = z.object({
  type: zConnectionType,
  connectionId: zConnectionId,
  sdp: z.object({ type: z.literal('answer'), sdp: zSdpText }),
});
const zCandidatePayload = z.object({
  type: zConnectionType,
  connectionId: zConnectionId,
  candidate: z.object({
    candidate: z.string().max(1024),
    sdpMid: z.string().max(64).nullable().optional(),
    sdpMLineIndex: z.number().int().min(0).max(1024).nullable().optional(),
    usernameFragment: z.string().max(256).nullable().optional(),
  }),
});
const zDst = z.string().refine(isPeerId, 'peer id');

/** What a client may send. Anything else (including OPEN/EXPIRE/ERROR from a client) is garbage. */
export const zClientMessage = z.discriminatedUnion('type', [
  z.object({ type: z.literal(MsgType.HEARTBEAT) }),
  z.object({ type: z.literal(MsgType.OFFER), dst: zDst, payload: zOfferPayload }),
  z.object({ type: z.literal(MsgType.ANSWER), dst: zDst, payload: zAnswerPayload }),
  z.object({ type: z.literal(MsgType.CANDIDATE), dst: zDst, payload: zCandidatePayload }),
  // PeerJS 1.5 never sends LEAVE itself; a receiver closes every connection with `src`.
  z.object({ type: z.literal(MsgType.LEAVE), dst: zDst }),
]);
export type ClientMessage = z.infer<typeof zClientMessage>;
export type RoutedMessage = Exclude<ClientMessage, { type: typeof MsgType.HEARTBEAT }>;

export type ParseResult = { ok: true; msg: ClientMessage } | { ok: false; reason: typeof SignalReason.BAD_MESSAGE };

/** Parses one text frame from a client. Never throws. */
export function parseClientMessage(text: string): ParseResult {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    return { ok: false, reason: SignalReason.BAD_MESSAGE };
  }
  const parsed = zClientMessage.safeParse(json);
  return parsed.success ? { ok: true, msg: parsed.data } : { ok: false, reason: SignalReason.BAD_MESSAGE };
}

/**
 * The forwarded form of a routed message. `src` is the sender's authenticated id, never what the
 * client wrote (the schema strips a client-supplied `src`). Serialized once per message.
 */
export function forwardFrame(src: string, msg: RoutedMessage): string {
  return JSON.stringify({ type: msg.type, src, dst: msg.dst, payload: 'payload' in msg ? msg.payload : undefined });
}

export const openFrame = (): string => JSON.stringify({ type: MsgType.OPEN });
/** Tells `to` that its messages for `peer` could not be delivered (PeerJS raises `peer-unavailable`). */
export const expireFrame = (peer: string, to: string): string =>
  JSON.stringify({ type: MsgType.EXPIRE, src: peer, dst: to });
export const errorFrame = (reason: SignalReason): string => JSON.stringify({ type: MsgType.ERROR, payload: { msg: reason } });
/** PeerJS maps this type to its own `invalid-key` error. */
export const invalidKeyFrame = (): string =>
  JSON.stringify({ type: MsgType.INVALID_KEY, payload: { msg: 'Invalid key provided' } });

export interface UpgradeParams {
  key: string;
  id: string;
  token: string;
  version: string;
}

/**
 * Reads the query PeerJS puts on its socket URL: `<path>peerjs?key=K&id=ID&token=T&version=V`
 * (lib/socket.ts; the values are not URL-encoded by the client, so ids and tokens must be URL-safe).
 * NOT_FOUND: not the signalling path; BAD_QUERY: a parameter is missing or oversized.
 */
export function parseUpgradeUrl(
  url: string | undefined,
  socketPath: string,
): { ok: true; params: UpgradeParams } | { ok: false; reason: 'NOT_FOUND' | 'BAD_QUERY' } {
  let u: URL;
  try {
    u = new URL(url ?? '', 'http://relay.invalid');
  } catch {
    return { ok: false, reason: 'NOT_FOUND' };
  }
  if (u.pathname !== socketPath) return { ok: false, reason: 'NOT_FOUND' };
  const q = u.searchParams;
  const key = q.get('key');
  const id = q.get('id');
  const token = q.get('token');
  const version = q.get('version') ?? '';
  if (key === null || id === null || token === null) return { ok: false, reason: 'BAD_QUERY' };
  if (key.length > 128 || version.length > 32) return { ok: false, reason: 'BAD_QUERY' };
  return { ok: true, params: { key, id, token, version } };
}

/** The PeerJS `path` option as the client normalizes it (leading and trailing slash). */
export function normalizePeerjsPath(path: string): string {
  let p = path.startsWith('/') ? path : `/${path}`;
  if (!p.endsWith('/')) p += '/';
  return p;
}

/** Wire protocol generation: every PeerJS 1.x client speaks it (its `version` query is `1.x.y`). */
export function isSupportedClientVersion(version: string): boolean {
  return /^1\.\d+\.\d+/.test(version);
}
