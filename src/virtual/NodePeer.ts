// A headless peer in Node (SPEC.md VC1, VC2, VC7): a relay connection (login, events stream) plus a PeerJS Peer
// over @roamhq/wrtc, a PeerJS transport and the shared SyncEngine over a HistoryStore. The virtual client
// is one of kind 'virtual'; tests use kind 'browser' to play real users without a browser.
//
// Sessions: every login (the first and one after each reconnect) is a new relay session with a new PeerJS
// id and token. The Peer, the transport and the engine belong to one session: on a new login they are
// torn down and rebuilt with the new id, over the same store, so what was cached survives. The events
// stream is resent by the relay connection after a reconnect and restarts with a presence snapshot; the
// roster is kept here and handed to whichever engine is current.
//
// Ownership (STYLE 10): this object owns the relay connection, the events subscription, each session's
// Peer/transport/engine, its timers, and the store unless the caller passed one in. stop() ends all of
// them; `liveResources()` counts what is still held, 0 after stop.
import type { DataConnection, Peer } from 'peerjs';
import type { Unsubscribable } from '@trpc/server/observable';
import type { Ed25519Backend } from '../shared/crypto/ed25519';
import { nodeBackend } from '../shared/crypto/nodeBackend';
import { toB64url } from '../shared/encoding';
import {
  type AttachmentMeta,
  type ClientKind,
  type Envelope,
  type LoginOutput,
  type PresenceUser,
  type RelayEvent,
  type SignedAttachment,
  parseEnvelopeBatch,
} from '../shared/protocol/relay';
import { contentDigests, signPost } from '../shared/protocol/signed';
import type { HistoryStore } from '../shared/store/HistoryStore';
import { MemoryStore } from '../shared/store/MemoryStore';
import { type FetchResult, SyncEngine, type SyncTuning } from '../shared/sync/SyncEngine';
import type { Clock } from '../shared/sync/Clock';
import { type PeerjsTransport, createPeerjsTransport } from '../shared/transport/peerjsTransport';
import { MAX_FRAME_BYTES, type PeerLink, type PeerTransport } from '../shared/transport/PeerTransport';
import { WebSocket } from 'ws';
import { type ConnectRelayOptions, type RelayConnection, connectRelay } from '../shared/client/relayConnection';
import { createWrtcPeer } from './wrtcPeer';
import { enableWrtcGc, noteWrtcClosed } from './wrtcGc';

export type NodePeerLog = (event: string, fields?: Record<string, unknown>) => void;

export interface NodePeerOptions {
  /** The relay's origin, e.g. `http://127.0.0.1:8080`; its tRPC socket is `<origin>/trpc`. */
  relayUrl: string;
  /** 32-byte Ed25519 seed of this peer's identity. */
  secretKey: Uint8Array;
  /** Display name in presence. */
  name: string;
  /** 'virtual' serves last and does not forward gossip (SPEC.md G7); 'browser' plays a real user. */
  kind: ClientKind;
  /** Where history is kept. Passed in = the caller owns it; omitted = a MemoryStore this peer owns and closes. */
  store?: HistoryStore;
  /** Channels whose live messages are received. @default every channel */
  channels?: string[];
  /** @default nodeBackend() */
  backend?: Ed25519Backend;
  /** Sync engine tuning, passed to every session's engine. */
  sync?: SyncTuning & { seed?: number; clock?: Clock };
  /** WebRTC links the transport may hold (open plus opening). @default engine maxLinks (32) + 8 for refusals in flight */
  maxLinks?: number;
  /** Connect timeout of the transport. @default 20_000 */
  connectTimeoutMs?: number;
  /** Wraps each session's transport before the engine sees it (tests: adversaries, spies). */
  wrapTransport?: (t: PeerTransport) => PeerTransport;
  /** Reconnect tuning of the relay connection. */
  relay?: Pick<ConnectRelayOptions, 'retryBaseMs' | 'retryMaxMs' | 'restartDelayMs' | 'keepAliveMs' | 'connectTimeoutMs'>;
  /** First delay before retrying a failed session setup or a lost signalling socket (full jitter, x2 per try). @default 500 */
  retryBaseMs?: number;
  /** @default 30_000 */
  retryMaxMs?: number;
  /** Where notable events go (login, session errors, sync errors). @default silent */
  log?: NodePeerLog;
  /** Also log every link opened, failed and closed (debugging; one line per link event). @default false */
  traceLinks?: boolean;
}

