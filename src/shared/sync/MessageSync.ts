// Message catch-up (SPEC.md G4, G5): reconcile with a peer, then pull the envelopes this side lacks,
// verify each against the trusted relay key, and only then store it (G2). Also answers the same
// requests from other peers. Holes in the `prev` chains become requests for those exact ids.
import {
  PEER_LIMITS,
  PeerKind,
  type Frame,
  type GetMsgsBody,
  type MsgsBody,
  decodeReconcile,
  encodeFrame,
  encodeReconcile,
  parseControl,
} from '../protocol/peer';
import type { Envelope, SignedAttachment } from '../protocol/relay';
import { verifyEnvelope } from '../protocol/signed';
import { MAX_RANGE_LIMIT } from '../store/HistoryStore';
import { utf8 } from '../encoding';
import type { Conn } from './Conn';
import { IdIndex } from './IdIndex';
import { initiateReconcile, reconcileStep } from './reconcile';
import type { SyncContext } from './SyncContext';
import { bytesToUlid, ulidTime, ulidToBytes } from './ulidBytes';

/** Ids waiting to be fetched; beyond it a session's extra finds wait for the next session (G11). */
export const MAX_PENDING_NEEDS = 10_000;
/** GET_MSGS this side keeps open per peer. */
export const GETS_PER_PEER = 4;
/** An id minted further in the future than this cannot exist: whoever claims it made it up (G13). */
export const MAX_FUTURE_MS = 5 * 60 * 1000;
/** Ids a peer may claim and then deny before it counts as making ids up (pruning races are honest). */
export const DENIAL_TOLERANCE = 32;
/** MSGS bodies are packed up to this many bytes of envelopes (under maxControlBodyBytes). */
const MSGS_PACK_BYTES = 192 * 1024;

interface Need {
  /** Peers believed to hold it: those that claimed it in reconciliation, or hinted by a prev link. */
  sources: string[];
  /** The peer it is being fetched from. */
  from: string | null;
  /** True when sources claimed it in reconciliation (so a denial counts against them). */
  claimed: boolean;
}

export type AddResult = { stored: string[]; rejected: { id: string; reason: string }[] };

