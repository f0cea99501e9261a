// Attachment gossip and transfer (SPEC.md G6-G9). Push: a holder offers (id + digest, never bytes) to a
// few random peers each gossip tick until its offers keep meeting holders (~80% coverage); a peer that
// lacks the item fetches it from exactly ONE offerer, chunk by chunk on request, so each peer receives
// the payload about once. Pull: peers that know an attachment from its message but heard no offer ask
// random peers who holds it. Transfer: hash list first (checked against chunkRoot), then chunks each
// checked against its hash; a liar is dropped at its first bad chunk and the transfer resumes elsewhere.
import { sha256B64 } from '../crypto/hash';
import { concatBytes, toB64url } from '../encoding';
import {
  PEER_LIMITS,
  PeerKind,
  type Frame,
  type GetChunksBody,
  type GetHashesBody,
  type HaveBody,
  type OfferBody,
  type OfferReplyBody,
  type PeerReason,
  type WantBody,
  decodeChunk,
  decodeHashes,
  encodeChunk,
  encodeHashes,
  parseControl,
} from '../protocol/peer';
import { LIMITS, type SignedAttachment } from '../protocol/relay';
import { chunkHashes, verifyAttachment } from '../protocol/signed';
import type { Conn, Pending } from './Conn';
import { Download } from './Download';
import type { SyncContext } from './SyncContext';
import { HashListCache } from './HashListCache';
import { bytesToUlid, ulidToBytes } from './ulidBytes';

/** Attachments this peer is pushing at once; the oldest push ends first (G11). */
export const MAX_PUSHES = 64;
/** Attachments wanted (metadata known, bytes missing) tracked at once. */
export const MAX_WANTED = 256;
/** Offers for attachments whose metadata is not known yet, remembered as future sources. */
export const MAX_HINTS = 256;
/** Callers waiting on one fetchAttachment. */
export const MAX_WAITERS = 64;
/**
 * Pull passes (every online peer asked with WANT, none holds it) before a want gives up: its callers get
 * NOT_FOUND and it is dropped (G6). Between passes the want waits pullDelayMs doubling per pass, at most
 * PULL_BACKOFF_MAX_MS: with the defaults 1, 2, 4, 8, 16 s, so an item nobody holds ends after ~31 s.
 */
export const WANT_PULL_PASSES = 6;
export const PULL_BACKOFF_MAX_MS = 16_000;
/** Chunks read from the store per step while hashing held content (1 MiB): never all of it at once. */
const HASH_READ_CHUNKS = 64;
/**
 * A download asks for more chunks once at least this many of its window are free (or all it still
 * misses fit): one GET_CHUNKS per 8 chunks, not one per chunk. Each GET_CHUNKS is a control frame, and
 * the uploader takes 512 of those in a burst then 64/s per link (G11): at one per chunk, an honest
 * download faster than 1 MiB/s after its first 8 MiB was dropped as FLOOD.
 */
export const REQUEST_BATCH = 8;
/**
 * Consecutive queued chunks an upload reads from the store at once (256 KiB, one GET_CHUNKS' worth): held
 * until sent, within the link's 64 chunks asked (G11).
 */
const UPLOAD_READ_CHUNKS = PEER_LIMITS.maxChunksPerRequest;
/**
 * A link that has sent nothing for this long no longer holds younger uploads back (G9): its peer reads
 * slowly or not at all, so the uplink is free for the others. Long enough that a busy renderer's pause
 * does not count; short against a transfer (a 10 MB photo took 1.4 s over one link).
 */
export const UPLOAD_STALL_MS = 250;
/**
 * The longest an upload is held back behind older ones (G9). Moving is not the same as using the uplink:
 * a first receiver on a slow downlink keeps its buffer full while the holder's uplink has room, and the
 * others must not wait for all of it; past this they share the uplink with it. A 10 MB photo crosses a
 * fast link in 1-2 s, so on such links the order holds.
 */
export const UPLOAD_HOLD_MAX_MS = 8_000;
/** While uploads are held back, how often the upload loop looks whether the older links still move. */
const UPLOAD_RECHECK_MS = 20;

export type FetchResult = { ok: true; bytes: Uint8Array } | { ok: false; reason: string };
export type PublishResult = { ok: true } | { ok: false; reason: string };

interface Push {
  id: string;
  sha256: string;
  /** Peers offered to: never offered twice (G6). */
  offered: Set<string>;
  /** Peers known to hold it: never offered to. */
  holders: Set<string>;
  /** Offers answered 'have': the coverage signal that ends the push. */
  haves: number;
  ticks: number;
}

interface Want {
  meta: SignedAttachment;
  /** Peers known to hold it (offers, HAVE answers). */
  sources: Set<string>;
  /** Peers asked with WANT since the last reset. */
  asked: Set<string>;
  since: number;
  onDemand: boolean;
  waiters: ((r: FetchResult) => void)[];
  dl: Download | null;
  /** The one peer this is being fetched from (G6), reserved while its link opens; null when idle. */
  source: string | null;
  /**
   * The link the requests go on. A download belongs to a link, not to a peer: two honest peers may hold
   * two links for a while, and the spare one closing must not touch a transfer on the other (G8).
   */
  link: Conn | null;
  /** Pull passes since the last verified chunk; WANT_PULL_PASSES of them end the want. */
  passes: number;
  /** No WANT for it before this time (backoff between passes). */
  nextPullAt: number;
  /**
   * Its last caller went away and background policy does not want it: no more requests; it ends once the
   * chunks already asked for are in (dropping it at once would make a quick re-fetch ask again, G13).
   */
  dropping: boolean;
}

/** One attachment served on one link (G9). */
interface Upload {
  /** Its chunk count, once known (from the hash list, or a probe past the end). */
  count: number | null;
  /** Chunks asked (and so queued or sent) on this link: never one twice (G6, G13). */
  chunks: Set<number>;
  /**
   * Its place in the order uploads started (this link's first GET_CHUNKS of it): served oldest first. A
   * counter, not the clock: two peers asking within one millisecond still have an order.
   */
  seq: number;
  /** When it was first held back behind an older upload; UPLOAD_HOLD_MAX_MS later it is held no more. */
  heldAt: number | null;
}

interface UploadJob {
  reqId: number;
  id: string;
  index: number;
  /** Its upload's `seq`: uploads are served oldest first. */
  seq: number;
}