export interface NodePeerStatus {
  /** Logged in, signalling socket open and the engine running: other peers can reach us. */
  online: boolean;
  /** Other online users in presence. */
  peers: number;
  /** Open peer-to-peer links. */
  links: number;
  /** Messages held in the store. */
  messages: number;
  /** Attachment records held (MemoryStore only; 0 otherwise). */
  attachments: number;
  /** Bytes held by the store's accounting (MemoryStore only; 0 otherwise). */
  bytes: number;
  /** Logins so far (1 + reconnects). */
  logins: number;
}

/** How often waitFor conditions are re-checked besides on events. */
const WAIT_POLL_MS = 100;

/** Envelopes received while no engine runs (between sessions), fed to the next one. Beyond: oldest dropped (catch-up fills the gap). */
const MAX_PENDING_ENVELOPES = 10_000;

interface Session {
  login: LoginOutput;
  peer: Peer;
  transport: PeerjsTransport;
  engine: SyncEngine;
  /** Signalling re-registrations tried since the socket was last open (backoff). */
  signallingAttempts: number;
  /** The pending re-registration, if any. */
  signallingTimer: ReturnType<typeof setTimeout> | null;
  /** Removes the listeners this peer put on `peer`. */
  off: () => void;
}

interface StatsStore extends HistoryStore {
  stats(): { messages: number; attachments: number; bytes: number };
}
const hasStats = (s: HistoryStore): s is StatsStore => typeof (s as Partial<StatsStore>).stats === 'function';

export class NodePeer {
  readonly publicKey: string;
  readonly store: HistoryStore;
  readonly kind: ClientKind;
  private readonly opts: NodePeerOptions;
  private readonly backend: Ed25519Backend;
  private readonly ownsStore: boolean;
  private readonly log: NodePeerLog;
  private conn: RelayConnection | null = null;
  private sub: Unsubscribable | null = null;
  private stateSub: Unsubscribable | null = null;
  private relayUp = false;
  private logins = 0;
  private roster = new Map<string, PresenceUser>();
  private pending: Envelope[] = [];
  private current: Session | null = null;
  /** The last session's transport, kept after it closed so a test can see it let go of everything. */
  private lastTransport: PeerjsTransport | null = null;
  /** A Peer being set up (not yet a session): stop() destroys it so setup cannot hang. */
  private building: Peer | null = null;
  /** Bumped on every login and at stop: setup work for an older generation gives up. */
  private generation = 0;
  private genAbort = new AbortController();
  private chain: Promise<void> = Promise.resolve();
  private readonly timers = new Set<ReturnType<typeof setTimeout>>();
  /** waitFor conditions: re-check function -> how to fail it at stop. */
  private readonly watchers = new Map<() => void, (err: Error) => void>();
  private readonly engineHandlers = new Set<(engine: SyncEngine) => void>();
  private stopped = false;
  private notifyQueued = false;
  /** Re-checks waitFor conditions while any are waiting: some state (links opening) has no event. */
  private pollTimer: ReturnType<typeof setInterval> | null = null;

  private constructor(opts: NodePeerOptions, publicKey: string, backend: Ed25519Backend) {
    this.opts = opts;
    this.publicKey = publicKey;
    this.backend = backend;
    this.kind = opts.kind;
    this.ownsStore = !opts.store;
    this.store = opts.store ?? new MemoryStore();
    this.log = opts.log ?? (() => {});
  }

  /**
   * Connects and logs in; resolves once logged in (the Peer and the engine come up right after: see
   * `whenOnline`). Rejects when the first login fails (e.g. a TRPCClientError whose `data.reason` is the
   * relay's code), leaving nothing behind.
   */
  static async start(opts: NodePeerOptions): Promise<NodePeer> {
    // wrtc needs collections to free closed connections, and one before a natural exit (VC5, VC7).
    enableWrtcGc();
    const backend = opts.backend ?? nodeBackend();
    const publicKey = toB64url(await backend.publicKeyOf(opts.secretKey));
    const node = new NodePeer(opts, publicKey, backend);
    try {
      node.conn = await connectRelay({
        ...opts.relay,
        url: trpcUrlOf(opts.relayUrl),
        secretKey: opts.secretKey,
        name: opts.name,
        kind: opts.kind,
        backend,
        WebSocket,
        onLogin: (login, { reconnect }) => node.onLogin(login, reconnect),
        onError: (err) => node.log('relogin_failed', { err: String(err) }),
      });
    } catch (err) {
      await node.stop();
      throw err;
    }
    node.subscribe();
    return node;
  }