export class MessageSync {
  readonly index = new IdIndex();
  private readonly needs = new Map<string, Need>();
  private loading: Promise<void> | null = null;
  private loaded = false;
  /** GET_MSGS sent and not yet fully answered, over all links. */
  private inflight = 0;
  private idleWaiters: (() => void)[] = [];
  private readonly sessionWaiters = new Map<Conn, (() => void)[]>();

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
   * Keeps the index equal to the store's ids. The engine adds what it stores; a reload is only needed
   * when something else wrote to the store or a bounded store evicted (counts differ).
   */
  ensureIndex(): Promise<void> {
    if (this.loading) return this.loading;
    this.loading = (async () => {
      try {
        const count = await this.ctx.store.countMessages();
        if (this.loaded && count === this.index.size) return;
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
    conn.pending.set(reqId, { kind: 'recon', at: this.ctx.clock.now(), rounds: 0, found: 0 });
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
        return body ? this.onMsgs(conn, frame.reqId, body) : this.ctx.drop(conn, 'BAD_FRAME', true);
      }
    }
  }

  private async onRecon(conn: Conn, frame: Frame): Promise<void> {
    const msg = decodeReconcile(frame.body);
    if (!msg) return this.ctx.drop(conn, 'BAD_FRAME', true);
    await this.ensureIndex();
    const step = reconcileStep(this.index, msg, 'responder');
    conn.sendFrame(encodeFrame(PeerKind.RECON_REPLY, frame.reqId, encodeReconcile(step.reply!)));
  }

  private async onReconReply(conn: Conn, frame: Frame): Promise<void> {
    const p = conn.pending.get(frame.reqId);
    if (!p || p.kind !== 'recon') return this.ctx.drop(conn, 'UNSOLICITED', true);
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
          for (const p of conn.pending.values()) if (p.kind === 'msgs') n--;
        }
        free.set(peerId, n);
      }
      return n;
    };
    const batches = new Map<string, string[]>();
    const usable = (peerId: string): boolean => batches.has(peerId) || slots(peerId) > 0;
    const ids = [...this.needs.keys()].sort().reverse();
    for (const id of ids) {
      const need = this.needs.get(id)!;
      if (need.from !== null) continue;
      const pick =
        need.sources.find((s) => !this.ctx.isVirtual(s) && usable(s)) ??
        (need.sources.some((s) => !this.ctx.isVirtual(s) && this.ctx.conn(s)) ? undefined : need.sources.find(usable));
      if (!pick) continue;
      let batch = batches.get(pick);
      if (!batch) {
        batches.set(pick, (batch = []));
        free.set(pick, slots(pick) - 1);
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
        if (need) need.from = null;
      }
      return;
    }
    const reqId = conn.newReqId();
    const claimed = new Set(ids.filter((id) => this.needs.get(id)?.claimed));
    this.inflight++;
    conn.pending.set(reqId, { kind: 'msgs', at: this.ctx.clock.now(), ids: new Set(ids), got: new Set(), claimed });
    conn.sendControl(PeerKind.GET_MSGS, reqId, { ids, lastResort: this.ctx.isVirtual(peerId) || undefined });
  }

  private async onGetMsgs(conn: Conn, reqId: number, body: GetMsgsBody): Promise<void> {
    if (conn.serving >= PEER_LIMITS.maxRequestsInFlight) return this.ctx.drop(conn, 'FLOOD', true);
    conn.serving++;
    try {
      // A virtual peer lets real peers answer first unless the requester found none (G7).
      if (this.ctx.selfKind === 'virtual' && !body.lastResort) await this.ctx.delay(this.ctx.opts.virtualDelayMs);
      if (conn.closed) return;
      const envs = await this.ctx.store.getMessages(body.ids);
      const missing: string[] = [];
      let batch: Envelope[] = [];
      let bytes = 0;
      for (let i = 0; i < body.ids.length; i++) {
        const env = envs[i];
        if (!env || env.id !== body.ids[i]) {
          missing.push(body.ids[i]!);
          continue;
        }
        const size = utf8(JSON.stringify(env)).length;
        if (batch.length > 0 && bytes + size > MSGS_PACK_BYTES) {
          conn.sendControl(PeerKind.MSGS, reqId, { envs: batch, missing: [], last: false });
          batch = [];
          bytes = 0;
        }
        batch.push(env);
        bytes += size;
      }
      conn.sendControl(PeerKind.MSGS, reqId, { envs: batch, missing, last: true });
    } finally {
      conn.serving--;
    }
  }

  private async onMsgs(conn: Conn, reqId: number, body: MsgsBody): Promise<void> {
    const p = conn.pending.get(reqId);
    if (!p || p.kind !== 'msgs') return this.ctx.drop(conn, 'UNSOLICITED', true);
    // Only what was asked, each once: anything else is a replay or an injection (G13).
    const seen = new Set<string>();
    for (const env of body.envs) {
      if (!p.ids.has(env.id) || p.got.has(env.id) || seen.has(env.id)) return this.ctx.drop(conn, 'UNSOLICITED', true);
      seen.add(env.id);
    }
    for (const id of body.missing) {
      if (!p.ids.has(id) || p.got.has(id) || seen.has(id)) return this.ctx.drop(conn, 'BAD_FRAME', true);
      seen.add(id);
    }
    // Verify the whole frame before storing any of it: one forgery and nothing from this peer is kept.
    for (const env of body.envs) {
      const check = await verifyEnvelope(this.ctx.crypto, env, this.ctx.relayKey);
      if (!check.ok) return this.ctx.drop(conn, 'BAD_SIGNATURE', true);
    }
    if (conn.closed) return;
    for (const id of seen) p.got.add(id);
    p.at = this.ctx.clock.now();
    conn.delivered += body.envs.length;
    for (const id of body.missing) this.denied(conn, id, p.claimed.has(id));
    if (body.last) {
      conn.pending.delete(reqId);
      this.finishedGet();
      // Asked but neither sent nor listed as missing: the same as missing.
      for (const id of p.ids) if (!p.got.has(id)) this.denied(conn, id, p.claimed.has(id));
    }
    if (conn.denied >= DENIAL_TOLERANCE && conn.denied > conn.delivered) {
      return this.ctx.drop(conn, 'MADE_UP_IDS', true);
    }
    if (body.envs.length > 0) await this.storeVerified(body.envs, conn.peerId);
    this.pump();
  }

  private denied(conn: Conn, id: string, claimed: boolean): void {
    if (claimed) conn.denied++;
    const need = this.needs.get(id);
    if (!need) return;
    need.sources = need.sources.filter((s) => s !== conn.peerId);
    need.from = null;
    if (need.sources.length === 0) this.needs.delete(id);
  }

  /** Verifies and stores envelopes from the relay (or any caller); G2. */
  async add(envs: readonly Envelope[]): Promise<AddResult> {
    const ok: Envelope[] = [];
    const rejected: AddResult['rejected'] = [];
    for (const env of envs) {
      const check = await verifyEnvelope(this.ctx.crypto, env, this.ctx.relayKey);
      if (check.ok) ok.push(env);
      else rejected.push({ id: env.id, reason: check.reason });
    }
    const stored = ok.length > 0 ? await this.storeVerified(ok, null) : [];
    this.pump();
    return { stored, rejected };
  }

  /** Stores already verified envelopes, indexes them, and turns chain holes into needs (G5). */
  private async storeVerified(envs: readonly Envelope[], from: string | null): Promise<string[]> {
    await this.ensureIndex();
    const added = await this.ctx.store.putMessages(envs);
    const addedSet = new Set(added);
    for (const id of added) {
      this.index.add(id);
      this.needs.delete(id);
    }
    const lowerBytes = this.lower();
    const lower = lowerBytes.length > 0 ? bytesToUlid(padKey(lowerBytes)) : '';
    for (const env of envs) {
      if (!addedSet.has(env.id)) {
        this.needs.delete(env.id);
        continue;
      }
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
        if (!from) this.ctx.holeFound();
      }
    }
    if (added.length > 0) this.ctx.events.emit('messages', { ids: added, from });
    return added;
  }

  /** Engine stop: nothing waits on sessions or fetches any more. */
  stop(): void {
    for (const w of this.idleWaiters.splice(0)) w();
    for (const conn of [...this.sessionWaiters.keys()]) this.endSession(conn);
    this.needs.clear();
  }

  /** A link closed: its requests go back to the pool and it stops being a source. */
  connClosed(conn: Conn): void {
    for (const p of conn.pending.values()) if (p.kind === 'msgs') this.finishedGet();
    conn.pending.clear();
    this.endSession(conn);
    for (const need of this.needs.values()) {
      if (need.from === conn.peerId) need.from = null;
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
