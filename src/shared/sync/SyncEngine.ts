// The peer sync engine's IO shell (SPEC.md G1-G14): owns the links, the gossip timer and the roster, and
// routes frames to MessageSync (catch-up) and AttachmentSync (gossip and transfer). It sees peers only
// through PeerTransport/PeerLink, so the same engine runs over the in-memory simulator, PeerJS + wrtc in
// Node, and PeerJS in the browser. Clock and randomness are injected (G12).
//
// Ownership: the engine owns its links, timers and listeners and ends them in stop(). The caller owns
// the store and the transport (the engine never closes them).
//
// Wiring (browser or virtual client):
//   const engine = new SyncEngine({ store, crypto, relayKey: info.publicKey, transport, selfKind });
//   await engine.start();
//   presence peer sample (SPEC.md P11)  -> engine.setRoster(peers)      (SamplePeer fits RosterPeer)
//   relay 'msgs' events                -> await engine.addMessages(parseEnvelopeBatch(raw))
//   after posting with an attachment   -> engine.publishAttachment(signedMeta, bytes)
//   the UI opens an attachment         -> engine.fetchAttachment(id, { signal })
//   relay reconnected                  -> engine.syncNow()
//   engine.on('messages' | 'attachment' | 'progress' | ..., handler); on exit: await engine.stop()
import type { Ed25519Backend } from '../crypto/ed25519';
import { type Digest, webDigest } from '../crypto/hash';
import { PEER_PROTOCOL_VERSION, PeerKind, type Frame, type PeerReason, parseControl } from '../protocol/peer';
import type { ClientKind, Envelope, SignedAttachment } from '../protocol/relay';
import { type EnvelopeVerifier, verifyEnvelopes } from '../protocol/signed';
import type { HistoryStore } from '../store/HistoryStore';
import type { PeerLink, PeerTransport } from '../transport/PeerTransport';
import { AttachmentSync, type FetchResult, type PublishResult } from './AttachmentSync';
import { BadPeers } from './BadPeers';
import { type Clock, type TimerHandle, systemClock } from './Clock';
import { Conn, HeldBytes } from './Conn';
import { Emitter } from './Emitter';
import { type AddResult, MessageSync } from './MessageSync';
import { type Prng, createPrng, randomSeed } from './prng';
import type { ResolvedSyncOptions, RosterPeer, SyncContext, SyncEvents } from './SyncContext';

export type { AddResult, FetchResult, PublishResult, RosterPeer, SyncEvents };

/** Tuning knobs; every one has a default (SYNC_DEFAULTS). */
export interface SyncTuning {
  /** Peers a holder offers an attachment to per gossip tick. @default 2 */
  fanout?: number;
  /** Gossip period: offers, pulls, timeouts, idle links. @default 250 */
  gossipIntervalMs?: number;
  /** A holder stops offering after this many offers met a holder (~80% coverage, G6). @default 2 */
  stopAfterHaves?: number;
  /** A holder offers for at most this many ticks. @default 24 */
  maxPushTicks?: number;
  /** A peer that knows an attachment but heard no offer starts asking after this long. @default 500 */
  pullDelayMs?: number;
  /** Peers asked per tick for each wanted attachment. @default 2 */
  pullFanout?: number;
  /** Real peers reconciled with on start and on syncNow(). @default 3 */
  catchUpPeers?: number;
  /** Open links at most; idle ones are closed first to make room. @default 32 */
  maxLinks?: number;
  /** How long real peers get before virtual peers are asked, and virtual peers wait to serve (G7). @default 2000 */
  virtualDelayMs?: number;
  /** A link with requests open that moves nothing for this long is closed (no ban, G13). @default 30000 */
  requestTimeoutMs?: number;
  /** How long a dropped peer stays remembered as bad (G13). @default 600000 */
  badPeerTtlMs?: number;
  /** Reconcile with one random peer this often (0 = only on start/syncNow). @default 60000 */
  resyncIntervalMs?: number;
  /** Links with nothing in flight for this long are closed. @default 60000 */
  idleLinkMs?: number;
  /** Attachments fetched at once. @default 4 */
  maxDownloads?: number;
  /**
   * Chunks requested and not yet received, per download (64 x 16 KiB = 1 MiB, the per-link cap, G11).
   * The window, not the link, bounded a transfer: with 16 a 10 MB photo between two Chromium pages on
   * loopback moved at a third of a bare data channel (a round trip through the uploader's store per
   * 256 KiB); with 64 it matches it (bench:media). @default 64
   */
  chunkWindow?: number;
  /** Which attachments to fetch in the background. @default size <= 16 MiB */
  wantAttachment?: (a: SignedAttachment) => boolean;
  /** Lowest message id to reconcile over. @default store.horizon?.() (everything when absent) */
  horizon?: () => string | undefined;
}

