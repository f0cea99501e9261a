// Message catch-up (SPEC.md G4, G5): reconcile with a peer, then pull the envelopes this side lacks,
// verify each against the trusted relay key, and only then store it (G2). Also answers the same
// requests from other peers. Holes in the `prev` chains become requests for those exact ids.
import {
  PEER_LIMITS,
  PeerKind,
  type PeerReason,
  type Frame,
  type GetMsgsBody,
  type MsgsBody,
  decodeReconcile,
  encodeFrame,
  encodeReconcile,
  parseControl,
} from '../protocol/peer';
import type { Envelope, SignedAttachment } from '../protocol/relay';
import { MAX_RANGE_LIMIT } from '../store/HistoryStore';
import { utf8 } from '../encoding';
import type { Conn, Pending } from './Conn';
import { IdIndex } from './IdIndex';
import { initiateReconcile, reconcileStep } from './reconcile';
import type { SyncContext } from './SyncContext';
import { bytesToUlid, ulidTime, ulidToBytes } from './ulidBytes';

/** Ids waiting to be fetched; beyond it a session's extra finds wait for the next session (G11). */
export const MAX_PENDING_NEEDS = 10_000;
/**
 * GET_MSGS this side keeps open per peer (not yet wholly received): 8 x 128 ids per round trip, so a
 * catch-up from one peer is not paced by the link's round trip; half the responder's
 * PEER_LIMITS.maxRequestsInFlight, which attachment requests on the same link share. Answers received
 * and still being verified or stored are bounded apart, by MSGS_PIPELINE.
 */
export const GETS_PER_PEER = 8;
/** An id minted further in the future than this cannot exist: whoever claims it made it up (G13). */
export const MAX_FUTURE_MS = 5 * 60 * 1000;
/** Ids a peer may claim and then deny before it counts as making ids up (pruning races are honest). */
export const DENIAL_TOLERANCE = 32;
/**
 * MSGS parts per link received and not yet in the store's queue (G5, G11): verifying, or verified and
 * waiting for room in the queue (STORE_QUEUE_MAX_BYTES). Later parts are verified while part n is
 * stored; a part leaves the pipeline once queued, so what waits for the next write is bounded by the
 * queue, in bytes, not by this count of parts (counted until stored, 8 answers of 15 long messages made
 * writes of 15 and 105: 28 writes for 1,536). At most 8 x 256 KiB bodies per link beyond its inbox
 * (64 MiB over 32 links); more parts wait in the inbox.
 */
export const MSGS_PIPELINE = GETS_PER_PEER;
/**
 * Envelopes one store write takes at most (G5). Verified parts that arrive while a write runs wait and are
 * written together in the next one (a group commit), so a catch-up costs a few large store transactions
 * instead of one per part: in the browser each write also re-runs the open channel's live query and a
 * render (bench:client: 79 writes of 128 for 10,000 from one peer). Peers' parts fill at most half of it
 * (PEER_QUEUE_MAX_ENVS) and the relay's live batches do not wait for room, so a live message waits for
 * at most the one write under way, however long the queue of a catch-up.
 */
export const STORE_GROUP_MAX = 2048;
/** Envelopes of peers' parts the store's queue takes (G5): 8 answers of 128, the other half the relay's. */
export const PEER_QUEUE_MAX_ENVS = STORE_GROUP_MAX / 2;
/**
 * Bytes of MSGS bodies (as received) waiting in the store's queue for the next write, over all links
 * (G5, G11); a part waits in its link's pipeline until it fits (one part always fits an empty queue).
 * So a catch-up stores about as many envelopes per write whatever their length: ~950 of 8.5 KB, as 8
 * answers of 128 short ones (PEER_QUEUE_MAX_ENVS). What the store holds for peers is this queue plus the
 * write under way, at most 2 x (8 MiB + one 256 KiB body), whatever the number of links (plus the
 * relay's live batches, which do not wait); each link's pipeline holds at most MSGS_PIPELINE bodies more.
 */
export const STORE_QUEUE_MAX_BYTES = 8 * 1024 * 1024;
/**
 * Requests per link this side gave up on (deadline passed) whose late answers are dropped quietly, not
 * taken for unsolicited data: an honest but slow peer answers after all (G5, G13).
 */
export const GAVE_UP_MAX = 64;
/**
 * RECON frames a peer may have served per link: a burst of one full session (32 rounds; honest sessions
 * take a few), then this many per second. Each RECON costs the responder up to one pass over its index
 * plus a few thousand fingerprints (a 64 KiB message; ~10 ms at 100k ids), so this is what bounds the
 * CPU one link can take (G11). Over it the RECON is answered NACK FLOOD unread (no blame) and the
 * initiator ends that session; its next one is a resync away.
 */
export const RECON_BURST = 32;
export const RECON_PER_SECOND = 1;
/**
 * A peer that let a GET_MSGS pass its deadline is asked last for this long (other sources first), so a
 * staller costs one deadline per need at most (G5).
 */
