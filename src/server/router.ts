// The relay's tRPC procedures (SPEC.md L*, M*, A*, P*, R7). Inputs and outputs come from the shared
// protocol file; this file only decides. Sockets, timers and HTTP live in createRelay.ts.
import { initTRPC, TRPCError } from '@trpc/server';
import type { RateLimiterMemory } from 'rate-limiter-flexible';
import superjson from 'superjson';
import type { Ed25519Backend } from '../shared/crypto/ed25519';
import { checkPublicKey } from '../shared/crypto/strictPolicy';
import { fromB64url } from '../shared/encoding';
import {
  type Challenge,
  CloseCode,
  type Envelope,
  type LoginInput,
  type LoginOutput,
  LIMITS,
  POST_TIME_WINDOW_MS,
  PROTOCOL_VERSION,
  type Post,
  type PresenceUser,
  RelayReason,
  type ServerInfo,
  VOICE_LIMITS,
  type SignedAttachment,
  zAttachmentMeta,
  zChallengeInput,
  zEventsInput,
  zLoginInput,
  zPost,
  zPresenceUpdateInput,
  zPresenceViewInput,
  zSignalBatch,
  zSignalConnectInput,
  type VoiceRoomState,
  zVoiceJoinInput,
  zVoiceStateInput,
  zVoiceWatchInput,
} from '../shared/protocol/relay';
import { placeholderProblem, postDigest, postSigningBytes, signAttachment, verifyAttachment, verifyLogin, verifyPostSignature } from '../shared/protocol/signed';
import type { ChallengeBook } from './ChallengeBook';
import type { RelayConfig } from './config';
import type { EnvelopeMinter, Minted } from './EnvelopeMinter';
import { type EventHub, EventStream } from './EventHub';
import type { Logger } from './logger';
import type { RecentPosts } from './RecentPosts';
import { issuesOf, reasonOf, relayError } from './relayError';
import type { RelaySocket } from './RelaySocket';
import type { RelayStats } from './RelayStats';
import { PreEncoded } from './frameEncoder';
import type { FastMutation } from './trpcWsAdapter';
import type { Session, SessionRegistry } from './SessionRegistry';
import type { VoiceRooms } from './VoiceRooms';
import type { SignallingServer } from './signalling/createSignallingServer';
import { SignalStream } from './signalling/SignalStream';

export interface RelayContext {
  socket: RelaySocket;
}

export interface RouterDeps {
  config: RelayConfig;
  backend: Ed25519Backend;
  relayKey: string;
  info: ServerInfo;
  challenges: ChallengeBook;
  sessions: SessionRegistry;
  hub: EventHub;
  voice: VoiceRooms;
  minter: EnvelopeMinter;
  recent: RecentPosts<Minted>;
  mintId: () => { id: string; ts: number };
  limiters: { logins: RateLimiterMemory; posts: RateLimiterMemory; mints: RateLimiterMemory; presence: RateLimiterMemory; voice: RateLimiterMemory };
  stats: RelayStats;
  log: Logger;
  /** The PeerJS signalling endpoint, which `signal.connect` streams join (SPEC.md W11). */
  signalling: SignallingServer;
  isShuttingDown: () => boolean;
  /** The relay's clock (challenge `relayTime`, the post window). */
  now: () => number;
  /** May a login on this socket name `origin` as the relay it meant (SPEC.md L9, origins.ts)? */
  acceptsOrigin: (origin: string, socket: RelaySocket) => boolean;
  /** A login succeeded on a still-open socket: stop its login timer, start waiting streams. */
  onLogin: (socket: RelaySocket, session: Session) => void;
}

const t = initTRPC.context<RelayContext>().create({
  transformer: superjson,
  // Never send stack traces to clients, whatever NODE_ENV says.
  isDev: false,
  errorFormatter({ shape, error }) {
    const issues = issuesOf(error);
    return {
      ...shape,
      data: { code: shape.data.code, httpStatus: shape.data.httpStatus, path: shape.data.path, reason: reasonOf(error), ...(issues && { issues }) },
    };
  },
});