export interface SyncEngineOptions extends SyncTuning {
  store: HistoryStore;
  crypto: Ed25519Backend;
  /**
   * SHA-256 of whole contents (a download's check, G2) and of a published content's chunks. The
   * simulator passes `jsDigest`, which settles within its steps. @default webDigest (WebCrypto)
   */
  digest?: Digest;
  /**
   * How batches of envelopes are verified (G2): every check of `verifyEnvelope` on each.
   * @default `verifyEnvelopes` over `crypto`, in this thread
   */
  verifyEnvelopes?: EnvelopeVerifier;
  /** The trusted relay key (base64url); every envelope and attachment is verified against it (G2). */
  relayKey: string;
  transport: PeerTransport;
  /** What this peer is in presence. Virtual peers serve last and do not forward gossip. @default 'browser' */
  selfKind?: ClientKind;
  /** @default systemClock */
  clock?: Clock;
  /** Seed of the PRNG choosing gossip targets. @default random */
  seed?: number;
  /** Where failures of background work go (a store that throws, a bug). @default console.error */
  onError?: (err: unknown, where: string) => void;
}

export const SYNC_DEFAULTS: ResolvedSyncOptions = {
  fanout: 2,
  gossipIntervalMs: 250,
  stopAfterHaves: 2,
  maxPushTicks: 24,
  pullDelayMs: 500,
  pullFanout: 2,
  catchUpPeers: 3,
  maxLinks: 32,
  virtualDelayMs: 2000,
  requestTimeoutMs: 30_000,
  badPeerTtlMs: 10 * 60 * 1000,
  resyncIntervalMs: 60_000,
  idleLinkMs: 60_000,
  maxDownloads: 4,
  chunkWindow: 64,
  wantAttachment: (a) => a.meta.size <= 16 * 1024 * 1024,
  horizon: undefined,
};

/** Gaps in live history trigger at most one catch-up per this period. */
export const HOLE_SYNC_MIN_MS = 5000;
/** Holes remembered while a catch-up for them is postponed; one still open is enough to run it. */
const MAX_POSTPONED_HOLES = 64;
/**
 * Open links to one remote user (all its sessions together), G10: two, so that two peers that connect
 * to each other at once keep both links (the duplicate pair is not a fault); a third is refused
 * TOO_MANY_LINKS. Without it one key could hold every one of our maxLinks links, each with its inbox.
 * The user is the peer id's key prefix (SPEC.md P1: the relay mints `<16 hex of the key>-<random>`).
 */
export const MAX_LINKS_PER_USER = 2;

/** The remote user of a relay-minted peer id (P1): its key prefix. */
export function userOfPeer(peerId: string): string {
  const dash = peerId.indexOf('-');
  return dash > 0 ? peerId.slice(0, dash) : peerId;
}

export interface SyncStats {
  links: number;
  messages: number;
  pendingNeeds: number;
  /** Attachments being fetched now. */
  downloads: number;
  /** Links this peer is sending chunks on now. */
  uploads: number;
  /** Attachments wanted (metadata known, bytes missing). */
  wanted: number;
  pushes: number;
  banned: number;
  /** Bytes held for peers now: inboxes, partial control bodies, send queues (G11). */
  heldBytes: number;
  /** The most `heldBytes` has been since the engine was made. */
  peakHeldBytes: number;
  /** Bytes held for downloads and sends: downloads' verified chunks in memory plus send queues waiting on links (G9, G11). */
  bufferedBytes: number;
}