  /** The running session's engine (null between sessions). */
  get engine(): SyncEngine | null {
    return this.current?.engine ?? null;
  }

  /** The running session's PeerJS Peer (null between sessions). */
  get peer(): Peer | null {
    return this.current?.peer ?? null;
  }

  /** This session's PeerJS id. */
  get peerId(): string | null {
    return this.current?.login.self.peerId ?? this.conn?.login?.self.peerId ?? null;
  }

  get relay(): RelayConnection {
    if (!this.conn) throw new Error('not connected');
    return this.conn;
  }

  /** The transport of the running session, else the last one (to check it released everything). */
  get transport(): PeerjsTransport | null {
    return this.current?.transport ?? this.lastTransport;
  }

  status(): NodePeerStatus {
    const s = this.current;
    const online = this.relayUp && !!s && s.peer.open && !s.peer.disconnected && !this.stopped;
    let peers = 0;
    for (const u of this.roster.values()) if (u.userId !== this.publicKey || u.peerId !== this.peerId) peers++;
    const st = !this.stopped && hasStats(this.store) ? this.store.stats() : null;
    return {
      online,
      peers,
      links: s?.engine.stats().links ?? 0,
      messages: st?.messages ?? s?.engine.stats().messages ?? 0,
      attachments: st?.attachments ?? 0,
      bytes: st?.bytes ?? 0,
      logins: this.logins,
    };
  }

  /** Online users other than this session, as presence reports them. */
  presence(): PresenceUser[] {
    return [...this.roster.values()].filter((u) => u.peerId !== this.peerId);
  }

