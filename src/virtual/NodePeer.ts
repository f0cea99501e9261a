// A headless peer in Node (SPEC.md VC1, VC2, VC7): the shared client core (src/shared/client/PeerchatClient:
// relay connection, sessions, roster, outbox, one SyncEngine over a HistoryStore) with what is Node's
// plugged in: `ws` for the relay socket, PeerJS over @roamhq/wrtc for peers, wrtc's GC, and the one-frame
// rule for wrtc's reordering (VC2 d). The virtual client is one of kind 'virtual'; tests use kind
// 'browser' to play real users without a browser.
//
// Ownership (STYLE 10): this object owns its client (and through it the relay connection, each session's
// Peer and transport, the engine and their timers), its waitFor timers, and the store unless the caller
// passed one in. stop() ends all of them; `liveResources()` counts what is still held, 0 after stop.
import type { Peer } from 'peerjs';
import { WebSocket } from 'ws';
import { type ClientError, PeerchatClient } from '../shared/client/PeerchatClient';
import type { RelayConnection } from '../shared/client/relayConnection';
import type { Ed25519Backend } from '../shared/crypto/ed25519';
import { nodeBackend } from '../shared/crypto/nodeBackend';
import type { AttachmentMeta, ClientKind, Envelope, PresenceUser, SignedAttachment } from '../shared/protocol/relay';
import type { HistoryStore } from '../shared/store/HistoryStore';
import { MemoryStore } from '../shared/store/MemoryStore';
import type { Clock } from '../shared/sync/Clock';
import type { FetchResult, SyncEngine, SyncTuning } from '../shared/sync/SyncEngine';
import type { PeerjsTransport } from '../shared/transport/peerjsTransport';
import type { PeerLink, PeerTransport } from '../shared/transport/PeerTransport';
import { createWrtcPeer } from './wrtcPeer';
import { enableWrtcGc, noteWrtcClosed } from './wrtcGc';

export { trpcUrlOf } from '../shared/client/PeerchatClient';

export type NodePeerLog = (event: string, fields?: Record<string, unknown>) => void;

/** Relay reconnect tuning (see PeerchatClientOptions). */
export interface NodePeerRelayTuning {
  retryBaseMs?: number;
  retryMaxMs?: number;
  restartDelayMs?: number;
  keepAliveMs?: number;
  /** start() rejects if the first login has not succeeded by then. @default 10_000 */
  connectTimeoutMs?: number;
}

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
  /** Sync engine tuning (one engine for the peer's life, across logins). */
  sync?: SyncTuning & { seed?: number; clock?: Clock };
  /** WebRTC links the transport may hold (open plus opening). @default engine maxLinks (32) + 8 for refusals in flight */
  maxLinks?: number;
  /** Connect timeout of the transport. @default 20_000 */
  connectTimeoutMs?: number;
  /** Wraps each session's transport before the engine sees it (tests: adversaries, spies). */
  wrapTransport?: (t: PeerTransport) => PeerTransport;
  /** Reconnect tuning of the relay connection. */
  relay?: NodePeerRelayTuning;
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
  /** Other online sessions in presence. */
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

interface StatsStore extends HistoryStore {
  stats(): { messages: number; attachments: number; bytes: number };
}
const hasStats = (s: HistoryStore): s is StatsStore => typeof (s as Partial<StatsStore>).stats === 'function';

/** A client error as a thrown Error: the relay's refusal itself (a TRPCClientError with `data.reason`) when there is one. */
function thrown(e: ClientError): Error {
  if (e.cause instanceof Error) return e.cause;
  return Object.assign(new Error(`${e.reason}: ${e.message}`), { reason: e.reason });
}

export class NodePeer {
  readonly publicKey: string;
  readonly store: HistoryStore;
  readonly kind: ClientKind;
  readonly client: PeerchatClient;
  private readonly ownsStore: boolean;
  private offClient: (() => void)[] = [];
  /** waitFor conditions: re-check function -> how to fail it at stop. */
  private readonly watchers = new Map<() => void, (err: Error) => void>();
  private readonly engineHandlers = new Set<(engine: SyncEngine) => void>();
  private lastEngine: SyncEngine | null = null;
  private stopped = false;
  private notifyQueued = false;
  /** Re-checks waitFor conditions while any are waiting: some state (links opening) has no event. */
  private pollTimer: ReturnType<typeof setInterval> | null = null;

  private constructor(client: PeerchatClient, store: HistoryStore, ownsStore: boolean, kind: ClientKind) {
    this.client = client;
    this.store = store;
    this.ownsStore = ownsStore;
    this.kind = kind;
    this.publicKey = client.publicKey;
  }