export class SyncEngine implements SyncContext {
  readonly store: HistoryStore;
  readonly crypto: Ed25519Backend;
  readonly digest: Digest;
  readonly verify: EnvelopeVerifier;
  readonly relayKey: string;
  readonly clock: Clock;
  readonly rng: Prng;
  readonly opts: ResolvedSyncOptions;
  readonly events = new Emitter<SyncEvents>();
  readonly selfKind: ClientKind;
  stopped = false;

  private readonly transport: PeerTransport;
  private readonly onError: (err: unknown, where: string) => void;
  private readonly messages: MessageSync;
  private readonly attachments: AttachmentSync;
  private readonly bad: BadPeers;
  private readonly held = new HeldBytes();
  private roster = new Map<string, RosterPeer>();
  /** One link per peer used for new requests; `all` holds every open link (both may exist briefly). */
  private readonly primary = new Map<string, Conn>();
  private readonly all = new Set<Conn>();
  /** Closed links still in their BYE grace (Conn.close); ended at stop. */
  private readonly lingering = new Set<Conn>();
  private readonly connecting = new Map<string, Promise<Conn | null>>();
  private readonly timers = new Set<TimerHandle>();
  private readonly delayed = new Set<() => void>();
  private tickTimer: TimerHandle | null = null;
  private ticking = false;
  private started = false;
  private syncWanted = false;
  private lastSync = 0;
  private lastHoleSync = -Infinity;
  /** Holes found too soon after a catch-up, checked when the postponed one is due (bounded). */
  private readonly postponedHoles = new Set<string>();
  private offLink: (() => void) | null = null;

  constructor(options: SyncEngineOptions) {
    this.store = options.store;
    this.crypto = options.crypto;
    this.digest = options.digest ?? webDigest;
    this.verify = options.verifyEnvelopes ?? ((envs, relayKey) => verifyEnvelopes(options.crypto, envs, relayKey));
    this.relayKey = options.relayKey;
    this.transport = options.transport;
    this.selfKind = options.selfKind ?? 'browser';
    this.clock = options.clock ?? systemClock;
    this.onError = options.onError ?? ((err, where) => console.error(`[sync] ${where}:`, err));
    this.rng = createPrng(options.seed ?? randomSeed());
    const tuning: Partial<ResolvedSyncOptions> = {};
    for (const [k, v] of Object.entries(options)) if (k in SYNC_DEFAULTS && v !== undefined) (tuning as Record<string, unknown>)[k] = v;
    this.opts = { ...SYNC_DEFAULTS, ...tuning };
    this.bad = new BadPeers(() => this.clock.now(), this.opts.badPeerTtlMs);
    this.attachments = new AttachmentSync(this);
    this.messages = new MessageSync(this, (a) => this.spawn(this.attachments.noteMeta(a), 'noteMeta'));
  }

  // ---- public API ----

  /** Accepts links, loads the reconciliation index, starts the gossip timer and a first catch-up. */
  async start(): Promise<void> {
    if (this.started || this.stopped) return;
    this.started = true;
    // Listening first: a peer that saw us in presence may link while the index loads, and a link nobody
    // reads is lost (its requests then time out on the other side). Its frames wait in the link's inbox;
    // the handlers that need the index await it.
    this.offLink = this.transport.onLink((link) => this.accept(link));
    this.scheduleTick();
    await this.messages.ensureIndex();
    if (this.stopped) return;
    this.spawn(this.syncNow(), 'sync');
  }

  /** Closes every link, clears every timer and listener, fails pending fetches. Idempotent. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    this.offLink?.();
    this.offLink = null;
    for (const t of this.timers) this.clock.clearTimeout(t);
    this.timers.clear();
    if (this.tickTimer !== null) this.clock.clearTimeout(this.tickTimer);
    this.tickTimer = null;
    for (const resolve of this.delayed) resolve();
    this.delayed.clear();
    for (const conn of [...this.all, ...this.lingering]) conn.closeNow();
    this.lingering.clear();
    this.attachments.stop();
    this.messages.stop();
    this.events.clear();
  }

  /** The online peers to link to (presence's peer sample, SPEC.md P11). Call on every change. */
  setRoster(peers: readonly RosterPeer[]): void {
    this.roster = new Map(peers.map((p) => [p.peerId, { peerId: p.peerId, kind: p.kind, userId: p.userId }]));
    if (this.syncWanted && this.onlinePeers().length > 0) this.spawn(this.syncNow(), 'sync');
  }