export const SLOW_SOURCE_MS = 10 * 60 * 1000;
/** Peers remembered as slow sources at once (the oldest is forgotten first). */
const SLOW_SOURCES_MAX = 1024;

/** The responder's side of the one reconciliation session a link may run (G4, G11). */
interface Served {
  reqId: number;
  rounds: number;
  tokens: number;
  tokensAt: number;
}

interface Need {
  /** Peers believed to hold it: those that claimed it in reconciliation, or hinted by a prev link. */
  sources: string[];
  /** The peer it is being fetched from. */
  from: string | null;
  /** True when sources claimed it in reconciliation (so a denial counts against them). */
  claimed: boolean;
}

export type AddResult = { stored: string[]; rejected: { id: string; reason: string }[] };

/** Verified envelopes waiting for the store's next write (G5, STORE_GROUP_MAX). */
interface StoreJob {
  envs: readonly Envelope[];
  /** The peer that sent them; null for the relay's (and our own). */
  from: string | null;
  /** A peer part's body size (counted against STORE_QUEUE_MAX_BYTES); 0 for the relay's batches. */
  bytes: number;
  /** Called once the job is in the queue (it may first wait for room, STORE_QUEUE_MAX_BYTES). */
  queued(): void;
  resolve(added: string[]): void;
  reject(err: unknown): void;
}

/** One MSGS part in a link's pipeline, until `handed`: its envelopes are in the store's queue (or dropped). */
interface IntakeStep {
  handed: Promise<void>;
}

export class MessageSync {
  readonly index = new IdIndex();
  private readonly needs = new Map<string, Need>();
  private loading: Promise<void> | null = null;
  private loaded = false;
  /** GET_MSGS sent and not yet fully answered, over all links. */
  private inflight = 0;
  private idleWaiters: (() => void)[] = [];
  private readonly sessionWaiters = new Map<Conn, (() => void)[]>();
  /** Per link: requests given up on (deadline), so their late answers are dropped quietly. */
  private readonly gaveUp = new WeakMap<Conn, Set<number>>();
  /** Per link: its MSGS parts being verified or waiting for queue room, in arrival order (at most MSGS_PIPELINE). */
  private readonly intake = new WeakMap<Conn, IntakeStep[]>();
  /** Verified envelopes waiting for the write under way to end; written as one (STORE_GROUP_MAX). */
  private readonly storeQueue: StoreJob[] = [];
  /** What storeQueue holds: envelopes, and peer parts' body bytes (STORE_QUEUE_MAX_BYTES). */
  private queuedEnvs = 0;
  private queuedBytes = 0;
  /** Peer parts verified and waiting for room in storeQueue, in order (each still in its link's pipeline). */
  private readonly roomWaiters: StoreJob[] = [];
  private writing = false;
  /** The needs' ids newest first, as of the last new need (pump skips those fetched or in flight since). */
  private needOrder: string[] | null = null;
  /** needOrder before this index is all fetched or in flight; back to 0 when a need is free again. */
  private needCursor = 0;
  /** Per link: the reconciliation session it runs on us (responder side). */
  private readonly served = new WeakMap<Conn, Served>();
  /** Peer id -> until when it is asked last (it let a request pass its deadline). */
  private readonly slow = new Map<string, number>();
  private offEvict: (() => void) | null = null;

  constructor(
    private readonly ctx: SyncContext,
    /** Called for each attachment of a newly stored envelope. */
    private readonly onAttachment: (a: SignedAttachment) => void,
  ) {}

  get pendingNeeds(): number {
    return this.needs.size;
  }

  /** The lower bound of reconciliation: nothing older than the store wants (store.horizon, H11). */
  lower(): Uint8Array {
    const h = this.ctx.opts.horizon?.() ?? this.ctx.store.horizon?.();
    return (h && ulidToBytes(h)) || new Uint8Array(0);
  }

  /**
   * Loads the index from the store once; from then on it follows the store without reading it again:
   * the engine adds what it stores, and a bounded store reports what it evicts, which the index drops
   * (H13). The engine is the only writer of its store's messages while it runs. (Reloading whenever the
   * store's count differed cost a full reload per live message once an age bound evicted: 38 ms each at
   * 30k cached messages.)
   */
  ensureIndex(): Promise<void> {
    if (this.loaded) return Promise.resolve();
    if (this.loading) return this.loading;
    this.loading = (async () => {
      try {
        // Subscribed before the first page: an eviction during the load is not missed.
        this.offEvict ??= this.ctx.store.onEvict?.((e) => this.index.remove(e.messages)) ?? null;
        this.index.clear();
        let from: string | undefined;
        for (;;) {
          const page = await this.ctx.store.listIds({ from, limit: MAX_RANGE_LIMIT });
          for (const id of page) this.index.add(id);
          if (page.length < MAX_RANGE_LIMIT) break;
          // `from` is inclusive: the last id comes again and is skipped by add().
          from = page[page.length - 1];
        }
        this.loaded = true;
      } finally {
        this.loading = null;
      }
    })();
    return this.loading;
  }