  /**
   * Connects and logs in; resolves once logged in (the Peer comes up right after: see `whenOnline`).
   * Rejects when the first login fails (e.g. a TRPCClientError whose `data.reason` is the relay's code)
   * or has not succeeded within `relay.connectTimeoutMs`, leaving nothing behind.
   */
  static async start(opts: NodePeerOptions): Promise<NodePeer> {
    // wrtc needs collections to free closed connections, and one before a natural exit (VC5, VC7).
    enableWrtcGc();
    const ownsStore = !opts.store;
    const store = opts.store ?? new MemoryStore();
    const log = opts.log ?? (() => {});
    const trace = opts.traceLinks ? log : undefined;
    const { clock, ...sync } = opts.sync ?? {};
    const client = new PeerchatClient({
      relayUrl: opts.relayUrl,
      secretKey: opts.secretKey,
      name: opts.name,
      kind: opts.kind,
      store,
      backend: opts.backend ?? nodeBackend(),
      WebSocket: WebSocket as unknown as typeof globalThis.WebSocket,
      createPeer: async ({ peerId, login, options }) => {
        const peer = await createWrtcPeer({ peerId, peerToken: login.peerToken, relayUrl: opts.relayUrl, info: login.info, relaySignal: options.relaySignal });
        // Destroying the Peer closes its RTCPeerConnections: their wrtc threads wait for a collection (VC5).
        peer.on('close', () => noteWrtcClosed());
        return peer;
      },
      channels: opts.channels,
      sync,
      clock,
      maxLinks: opts.maxLinks,
      connectTimeoutMs: opts.connectTimeoutMs,
      wrapTransport: (t) => nodeTransport(opts.wrapTransport ? opts.wrapTransport(t) : t, trace),
      retryBaseMs: opts.relay?.retryBaseMs,
      retryMaxMs: opts.relay?.retryMaxMs,
      restartDelayMs: opts.relay?.restartDelayMs,
      keepAliveMs: opts.relay?.keepAliveMs,
      sessionRetryBaseMs: opts.retryBaseMs,
      sessionRetryMaxMs: opts.retryMaxMs,
      log,
    });
    // The first login's outcome: online, or the first login error, or nothing within the timeout.
    const timeoutMs = opts.relay?.connectTimeoutMs ?? 10_000;
    let settle!: (err: Error | null) => void;
    const first = new Promise<Error | null>((resolve) => {
      settle = resolve;
    });
    const timer = setTimeout(() => settle(new Error(`no login within ${timeoutMs} ms`)), timeoutMs);
    const offError = client.on('error', (e) => {
      if (e.where === 'login') settle(thrown(e));
    });
    const offState = client.subscribe(() => {
      const c = client.getSnapshot().connection;
      if (c.state === 'online') settle(null);
      else if (c.state === 'offline' && c.error) settle(thrown(c.error));
    });
    let failure: Error | null;
    try {
      await client.start();
      failure = await first;
    } catch (err) {
      failure = err as Error;
    } finally {
      clearTimeout(timer);
      offError();
      offState();
    }
    if (failure) {
      await client.stop();
      if (ownsStore) await store.close();
      throw failure;
    }
    const node = new NodePeer(client, store, ownsStore, opts.kind);
    node.offClient.push(
      client.subscribe(() => node.changed()),
      client.on('stored', () => node.changed()),
    );
    node.changed();
    return node;
  }

  /** The sync engine: one for this peer's life, across logins (SPEC.md CL3). */
  get engine(): SyncEngine | null {
    return this.client.engine;
  }

  /** The running session's PeerJS Peer (null between sessions). */
  get peer(): Peer | null {
    return this.client.peer;
  }

  /** This session's PeerJS id. */
  get peerId(): string | null {
    return this.client.getSnapshot().session.peerId;
  }

  get relay(): RelayConnection {
    const r = this.client.relay;
    if (!r) throw new Error('not connected');
    return r;
  }

  /** The transport of the running session, else the last one (to check it released everything). */
  get transport(): PeerjsTransport | null {
    return this.client.transport;
  }