  /** Verifies (G2) and stores envelopes from the relay; they become available to peers. */
  addMessages(envs: readonly Envelope[]): Promise<AddResult> {
    return this.messages.add(envs);
  }

  /** The author's attachment: verified against its signed metadata, stored, then offered to peers (G6). */
  publishAttachment(meta: SignedAttachment, bytes: Uint8Array): Promise<PublishResult> {
    return this.attachments.publish(meta, bytes);
  }

  /** The attachment's bytes, from the store or fetched from peers now (its metadata must be stored). */
  fetchAttachment(id: string, opts: { signal?: AbortSignal } = {}): Promise<FetchResult> {
    return this.attachments.fetch(id, opts.signal);
  }

  /**
   * Reconciles with up to catchUpPeers random real peers now, and with one virtual peer after
   * virtualDelayMs (at once when no real peer is online), G5/G7. Call after a relay reconnect.
   */
  async syncNow(): Promise<void> {
    if (this.stopped || !this.started) return;
    const online = this.onlinePeers();
    if (online.length === 0) {
      this.syncWanted = true;
      return;
    }
    this.syncWanted = false;
    this.lastSync = this.clock.now();
    const real = this.rng.shuffle(online.filter((p) => p.kind !== 'virtual')).slice(0, this.opts.catchUpPeers);
    const virtual = this.rng.shuffle(online.filter((p) => p.kind === 'virtual'));
    // One peer at a time, each after the previous one's finds are fetched: the second and third
    // sessions then usually end at the first fingerprint (~70 bytes) instead of re-listing the gap.
    // Sessions that ended with the peer still connected. None (every peer dropped as bad, e.g. a forger
    // that was the only one online, or none reachable) means the catch-up has not happened: it stays
    // wanted, so the next peer to come online (setRoster) gets one (G5; seen in e2e S6).
    let held = 0;
    const sessions = async (peers: RosterPeer[]): Promise<void> => {
      for (const p of peers) {
        if (this.stopped) return;
        const conn = await this.connect(p.peerId);
        if (!conn) continue;
        // Waiting is an optimisation (later sessions find less), so it is bounded: a peer that keeps a
        // session or a request open cannot hold up the sessions with the others (G5).
        await this.within(this.messages.startSession(conn), this.opts.requestTimeoutMs);
        await this.within(this.messages.idle(), this.opts.requestTimeoutMs);
        if (!conn.closed) held++;
      }
      if (held === 0 && !this.stopped) this.syncWanted = true;
    };
    const first = real.length > 0 ? real : virtual.slice(0, this.opts.catchUpPeers);
    this.events.emit('catchUp', { phase: 'start', peers: first.length });
    try {
      if (real.length === 0) return await sessions(first);
      if (virtual.length > 0) {
        this.spawn(
          this.delay(this.opts.virtualDelayMs).then(() => (this.stopped ? undefined : sessions(virtual.slice(0, 1)))),
          'sync',
        );
      }
      await sessions(real);
    } finally {
      this.events.emit('catchUp', { phase: 'end', peers: first.length });
    }
  }

  on<K extends keyof SyncEvents>(event: K, handler: (e: SyncEvents[K]) => void): () => void {
    return this.events.on(event, handler);
  }

  stats(): SyncStats {
    return {
      links: this.all.size,
      messages: this.messages.index.size,
      pendingNeeds: this.messages.pendingNeeds,
      downloads: this.attachments.activeDownloads,
      uploads: this.attachments.activeUploads,
      wanted: this.attachments.wantedCount,
      pushes: this.attachments.pushCount,
      banned: this.bad.size,
      heldBytes: this.held.total,
      peakHeldBytes: this.held.peak,
      bufferedBytes: this.attachments.downloadBytes + [...this.all].reduce((n, c) => n + c.backlog, 0),
    };
  }

  /** Reconciliation work done so far: ids summed into fingerprints (IdIndex.scanned), a CPU measure. */
  indexWork(): number {
    return this.messages.index.scanned;
  }