  /** Resolves when `cond` holds, re-checked on every state change of this peer (login, presence, session, messages). */
  waitFor(cond: () => boolean | Promise<boolean>, opts: { signal?: AbortSignal } = {}): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      if (this.stopped) return reject(new Error('STOPPED: the peer was stopped'));
      let busy = false;
      let again = false;
      let done = false;
      const check = async (): Promise<void> => {
        // A change that lands while an (async) check runs must not be lost: check once more after it.
        if (busy) {
          again = true;
          return;
        }
        busy = true;
        try {
          do {
            again = false;
            if (await cond()) {
              done = true;
              this.watchers.delete(check);
              opts.signal?.removeEventListener('abort', onAbort);
              resolve();
            }
          } while (again && !done);
        } catch (err) {
          this.watchers.delete(check);
          opts.signal?.removeEventListener('abort', onAbort);
          reject(err);
        } finally {
          busy = false;
        }
      };
      const onAbort = (): void => {
        this.watchers.delete(check);
        reject(opts.signal?.reason ?? new Error('aborted'));
      };
      opts.signal?.addEventListener('abort', onAbort, { once: true });
      this.watchers.set(check, (err) => {
        opts.signal?.removeEventListener('abort', onAbort);
        reject(err);
      });
      this.pollTimer ??= setInterval(() => {
        if (this.watchers.size === 0) {
          clearInterval(this.pollTimer!);
          this.pollTimer = null;
        } else this.changed();
      }, WAIT_POLL_MS);
      void check();
    });
  }

  whenOnline(): Promise<void> {
    return this.waitFor(() => this.status().online);
  }

  /** Calls `handler` with every session's engine, the current one at once (tests listen to engine events). */
  onEngine(handler: (engine: SyncEngine) => void): () => void {
    this.engineHandlers.add(handler);
    if (this.current) handler(this.current.engine);
    return () => this.engineHandlers.delete(handler);
  }

  /** Signs and posts a message; the relay's envelope is stored and returned. */
  async post(channel: string, text: string, attachments: SignedAttachment[] = []): Promise<Envelope> {
    const post = await signPost(this.backend, this.opts.secretKey, {
      channel,
      clientId: `n${toB64url(crypto.getRandomValues(new Uint8Array(15)))}`,
      text,
      attachments,
      replyTo: null,
      author: this.publicKey,
    });
    const env = await this.relay.client.chat.post.mutate(post);
    await this.ingest([env]);
    return env;
  }

  /**
   * Has the relay sign the attachment's metadata (`attachment.mint`: it sees digests, never bytes), then
   * stores the content and offers it to peers (SPEC.md G6). Post a message carrying the result to announce it.
   */
  async publishAttachment(bytes: Uint8Array, meta: Pick<AttachmentMeta, 'name' | 'mime'> & Partial<AttachmentMeta>): Promise<SignedAttachment> {
    const signed = await this.relay.client.attachment.mint.mutate({ ...meta, ...contentDigests(bytes) });
    const engine = this.engine;
    if (!engine) throw new Error('NOT_ONLINE: no session is running');
    const r = await engine.publishAttachment(signed, bytes);
    if (!r.ok) throw new Error(`publish failed: ${r.reason}`);
    return signed;
  }

  fetchAttachment(id: string, opts: { signal?: AbortSignal } = {}): Promise<FetchResult> {
    const engine = this.engine;
    if (!engine) return Promise.resolve({ ok: false, reason: 'NOT_ONLINE' });
    return engine.fetchAttachment(id, opts);
  }

  /**
   * What this peer still holds: timers, Peers not destroyed, the transport's links and connections
   * (T4), the relay socket and the events subscription. 0 after stop().
   */
  liveResources(): number {
    let n = this.timers.size + this.watchers.size + (this.pollTimer ? 1 : 0);
    if (this.current) n += 1 + (this.current.peer.destroyed ? 0 : 1);
    if (this.building && !this.building.destroyed) n++;
    n += this.transport?.liveResources() ?? 0;
    if (this.sub) n++;
    const ws = this.conn?.wsClient.connection?.ws;
    if (ws && ws.readyState !== 3 /* CLOSED */) n++;
    return n;
  }

  /** Ends everything this peer owns (idempotent): engine, links, Peer, transport, relay socket, timers, owned store. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    this.bumpGeneration();
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
    this.sub?.unsubscribe();
    this.sub = null;
    this.stateSub?.unsubscribe();
    this.stateSub = null;
    this.building?.destroy();
    await this.chain;
    await this.closeSession();
    await this.conn?.close();
    this.relayUp = false;
    this.pending = [];
    this.roster.clear();
    this.engineHandlers.clear();
    // Nobody waits forever on a stopped peer.
    for (const fail of this.watchers.values()) fail(new Error('STOPPED: the peer was stopped'));
    this.watchers.clear();
    if (this.pollTimer) clearInterval(this.pollTimer);
    this.pollTimer = null;
    if (this.ownsStore) await this.store.close();
  }

  // ---- relay side ----

  private subscribe(): void {
    const conn = this.relay;
    this.stateSub = conn.wsClient.connectionState.subscribe({
      next: (s) => {
        // 'pending' = the socket is open; a fresh login (onLogin) says when it is usable again.
        if (s.state !== 'pending' && this.relayUp) {
          this.relayUp = false;
          this.changed();
        }
      },
    });
    this.sub = conn.client.events.subscribe(
      { channels: this.opts.channels, presence: true },
      {
        onData: (ev) => this.onEvent(ev),
        onError: (err) => this.log('events_error', { err: String(err) }),
      },
    );
  }

  private onEvent(ev: RelayEvent): void {
    try {
      if (ev.t === 'msgs') {
        const envs = parseEnvelopeBatch(ev.raw);
        if (!envs) return this.log('bad_batch');
        void this.ingest(envs);
        return;
      }
      if (ev.t === 'presence') {
        if (ev.op === 'snapshot') this.roster = new Map(ev.users.map((u) => [u.sessionId, u]));
        else if (ev.op === 'leave') this.roster.delete(ev.sessionId);
        else this.roster.set(ev.user.sessionId, ev.user);
        this.current?.engine.setRoster([...this.roster.values()]);
        this.changed();
        return;
      }
      if (ev.t === 'bye') this.log('relay_bye', { retryAfterMs: ev.retryAfterMs });
    } catch (err) {
      // Never throw into the subscription's listener (STYLE 7).
      this.log('event_error', { err: String(err) });
    }
  }

  /** Live envelopes go to the engine (which verifies before storing, G2); between sessions they wait, bounded. */
  private async ingest(envs: Envelope[]): Promise<void> {
    const engine = this.current?.engine;
    if (!engine) {
      this.pending.push(...envs);
      if (this.pending.length > MAX_PENDING_ENVELOPES) this.pending.splice(0, this.pending.length - MAX_PENDING_ENVELOPES);
      return;
    }
    try {
      const r = await engine.addMessages(envs);
      if (r.rejected.length > 0) this.log('envelopes_rejected', { count: r.rejected.length, reason: r.rejected[0]!.reason });
    } catch (err) {
      if (!this.stopped) this.log('add_failed', { err: String(err) });
    }
    this.changed();
  }

  private onLogin(login: LoginOutput, reconnect: boolean): void {
    if (this.stopped) return;
    this.logins++;
    this.relayUp = true;
    this.log('login', { peerId: login.self.peerId, reconnect });
    const gen = this.bumpGeneration();
    const signal = this.genAbort.signal;
    this.chain = this.chain.then(() => this.openSession(gen, login, signal)).catch((err) => this.log('session_error', { err: String(err) }));
    this.changed();
  }

  private bumpGeneration(): number {
    this.genAbort.abort();
    this.genAbort = new AbortController();
    return ++this.generation;
  }

  // ---- sessions ----

  /** Replaces the session with one for `login`, retrying setup with backoff until it works or a newer login supersedes it. */
  private async openSession(gen: number, login: LoginOutput, signal: AbortSignal): Promise<void> {
    await this.closeSession();
    for (let attempt = 0; gen === this.generation && !this.stopped; attempt++) {
      try {
        await this.buildSession(gen, login);
        return;
      } catch (err) {
        if (gen !== this.generation || this.stopped) return;
        this.log('session_setup_failed', { attempt, err: String(err) });
        await this.sleep(this.backoff(attempt), signal);
      }
    }
  }

  private async buildSession(gen: number, login: LoginOutput): Promise<void> {
    const peer = await createWrtcPeer({ peerId: login.self.peerId, peerToken: login.peerToken, relayUrl: this.opts.relayUrl, info: login.info });
    this.building = peer;
    // Peers that saw us join in presence connect at once; the relay holds their OFFERs until our socket is
    // open and delivers them right after OPEN (P5), in the same read, before createPeerjsTransport's
    // listener exists. PeerJS answers them anyway, so the remote would get an open link nobody here reads.
    // Keep those connections and hand them to the transport once it listens.
    const early: DataConnection[] = [];
    const onEarly = (c: DataConnection): void => {
      // As many listeners as when ours was added: the transport is not listening yet.
      if (peer.listenerCount('connection') === before) early.push(c);
    };
    peer.on('connection', onEarly);
    const before = peer.listenerCount('connection');
    let transport: PeerjsTransport;
    try {
      if (this.stopped || gen !== this.generation) throw new Error('superseded');
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
    if (this.stopped || gen !== this.generation) {
      await transport.close();
      peer.destroy();
      return;
    }
    // The transport's own listener now takes them (they are still negotiating: ICE takes far longer than this tick).
    for (const c of early) peer.emit('connection', c);
    const engine = new SyncEngine({
      ...this.opts.sync,
      store: this.store,
      crypto: this.backend,
      relayKey: login.info.publicKey,
      transport: sessionTransport(this.opts.wrapTransport ? this.opts.wrapTransport(transport) : transport, this.opts.traceLinks ? this.log : undefined),
      selfKind: this.opts.kind,
      onError: (err, where) => this.log('sync_error', { where, err: String(err) }),
    });
    const session: Session = {
      login,
      peer,
      transport,
      engine,
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
    const onError = (err: { type?: string; message?: string }): void => this.log('peer_error', { type: err?.type, message: err?.message });
    peer.on('disconnected', onDisconnected);
    peer.on('open', onOpen);
    peer.on('error', onError);
    this.current = session;
    this.lastTransport = transport;
    engine.on('messages', () => this.changed());
    engine.on('attachment', () => this.changed());
    engine.on('attachmentFailed', () => this.changed());
    engine.on('peerDropped', () => this.changed());
    engine.on('synced', () => this.changed());
    for (const h of this.engineHandlers) h(engine);
    // Roster first, then start: start's first catch-up then already sees who is online (G5).
    engine.setRoster([...this.roster.values()]);
    await engine.start();
    const waiting = this.pending;
    this.pending = [];
    if (waiting.length > 0) await this.ingest(waiting);
    this.log('session', { peerId: login.self.peerId });
    this.changed();
  }

  private async closeSession(): Promise<void> {
    const s = this.current;
    if (!s) return;
    this.current = null;
    s.off();
    if (s.signallingTimer) {
      clearTimeout(s.signallingTimer);
      this.timers.delete(s.signallingTimer);
    }
    await s.engine.stop();
    await s.transport.close();
    // Destroying the Peer closes every PeerJS connection and its RTCPeerConnection (wrtc threads).
    s.peer.destroy();
    noteWrtcClosed();
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
    const t = setTimeout(() => {
      this.timers.delete(t);
      s.signallingTimer = null;
      if (this.stopped || this.current !== s || s.peer.destroyed || !s.peer.disconnected) return;
      if (!this.relayUp) return this.onSignallingLost(s); // try again later, unless a new login came
      this.log('signalling_reconnect', { attempt: s.signallingAttempts });
      // A refusal makes PeerJS emit 'disconnected' again, which schedules the next try.
      s.peer.reconnect();
    }, this.backoff(s.signallingAttempts++));
    s.signallingTimer = t;
    this.timers.add(t);
  }

  private backoff(attempt: number): number {
    const base = this.opts.retryBaseMs ?? 500;
    const cap = this.opts.retryMaxMs ?? 30_000;
    // Full jitter, like the relay connection: peers that lost the relay together do not return together.
    return Math.random() * Math.min(cap, base * 2 ** attempt);
  }

  private sleep(ms: number, signal: AbortSignal): Promise<void> {
    return new Promise((resolve) => {
      if (signal.aborted) return resolve();
      const done = (): void => {
        clearTimeout(t);
        this.timers.delete(t);
        signal.removeEventListener('abort', done);
        resolve();
      };
      const t = setTimeout(done, ms);
      this.timers.add(t);
      signal.addEventListener('abort', done, { once: true });
    });
  }

  /**
   * Re-checks every waitFor condition, a microtask later: the other listeners of the event that caused
   * the change (a test's own handler, say) run first, and several changes in one tick check once.
   */
  private changed(): void {
    if (this.notifyQueued) return;
    this.notifyQueued = true;
    queueMicrotask(() => {
      this.notifyQueued = false;
      for (const w of [...this.watchers.keys()]) void w();
    });
  }
}

/** ws(s)://host/trpc for an http(s) relay origin. */
export function trpcUrlOf(relayUrl: string): string {
  const u = new URL('/trpc', relayUrl);
  u.protocol = u.protocol === 'https:' ? 'wss:' : 'ws:';
  return u.toString();
}

/** Links held until the engine listens: beyond this many, later ones are closed (the engine caps links anyway). */
const MAX_EARLY_LINKS = 64;
/** Frames queued on a new link until the remote speaks; beyond, `send` reports backpressure (G9). */
const QUIET_QUEUE_BYTES = 256 * 1024;
/** A remote that has said nothing for this long gets the queued frames anyway. */
const QUIET_MAX_MS = 5_000;

/**
 * The transport as the engine sees it. Incoming links that open before the engine registers its handler
 * (engine.start() loads its index first) are held and handed over when it does, instead of being dropped
 * half-open (VC2 b); every closed link is noted for the wrtc collector (VC5); and every link says one
 * frame, then waits until the remote has spoken before sending more (VC2 c).
 */
function sessionTransport(inner: PeerTransport, trace?: NodePeerLog): PeerTransport {
  const watch = (raw: PeerLink, dir: 'in' | 'out'): PeerLink => {
    trace?.('link_open', { dir, peer: raw.remotePeerId });
    raw.onClose((reason) => {
      trace?.('link_closed', { dir, peer: raw.remotePeerId, reason });
      noteWrtcClosed();
    });
    return oneFrameUntilHeard(raw);
  };
  let held: PeerLink[] | null = [];
  const handlers = new Set<(link: PeerLink) => void>();
  inner.onLink((raw) => {
    const link = watch(raw, 'in');
    if (held) {
      if (held.length >= MAX_EARLY_LINKS) link.close('TOO_MANY_LINKS');
      else held.push(link);
      return;
    }
    for (const h of handlers) h(link);
  });
  return {
    get localPeerId() {
      return inner.localPeerId;
    },
    async connect(id, o) {
      trace?.('link_connect', { peer: id });
      try {
        return watch(await inner.connect(id, o), 'out');
      } catch (err) {
        trace?.('link_failed', { peer: id, reason: (err as { reason?: string }).reason ?? String(err) });
        throw err;
      }
    },
    onLink(handler) {
      handlers.add(handler);
      const waiting = held ?? [];
      held = null;
      for (const link of waiting) if (!link.closed) handler(link);
      return () => handlers.delete(handler);
    },
    close: () => inner.close(),
  };
}

/**
 * wrtc delivers the first messages of a channel that is still being set up on the receiving side out of
 * order (wrtcPeer.ts; measured 1-2 connections in 200 when 3 frames are sent at open). A single
 * frame cannot be reordered, and once the remote has sent something its side is set up: so a link
 * sends its first frame (HELLO), queues the rest until the first frame from the remote arrives (its
 * HELLO), then sends them in order. Measured with that rule: 400 of 400 in order. Costs one one-way
 * trip on a new link. Browsers running the same protocol are not reordered, so the rule only needs
 * to hold where the receiver is Node; it is applied to every link a NodePeer opens or accepts.
 */
function oneFrameUntilHeard(link: PeerLink): PeerLink {
  let heard = false;
  let sentFirst = false;
  let queue: Uint8Array[] = [];
  let queuedBytes = 0;
  let drainWanted = false;
  const drainHandlers = new Set<() => void>();
  let timer: ReturnType<typeof setTimeout> | null = null;

  const flush = (): void => {
    if (timer) clearTimeout(timer);
    timer = null;
    while (queue.length > 0 && !link.closed) {
      if (!link.send(queue[0]!)) return; // the link's buffer is full: the rest goes on its drain
      queuedBytes -= queue[0]!.byteLength;
      queue.shift();
    }
    if (queue.length === 0 && drainWanted) {
      drainWanted = false;
      for (const h of [...drainHandlers]) h();
    }
  };
  const hear = (): void => {
    if (heard) return;
    heard = true;
    flush();
  };
  link.onDrain(() => {
    if (queue.length > 0) flush();
    else if (drainWanted) {
      drainWanted = false;
      for (const h of [...drainHandlers]) h();
    }
  });
  link.onClose(() => {
    if (timer) clearTimeout(timer);
    timer = null;
    queue = [];
    queuedBytes = 0;
    drainHandlers.clear();
  });

  return {
    get remotePeerId() {
      return link.remotePeerId;
    },
    get closed() {
      return link.closed;
    },
    send(frame: Uint8Array): boolean {
      if (link.closed) return false;
      const direct = (): boolean => {
        const ok = link.send(frame);
        if (!ok && !link.closed) drainWanted = true;
        return ok;
      };
      if (heard && queue.length === 0) return direct();
      if (!sentFirst) {
        sentFirst = true;
        timer = setTimeout(hear, QUIET_MAX_MS);
        return direct();
      }
      if (frame.byteLength > MAX_FRAME_BYTES) throw new RangeError(`frame of ${frame.byteLength} bytes`);
      if (queuedBytes + frame.byteLength > QUIET_QUEUE_BYTES) {
        drainWanted = true;
        return false;
      }
      // A view's bytes are the caller's at send time (T1): keep a copy.
      queue.push(frame.slice());
      queuedBytes += frame.byteLength;
      return true;
    },
    bufferedAmount: () => link.bufferedAmount() + queuedBytes,
    onFrame: (h) =>
      link.onFrame((f) => {
        h(f);
        hear();
      }),
    onDrain(h) {
      drainHandlers.add(h);
      return () => drainHandlers.delete(h);
    },
    onClose: (h) => link.onClose(h),
    close: (reason) => link.close(reason),
  };
}