export class AttachmentSync {
  private readonly pushes = new Map<string, Push>();
  private readonly wanted = new Map<string, Want>();
  private readonly hints = new Map<string, Set<string>>();
  /** Attachments whose signed digests turned out inconsistent: never fetched again (this session). */
  private readonly failed = new Set<string>();
  private readonly uploads = new Map<Conn, UploadJob[]>();
  /** The one upload loop is running (pumpUploads); `wakePump` ends its wait when new chunks are asked. */
  private pumping = false;
  private wakePump: (() => void) | null = null;
  /** Per link: chunks already sent, so none is sent twice to the same peer (G6, G13). */
  private readonly sent = new Map<Conn, Map<string, Upload>>();
  /** The next upload's `seq`. */
  private uploadSeq = 0;
  /** Per link: what it had sent when last looked at, and since when (uplinkBusy); weak, as links end. */
  private readonly linkMoves = new WeakMap<Conn, { moved: number; at: number }>();
  /**
   * Content this peer publishes and the store is still writing: served from these bytes meanwhile. At
   * most what its own callers are publishing at once (their bytes, already in memory).
   */
  private readonly publishing = new Map<string, Uint8Array>();
  /** Hash lists of what this peer serves, so GET_HASHES does not re-hash the content (G8). */
  private readonly hashLists = new HashListCache();
  /** Links whose downloads wait for a fresh link (renewLink); at most one entry per open link. */
  private readonly stale = new Set<Conn>();
  /**
   * CHUNK frames verified and taken into their download on arrival (admit); their handler only reports
   * progress and asks for more. Weak: a frame dropped unhandled (its link closed) leaves nothing behind.
   */
  private readonly acceptedOnArrival = new WeakMap<Frame, { want: Want; receivedBytes: number; last: boolean }>();

  constructor(private readonly ctx: SyncContext) {}

  get activeDownloads(): number {
    let n = 0;
    for (const w of this.wanted.values()) if (w.source !== null) n++;
    return n;
  }
  /**
   * Links with an upload under way: a peer has not yet asked every chunk of an attachment, or chunks
   * are still queued or in the link's send buffer.
   */
  get activeUploads(): number {
    let n = 0;
    for (const [conn, perAtt] of this.sent) {
      if (conn.closed) continue;
      const leaving = conn.chunksQueued > 0 || conn.backlog > 0 || conn.link.bufferedAmount() > 0;
      // An unknown count (chunks asked of a peer that got its hash list elsewhere) counts while queued.
      if (leaving || [...perAtt.values()].some((s) => s.count !== null && s.chunks.size < s.count)) n++;
    }
    return n;
  }
  /** Verified chunks that downloads in progress hold in memory (until the whole is stored). */
  get downloadBytes(): number {
    let n = 0;
    for (const w of this.wanted.values()) n += w.dl?.receivedBytes ?? 0;
    return n;
  }
  get wantedCount(): number {
    return this.wanted.size;
  }
  get pushCount(): number {
    return this.pushes.size;
  }

  // ---- local API ----

  /** The author's side: checks the metadata and content, stores both, and starts offering (G6). */
  async publish(meta: SignedAttachment, bytes: Uint8Array): Promise<PublishResult> {
    const check = await verifyAttachment(this.ctx.crypto, meta, this.ctx.relayKey);
    if (!check.ok) return { ok: false, reason: check.reason };
    if (bytes.length !== meta.meta.size || toB64url(await this.ctx.digest(bytes)) !== meta.meta.sha256) return { ok: false, reason: 'WRONG_DIGEST' };
    const hashes = await this.chunkHashesOf(bytes);
    if (sha256B64(hashes) !== meta.meta.chunkRoot) return { ok: false, reason: 'WRONG_DIGEST' };
    await this.ctx.store.putAttachmentMeta(meta);
    // Offered and served from the caller's bytes while the store writes them: a 10 MB IndexedDB write
    // took seconds that the first receiver would otherwise wait before its first chunk (bench:media).
    this.publishing.set(meta.id, bytes);
    this.hashLists.set(meta.id, hashes);
    this.startPush(meta, new Set());
    // The first offers go out now (not awaited: links may take a while to open).
    this.ctx.spawn(this.pushTick(this.pushes.get(meta.id)), 'offer');
    let stored = false;
    try {
      stored = await this.ctx.store.putAttachmentBytes(meta.id, bytes);
    } finally {
      this.publishing.delete(meta.id);
    }
    if (!stored) {
      this.pushes.delete(meta.id);
      return { ok: false, reason: 'STORE_REFUSED' };
    }
    this.settleWant(meta.id, bytes);
    return { ok: true };
  }

  /** Metadata of a stored message's attachment: fetch it in the background if policy wants it. */
  async noteMeta(meta: SignedAttachment): Promise<void> {
    if (this.wanted.has(meta.id) || this.failed.has(meta.id) || !this.ctx.opts.wantAttachment(meta)) return;
    if (await this.ctx.store.hasAttachmentBytes(meta.id)) return;
    this.addWant(meta, false);
  }