  status(): NodePeerStatus {
    const snap = this.client.getSnapshot();
    const engine = this.client.engine;
    const peer = this.client.peer;
    // Read live, not from the snapshot: some of this (a link opening) changes without an event here.
    const online = !this.stopped && snap.connection.state === 'online' && !!peer && peer.open && !peer.disconnected && !!engine && !engine.stopped;
    const st = !this.stopped && hasStats(this.store) ? this.store.stats() : null;
    const links = engine && !engine.stopped ? engine.stats().links : 0;
    return {
      online,
      // Everyone else online, from the relay's counts (presence shows only a page of them, SPEC.md P9).
      peers: snap.connection.state === 'online' ? Math.max(0, snap.members.online.browser + snap.members.online.virtual - 1) : 0,
      links,
      messages: st?.messages ?? engine?.stats().messages ?? 0,
      attachments: st?.attachments ?? 0,
      bytes: st?.bytes ?? 0,
      logins: snap.session.logins,
    };
  }

  /** Online users other than this session that presence shows (the members page and watched keys, P9-P10). */
  presence(): PresenceUser[] {
    return this.client.getSnapshot().presence.filter((u) => !u.isSelf);
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

  /** Calls `handler` with the engine, at once (tests listen to engine events); again only if the engine is replaced. */
  onEngine(handler: (engine: SyncEngine) => void): () => void {
    this.engineHandlers.add(handler);
    if (this.client.engine) handler(this.client.engine);
    return () => this.engineHandlers.delete(handler);
  }

  /** Signs and posts a message; the relay's envelope is stored and returned. Throws the relay's refusal. */
  async post(channel: string, text: string, attachments: SignedAttachment[] = []): Promise<Envelope> {
    const r = await this.client.post(channel, text, { attachments }).result;
    if (!r.ok) throw thrown(r.error);
    return r.envelope;
  }

  /**
   * Has the relay sign the attachment's metadata (`attachment.mint`: it sees digests, never bytes), then
   * stores the content and offers it to peers (SPEC.md G6). Post a message carrying the result to announce it.
   */
  async publishAttachment(bytes: Uint8Array, meta: Pick<AttachmentMeta, 'name' | 'mime'> & Partial<AttachmentMeta>): Promise<SignedAttachment> {
    const r = await this.client.publishAttachment(bytes, meta);
    if (!r.ok) throw thrown(r.error);
    return r.attachment;
  }

  fetchAttachment(id: string, opts: { signal?: AbortSignal } = {}): Promise<FetchResult> {
    return this.client.fetchAttachment(id, opts);
  }

  /**
   * What this peer still holds: the client's timers, Peers, transport links and connections (T4), relay
   * socket, events subscription and engine, plus waitFor timers. 0 after stop().
   */
  liveResources(): number {
    return this.client.liveResources() + this.watchers.size + (this.pollTimer ? 1 : 0) + this.offClient.length;
  }

  /** Ends everything this peer owns (idempotent): the client (engine, links, Peer, transport, relay socket, timers), owned store. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    await this.client.stop();
    for (const off of this.offClient) off();
    this.offClient = [];
    this.engineHandlers.clear();
    // Nobody waits forever on a stopped peer.
    for (const fail of this.watchers.values()) fail(new Error('STOPPED: the peer was stopped'));
    this.watchers.clear();
    if (this.pollTimer) clearInterval(this.pollTimer);
    this.pollTimer = null;
    if (this.ownsStore) await this.store.close();
  }

  /**
   * Re-checks every waitFor condition, a microtask later: the other listeners of the event that caused
   * the change (a test's own handler, say) run first, and several changes in one tick check once.
   */
  private changed(): void {
    const engine = this.client.engine;
    if (engine && engine !== this.lastEngine) {
      this.lastEngine = engine;
      for (const h of this.engineHandlers) h(engine);
    }
    if (this.notifyQueued) return;
    this.notifyQueued = true;
    queueMicrotask(() => {
      this.notifyQueued = false;
      for (const w of [...this.watchers.keys()]) void w();
    });
  }
}

/**
 * The session transport as Node needs it: every closed link is noted for the wrtc collector (VC5). The
 * early-frame rules (hold frames until open, one frame until the remote has spoken) are the shared
 * transport's (T9, T11); holding links that open before the engine listens is the client core's
 * (SessionTransport) and the transport's (T10).
 */
function nodeTransport(inner: PeerTransport, trace?: NodePeerLog): PeerTransport {
  const watch = (raw: PeerLink, dir: 'in' | 'out'): PeerLink => {
    trace?.('link_open', { dir, peer: raw.remotePeerId });
    raw.onClose((reason) => {
      trace?.('link_closed', { dir, peer: raw.remotePeerId, reason });
      noteWrtcClosed();
    });
    return raw;
  };
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
    onLink: (handler) => inner.onLink((raw) => handler(watch(raw, 'in'))),
    close: () => inner.close(),
  };
}