async function consume(limiter: RateLimiterMemory, key: string): Promise<void> {
  try {
    await limiter.consume(key);
  } catch (err) {
    // rate-limiter-flexible rejects with a RateLimiterRes when the key is over its budget.
    if (err instanceof Error) throw err;
    throw relayError(RelayReason.RATE_LIMITED);
  }
}

/**
 * `signal.send` (SPEC.md W11): PeerJS messages to the endpoint through this socket's open `signal.connect`
 * stream, in order. Refusals of a message itself (flood, bad message) end the stream with an ERROR naming the
 * reason, as they close a `/peerjs` socket; the rest of the batch is then refused.
 */
function signalSend(socket: RelaySocket, texts: readonly string[]): null {
  sessionOf(socket);
  for (const text of texts) {
    if (!socket.signal?.receive(text)) throw relayError(RelayReason.NO_SIGNAL_STREAM, 'no open signal.connect stream on this socket');
  }
  return null;
}

/** The `authed` middleware's check (SPEC.md L7), also run by the chat.post fast path. */
function sessionOf(socket: RelaySocket): Session {
  const session = socket.session;
  if (!session || session.ended) throw relayError(RelayReason.NOT_LOGGED_IN);
  return session;
}

/**
 * chat.post once its input passed zPost (SPEC.md M1-M6, R4, R11): one function for the tRPC procedure and
 * the fast path, so both check the same things in the same order. `exact`: the post came from input
 * without superjson meta, so it holds only JSON values and its envelope's JSON is its exact serialized
 * form (the fast path then splices that text into the reply).
 */
function createPostMessage(d: RouterDeps): (session: Session, post: Post, exact: boolean) => Promise<Minted> {
  const channelIds = new Set(d.config.channels.map((c) => c.id));
  return (session, post, exact) => {
    if (post.author !== session.user.userId) throw relayError(RelayReason.WRONG_AUTHOR);
    if (!channelIds.has(post.channel)) throw relayError(RelayReason.UNKNOWN_CHANNEL);
    if (post.text.length === 0 && post.attachments.length === 0) throw relayError(RelayReason.BAD_INPUT, 'empty post');
    if (post.relay !== d.relayKey) throw relayError(RelayReason.WRONG_RELAY, 'post signed for another relay');
    // Built once: the idempotency key (digest), the author's signature check and the envelope's binding all
    // cover these bytes.
    const bytes = postSigningBytes(post);
    const digest = postDigest(post, bytes);
    const seen = d.recent.lookup(post.author, post.clientId, digest);
    // An idempotent retry (R4) gets its envelope even once its window closed: nothing new is relayed.
    if (seen.kind === 'same') return seen.result;
    if (seen.kind === 'conflict' || seen.kind === 'spent') throw relayError(RelayReason.DUPLICATE_CLIENT_ID);
    // SPEC.md M6: an old signed post cannot come back as new.
    const skew = post.sentAt - d.now();
    if (skew < -POST_TIME_WINDOW_MS) throw relayError(RelayReason.STALE_POST, `sentAt is more than ${POST_TIME_WINDOW_MS} ms behind the relay's clock`);
    if (skew > POST_TIME_WINDOW_MS) throw relayError(RelayReason.CLOCK_SKEW, `sentAt is more than ${POST_TIME_WINDOW_MS} ms ahead of the relay's clock`);
    if (!d.recent.hasRoom(post.author, post.clientId)) throw relayError(RelayReason.RATE_LIMITED, 'too many recent posts to remember');
    // Remembered before the first await, so a concurrent retry finds this attempt instead of starting another.
    const result = (async () => {
      await consume(d.limiters.posts, post.author);
      const sig = await verifyPostSignature(d.backend, post, bytes);
      if (!sig.ok) throw relayError(RelayReason.BAD_SIGNATURE);
      for (const a of post.attachments) {
        if (a.uploader !== post.author) throw relayError(RelayReason.BAD_ATTACHMENT, 'attachment uploaded by another key');
        const ok = await verifyAttachment(d.backend, a, d.relayKey);
        if (!ok.ok) throw relayError(RelayReason.BAD_ATTACHMENT);
      }
      d.stats.posts++;
      // The login name, verified at login (L4): peers show it for this post without having seen the author (M7).
      return d.minter.mint(post, digest, exact, session.user.name);
    })();
    d.recent.remember(post.author, post.clientId, digest, post.sentAt, result);
    return result;
  };
}