  /** On demand (the UI opens it): asks peers right away, real ones first (G7). */
  async fetch(id: string, signal?: AbortSignal): Promise<FetchResult> {
    const rec = await this.ctx.store.getAttachment(id);
    if (rec?.bytes) return { ok: true, bytes: rec.bytes };
    if (!rec) return { ok: false, reason: 'UNKNOWN' };
    if (this.failed.has(id)) return { ok: false, reason: 'WRONG_DIGEST' };
    if (signal?.aborted) return { ok: false, reason: 'ABORTED' };
    const want = this.wanted.get(id) ?? this.addWant(rec.meta, true);
    if (!want) return { ok: false, reason: 'BUSY' };
    if (want.waiters.length >= MAX_WAITERS) return { ok: false, reason: 'BUSY' };
    want.onDemand = true;
    want.dropping = false;
    return new Promise<FetchResult>((resolve) => {
      const waiter = (r: FetchResult): void => {
        signal?.removeEventListener('abort', onAbort);
        resolve(r);
      };
      const onAbort = (): void => {
        want.waiters = want.waiters.filter((w) => w !== waiter);
        resolve({ ok: false, reason: 'ABORTED' });
        if (want.waiters.length === 0) this.lastCallerGone(want);
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      want.waiters.push(waiter);
      this.ctx.spawn(
        this.kick(want).then(() => (want.source === null && this.wanted.get(id) === want ? this.pull([want], true) : undefined)),
        'fetch',
      );
    });
  }

  /**
   * Nobody waits on an on-demand want any more (G6): it goes back to the background if policy wants it,
   * else it ends, at once when nothing is in flight, otherwise once what was asked for is in.
   */
  private lastCallerGone(want: Want): void {
    if (this.wanted.get(want.meta.id) !== want || !want.onDemand) return;
    want.onDemand = false;
    if (this.ctx.opts.wantAttachment(want.meta)) return;
    want.dropping = true;
    this.endIfDropped(want);
  }

  private endIfDropped(want: Want): void {
    if (!want.dropping || this.wanted.get(want.meta.id) !== want) return;
    if (want.link && !want.link.closed && (want.dl?.chunksInFlight ?? 0) > 0) return;
    this.wanted.delete(want.meta.id);
  }

  private addWant(meta: SignedAttachment, onDemand: boolean): Want | null {
    if (this.wanted.size >= MAX_WANTED) {
      // Drop the oldest background want that is not running; on-demand ones stay.
      for (const [id, w] of this.wanted) {
        if (w.source === null && !w.onDemand && w.waiters.length === 0) {
          this.wanted.delete(id);
          break;
        }
      }
      if (this.wanted.size >= MAX_WANTED) return null;
    }
    const want: Want = {
      meta,
      sources: new Set(this.hints.get(meta.id) ?? []),
      asked: new Set(),
      since: this.ctx.clock.now(),
      onDemand,
      waiters: [],
      dl: null,
      source: null,
      link: null,
      passes: 0,
      nextPullAt: 0,
      dropping: false,
    };
    this.hints.delete(meta.id);
    this.wanted.set(meta.id, want);
    this.ctx.spawn(this.kick(want), 'kick');
    return want;
  }

  private startPush(meta: SignedAttachment, holders: Set<string>): void {
    if (this.pushes.has(meta.id)) return;
    if (this.pushes.size >= MAX_PUSHES) this.pushes.delete(this.pushes.keys().next().value!);
    this.pushes.set(meta.id, { id: meta.id, sha256: meta.meta.sha256, offered: new Set(), holders, haves: 0, ticks: 0 });
  }

  // ---- gossip tick (G6) ----

  async tick(): Promise<void> {
    for (const conn of [...this.stale]) {
      if (conn.closed) this.stale.delete(conn);
      else if (conn.pending.size === 0 && conn.serving === 0 && conn.chunksQueued === 0) {
        this.stale.delete(conn);
        this.renewLink(conn);
      }
    }
    for (const push of [...this.pushes.values()]) await this.pushTick(push);
    const idle: Want[] = [];
    for (const want of [...this.wanted.values()]) {
      if (want.source !== null || want.dropping) continue;
      if (await this.kick(want)) continue;
      const now = this.ctx.clock.now();
      if (now < want.nextPullAt) continue;
      if (want.onDemand || now - want.since >= this.ctx.opts.pullDelayMs) idle.push(want);
    }
    if (idle.length > 0) await this.pull(idle, false);
  }

  /** Offers one attachment to `fanout` random peers not yet offered and not known to hold it. */
  private async pushTick(push: Push | undefined): Promise<void> {
    if (!push || this.ctx.stopped) return;
    push.ticks++;
    if (push.haves >= this.ctx.opts.stopAfterHaves || push.ticks > this.ctx.opts.maxPushTicks) {
      this.pushes.delete(push.id);
      return;
    }
    const candidates = this.ctx.onlinePeers().filter((p) => !push.offered.has(p.peerId) && !push.holders.has(p.peerId));
    if (candidates.length === 0) {
      this.pushes.delete(push.id);
      return;
    }
    const targets = this.ctx.rng.shuffle(candidates).slice(0, this.ctx.opts.fanout);
    await Promise.all(
      targets.map(async (t) => {
        push.offered.add(t.peerId);
        const conn = await this.ctx.connect(t.peerId);
        conn?.sendControl(PeerKind.OFFER, conn.newReqId(), { id: push.id, sha256: push.sha256 });
      }),
    );
  }

  /**
   * Asks random peers who holds the idle wants: real peers first, virtual ones only once the wants are
   * older than virtualDelayMs or no real peer is left to ask (G7). One WANT per peer carries many ids.
   */
  private async pull(wants: Want[], urgent: boolean): Promise<void> {
    const now = this.ctx.clock.now();
    const online = this.ctx.onlinePeers();
    const perPeer = new Map<string, string[]>();
    for (const want of wants) {
      if (this.wanted.get(want.meta.id) !== want) continue;
      const fresh = online.filter((p) => !want.asked.has(p.peerId) && !want.sources.has(p.peerId));
      if (fresh.length === 0) {
        // Everyone was asked and nobody had it: ask again after a pause that doubles, and after
        // WANT_PULL_PASSES passes give up (an item nobody holds must not cost WANTs for ever, G6).
        want.asked.clear();
        want.passes++;
        if (want.passes >= WANT_PULL_PASSES) {
          this.giveUp(want);
          continue;
        }
        want.nextPullAt = now + Math.min(PULL_BACKOFF_MAX_MS, this.ctx.opts.pullDelayMs * 2 ** want.passes);
        continue;
      }
      const real = this.ctx.rng.shuffle(fresh.filter((p) => p.kind !== 'virtual'));
      const virtual = this.ctx.rng.shuffle(fresh.filter((p) => p.kind === 'virtual'));
      const virtualToo = real.length === 0 || now - want.since >= this.ctx.opts.virtualDelayMs;
      const ordered = virtualToo ? [...real, ...virtual] : real;
      for (const p of ordered.slice(0, urgent ? 4 : this.ctx.opts.pullFanout)) {
        want.asked.add(p.peerId);
        let ids = perPeer.get(p.peerId);
        if (!ids) perPeer.set(p.peerId, (ids = []));
        if (ids.length < PEER_LIMITS.maxIdsPerRequest) ids.push(want.meta.id);
      }
    }
    await Promise.all(
      [...perPeer].map(async ([peerId, ids]) => {
        const conn = await this.ctx.connect(peerId);
        if (!conn) return;
        const reqId = conn.newReqId();
        conn.pending.set(reqId, { kind: 'want', at: this.ctx.clock.now(), ids: new Set(ids) });
        conn.sendControl(PeerKind.WANT, reqId, { ids, lastResort: this.ctx.isVirtual(peerId) || undefined });
      }),
    );
  }

  /**
   * Starts fetching from one known holder when a download slot is free: a real peer when one is known,
   * a linked one before one that needs a new link. Returns whether a source is (now) fetching.
   */
  private async kick(want: Want): Promise<boolean> {
    if (want.source !== null) return true;
    if (this.ctx.stopped || this.activeDownloads >= this.ctx.opts.maxDownloads) return false;
    // Someone else may have stored it meanwhile (the author publishing, another tab): nothing to fetch.
    // The bytes check, not a read: content is loaded only when a caller waits for it (G6, H14).
    if (await this.ctx.store.hasAttachmentBytes(want.meta.id)) {
      const bytes = want.waiters.length > 0 ? (await this.ctx.store.getAttachment(want.meta.id))?.bytes : undefined;
      if (bytes || want.waiters.length === 0) {
        this.settleWant(want.meta.id, bytes);
        return true;
      }
    }
    if (want.source !== null) return true;
    if (this.wanted.get(want.meta.id) !== want || want.dropping) return true;
    const now = this.ctx.clock.now();
    const online = new Set(this.ctx.onlinePeers().map((p) => p.peerId));
    const usable = [...want.sources].filter((s) => online.has(s) || this.ctx.conn(s));
    const real = usable.filter((s) => !this.ctx.isVirtual(s));
    const anyRealOnline = this.ctx.onlinePeers().some((p) => p.kind !== 'virtual');
    let pool = real;
    if (pool.length === 0 && (now - want.since >= this.ctx.opts.virtualDelayMs || want.onDemand || !anyRealOnline)) pool = usable;
    if (pool.length === 0) return false;
    const linked = pool.filter((s) => this.ctx.conn(s));
    const pick = this.ctx.rng.shuffle(linked.length > 0 ? linked : pool)[0]!;
    want.source = pick;
    const conn = await this.ctx.connect(pick);
    if (!conn || this.wanted.get(want.meta.id) !== want || want.dropping) {
      want.source = null;
      if (conn) {
        this.endIfDropped(want);
        return true;
      }
      want.sources.delete(pick);
      return this.kick(want);
    }
    want.link = conn;
    want.dl ??= new Download(want.meta);
    this.request(want, conn);
    return true;
  }

  /** Asks the current source for the hash list, or for chunks up to the window. */
  private request(want: Want, conn: Conn): void {
    const dl = want.dl!;
    const lastResort = this.ctx.isVirtual(conn.peerId) || undefined;
    if (!dl.hasHashes) {
      for (const p of conn.pending.values()) if (p.kind === 'hashes' && p.id === want.meta.id) return;
      const reqId = conn.newReqId();
      conn.pending.set(reqId, { kind: 'hashes', at: this.ctx.clock.now(), id: want.meta.id });
      conn.sendControl(PeerKind.GET_HASHES, reqId, { id: want.meta.id, lastResort });
      return;
    }
    this.fill(conn);
  }

  /**
   * Tops up chunk requests on one link: each download up to its window, all of them together up to
   * maxChunksInFlight (what the uploader accepts per link, G11).
   */
  private fill(conn: Conn): void {
    let inFlight = 0;
    for (const p of conn.pending.values()) if (p.kind === 'chunks') inFlight += p.indices.size;
    const blocked: Want[] = [];
    for (const want of this.wanted.values()) {
      const dl = want.dl;
      if (want.link !== conn || want.dropping || !dl?.hasHashes) continue;
      const lastResort = this.ctx.isVirtual(conn.peerId) || undefined;
      const id = want.meta.id;
      const skip = (i: number): boolean => conn.chunkAsked(id, i);
      let starved = false;
      while (dl.chunksInFlight < this.ctx.opts.chunkWindow && inFlight < PEER_LIMITS.maxChunksInFlight) {
        const room = Math.min(this.ctx.opts.chunkWindow - dl.chunksInFlight, PEER_LIMITS.maxChunksInFlight - inFlight);
        // Wait until a batch is free (or what is left fits): one GET_CHUNKS per chunk would spend the
        // uploader's control budget on a fast honest download (G11).
        if (room < Math.min(REQUEST_BATCH, dl.chunksMissing)) break;
        const indices = dl.takeChunks(Math.min(PEER_LIMITS.maxChunksPerRequest, room), skip);
        starved = indices.length === 0;
        if (indices.length === 0) break;
        inFlight += indices.length;
        conn.noteChunksAsked(id, dl.chunkCount, indices);
        const reqId = conn.newReqId();
        conn.pending.set(reqId, { kind: 'chunks', at: this.ctx.clock.now(), id: want.meta.id, indices: new Set(indices) });
        conn.sendControl(PeerKind.GET_CHUNKS, reqId, { id: want.meta.id, indices, lastResort });
      }
      if (starved && dl.chunksInFlight === 0 && dl.chunksMissing > 0) blocked.push(want);
    }
    if (blocked.length > 0) this.renewLink(conn);
  }

  /**
   * Downloads on this link need chunks that were asked for on it once already (a download that restarted
   * after its want ended): the uploader would take a second ask as a replay (G13), so they need a fresh
   * link. One with nothing else going on is closed now (IDLE, no blame); the downloads resume on a new
   * link to the same peer. A busy one is closed by the gossip tick once it is quiet (or by G10's idle rule).
   */
  private renewLink(conn: Conn): void {
    if (conn.pending.size === 0 && conn.serving === 0 && conn.chunksQueued === 0 && conn.backlog === 0) {
      // The peer still holds it: it stays a source, only the link is new.
      const moving = [...this.wanted.values()].filter((w) => w.link === conn);
      for (const want of moving) {
        this.releaseSource(want, conn);
        want.sources.add(conn.peerId);
      }
      this.ctx.drop(conn, 'IDLE', false);
      for (const want of moving) this.ctx.spawn(this.kick(want), 'kick');
    } else {
      this.stale.add(conn);
    }
  }

  // ---- frames ----

  async handle(conn: Conn, frame: Frame): Promise<void> {
    switch (frame.kind) {
      case PeerKind.OFFER:
        return this.withBody(conn, frame, PeerKind.OFFER, (b) => this.onOffer(conn, b));
      case PeerKind.OFFER_REPLY:
        return this.withBody(conn, frame, PeerKind.OFFER_REPLY, (b) => this.onOfferReply(conn, b));
      case PeerKind.WANT:
        return this.withBody(conn, frame, PeerKind.WANT, (b) => this.onWant(conn, frame.reqId, b));
      case PeerKind.HAVE:
        return this.withBody(conn, frame, PeerKind.HAVE, (b) => this.onHave(conn, frame.reqId, b));
      case PeerKind.GET_HASHES:
        return this.withBody(conn, frame, PeerKind.GET_HASHES, (b) => this.onGetHashes(conn, frame.reqId, b));
      case PeerKind.GET_CHUNKS:
        return this.withBody(conn, frame, PeerKind.GET_CHUNKS, (b) => this.onGetChunks(conn, frame.reqId, b));
      case PeerKind.HASHES:
        return this.onHashes(conn, frame);
      case PeerKind.CHUNK:
        return this.onChunk(conn, frame);
      case PeerKind.NACK:
        return this.onNack(conn, frame.reqId);
    }
  }

  private async withBody<K extends typeof PeerKind.OFFER | typeof PeerKind.OFFER_REPLY | typeof PeerKind.WANT | typeof PeerKind.HAVE | typeof PeerKind.GET_HASHES | typeof PeerKind.GET_CHUNKS>(
    conn: Conn,
    frame: Frame,
    kind: K,
    fn: (body: NonNullable<ReturnType<typeof parseControl<K>>>) => Promise<void> | void,
  ): Promise<void> {
    const body = parseControl(kind, frame.body);
    if (!body) return this.ctx.drop(conn, 'BAD_FRAME', true);
    await fn(body);
  }

  private async onOffer(conn: Conn, body: OfferBody): Promise<void> {
    const reply = (status: OfferReplyBody['status']): void => {
      conn.sendControl(PeerKind.OFFER_REPLY, 0, { id: body.id, status });
    };
    // The bytes check first: "do you have it" must not load the content (H14). A holder checks the digest
    // against metadata it has at hand; one it would have to read cannot make it fetch anything anyway.
    if (await this.holds(body.id)) {
      const push = this.pushes.get(body.id);
      if (push && push.sha256 !== body.sha256) return this.ctx.drop(conn, 'WRONG_DIGEST', true);
      push?.holders.add(conn.peerId);
      return reply('have');
    }
    const rec = await this.ctx.store.getAttachment(body.id); // no bytes held: metadata only
    if (rec && rec.meta.meta.sha256 !== body.sha256) return this.ctx.drop(conn, 'WRONG_DIGEST', true);
    if (rec?.bytes) return reply('have'); // stored meanwhile
    if (!rec) {
      // Unknown metadata: remember the offerer as a source for when the message arrives.
      let set = this.hints.get(body.id);
      if (!set) {
        if (this.hints.size >= MAX_HINTS) this.hints.delete(this.hints.keys().next().value!);
        this.hints.set(body.id, (set = new Set()));
      }
      if (set.size < 8) set.add(conn.peerId);
      return reply('skip');
    }
    let want = this.wanted.get(body.id);
    if (!want) {
      if (this.failed.has(body.id) || !this.ctx.opts.wantAttachment(rec.meta)) return reply('skip');
      want = this.addWant(rec.meta, false) ?? undefined;
      if (!want) return reply('skip');
    }
    want.sources.add(conn.peerId);
    want.dropping = false; // an offer revives a want on its way out, as wanted by policy (it passed above)
    if (want.source !== null) return reply('later');
    await this.kick(want);
    reply(want.source === conn.peerId ? 'take' : 'later');
  }

  private onOfferReply(conn: Conn, body: OfferReplyBody): void {
    const push = this.pushes.get(body.id);
    if (!push) return; // The push ended; a late answer is harmless.
    if (!push.offered.has(conn.peerId)) return this.ctx.drop(conn, 'UNSOLICITED', true);
    if (body.status === 'have') {
      push.haves++;
      push.holders.add(conn.peerId);
    }
  }

  private async onWant(conn: Conn, reqId: number, body: WantBody): Promise<void> {
    if (conn.serving >= PEER_LIMITS.maxRequestsInFlight) return this.ctx.drop(conn, 'FLOOD', true);
    conn.serving++;
    try {
      if (this.ctx.selfKind === 'virtual' && !body.lastResort) await this.ctx.delay(this.ctx.opts.virtualDelayMs);
      const held: string[] = [];
      for (const id of body.ids) if (await this.holds(id)) held.push(id);
      conn.sendControl(PeerKind.HAVE, reqId, { ids: held });
    } finally {
      conn.serving--;
    }
  }

  private async onHave(conn: Conn, reqId: number, body: HaveBody): Promise<void> {
    const p = conn.pending.get(reqId);
    if (!p || p.kind !== 'want') return this.ctx.drop(conn, 'UNSOLICITED', true);
    conn.pending.delete(reqId);
    for (const id of body.ids) if (!p.ids.has(id)) return this.ctx.drop(conn, 'UNSOLICITED', true);
    for (const id of body.ids) {
      const want = this.wanted.get(id);
      if (!want) continue;
      want.sources.add(conn.peerId);
      await this.kick(want);
    }
  }

  private async onGetHashes(conn: Conn, reqId: number, body: GetHashesBody): Promise<void> {
    if (conn.serving >= PEER_LIMITS.maxRequestsInFlight) return this.ctx.drop(conn, 'FLOOD', true);
    conn.serving++;
    try {
      if (this.ctx.selfKind === 'virtual' && !body.lastResort) await this.ctx.delay(this.ctx.opts.virtualDelayMs);
      const hashes = await this.hashList(body.id);
      if (!hashes || conn.closed) {
        conn.sendControl(PeerKind.NACK, reqId, { reason: 'NOT_FOUND' });
        return;
      }
      const total = hashes.length / 32;
      const idBytes = ulidToBytes(body.id)!;
      for (let from = 0; from < total; from += PEER_LIMITS.maxHashesPerFrame) {
        const to = Math.min(total, from + PEER_LIMITS.maxHashesPerFrame);
        conn.sendFrame(encodeHashes(reqId, { id: idBytes, from, total, hashes: hashes.subarray(from * 32, to * 32) }));
      }
    } finally {
      conn.serving--;
    }
  }

  private async onGetChunks(conn: Conn, reqId: number, body: GetChunksBody): Promise<void> {
    // The count from the cached hash list, else one byte read at the highest index asked: is it there?
    const cached = this.hashLists.get(body.id);
    let count: number | null = cached ? cached.length / 32 : null;
    const top = Math.max(...body.indices);
    if (count === null) {
      const probe = await this.readRange(body.id, top * LIMITS.chunkBytes, top * LIMITS.chunkBytes + 1);
      if (!probe) {
        conn.sendControl(PeerKind.NACK, reqId, { reason: 'NOT_FOUND' });
        return;
      }
      if (probe.length === 0 && top > 0) count = 0; // past the end
    } else if (!(await this.holds(body.id))) {
      conn.sendControl(PeerKind.NACK, reqId, { reason: 'NOT_FOUND' });
      return;
    }
    if (conn.closed) return;
    if (count !== null && top >= count) return this.ctx.drop(conn, 'BAD_CHUNK_COUNT', true);
    if (conn.chunksQueued + body.indices.length > PEER_LIMITS.maxChunksInFlight) return this.ctx.drop(conn, 'FLOOD', true);
    let perAtt = this.sent.get(conn);
    if (!perAtt) this.sent.set(conn, (perAtt = new Map()));
    let entry = perAtt.get(body.id);
    if (!entry) {
      if (perAtt.size >= MAX_PUSHES) perAtt.delete(perAtt.keys().next().value!);
      perAtt.set(body.id, (entry = { count, chunks: new Set(), seq: this.uploadSeq++, heldAt: null }));
    }
    entry.count ??= count;
    const sent = entry.chunks;
    // Never the same chunk twice to the same peer: asking again is a replay (G6, G13).
    if (body.indices.some((i) => sent.has(i)) || new Set(body.indices).size !== body.indices.length) {
      return this.ctx.drop(conn, 'UNSOLICITED', true);
    }
    for (const i of body.indices) sent.add(i);
    let queue = this.uploads.get(conn);
    if (!queue) this.uploads.set(conn, (queue = []));
    for (const index of body.indices) queue.push({ reqId, id: body.id, index, seq: entry.seq });
    conn.chunksQueued += body.indices.length;
    this.wakePump?.();
    this.ctx.spawn(this.pumpUploads(), 'upload');
  }

  /**
   * The one upload loop: sends queued chunks in the order the transfers started (G9). The transfer that
   * started first (its link's first GET_CHUNKS of that attachment) is served whenever its link's queue is
   * empty; a younger one only while every older transfer leaves the uplink free: its link has sent all it
   * was given, or has sent nothing for UPLOAD_STALL_MS, or the younger one was held UPLOAD_HOLD_MAX_MS
   * already. Before, a younger link was filled whenever
   * the oldest one's queue was momentarily empty, so the links' buffers shared the uplink and four
   * receivers of one photo finished together at four times one's time (bench:media: first of 4 at 0.45 of
   * the bare channel); now the first gets the uplink to itself, completes, and offers in turn, and the
   * others follow one by one. A transfer asked in full no longer holds others back (its last window, up to
   * 1 MiB, shares the uplink; keeping it would need a wake-up when a link's buffer empties, which the link
   * gives only after a refused send). A full link waits for its own drain. The jobs
   * queued right behind one for the next chunks of the same attachment are read with it, in one range
   * read of at most UPLOAD_READ_CHUNKS chunks: one store transaction per run instead of one per 16 KiB
   * (with IndexedDB that per-chunk read paced the upload).
   */
  private async pumpUploads(): Promise<void> {
    if (this.pumping) return;
    this.pumping = true;
    try {
      while (!this.ctx.stopped) {
        const now = this.ctx.clock.now();
        let conn: Conn | null = null;
        let heldBack = false;
        let olderBusy = false;
        const waiting: Conn[] = [];
        for (const c of this.uploadOrder()) {
          const head = this.uploads.get(c)?.[0];
          if (head) {
            const upload = this.sent.get(c)?.get(head.id);
            if (olderBusy && upload) upload.heldAt ??= now;
            if (c.backlog > 0) waiting.push(c);
            else if (!olderBusy || (upload?.heldAt != null && now - upload.heldAt >= UPLOAD_HOLD_MAX_MS)) {
              conn = c;
              break;
            } else heldBack = true;
          }
          if (this.uplinkBusy(c, now)) olderBusy = true;
        }
        if (!conn) {
          if (waiting.length === 0 && !heldBack) return;
          // Every link with chunks to send is full or held back: wait for a drain, new chunks asked, or
          // (held back) a look at whether the older links still move.
          const wakes = [...waiting.map((c) => c.waitDrain()), new Promise<void>((r) => (this.wakePump = r))];
          if (heldBack) wakes.push(this.ctx.delay(UPLOAD_RECHECK_MS));
          await Promise.race(wakes);
          this.wakePump = null;
          continue;
        }
        const queue = this.uploads.get(conn)!;
        const run = [queue.shift()!];
        while (run.length < UPLOAD_READ_CHUNKS && queue[0]?.id === run[0]!.id && queue[0].index === run.at(-1)!.index + 1) {
          run.push(queue.shift()!);
        }
        const from = run[0]!.index * LIMITS.chunkBytes;
        // One run's range, never the whole content (H14).
        const data = await this.readRange(run[0]!.id, from, (run.at(-1)!.index + 1) * LIMITS.chunkBytes);
        for (const [k, job] of run.entries()) {
          conn.chunksQueued--;
          if (!data || conn.closed) continue;
          // A refused frame waits in the link's queue (within the run: at most 256 KiB past the
          // high-water mark); the link then waits for its drain before it is served again.
          conn.sendFrame(encodeChunk(job.reqId, ulidToBytes(job.id)!, job.index, data.subarray(k * LIMITS.chunkBytes, (k + 1) * LIMITS.chunkBytes)));
        }
      }
    } finally {
      this.pumping = false;
      this.wakePump = null;
    }
  }

  /**
   * Links with chunks to send or a transfer under way (a peer has not yet asked every chunk), each with
   * when its oldest such transfer started, oldest first: the order uploads are served in (G9).
   */
  private uploadOrder(): Conn[] {
    const order = new Map<Conn, number>();
    for (const [c, q] of this.uploads) if (!c.closed && q.length > 0) order.set(c, Math.min(...q.map((j) => j.seq)));
    for (const [c, perAtt] of this.sent) {
      if (c.closed) continue;
      for (const s of perAtt.values()) {
        if (s.count !== null && s.chunks.size >= s.count) continue;
        order.set(c, Math.min(order.get(c) ?? Infinity, s.seq));
      }
    }
    return [...order].sort((a, b) => a[1] - b[1]).map(([c]) => c);
  }

  /**
   * Whether this link keeps the uplink busy: it holds bytes not yet sent (queued or in the link's buffer)
   * and sent some within UPLOAD_STALL_MS. A link whose peer stopped reading stops holding the others back
   * after that; one whose peer asks slower than the uplink sends runs dry between its requests, and the
   * others are served meanwhile. (The low-water mark was too coarse: the uploader hands a link one read
   * run of 16 chunks at a time, 256 KiB, so a busy link often held less.)
   */
  private uplinkBusy(c: Conn, now: number): boolean {
    const buffered = c.link.bufferedAmount();
    const moved = c.handedBytes - buffered;
    let seen = this.linkMoves.get(c);
    if (!seen || seen.moved !== moved) this.linkMoves.set(c, (seen = { moved, at: now }));
    return c.backlog + buffered > 0 && now - seen.at < UPLOAD_STALL_MS;
  }

  /**
   * Checked when a frame arrives, before it takes inbox room (G8, G11, G13). HASHES and CHUNK must answer
   * an open request of their kind on this link (else UNSOLICITED). A chunk for a download running on this
   * link is verified and taken at once: the hash list it is checked against hashed to the relay-signed
   * chunkRoot, so a wrong chunk is proof against the peer that served it, which is banned at its first bad
   * chunk (WRONG_DIGEST) and read no further; the good chunks it sent before that one are already kept,
   * although their frames wait in the inbox that the ban discards. A chunk asked here that is no longer
   * wanted from here (the want ended or moved) is queued unchecked for the handler's bookkeeping: at most
   * what was asked on this link (64 chunks, G11).
   */
  admit(conn: Conn, frame: Frame): PeerReason | null {
    if (frame.kind === PeerKind.HASHES) {
      const h = decodeHashes(frame.body);
      if (!h) return 'BAD_FRAME';
      const p = conn.pending.get(frame.reqId);
      return p?.kind === 'hashes' && p.id === bytesToUlid(h.id) ? null : 'UNSOLICITED';
    }
    if (frame.kind !== PeerKind.CHUNK) return null;
    const c = decodeChunk(frame.body);
    if (!c) return 'BAD_FRAME';
    const id = bytesToUlid(c.id);
    const p = conn.pending.get(frame.reqId);
    if (!p || p.kind !== 'chunks' || p.id !== id || !p.indices.has(c.index)) return 'UNSOLICITED';
    const want = this.wanted.get(id);
    if (!want?.dl || want.link !== conn) return null;
    const check = want.dl.acceptChunk(c.index, c.data);
    if (!check.ok) return check.reason;
    this.answered(conn, frame.reqId, p, c.index);
    // Only verified content resets the give-up count: a peer that answers HAVE and then NACKs (or never
    // serves) cannot keep a want asking for ever.
    want.passes = 0;
    this.acceptedOnArrival.set(frame, { want, receivedBytes: want.dl.receivedBytes, last: want.dl.done });
    return null;
  }

  /** One asked chunk came in on this link: its request is done once all of its chunks are. */
  private answered(conn: Conn, reqId: number, p: Extract<Pending, { kind: 'chunks' }>, index: number): void {
    p.indices.delete(index);
    p.at = this.ctx.clock.now();
    if (p.indices.size === 0) conn.pending.delete(reqId);
  }

  private async onHashes(conn: Conn, frame: Frame): Promise<void> {
    const h = decodeHashes(frame.body);
    if (!h) return this.ctx.drop(conn, 'BAD_FRAME', true);
    const id = bytesToUlid(h.id);
    const p = conn.pending.get(frame.reqId);
    if (!p || p.kind !== 'hashes' || p.id !== id) return this.ctx.drop(conn, 'UNSOLICITED', true);
    const want = this.wanted.get(id);
    if (!want?.dl || want.link !== conn) {
      conn.pending.delete(frame.reqId);
      return;
    }
    const check = want.dl.acceptHashPage(h.from, h.total, h.hashes);
    if (!check.ok) return this.ctx.drop(conn, check.reason, true);
    p.at = this.ctx.clock.now();
    if (want.dl.hasHashes) {
      conn.pending.delete(frame.reqId);
      this.request(want, conn);
    }
  }

  private async onChunk(conn: Conn, frame: Frame): Promise<void> {
    const c = decodeChunk(frame.body);
    if (!c) return this.ctx.drop(conn, 'BAD_FRAME', true);
    const id = bytesToUlid(c.id);
    const taken = this.acceptedOnArrival.get(frame);
    if (taken) {
      this.acceptedOnArrival.delete(frame);
      const want = taken.want;
      if (this.wanted.get(id) !== want || want.link !== conn) return; // finished or moved meanwhile
      return this.chunkTaken(conn, want, taken.receivedBytes, taken.last);
    }
    // Not taken on arrival (admitted unchecked, or handed here without admit): check it now.
    const p = conn.pending.get(frame.reqId);
    if (!p || p.kind !== 'chunks' || p.id !== id || !p.indices.has(c.index)) return this.ctx.drop(conn, 'UNSOLICITED', true);
    this.answered(conn, frame.reqId, p, c.index);
    const want = this.wanted.get(id);
    // Asked for on this link, but no longer wanted from it (the want ended or moved): harmless, ignored.
    if (!want?.dl || want.link !== conn) return;
    const check = want.dl.acceptChunk(c.index, c.data);
    // A bad chunk: drop the liar (its data too) and resume from another holder (G8).
    if (!check.ok) return this.ctx.drop(conn, check.reason, true);
    want.passes = 0;
    return this.chunkTaken(conn, want, want.dl.receivedBytes, want.dl.done);
  }

  /** A verified chunk is in: progress (per chunk, G8), the whole stored once complete, more asked. */
  private async chunkTaken(conn: Conn, want: Want, receivedBytes: number, last: boolean): Promise<void> {
    this.ctx.events.emit('progress', { id: want.meta.id, receivedBytes, totalBytes: want.meta.meta.size, from: conn.peerId });
    if (last) await this.finish(want, conn.peerId);
    else this.endIfDropped(want);
    if (!conn.closed) this.fill(conn);
  }

  private onNack(conn: Conn, reqId: number): void {
    const p = conn.pending.get(reqId);
    if (!p) return this.ctx.drop(conn, 'UNSOLICITED', true);
    conn.pending.delete(reqId);
    if (p.kind !== 'hashes' && p.kind !== 'chunks') return;
    const want = this.wanted.get(p.id);
    if (!want || want.link !== conn) return;
    this.releaseSource(want, conn);
    this.ctx.spawn(this.kick(want), 'kick');
  }

  /** The bytes are held: the want ends and its waiters get them. */
  private settleWant(id: string, bytes: Uint8Array | undefined): void {
    const want = this.wanted.get(id);
    if (!want) return;
    this.wanted.delete(id);
    for (const w of want.waiters.splice(0)) w(bytes ? { ok: true, bytes } : { ok: false, reason: 'NOT_FOUND' });
  }

  /** No holder found after WANT_PULL_PASSES passes: callers hear NOT_FOUND; an offer or a fetch revives it. */
  private giveUp(want: Want): void {
    if (this.wanted.get(want.meta.id) !== want) return;
    this.wanted.delete(want.meta.id);
    for (const w of want.waiters.splice(0)) w({ ok: false, reason: 'NOT_FOUND' });
  }

  private releaseSource(want: Want, conn: Conn): void {
    want.sources.delete(conn.peerId);
    want.source = null;
    want.link = null;
    want.dl?.releaseInFlight();
    want.dl?.resetPartialHashes();
    for (const [reqId, p] of conn.pending) {
      if ((p.kind === 'hashes' || p.kind === 'chunks') && p.id === want.meta.id) conn.pending.delete(reqId);
    }
  }

  private async finish(want: Want, from: string): Promise<void> {
    const id = want.meta.id;
    this.wanted.delete(id);
    const done = (r: FetchResult): void => {
      for (const w of want.waiters.splice(0)) w(r);
    };
    const joined = want.dl!.joined();
    const whole = joined && toB64url(await this.ctx.digest(joined)) === want.meta.meta.sha256 ? { bytes: joined } : null;
    if (!whole) {
      // Every chunk matched the signed hash list, yet the whole does not match the signed sha256: the
      // metadata is inconsistent (its uploader lied). No peer is at fault; never try again.
      this.failed.add(id);
      this.ctx.events.emit('attachmentFailed', { id, reason: 'WRONG_DIGEST' });
      return done({ ok: false, reason: 'WRONG_DIGEST' });
    }
    // A store that throws (IndexedDB out of quota, H16) refuses too: the want is already gone, so its
    // waiters must hear it now or never would; the error itself still reaches onError.
    let stored: boolean;
    try {
      stored = await this.ctx.store.putAttachmentBytes(id, whole.bytes);
    } catch (err) {
      this.ctx.events.emit('attachmentFailed', { id, reason: 'STORE_REFUSED' });
      done({ ok: false, reason: 'STORE_REFUSED' });
      // Reported, not thrown: thrown, it would close a healthy link (INTERNAL) for our own full disk.
      this.ctx.spawn(Promise.reject(err), 'store');
      return;
    }
    if (!stored) {
      this.ctx.events.emit('attachmentFailed', { id, reason: 'STORE_REFUSED' });
      return done({ ok: false, reason: 'STORE_REFUSED' });
    }
    // Now a holder: the verified list is what GET_HASHES will be answered with, no re-hashing (G8).
    const hashes = want.dl!.hashes;
    if (hashes) this.hashLists.set(id, hashes);
    this.ctx.events.emit('attachment', { id, from });
    done({ ok: true, bytes: whole.bytes });
    // Now a holder: pass it on, except virtual peers, which only serve when asked (G7).
    if (this.ctx.selfKind !== 'virtual') this.startPush(want.meta, new Set([...want.sources, from]));
    for (const w of this.wanted.values()) if (w.source === null && (await this.kick(w))) break;
  }

  /** The chunk-hash list of `bytes` (as chunkHashes), with the engine's digest: chunks hashed in parallel. */
  private async chunkHashesOf(bytes: Uint8Array): Promise<Uint8Array> {
    const n = Math.max(1, Math.ceil(bytes.length / LIMITS.chunkBytes));
    const out = new Uint8Array(n * 32);
    const parts = await Promise.all(
      Array.from({ length: n }, (_, i) => this.ctx.digest(bytes.subarray(i * LIMITS.chunkBytes, (i + 1) * LIMITS.chunkBytes))),
    );
    for (const [i, h] of parts.entries()) out.set(h, i * 32);
    return out;
  }

  /** Whether this peer can serve the content: held in the store, or being published (G8). */
  private async holds(id: string): Promise<boolean> {
    return this.publishing.has(id) || this.ctx.store.hasAttachmentBytes(id);
  }

  /** Bytes [start, end) of held content: a range read, or the whole content on a store without one. */
  private async readRange(id: string, start: number, end: number): Promise<Uint8Array | undefined> {
    const publishing = this.publishing.get(id);
    if (publishing) return publishing.subarray(Math.max(0, start), Math.max(0, end));
    const store = this.ctx.store;
    if (store.getAttachmentRange) return store.getAttachmentRange(id, start, end);
    return (await store.getAttachment(id))?.bytes?.slice(start, end);
  }

  /**
   * The chunk-hash list of held content (null when not held): from the cache, else hashed once, reading
   * HASH_READ_CHUNKS chunks at a time, and kept (G8).
   */
  private async hashList(id: string): Promise<Uint8Array | null> {
    const cached = this.hashLists.get(id);
    if (cached) {
      // The content may have been evicted since: a list for bytes we no longer hold would promise chunks.
      return (await this.holds(id)) ? cached : null;
    }
    const step = HASH_READ_CHUNKS * LIMITS.chunkBytes;
    const parts: Uint8Array[] = [];
    for (let start = 0; ; start += step) {
      const bytes = await this.readRange(id, start, start + step);
      if (!bytes) return null;
      // chunkHashes gives empty content one (empty) chunk; a later empty read is just the end.
      if (bytes.length > 0 || start === 0) parts.push(chunkHashes(bytes));
      if (bytes.length < step) break;
    }
    const hashes = parts.length === 1 ? parts[0]! : concatBytes(...parts);
    this.hashLists.set(id, hashes);
    return hashes;
  }

  /** A link closed: uploads to it stop; downloads from it resume elsewhere with their verified chunks. */
  connClosed(conn: Conn): void {
    this.stale.delete(conn);
    this.uploads.delete(conn);
    this.sent.delete(conn);
    for (const want of [...this.wanted.values()]) {
      // Only downloads on THIS link stop: another link to the same peer (both sides connected at once)
      // closing must not touch a transfer running here (G8).
      if (want.link === conn) {
        // Every chunk was taken on arrival, and the link closed before their frames were handled (a ban
        // at a bad chunk of another download discards the inbox): the content is complete.
        if (want.dl?.done) {
          want.link = null;
          this.ctx.spawn(this.finish(want, conn.peerId), 'finish');
          continue;
        }
        this.releaseSource(want, conn);
        if (want.dropping) this.wanted.delete(want.meta.id);
        else this.ctx.spawn(this.kick(want), 'kick');
      }
    }
  }

  /** Ends every wait (engine stop). */
  stop(): void {
    this.wakePump?.();
    for (const want of this.wanted.values()) for (const w of want.waiters.splice(0)) w({ ok: false, reason: 'STOPPED' });
    this.wanted.clear();
    this.pushes.clear();
    this.uploads.clear();
    this.sent.clear();
    this.stale.clear();
    this.hashLists.clear();
  }
}