  isBanned(peerId: string): boolean {
    return this.bad.has(peerId, this.roster.get(peerId)?.userId);
  }

  // ---- SyncContext: for MessageSync and AttachmentSync, not for apps ----

  isVirtual(peerId: string): boolean {
    return this.roster.get(peerId)?.kind === 'virtual';
  }

  onlinePeers(): RosterPeer[] {
    const self = this.transport.localPeerId;
    return [...this.roster.values()].filter((p) => p.peerId !== self && !this.bad.has(p.peerId, p.userId));
  }

  *linkedPeers(): Iterable<string> {
    for (const [peerId, c] of this.primary) if (!c.closed) yield peerId;
  }

  conn(peerId: string): Conn | undefined {
    const c = this.primary.get(peerId);
    return c && !c.closed ? c : undefined;
  }

  connect(peerId: string): Promise<Conn | null> {
    const open = this.conn(peerId);
    if (open) return Promise.resolve(open);
    if (this.stopped || peerId === this.transport.localPeerId || this.isBanned(peerId)) return Promise.resolve(null);
    let p = this.connecting.get(peerId);
    if (p) return p;
    p = (async () => {
      try {
        if (this.linksOfUser(peerId) >= MAX_LINKS_PER_USER) return null;
        if (this.all.size >= this.opts.maxLinks && !this.evictIdle()) return null;
        const link = await this.transport.connect(peerId, { timeoutMs: this.opts.requestTimeoutMs });
        if (this.stopped || this.isBanned(peerId)) {
          link.close(this.stopped ? 'SHUTTING_DOWN' : 'BANNED');
          return null;
        }
        return this.attach(link, true);
      } catch {
        return null;
      } finally {
        this.connecting.delete(peerId);
      }
    })();
    this.connecting.set(peerId, p);
    return p;
  }

  drop(conn: Conn, reason: PeerReason, ban: boolean): void {
    if (conn.closed) return;
    if (ban) this.bad.add(conn.peerId, this.roster.get(conn.peerId)?.userId);
    this.events.emit('peerDropped', { peerId: conn.peerId, reason, banned: ban });
    this.closeConn(conn, reason);
    // A bad peer is dropped, not just one of its links.
    if (ban) for (const other of [...this.all]) if (other.peerId === conn.peerId) this.closeConn(other, reason);
  }

  /** Says BYE and closes after the grace; the engine ends the grace at stop. */
  private closeConn(conn: Conn, reason: string): void {
    conn.close(reason);
    if (conn.lingering) this.lingering.add(conn);
  }

  spawn(work: Promise<unknown>, where: string): void {
    work.catch((err: unknown) => {
      // After stop, a closed store rejecting late work is expected, not news.
      if (this.stopped) return;
      try {
        this.onError(err, where);
      } catch {
        // The reporter's own failure has nowhere to go.
      }
    });
  }

  holeFound(missing: string): void {
    if (this.stopped) return;
    const now = this.clock.now();
    const wait = this.lastHoleSync + HOLE_SYNC_MIN_MS - now;
    if (wait <= 0) {
      this.lastHoleSync = now;
      this.spawn(this.syncNow(), 'sync');
      return;
    }
    // Too soon after the last catch-up: postponed, not dropped (a message posted while the relay was down
    // may reach a peer only after our catch-up asked it). When the wait ends, a catch-up runs only if one of
    // the holes is still open: those the running catch-up filled cost nothing.
    if (this.postponedHoles.size < MAX_POSTPONED_HOLES) this.postponedHoles.add(missing);
    if (this.postponedHoles.size > 1) return; // the timer is already set
    void this.delay(wait).then(() => {
      const open = [...this.postponedHoles].filter((id) => !this.messages.index.has(id));
      this.postponedHoles.clear();
      if (this.stopped || open.length === 0) return;
      this.holeFound(open[0]!);
    });
  }

  /** Resolves when `work` does or after `ms`, whichever is first (or at stop). */
  private within(work: Promise<void>, ms: number): Promise<void> {
    return Promise.race([work, this.delay(ms)]);
  }