/**
 * auth.challenge and auth.login once their input passed its schema (SPEC.md L1-L9): one body for the tRPC
 * procedure and the fast path, so both check the same things in the same order.
 */
type ChallengeInput = ReturnType<typeof zChallengeInput.parse>;

function createLogin(d: RouterDeps, infoReply: ServerInfo) {
  return {
    async challenge(s: RelaySocket, input: ChallengeInput): Promise<Challenge> {
      if (input.protocol !== PROTOCOL_VERSION) throw relayError(RelayReason.PROTOCOL_MISMATCH, `relay speaks protocol ${PROTOCOL_VERSION}`);
      if (s.session) throw relayError(RelayReason.ALREADY_LOGGED_IN);
      await consume(d.limiters.logins, s.ip);
      const c = d.challenges.issue(s.connId);
      return { nonce: c.nonce, expiresAt: c.expiresAt, relayKey: d.relayKey, relayTime: d.now() };
    },

    async login(s: RelaySocket, input: LoginInput): Promise<LoginOutput> {
      if (input.protocol !== PROTOCOL_VERSION) throw relayError(RelayReason.PROTOCOL_MISMATCH, `relay speaks protocol ${PROTOCOL_VERSION}`);
      if (s.session) throw relayError(RelayReason.ALREADY_LOGGED_IN);
      if (d.isShuttingDown()) throw relayError(RelayReason.SHUTTING_DOWN);
      await consume(d.limiters.logins, s.ip);
      // The nonce is spent before anything else is checked: one nonce, one attempt (SPEC.md L3).
      const c = d.challenges.consume(s.connId, input.nonce);
      if (!c.ok) throw relayError(c.reason);
      const key = fromB64url(input.publicKey);
      if (!key || checkPublicKey(key) !== null) throw relayError(RelayReason.BAD_KEY);
      if (input.origin === undefined) throw relayError(RelayReason.BAD_INPUT, 'origin is required');
      // Signed for another relay's origin: a relay that passed our challenge on to its own client (L9).
      if (!d.acceptsOrigin(input.origin, s)) throw relayError(RelayReason.WRONG_RELAY, 'login signed for another origin');
      const fields = { nonce: input.nonce, relayKey: d.relayKey, origin: input.origin, publicKey: input.publicKey, name: input.name, kind: input.kind };
      const v = await verifyLogin(d.backend, fields, input.signature);
      if (!v.ok) throw relayError(v.reason === 'NON_CANONICAL_KEY' || v.reason === 'SMALL_ORDER_KEY' ? RelayReason.BAD_KEY : RelayReason.BAD_SIGNATURE);
      // The socket may have closed while we verified; a session for it would never end.
      if (s.readyState !== s.OPEN || s.closing) throw relayError(RelayReason.NOT_LOGGED_IN, 'connection closed');
      if (s.session) throw relayError(RelayReason.ALREADY_LOGGED_IN);
      const session = d.sessions.open({ userId: input.publicKey, name: input.name, kind: input.kind, connId: s.connId });
      d.challenges.loggedIn(s.connId, input.nonce);
      d.onLogin(s, session);
      d.log.debug('login', { conn: s.connId, session: session.user.sessionId, kind: input.kind });
      return { self: session.user, peerToken: session.peerToken, info: infoReply };
    },
  };
}