  /** Resolves when no GET_MSGS is in flight (the needs found so far are fetched or have no source). */
  idle(): Promise<void> {
    if (this.inflight === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  private finishedGet(): void {
    this.inflight = Math.max(0, this.inflight - 1);
    if (this.inflight === 0) for (const w of this.idleWaiters.splice(0)) w();
  }

  private endSession(conn: Conn): void {
    const waiters = this.sessionWaiters.get(conn);
    this.sessionWaiters.delete(conn);
    for (const w of waiters ?? []) w();
  }

  /**
   * Runs a reconciliation session as initiator (or joins the one running on this link); resolves when
   * it ends: nothing left to split, the round bound, or the link closed.
   */
  async startSession(conn: Conn): Promise<void> {
    const done = new Promise<void>((resolve) => {
      let list = this.sessionWaiters.get(conn);
      if (!list) this.sessionWaiters.set(conn, (list = []));
      list.push(resolve);
    });
    for (const p of conn.pending.values()) if (p.kind === 'recon') return done;
    await this.ensureIndex();
    if (conn.closed) {
      this.endSession(conn);
      return done;
    }
    for (const p of conn.pending.values()) if (p.kind === 'recon') return done;
    const reqId = conn.newReqId();
    const now = this.ctx.clock.now();
    conn.pending.set(reqId, { kind: 'recon', at: now, deadline: now + this.ctx.opts.requestTimeoutMs, rounds: 0, found: 0 });
    conn.sendFrame(encodeFrame(PeerKind.RECON, reqId, encodeReconcile(initiateReconcile(this.index, this.lower()))));
    return done;
  }

  async handle(conn: Conn, frame: Frame): Promise<void> {
    switch (frame.kind) {
      case PeerKind.RECON:
        return this.onRecon(conn, frame);
      case PeerKind.RECON_REPLY:
        return this.onReconReply(conn, frame);
      case PeerKind.GET_MSGS: {
        const body = parseControl(PeerKind.GET_MSGS, frame.body);
        return body ? this.onGetMsgs(conn, frame.reqId, body) : this.ctx.drop(conn, 'BAD_FRAME', true);
      }
      case PeerKind.MSGS: {
        const body = parseControl(PeerKind.MSGS, frame.body);
        return body ? this.onMsgs(conn, frame.reqId, body, frame.body.length) : this.ctx.drop(conn, 'BAD_FRAME', true);
      }
    }
  }

  /**
   * Checked when a frame arrives, before it takes inbox room (G11, G13): an answer must match a request
   * of its kind open on this link. A late answer to one this side gave up on is dropped quietly.
   */
  admit(conn: Conn, frame: Frame): PeerReason | 'ignore' | null {
    const kind = frame.kind === PeerKind.RECON_REPLY ? 'recon' : frame.kind === PeerKind.MSGS ? 'msgs' : null;
    if (kind === null || conn.pending.get(frame.reqId)?.kind === kind) return null;
    return this.gaveUp.get(conn)?.has(frame.reqId) ? 'ignore' : 'UNSOLICITED';
  }

  /** Whether a NACK (or late answer) for this request id is one this side gave up on. */
  gaveUpOn(conn: Conn, reqId: number): boolean {
    return this.gaveUp.get(conn)?.has(reqId) ?? false;
  }

  private giveUp(conn: Conn, reqId: number): void {
    let set = this.gaveUp.get(conn);
    if (!set) this.gaveUp.set(conn, (set = new Set()));
    if (set.size >= GAVE_UP_MAX) set.delete(set.values().next().value!);
    set.add(reqId);
  }

  /**
   * Requests past their absolute deadline (G5): a GET_MSGS's unmet ids move to their other sources (this
   * peer is asked last for SLOW_SOURCE_MS), a reconciliation round ends its session. Nobody is blamed: an
   * honest peer can be slow, and a peer that answers in dribbles to hold a request open gains nothing.
   */
  expire(conn: Conn, now: number): void {
    let moved = false;
    for (const [reqId, p] of conn.pending) {
      if ((p.kind !== 'msgs' && p.kind !== 'recon') || now <= p.deadline) continue;
      // Wholly received: the peer delivered in time, and what is left (verify, store) is this side's.
      if (p.kind === 'msgs' && p.received) continue;
      // Its answer arrived in time and waits for us (our pipeline is busy, e.g. a slow store): not late.
      const held = conn.heldSince(reqId);
      if (held !== null && held <= p.deadline) continue;
      conn.pending.delete(reqId);
      this.giveUp(conn, reqId);
      if (p.kind === 'recon') {
        this.endSession(conn);
        continue;
      }
      this.finishedGet();
      this.markSlow(conn.peerId, now);
      for (const id of p.ids) if (!p.got.has(id)) this.unsource(id, conn.peerId);
      moved = true;
    }
    if (moved) this.pump();
  }

  /** A NACK for one of our requests: not served (a busy or deferring peer), no blame. */
  onNack(conn: Conn, reqId: number): void {
    const p = conn.pending.get(reqId);
    if (!p || (p.kind !== 'msgs' && p.kind !== 'recon')) return;
    conn.pending.delete(reqId);
    if (p.kind === 'recon') return this.endSession(conn);
    this.finishedGet();
    for (const id of p.ids) if (!p.got.has(id)) this.unsource(id, conn.peerId);
    this.pump();
  }

  private markSlow(peerId: string, now: number): void {
    this.slow.delete(peerId);
    if (this.slow.size >= SLOW_SOURCES_MAX) this.slow.delete(this.slow.keys().next().value!);
    this.slow.set(peerId, now + SLOW_SOURCE_MS);
  }

  /** Whether the peer let a message request pass its deadline lately (asked last, SLOW_SOURCE_MS). */
  isSlow(peerId: string): boolean {
    const until = this.slow.get(peerId);
    if (until === undefined) return false;
    if (until > this.ctx.clock.now()) return true;
    this.slow.delete(peerId);
    return false;
  }

  /** The need is not being fetched any more: pump looks at it again (needCursor). */
  private free(need: Need): void {
    need.from = null;
    this.needCursor = 0;
  }

  /** `peerId` is no longer a source of `id` (it did not deliver); the need waits for another one. */
  private unsource(id: string, peerId: string): void {
    const need = this.needs.get(id);
    if (!need) return;
    need.sources = need.sources.filter((s) => s !== peerId);
    if (need.from === peerId) this.free(need);
    if (need.sources.length === 0) this.needs.delete(id);
  }

  private async onRecon(conn: Conn, frame: Frame): Promise<void> {
    // One session per link: a RECON under a new request id starts a new one (the initiator gave up on
    // the last), so its state is one small record whatever the peer sends.
    const now = this.ctx.clock.now();
    let s = this.served.get(conn);
    if (!s) this.served.set(conn, (s = { reqId: frame.reqId, rounds: 0, tokens: RECON_BURST, tokensAt: now }));
    if (s.reqId !== frame.reqId) {
      s.reqId = frame.reqId;
      s.rounds = 0;
    }
    // An initiator stops after maxReconcileRounds RECONs in one session; more is not an honest session.
    if (++s.rounds > PEER_LIMITS.maxReconcileRounds) return this.ctx.drop(conn, 'FLOOD', true);
    s.tokens = Math.min(RECON_BURST, s.tokens + ((now - s.tokensAt) / 1000) * RECON_PER_SECOND);
    s.tokensAt = now;
    if (s.tokens < 1) {
      conn.sendControl(PeerKind.NACK, frame.reqId, { reason: 'FLOOD' });
      return;
    }
    s.tokens -= 1;
    // Decoded only once admitted: decoding a 64 KiB message is work too.
    const msg = decodeReconcile(frame.body);
    if (!msg) return this.ctx.drop(conn, 'BAD_FRAME', true);
    await this.ensureIndex();
    const step = reconcileStep(this.index, msg, 'responder');
    conn.sendFrame(encodeFrame(PeerKind.RECON_REPLY, frame.reqId, encodeReconcile(step.reply!)));
  }

  private async onReconReply(conn: Conn, frame: Frame): Promise<void> {
    const p = conn.pending.get(frame.reqId);
    if (!p || p.kind !== 'recon') return this.gaveUpOn(conn, frame.reqId) ? undefined : this.ctx.drop(conn, 'UNSOLICITED', true);
    const msg = decodeReconcile(frame.body);
    if (!msg) return this.ctx.drop(conn, 'BAD_FRAME', true);
    const step = reconcileStep(this.index, msg, 'initiator');
    const lower = this.lower();
    const latest = this.ctx.clock.now() + MAX_FUTURE_MS;
    let found = 0;
    for (const key of step.need) {
      if (ulidTime(key) > latest) return this.ctx.drop(conn, 'MADE_UP_IDS', true);
      if (compareKeys(key, lower) < 0) continue;
      if (this.addNeed(bytesToUlid(key), conn.peerId, true)) found++;
    }
    p.at = this.ctx.clock.now();
    p.found += found;
    if (!step.reply || ++p.rounds >= PEER_LIMITS.maxReconcileRounds) {
      conn.pending.delete(frame.reqId);
      this.ctx.events.emit('synced', { peerId: conn.peerId, need: p.found });
      this.endSession(conn);
    } else {
      // Each round is a request of its own, with its own absolute deadline.
      p.deadline = p.at + this.ctx.opts.requestTimeoutMs;
      conn.sendFrame(encodeFrame(PeerKind.RECON, frame.reqId, encodeReconcile(step.reply)));
    }
    this.pump();
  }

  /** Records that `source` holds `id`; true when the id is newly needed. */
  private addNeed(id: string, source: string, claimed: boolean): boolean {
    if (this.index.has(id)) return false;
    const need = this.needs.get(id);
    if (need) {
      if (!need.sources.includes(source)) need.sources.push(source);
      need.claimed ||= claimed;
      return false;
    }
    if (this.needs.size >= MAX_PENDING_NEEDS) return false;
    this.needs.set(id, { sources: [source], from: null, claimed });
    this.needOrder = null;
    return true;
  }

  /**
   * Sends GET_MSGS for needed ids, newest first (what a chat view shows first), each to one source:
   * a real peer when one holds it, a virtual peer only otherwise (G7), at most GETS_PER_PEER per link.
   */
  pump(): void {
    if (this.ctx.stopped || this.needs.size === 0) return;
    // Free GET slots per peer, computed once per pump; an open batch already holds its slot.
    const free = new Map<string, number>();
    const slots = (peerId: string): number => {
      let n = free.get(peerId);
      if (n === undefined) {
        const conn = this.ctx.conn(peerId);
        n = 0;
        if (conn) {
          n = GETS_PER_PEER;
          for (const p of conn.pending.values()) if (p.kind === 'msgs' && !p.received) n--;
        }
        free.set(peerId, n);
      }
      return n;
    };
    const batches = new Map<string, string[]>();
    const usable = (peerId: string): boolean => batches.has(peerId) || slots(peerId) > 0;
    // Slots left over all links: once none is left and no batch is open, no need can be picked, so the
    // scan stops there (a catch-up pumps after every part; scanning its 9,000 waiting needs each time
    // was most of the pump's cost).
    let slotsLeft = 0;
    for (const peerId of this.ctx.linkedPeers()) slotsLeft += Math.max(0, slots(peerId));
    if (slotsLeft === 0) return;
    // Sorted again only when needs were added since: a catch-up pumps after every part, and sorting its
    // 10,000 needs each time cost more than the pump's own work. Ids fetched since are skipped; the list
    // is rebuilt once most of it is such.
    if (this.needOrder && this.needOrder.length > 2 * this.needs.size + 64) this.needOrder = null;
    if (!this.needOrder) {
      this.needOrder = [...this.needs.keys()].sort().reverse();
      this.needCursor = 0;
    }
    const ids = this.needOrder;
    // Newest first means the fetched and in-flight ones lead: start past them.
    let first = this.needCursor;
    for (; first < ids.length; first++) {
      const need = this.needs.get(ids[first]!);
      if (need && need.from === null) break;
    }
    this.needCursor = first;
    const real = (s: string): boolean => !this.ctx.isVirtual(s);
    for (let i = first; i < ids.length && (slotsLeft > 0 || batches.size > 0); i++) {
      const id = ids[i]!;
      const need = this.needs.get(id);
      if (!need || need.from !== null) continue;
      // The common case, one source with no slot left: nothing below could pick it (a source only ever
      // loses slots during a pump), and the three searches cost a catch-up's pumps most of their time.
      if (need.sources.length === 1 && !usable(need.sources[0]!)) continue;
      // Real before virtual (G7); among real ones, those that never let a request pass its deadline.
      const pick =
        need.sources.find((s) => real(s) && !this.isSlow(s) && usable(s)) ??
        need.sources.find((s) => real(s) && usable(s)) ??
        (need.sources.some((s) => real(s) && this.ctx.conn(s)) ? undefined : need.sources.find(usable));
      if (!pick) continue;
      let batch = batches.get(pick);
      if (!batch) {
        batches.set(pick, (batch = []));
        free.set(pick, slots(pick) - 1);
        slotsLeft--;
      }
      batch.push(id);
      need.from = pick;
      if (batch.length >= PEER_LIMITS.maxIdsPerRequest) {
        this.sendGet(pick, batch);
        batches.delete(pick);
      }
    }
    for (const [peerId, batch] of batches) if (batch.length > 0) this.sendGet(peerId, batch);
  }

  private sendGet(peerId: string, ids: string[]): void {
    const conn = this.ctx.conn(peerId);
    if (!conn) {
      for (const id of ids) {
        const need = this.needs.get(id);
        if (need) this.free(need);
      }
      return;
    }
    const now = this.ctx.clock.now();
    this.sendGetOn(conn, ids, now + this.ctx.opts.requestTimeoutMs);
  }

  /** One GET_MSGS on `conn`, due (wholly answered) by `deadline` (G5). */
  private sendGetOn(conn: Conn, ids: string[], deadline: number): void {
    const reqId = conn.newReqId();
    const claimed = new Set(ids.filter((id) => this.needs.get(id)?.claimed));
    this.inflight++;
    conn.pending.set(reqId, {
      kind: 'msgs',
      at: this.ctx.clock.now(),
      deadline,
      ids: new Set(ids),
      got: new Set(),
      claimed,
      received: false,
    });
    conn.sendControl(PeerKind.GET_MSGS, reqId, { ids, lastResort: this.ctx.isVirtual(conn.peerId) || undefined });
  }

  private async onGetMsgs(conn: Conn, reqId: number, body: GetMsgsBody): Promise<void> {
    if (conn.serving >= PEER_LIMITS.maxRequestsInFlight) return this.ctx.drop(conn, 'FLOOD', true);
    conn.serving++;
    try {
      // A virtual peer lets real peers answer first unless the requester found none (G7).
      if (this.ctx.selfKind === 'virtual' && !body.lastResort) await this.ctx.delay(this.ctx.opts.virtualDelayMs);
      if (conn.closed) return;
      const envs = await this.ctx.store.getMessages(body.ids);
      // One part of at most maxMsgsAnswerBytes of envelopes (at least one envelope); the rest, in the
      // order asked (newest first), is named `later` and asked for again. The asker sized its inbox for
      // GETS_PER_PEER such answers: 128 long messages in one answer overflowed it (G11).
      const sent: Envelope[] = [];
      const missing: string[] = [];
      const later: string[] = [];
      let bytes = 0;
      for (let i = 0; i < body.ids.length; i++) {
        const id = body.ids[i]!;
        const env = envs[i];
        if (!env || env.id !== id) {
          missing.push(id);
          continue;
        }
        const size = later.length > 0 ? 0 : utf8(JSON.stringify(env)).length;
        if (later.length > 0 || (sent.length > 0 && bytes + size > PEER_LIMITS.maxMsgsAnswerBytes)) {
          later.push(id);
          continue;
        }
        sent.push(env);
        bytes += size;
      }
      conn.sendControl(PeerKind.MSGS, reqId, { envs: sent, missing, ...(later.length > 0 ? { later } : {}), last: true });
    } finally {
      conn.serving--;
    }
  }

  /**
   * A MSGS part: checked at once (only what was asked, each once, G13), then verified while the parts
   * before it are still being stored, and stored in arrival order. Verifying, then storing, then reading
   * the next part paced a catch-up at one verify plus one store per 128 envelopes, with the verify pool
   * and the store taking turns (bench:client: 10,000 from one peer took 13 s at load 8 after reconciliation
   * had found them all in 0.5 s; RECON_REPLY rounds waited behind MSGS in the inbox as well).
   */
  private async onMsgs(conn: Conn, reqId: number, body: MsgsBody, bytes: number): Promise<void> {
    const p = conn.pending.get(reqId);
    if (!p || p.kind !== 'msgs') return this.gaveUpOn(conn, reqId) ? undefined : this.ctx.drop(conn, 'UNSOLICITED', true);
    // A part that is not the last must carry envelopes: an empty one is no progress, only a way to look
    // busy (G5). Honest senders cut a part only when it is full.
    if (!body.last && body.envs.length === 0) return this.ctx.drop(conn, 'BAD_FRAME', true);
    // `later` (what a full answer did not carry, G5) is the final part's, and only beside envelopes:
    // every answer makes progress, so `later` cannot hold ids without delivering.
    const later = body.later ?? [];
    if (later.length > 0 && (!body.last || body.envs.length === 0)) return this.ctx.drop(conn, 'BAD_FRAME', true);
    // Only what was asked, each once: anything else is a replay or an injection (G13).
    const seen = new Set<string>();
    for (const env of body.envs) {
      if (!p.ids.has(env.id) || p.got.has(env.id) || seen.has(env.id)) return this.ctx.drop(conn, 'UNSOLICITED', true);
      seen.add(env.id);
    }
    for (const id of [...body.missing, ...later]) {
      if (!p.ids.has(id) || p.got.has(id) || seen.has(id)) return this.ctx.drop(conn, 'BAD_FRAME', true);
      seen.add(id);
    }
    // Taken now, so a later part of this answer already in the pipeline is checked against this one;
    // the `later` ids leave this request for the one that asks for them again.
    for (const id of seen) p.got.add(id);
    for (const id of later) {
      p.got.delete(id);
      p.ids.delete(id);
    }
    let line = this.intake.get(conn);
    if (!line) this.intake.set(conn, (line = []));
    // Room in the pipeline first; meanwhile the link's later frames wait in its bounded inbox (G11).
    while (line.length >= MSGS_PIPELINE) await line[0]!.handed;
    if (conn.closed) return;
    const before = line[line.length - 1]?.handed;
    let handed!: () => void;
    const step: IntakeStep = { handed: new Promise<void>((resolve) => (handed = resolve)) };
    const verdict = this.ctx.verify(body.envs, this.ctx.relayKey);
    void this.verifyThenStore(conn, reqId, p, body, bytes, verdict, before, handed).finally(handed);
    line.push(step);
    const own = line;
    void step.handed.then(() => own.splice(own.indexOf(step), 1));
    if (body.last) {
      // The whole answer is in the pipeline: its slot goes to the next GET_MSGS now, so the peer answers
      // while this side verifies and stores (a slot held until stored put the link's round trip and the
      // responder's read between every two writes). The peer still has at most GETS_PER_PEER open, and
      // their answers wait in the inbox (INBOX_MAX_BYTES) until the pipeline has room.
      p.received = true;
      // The rest of a full answer, asked again at once on its freed slot, from the same peer. It is still
      // the same request: due by the same deadline, moved on by the time this answer waited for us (G5),
      // so an answer cut small gains a staller nothing.
      if (later.length > 0) {
        const now = this.ctx.clock.now();
        this.sendGetOn(conn, later, p.deadline + (now - (conn.heldSince(reqId) ?? now)));
      }
      this.pump();
    }
  }

  /**
   * The ordered half of onMsgs: the part's verdict, then (once the part before it is queued for the store)
   * its own place in the store's queue, then its store. Queued in arrival order, and the store writes its
   * queue in order, so parts are stored in arrival order; a part queued while an earlier one is being
   * written is written with the parts queued beside it (STORE_GROUP_MAX).
   */
  private async verifyThenStore(
    conn: Conn,
    reqId: number,
    p: Extract<Pending, { kind: 'msgs' }>,
    body: MsgsBody,
    bytes: number,
    verdict: Promise<readonly { ok: boolean }[]>,
    before: Promise<void> | undefined,
    handed: () => void,
  ): Promise<void> {
    try {
      // Verify the whole part before storing any of it: one forgery and nothing more from this peer is kept.
      const checks = await verdict;
      if (checks.some((c) => !c.ok)) return this.ctx.drop(conn, 'BAD_SIGNATURE', true);
      await before;
      if (this.ctx.stopped) return;
      // A link dropped for a later part (a replay is caught on arrival) keeps what it sent before, as when
      // parts were handled one at a time: these envelopes verified (G2), whoever sent them.
      let ends = false;
      if (!conn.closed) {
        p.at = this.ctx.clock.now();
        conn.delivered += body.envs.length;
        for (const id of body.missing) this.denied(conn, id, p.claimed.has(id));
        // (Past its deadline, expire() has already let the request and its undelivered ids go.)
        ends = body.last && conn.pending.get(reqId) === p;
        // Asked but neither sent nor listed as missing: the same as missing.
        if (ends) for (const id of p.ids) if (!p.got.has(id)) this.denied(conn, id, p.claimed.has(id));
        if (conn.denied >= DENIAL_TOLERANCE && conn.denied > conn.delivered) {
          return this.ctx.drop(conn, 'MADE_UP_IDS', true);
        }
      }
      // Handed (out of the link's pipeline) once in the store's queue, which may first wait for room.
      const stored = body.envs.length > 0 ? this.storeVerified(body.envs, conn.peerId, bytes, handed) : null;
      if (!stored) handed();
      else await stored;
      // Done only once stored: idle() (and with it a catch-up's end) means stored. A link that closed
      // meanwhile has handed its requests back already (connClosed).
      if (ends && conn.pending.get(reqId) === p) {
        conn.pending.delete(reqId);
        this.finishedGet();
      }
      this.pump();
    } catch (err) {
      // Our store or verifier failed, not the peer: the link closes without blame and the failure is
      // reported (a full disk must reach the user); the needs go back to the pool (connClosed).
      conn.close('INTERNAL');
      this.ctx.spawn(Promise.reject(err), 'store');
    }
  }

  private denied(conn: Conn, id: string, claimed: boolean): void {
    if (claimed) conn.denied++;
    this.unsource(id, conn.peerId);
  }

  /** Verifies and stores envelopes from the relay (or any caller); G2. */
  async add(envs: readonly Envelope[]): Promise<AddResult> {
    const ok: Envelope[] = [];
    const rejected: AddResult['rejected'] = [];
    const checks = await this.ctx.verify(envs, this.ctx.relayKey);
    envs.forEach((env, i) => {
      const check = checks[i]!;
      if (check.ok) ok.push(env);
      else rejected.push({ id: env.id, reason: check.reason });
    });
    const stored = ok.length > 0 ? await this.storeVerified(ok, null) : [];
    this.pump();
    return { stored, rejected };
  }

  /**
   * Stores already verified envelopes, indexes them, and turns chain holes into needs (G5). Queued at
   * once, a peer's part once there is room (each source's calls are written in their order), and written
   * with whatever else is queued when the write before ends; resolves to the ids this call added.
   */
  private storeVerified(envs: readonly Envelope[], from: string | null, bytes = 0, queued = (): void => {}): Promise<string[]> {
    const added = new Promise<string[]>((resolve, reject) => {
      const job: StoreJob = { envs, from, bytes, queued, resolve, reject };
      // A peer's part waits its turn for room (STORE_QUEUE_MAX_BYTES); the relay's live batches do not,
      // so a live message waits for at most the write under way (G5).
      if (from !== null && (this.roomWaiters.length > 0 || !this.hasRoom(job))) this.roomWaiters.push(job);
      else this.enqueue(job);
    });
    void this.drainStoreQueue();
    return added;
  }

  /** Whether a peer part fits the store's queue now (one always fits an empty queue). */
  private hasRoom(job: StoreJob): boolean {
    if (this.storeQueue.length === 0) return true;
    return this.queuedBytes + job.bytes <= STORE_QUEUE_MAX_BYTES && this.queuedEnvs + job.envs.length <= PEER_QUEUE_MAX_ENVS;
  }

  private enqueue(job: StoreJob): void {
    this.storeQueue.push(job);
    this.queuedEnvs += job.envs.length;
    this.queuedBytes += job.bytes;
    job.queued();
  }

  private dequeue(): StoreJob {
    const job = this.storeQueue.shift()!;
    this.queuedEnvs -= job.envs.length;
    this.queuedBytes -= job.bytes;
    return job;
  }

  private async drainStoreQueue(): Promise<void> {
    if (this.writing) return;
    this.writing = true;
    try {
      while (this.storeQueue.length > 0) {
        const group: StoreJob[] = [this.dequeue()];
        let n = group[0]!.envs.length;
        while (this.storeQueue.length > 0 && n + this.storeQueue[0]!.envs.length <= STORE_GROUP_MAX) {
          const job = this.dequeue();
          group.push(job);
          n += job.envs.length;
        }
        // Room again: the parts that waited for it queue up for the next write while this one runs.
        while (this.roomWaiters.length > 0 && this.hasRoom(this.roomWaiters[0]!)) this.enqueue(this.roomWaiters.shift()!);
        try {
          await this.writeGroup(group);
        } catch (err) {
          for (const job of group) job.reject(err);
        }
      }
    } finally {
      this.writing = false;
    }
  }

  /** One store write for the group; then each job's share: index, needs, holes, attachments, events. */
  private async writeGroup(group: readonly StoreJob[]): Promise<void> {
    await this.ensureIndex();
    const all = group.length === 1 ? group[0]!.envs : group.flatMap((j) => j.envs);
    const addedSet = new Set(await this.ctx.store.putMessages(all));
    this.index.addMany([...addedSet]);
    for (const id of addedSet) this.needs.delete(id);
    // One 'messages' event per run of jobs from the same peer: a listener then handles a group as one
    // batch. The relay's (and our own) batches keep an event each, as a listener tells our own posts by
    // their event (PeerchatClient's `self`).
    let event: { from: string | null; envs: Envelope[] } | null = null;
    const emit = (): void => {
      if (event && event.envs.length > 0) this.ctx.events.emit('messages', { ids: event.envs.map((e) => e.id), envs: event.envs, from: event.from });
      event = null;
    };
    for (const job of group) {
      // An id in two jobs of one group was added once: it is the first job's.
      const mine = job.envs.filter((e) => addedSet.delete(e.id));
      if (event === null || job.from === null || event.from !== job.from) {
        emit();
        event = { from: job.from, envs: [] };
      }
      event.envs.push(...(await this.afterStore(job.envs, mine, job.from)));
      job.resolve(mine.map((e) => e.id));
    }
    emit();
  }

  /** What follows storing `envs`, of which `added` were new: attachments, chain holes (G5). */
  private async afterStore(envs: readonly Envelope[], added: readonly Envelope[], from: string | null): Promise<Envelope[]> {
    const addedIds = new Set(added.map((e) => e.id));
    const lowerBytes = this.lower();
    const lower = lowerBytes.length > 0 ? bytesToUlid(padKey(lowerBytes)) : '';
    const stored: Envelope[] = [];
    for (const env of envs) {
      if (!addedIds.has(env.id)) {
        this.needs.delete(env.id);
        continue;
      }
      stored.push(env);
      for (const a of env.post.attachments) {
        await this.ctx.store.putAttachmentMeta(a);
        this.onAttachment(a);
      }
      const prev = env.prev?.id;
      if (prev && prev >= lower && !this.index.has(prev) && !this.needs.has(prev)) {
        // Ask the peer that sent the envelope, else a few linked peers; not counted as claimed.
        const sources = from ? [from] : this.ctx.onlinePeers().map((p) => p.peerId).filter((p) => this.ctx.conn(p));
        for (const s of sources.slice(0, 3)) this.addNeed(prev, s, false);
        // A gap seen in live messages is usually longer than one: one reconciliation beats walking the
        // chain back one round trip per message.
        if (!from) this.ctx.holeFound(prev);
      }
    }
    return stored;
  }

  /** Engine stop: nothing waits on sessions or fetches any more. */
  stop(): void {
    this.offEvict?.();
    this.offEvict = null;
    for (const w of this.idleWaiters.splice(0)) w();
    for (const conn of [...this.sessionWaiters.keys()]) this.endSession(conn);
    this.needs.clear();
    this.needOrder = null;
    this.needCursor = 0;
  }

  /** A link closed: its requests go back to the pool and it stops being a source. */
  connClosed(conn: Conn): void {
    for (const p of conn.pending.values()) if (p.kind === 'msgs') this.finishedGet();
    conn.pending.clear();
    this.endSession(conn);
    for (const need of this.needs.values()) {
      if (need.from === conn.peerId) this.free(need);
    }
    for (const [id, need] of this.needs) {
      if (!need.sources.includes(conn.peerId)) continue;
      need.sources = need.sources.filter((s) => s !== conn.peerId);
      if (need.sources.length === 0) this.needs.delete(id);
    }
    this.pump();
  }
}

function compareKeys(a: Uint8Array, b: Uint8Array): number {
  for (let i = 0; i < 16; i++) {
    const x = a[i] ?? 0;
    const y = b[i] ?? 0;
    if (x !== y) return x - y;
  }
  return 0;
}

function padKey(bound: Uint8Array): Uint8Array {
  const out = new Uint8Array(16);
  out.set(bound.subarray(0, 16));
  return out;
}