  delay(ms: number): Promise<void> {
    if (this.stopped) return Promise.resolve();
    return new Promise((resolve) => {
      const done = (): void => {
        this.timers.delete(handle);
        this.delayed.delete(done);
        resolve();
      };
      const handle = this.clock.setTimeout(done, ms);
      this.timers.add(handle);
      this.delayed.add(done);
    });
  }

  // ---- links ----

  private accept(link: PeerLink): void {
    try {
      if (this.stopped) return link.close('SHUTTING_DOWN');
      const refuse = this.isBanned(link.remotePeerId)
        ? 'BANNED'
        : this.linksOfUser(link.remotePeerId) >= MAX_LINKS_PER_USER ||
            (this.all.size >= this.opts.maxLinks && !this.evictIdle())
          ? 'TOO_MANY_LINKS'
          : null;
      if (refuse) {
        // Told why, not served: the Conn exists only to carry the BYE.
        this.closeConn(this.newConn(link, false), refuse);
        return;
      }
      this.attach(link, false);
    } catch {
      // Never throw into the transport's listener.
    }
  }

  /** Open links (not yet closed) to any session of the same remote user (G10). */
  private linksOfUser(peerId: string): number {
    const user = userOfPeer(peerId);
    let n = 0;
    for (const c of this.all) if (!c.closed && userOfPeer(c.peerId) === user) n++;
    return n;
  }

  private newConn(link: PeerLink, outbound: boolean): Conn {
    return new Conn(
      link,
      outbound,
      this.clock,
      {
        admit: (c, f) => this.admit(c, f),
        frame: (c, f) => this.onFrame(c, f),
        // Another protocol version is not hostile (G3).
        bad: (c, reason) => this.drop(c, reason, reason !== 'PROTOCOL_MISMATCH'),
        slow: (c) => this.drop(c, 'SLOW_PEER', false),
        closed: (c) => this.onClosed(c),
      },
      this.held,
    );
  }

  /**
   * On arrival, before a frame takes inbox room: answers must match an open request of their kind on
   * this link (G11, G13), and a chunk must match its verified hash (G8).
   */
  private admit(conn: Conn, frame: Frame): PeerReason | 'ignore' | null {
    if (!conn.helloSeen) return null; // Held until HELLO, and checked then (onFrame).
    return this.messages.admit(conn, frame) ?? this.attachments.admit(conn, frame);
  }

  private attach(link: PeerLink, outbound: boolean): Conn {
    const conn = this.newConn(link, outbound);
    this.all.add(conn);
    if (!this.conn(conn.peerId)) this.primary.set(conn.peerId, conn);
    conn.hello();
    return conn;
  }

  /** Closes the link idle the longest (nothing in flight either way); false when none is idle. */
  private evictIdle(): boolean {
    let victim: Conn | null = null;
    for (const c of this.all) {
      if (c.pending.size > 0 || c.serving > 0 || c.chunksQueued > 0) continue;
      if (!victim || c.lastActive < victim.lastActive) victim = c;
    }
    if (victim) this.closeConn(victim, 'IDLE');
    return victim !== null;
  }

  private onClosed(conn: Conn): void {
    this.all.delete(conn);
    if (this.primary.get(conn.peerId) === conn) {
      this.primary.delete(conn.peerId);
      for (const c of this.all) if (c.peerId === conn.peerId && !c.closed) this.primary.set(c.peerId, c);
    }
    if (this.stopped) return;
    this.messages.connClosed(conn);
    this.attachments.connClosed(conn);
  }