/**
 * Every login answers with the server info. superjson walks each object of a reply (the info is ~40
 * values: a third of the login reply's serialization); it leaves a PreEncoded as it is, and JSON.stringify
 * writes the same fields in the same order, so the wire is unchanged.
 */
const infoReplies = new WeakMap<ServerInfo, ServerInfo>();
function infoReplyOf(info: ServerInfo): ServerInfo {
  let reply = infoReplies.get(info);
  if (!reply) infoReplies.set(info, (reply = new PreEncoded(info) as unknown as ServerInfo));
  return reply;
}

/** superjson's form of an input with nothing but JSON values: its `json` is the input itself. */
const takesPlainJson = (sent: unknown): boolean =>
  typeof sent === 'object' && sent !== null && !Array.isArray(sent) && (sent as { meta?: unknown }).meta === undefined;

/** The schema's parse of a plain-JSON input, failing as tRPC's input middleware does (same error shape and issues). */
function parsed<T>(schema: { safeParse(v: unknown): { success: true; data: T } | { success: false; error: unknown } }, sent: unknown): T {
  const r = schema.safeParse((sent as { json?: unknown }).json);
  if (!r.success) throw new TRPCError({ code: 'BAD_REQUEST', cause: r.error });
  return r.data;
}

/**
 * Procedures the adapter serves without tRPC's procedure call (trpcWsAdapter.ts `fastMutations`): chat.post,
 * the relay's hot path. Same checks in the procedure's order -- login (`authed`), shutting down (`writer`),
 * the zPost schema with tRPC's own error for a failure -- then the same postMessage; the reply splices the
 * envelope JSON the minter made once (byte-identical to the procedure's reply: chat.test.ts).
 */
export function createFastMutations(d: RouterDeps): Record<string, FastMutation<RelaySocket>> {
  const postMessage = createPostMessage(d);
  const infoReply = infoReplyOf(d.info);
  const infoJson = PreEncoded.jsonOf(infoReply as unknown as PreEncoded);
  const auth = createLogin(d, infoReply);
  return {
    // Synchronous, so a socket's signalling messages reach the endpoint in the order they were sent (an
    // OFFER before its CANDIDATEs) whatever else the frame carries.
    'signal.send': {
      takes: takesPlainJson,
      run: (socket, sent) => signalSend(socket, parsed(zSignalBatch, sent)),
      jsonOf: () => 'null',
    },
    'chat.post': {
      takes: takesPlainJson,
      run(socket, sent) {
        const session = sessionOf(socket);
        if (d.isShuttingDown()) throw relayError(RelayReason.SHUTTING_DOWN);
        return postMessage(session, parsed(zPost, sent), true);
      },
      output: (minted) => (minted as Minted).env,
      jsonOf: (minted) => ((minted as Minted).exact ? (minted as Minted).json : undefined),
    },
    // A login storm (a relay restart) is every client's challenge and login at once (SPEC.md R19): the
    // procedure call, the input's superjson copy and the reply's superjson walk were ~10% of a login's CPU.
    // Both replies hold JSON values only, so superjson's form is `{json: output}`.
    'auth.challenge': {
      takes: takesPlainJson,
      run: (socket, sent) => auth.challenge(socket, parsed(zChallengeInput, sent)),
      jsonOf: (c) => JSON.stringify(c as Challenge),
    },
    'auth.login': {
      takes: takesPlainJson,
      run: (socket, sent) => auth.login(socket, parsed(zLoginInput, sent)),
      // JSON.stringify of the output, key order included, with the info's JSON made once.
      jsonOf: (out) => {
        const o = out as LoginOutput;
        return `{"self":${JSON.stringify(o.self)},"peerToken":${JSON.stringify(o.peerToken)},"info":${infoJson}}`;
      },
    },
  };
}

export function createRouter(d: RouterDeps) {
  const channelIds = new Set(d.config.channels.map((c) => c.id));
  const postMessage = createPostMessage(d);
  const infoReply = infoReplyOf(d.info);
  const auth = createLogin(d, infoReply);

  const authed = t.procedure.use(({ ctx, next }) => next({ ctx: { ...ctx, session: sessionOf(ctx.socket) } }));
  const writer = authed.use(({ next }) => {
    if (d.isShuttingDown()) throw relayError(RelayReason.SHUTTING_DOWN);
    return next();
  });

  return t.router({
    info: t.procedure.query((): ServerInfo => infoReply),

    auth: t.router({
      // Served by the adapter's fast path (createFastMutations) for every input without superjson meta; these
      // definitions are the reference (the router type, and inputs that carry meta).
      challenge: t.procedure.input(zChallengeInput).mutation(({ ctx, input }): Promise<Challenge> => auth.challenge(ctx.socket, input)),
      login: t.procedure.input(zLoginInput).mutation(({ ctx, input }): Promise<LoginOutput> => auth.login(ctx.socket, input)),
    }),

    chat: t.router({
      // Served by the adapter's fast path (createFastMutations below) for every input without superjson meta;
      // this definition is the reference (the router type, and inputs that carry meta).
      post: writer.input(zPost).mutation(async ({ ctx, input }): Promise<Envelope> => (await postMessage(ctx.session, input, false)).env),
    }),

    attachment: t.router({
      // `.strict()`: the relay never takes attachment content; an input carrying extra fields (bytes) is refused.
      mint: writer.input(zAttachmentMeta.strict()).mutation(async ({ ctx, input: meta }): Promise<SignedAttachment> => {
        // The operator's cap (A5), published in info; the schema only knows the protocol's 64 MiB ceiling.
        const cap = d.config.limits.maxAttachmentBytes;
        if (meta.size > cap) throw relayError(RelayReason.TOO_LARGE, `attachment is ${meta.size} bytes; this relay mints at most ${cap}`);
        if (meta.thumbnail) {
          const bytes = fromB64url(meta.thumbnail.data);
          if (!bytes || bytes.length > LIMITS.maxThumbnailBytes) throw relayError(RelayReason.BAD_ATTACHMENT, 'bad thumbnail');
        }
        const placeholder = placeholderProblem(meta);
        if (placeholder) throw relayError(RelayReason.BAD_ATTACHMENT, placeholder);
        await consume(d.limiters.mints, ctx.session.user.userId);
        const { id, ts } = d.mintId();
        return signAttachment(d.backend, d.config.secretKey, { id, ts, uploader: ctx.session.user.userId, meta, relay: d.relayKey });
      }),
    }),

    presence: t.router({
      update: writer.input(zPresenceUpdateInput).mutation(async ({ ctx, input }): Promise<PresenceUser> => {
        if (ctx.session.user.voiceRoom === input.voiceRoom) return ctx.session.user; // nothing to announce
        await consume(d.limiters.presence, ctx.session.user.userId);
        d.sessions.setVoiceRoom(ctx.session, input.voiceRoom);
        return ctx.session.user;
      }),
      /**
       * Which page of members and which keys this connection's presence streams show (SPEC.md P9-P11).
       * Not rate-limited beyond the socket's request budget (R11): a view change costs one page for this
       * socket, and a member list being scrolled asks often.
       */
      view: authed.input(zPresenceViewInput).mutation(({ ctx, input }): { ok: true } => {
        d.hub.setPresenceView(ctx.socket, input);
        return { ok: true };
      }),
    }),

    // Voice rooms (SPEC.md V1-V6): membership and mute state only; the audio goes peer to peer.
    voice: t.router({
      join: writer.input(zVoiceJoinInput).mutation(async ({ ctx, input }): Promise<VoiceRoomState> => {
        if (!channelIds.has(input.channel)) throw relayError(RelayReason.UNKNOWN_CHANNEL);
        if (d.voice.channelOf(ctx.session) === input.channel) return d.voice.room(input.channel); // nothing to announce
        await consume(d.limiters.voice, ctx.session.user.userId);
        // The session may have ended while the limiter answered: a member nobody can remove would stay.
        if (ctx.session.ended) throw relayError(RelayReason.NOT_LOGGED_IN);
        const r = d.voice.join(ctx.session, input.channel);
        if (!r.ok) throw relayError(RelayReason[r.reason], `the room holds ${VOICE_LIMITS.maxMembers} people`);
        return r.room;
      }),
      // Not rate-limited: leaving must always work, and each leave follows a counted join.
      leave: authed.mutation(({ ctx }): { left: boolean } => ({ left: d.voice.leave(ctx.session) })),
      state: writer.input(zVoiceStateInput).mutation(async ({ ctx, input }): Promise<{ changed: boolean }> => {
        if (d.voice.channelOf(ctx.session) === null) throw relayError(RelayReason.NOT_IN_VOICE);
        if (d.voice.isUnchanged(ctx.session, input)) return { changed: false };
        await consume(d.limiters.voice, ctx.session.user.userId);
        const r = d.voice.setState(ctx.session, input);
        if (!r.ok) throw relayError(RelayReason[r.reason]);
        return { changed: r.changed };
      }),
      /** The rooms of the watched channels: a snapshot, then each changed room whole (V4). One per socket. */
      watch: authed.input(zVoiceWatchInput).subscription(({ ctx, input }) => {
        if (input.channels?.some((c) => !channelIds.has(c))) throw relayError(RelayReason.UNKNOWN_CHANNEL);
        const w = d.voice.watch(ctx.socket, input.channels ? new Set(input.channels) : null);
        if (!w) throw relayError(RelayReason.TOO_MANY_SUBSCRIPTIONS, 'one voice watch per connection');
        return w;
      }),
    }),

    // PeerJS signalling over this socket (SPEC.md W11): the stream is the client's signalling connection
    // (OPEN first, then what others send it), `send` what it says. One stream per socket; the newest wins.
    signal: t.router({
      connect: authed.input(zSignalConnectInput).subscription(({ ctx, input }) => {
        // Not counted against maxSubscriptionsPerConnection: a socket holds at most one (a second replaces it).
        const s = ctx.socket;
        const session = ctx.session;
        // wsLink resends an open subscription on its next socket, whose login has another peer id.
        if (input.peerId !== session.user.peerId) throw relayError(RelayReason.NO_SIGNAL_STREAM, 'this socket is logged in with another peer id');
        const grant = d.sessions.authorize(session.user.peerId, session.peerToken);
        if (!grant) throw relayError(RelayReason.NOT_LOGGED_IN);
        return new SignalStream(s, (port) => d.signalling.attachStream(session.user.peerId, grant, s.ip, port));
      }),
      // Served by the adapter's fast path (createFastMutations) for every input without superjson meta.
      send: authed.input(zSignalBatch).mutation(({ ctx, input }): null => signalSend(ctx.socket, input)),
    }),

    /**
     * The one multiplexed stream per client (SPEC.md R7). May be opened before login: it starts with the
     * presence snapshot once this connection logs in, so a reconnecting client can resubscribe at once.
     */
    events: t.procedure.input(zEventsInput).subscription(({ ctx, input }) => {
      const s = ctx.socket;
      if (s.subscriptions >= d.config.limits.maxSubscriptionsPerConnection) throw relayError(RelayReason.TOO_MANY_SUBSCRIPTIONS);
      if (input.channels?.some((c) => !channelIds.has(c))) throw relayError(RelayReason.UNKNOWN_CHANNEL);
      const presence = input.presence ?? true;
      s.subscriptions++; // counted down by the stream when it ends
      return new EventStream(d.hub, s, input.channels ? new Set(input.channels) : null, presence);
    }),
  });
}

export type AppRouter = ReturnType<typeof createRouter>;