  private async onFrame(conn: Conn, frame: Frame): Promise<void> {
    if (frame.kind === PeerKind.BYE) {
      const body = parseControl(PeerKind.BYE, frame.body);
      conn.close(body?.reason ?? 'BYE', 'now');
      return;
    }
    if (!conn.helloSeen) {
      if (frame.kind !== PeerKind.HELLO) {
        // A new channel may deliver the peer's first frames out of order (VC2 (d)): what comes before
        // its HELLO waits for it, within EARLY_FRAMES_MAX and the inbox bound (G3).
        if (!conn.holdEarly(frame)) this.drop(conn, 'FLOOD', true);
        return;
      }
      const hello = parseControl(PeerKind.HELLO, frame.body);
      if (!hello) return this.drop(conn, 'BAD_FRAME', true);
      // A peer on another version is not hostile: say why and part (G3).
      if (hello.protocol !== PEER_PROTOCOL_VERSION) return this.drop(conn, 'PROTOCOL_MISMATCH', false);
      conn.helloSeen = true;
      for (const early of conn.takeEarly()) {
        try {
          if (conn.closed) break;
          const verdict = this.admit(conn, early);
          if (verdict === 'ignore') continue;
          if (verdict !== null) return this.drop(conn, verdict, true);
          await this.onFrame(conn, early);
        } finally {
          conn.handled(early);
        }
      }
      return;
    }
    switch (frame.kind) {
      case PeerKind.HELLO:
        return this.drop(conn, 'BAD_FRAME', true);
      case PeerKind.RECON:
      case PeerKind.RECON_REPLY:
      case PeerKind.GET_MSGS:
      case PeerKind.MSGS:
        return this.messages.handle(conn, frame);
      case PeerKind.NACK: {
        // A NACK answers one of our requests; message requests are MessageSync's.
        const kind = conn.pending.get(frame.reqId)?.kind;
        if (kind === 'msgs' || kind === 'recon') return this.messages.onNack(conn, frame.reqId);
        if (kind === undefined && this.messages.gaveUpOn(conn, frame.reqId)) return;
        return this.attachments.handle(conn, frame);
      }
      default:
        return this.attachments.handle(conn, frame);
    }
  }

  // ---- gossip timer ----

  private scheduleTick(): void {
    if (this.stopped) return;
    this.tickTimer = this.clock.setTimeout(() => {
      this.scheduleTick();
      this.spawn(this.tick(), 'tick');
    }, this.opts.gossipIntervalMs);
  }

  private async tick(): Promise<void> {
    if (this.stopped) return;
    // Timeouts and idle links are checked on every tick, even while the previous tick's async work
    // (offers, pulls, a resync) is still under way.
    const now = this.clock.now();
    for (const conn of [...this.all]) {
      // Message requests have absolute deadlines; past them the need moves on, nobody is blamed (G5).
      this.messages.expire(conn, now);
      if (conn.closed) continue;
      // A link whose peer never said HELLO is of no use; it may be an honest peer whose HELLO was lost.
      if (!conn.helloSeen && now - conn.openedAt > this.opts.requestTimeoutMs) {
        this.drop(conn, 'TIMEOUT', false);
        continue;
      }
      // Attachment requests: lack of progress, not a request's age. On a slow link answers queue behind one
      // another (1 MiB of chunks at 30 KB/s is 35 s) yet keep arriving. And a stall is not misbehaviour (the
      // remote may be slow, suspended or gone): the link closes, nobody is banned (G13).
      const since = conn.waitingSince((p) => p.kind !== 'msgs' && p.kind !== 'recon');
      if (since !== null && now - since > this.opts.requestTimeoutMs) this.drop(conn, 'TIMEOUT', false);
      else if (conn.pending.size === 0 && conn.serving === 0 && conn.chunksQueued === 0 && now - conn.lastActive > this.opts.idleLinkMs) {
        this.closeConn(conn, 'IDLE');
      }
    }
    for (const conn of this.lingering) if (!conn.lingering) this.lingering.delete(conn);
    if (this.ticking) return;
    this.ticking = true;
    try {
      await this.attachments.tick();
      this.messages.pump();
      if (this.opts.resyncIntervalMs > 0 && now - this.lastSync >= this.opts.resyncIntervalMs) {
        this.lastSync = now;
        // Peers that let a request pass its deadline lately come last (G5).
        const real = this.rng.shuffle(this.onlinePeers().filter((p) => p.kind !== 'virtual'));
        const peer = real.find((p) => !this.messages.isSlow(p.peerId)) ?? real[0];
        // Not awaited: a session must not hold up the next ticks' offers and pulls.
        if (peer) this.spawn(this.connect(peer.peerId).then((conn) => conn && this.messages.startSession(conn)), 'resync');
      }
    } catch {
      // A failing store must not stop the timer; the next tick tries again.
    } finally {
      this.ticking = false;
    }
  }
}
