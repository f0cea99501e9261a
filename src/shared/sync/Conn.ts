// One open PeerLink as the sync engine sees it: frame decoding, an ordered bounded inbox, the requests
// in flight each way, a token bucket against floods, and pacing on the link's send buffer (SPEC.md G9).
// A Conn never throws out of a link callback: bad input ends in `onBad`, which drops the link.
import {
  ControlAssembler,
  type Frame,
  PEER_LIMITS,
  PEER_PROTOCOL_VERSION,
  PeerKind,
  type PeerReason,
  type ControlBody,
  type ControlKind,
  decodeFrame,
  encodeControl,
  encodeFrame,
} from '../protocol/peer';
import { utf8 } from '../encoding';
import type { PeerLink } from '../transport/PeerTransport';
import type { Clock, TimerHandle } from './Clock';
import { GETS_PER_PEER } from './MessageSync';

/** Frames received and not yet handled, per link. Beyond this the peer is flooding (G11). */
export const INBOX_MAX_FRAMES = 512;
/**
 * Bytes of frames received and not yet handled, per link (G11): what an honest peer can have in flight to
 * us on one link, derived from what this side asks for. The answers to our GET_MSGS (GETS_PER_PEER x
 * maxMsgsAnswerBytes = 1 MiB, whatever the messages' length: they wait here while our verify-and-store
 * pipeline is busy, e.g. on a slow store), the chunks we asked for (maxChunksInFlight x 16 KiB = 1 MiB),
 * and 512 KiB for the rest: a RECON_REPLY (64 KiB), HASHES pages, the MSGS bodies' id lists, the peer's
 * own small requests. Beyond it the peer sends what nobody asked for: FLOOD. (At 2 MiB, with answers
 * of 128 whole envelopes, a slow-store reader banned an honest holder of long messages.) With maxLinks
 * (32) links the engine holds at most 80 MiB of inboxes, one user (MAX_LINKS_PER_USER links) 5 MiB.
 */
export const INBOX_MAX_BYTES =
  GETS_PER_PEER * PEER_LIMITS.maxMsgsAnswerBytes + PEER_LIMITS.maxChunksInFlight * 16 * 1024 + 512 * 1024;
/**
 * Frames a peer may send before its HELLO (a new channel may deliver its first frames out of order,
 * SPEC.md VC2 (d)); they wait for the HELLO. An honest peer sends HELLO and at most a few more before it
 * heard from us; beyond this it is flooding.
 */
export const EARLY_FRAMES_MAX = 16;
/** Control frames a peer may send in a burst, and per second after it (G11). */
export const CONTROL_BURST = 512;
export const CONTROL_PER_SECOND = 64;
/**
 * Frames the link refused (its buffer was above the high-water mark, SPEC.md T2) wait here, in order,
 * until it drains. Bulk senders wait before adding more, so only replies pile up; past this bound the
 * peer is not reading what it asks for.
 */
export const OUT_QUEUE_MAX_BYTES = 8 * 1024 * 1024;
/**
 * After a BYE the link stays open this long so the BYE can arrive (a closing link drops what it still
 * buffers, T3); nothing more is read from it meanwhile.
 */
export const BYE_GRACE_MS = 1000;
/** Attachments per link whose asked-for chunk indices this side remembers (as the uploader does, G13). */
export const MAX_ASKED_ATTACHMENTS = 64;

/** Frame kinds that answer a request of ours: their arrival is progress on the link (G13 TIMEOUT). */
const ANSWER_KINDS: ReadonlySet<number> = new Set([
  PeerKind.RECON_REPLY,
  PeerKind.MSGS,
  PeerKind.HAVE,
  PeerKind.HASHES,
  PeerKind.CHUNK,
  PeerKind.NACK,
]);

/** A request this side sent and still waits on. */
export type Pending =
  /** `deadline`: absolute, this round's RECON_REPLY is due by then (G5); answers do not move it. */
  | { kind: 'recon'; at: number; deadline: number; rounds: number; found: number }
  /**
   * `deadline`: absolute, the whole answer is due by then (G5); a partial answer does not move it.
   * `received`: its last part is in this side's pipeline; what remains (verify, store) is ours, so it no
   * longer holds one of the peer's GETS_PER_PEER slots, and its deadline no longer applies.
   */
  | { kind: 'msgs'; at: number; deadline: number; ids: Set<string>; got: Set<string>; claimed: Set<string>; received: boolean }
  | { kind: 'want'; at: number; ids: Set<string> }
  | { kind: 'hashes'; at: number; id: string }
  | { kind: 'chunks'; at: number; id: string; indices: Set<number> };

export interface ConnHandlers {
  /**
   * Checked on arrival, before a whole frame takes room in the inbox (G11, G13): null to queue it,
   * 'ignore' to drop it silently (a late answer to a request this side gave up on), or the reason that
   * drops the peer (an answer nobody asked for). @default every frame is queued
   */
  admit?(conn: Conn, frame: Frame): PeerReason | 'ignore' | null;
  /** A whole frame (control bodies reassembled). Awaited: frames of one link are handled in order. */
  frame(conn: Conn, frame: Frame): Promise<void>;
  /** Undecodable or out-of-bounds input: the engine drops the peer. */
  bad(conn: Conn, reason: PeerReason): void;
  /** Our send queue to the peer passed OUT_QUEUE_MAX_BYTES. */
  slow(conn: Conn): void;
  closed(conn: Conn, reason: string): void;
}

/**
 * Bytes the engine holds for its peers: inboxes, partly received control bodies, send queues. One per
 * engine, shared by its links; `peak` is what an attack cost at most (SPEC.md G11, the adversary tests).
 */
export class HeldBytes {
  total = 0;
  peak = 0;
  add(delta: number): void {
    this.total += delta;
    if (this.total > this.peak) this.peak = this.total;
  }
}

export class Conn {
  readonly peerId: string;
  /** Whether the frames from the other side started with a valid HELLO. */
  helloSeen = false;
  /** Frames that arrived before the peer's HELLO, handled right after it (at most EARLY_FRAMES_MAX). */
  readonly early: Frame[] = [];
  readonly openedAt: number;
  lastActive: number;
  readonly pending = new Map<number, Pending>();
  /** Requests the peer has open on us (answered or not yet), bounded by PEER_LIMITS.maxRequestsInFlight. */
  serving = 0;
  /** Chunk frames queued to this peer and not yet handed to the link. */
  chunksQueued = 0;
  /**
   * Bytes handed to the link so far. Less the link's bufferedAmount, what it actually sent: whether a link
   * is moving, which the upload loop's priority needs (G9).
   */
  handedBytes = 0;
  /** Ids this peer claimed and then said it does not hold (made-up id detection, G13). */
  denied = 0;
  delivered = 0;
  closed = false;
  /**
   * Chunk indices asked for on this link, per attachment, as bitsets (a 16 MiB attachment is 128 bytes).
   * The uploader refuses a second ask on one link as a replay (G13), so a download that restarts (a want
   * dropped and wanted again) must not ask here again.
   */
  private readonly chunksAsked = new Map<string, Uint8Array>();
  /**
   * Last time the link moved for us: an answer to one of our requests arrived, or frames we queued were
   * taken by the link. A slow link moves all the time; a dead or stalling one does not (G13 TIMEOUT).
   */
  private lastProgress: number;

  private nextReq = 1;
  private readonly assembler = new ControlAssembler();
  /** Whole frames waiting to be handled, each with the time it arrived. */
  private readonly inbox: { frame: Frame; at: number }[] = [];
  /** The inbox frame being handled now (still counted in inboxBytes until its handler returns). */
  private current: { frame: Frame; at: number } | null = null;
  private inboxBytes = 0;
  /** Bytes of a control body whose MORE pieces are still arriving (the assembler holds them). */
  private partialBytes = 0;
  private draining = false;
  private tokens = CONTROL_BURST;
  private tokensAt: number;
  private readonly disposers: (() => void)[] = [];
  private drainWaiters: (() => void)[] = [];
  private readonly out: Uint8Array[] = [];
  private outBytes = 0;
  private graceTimer: TimerHandle | null = null;
  private readonly now: () => number;

  constructor(
    readonly link: PeerLink,
    /** True when this side opened the link. */
    readonly outbound: boolean,
    private readonly clock: Clock,
    private readonly handlers: ConnHandlers,
    private readonly held: HeldBytes = new HeldBytes(),
  ) {
    this.peerId = link.remotePeerId;
    this.now = () => clock.now();
    this.lastActive = this.now();
    this.openedAt = this.lastActive;
    this.tokensAt = this.lastActive;
    this.lastProgress = this.lastActive;
    this.disposers.push(
      link.onFrame((bytes) => this.receive(bytes)),
      link.onDrain(() => this.flush()),
      link.onClose((reason) => this.onLinkClosed(reason)),
    );
    if (link.closed) queueMicrotask(() => this.onLinkClosed('closed'));
  }

  /** Bytes waiting for the link to drain. */
  get backlog(): number {
    return this.outBytes;
  }

  /** Bytes this link holds now: unhandled frames (inbox and early), a partial control body, the send queue. */
  get heldBytes(): number {
    return this.inboxBytes + this.partialBytes + this.outBytes;
  }

  newReqId(): number {
    const id = this.nextReq;
    this.nextReq = this.nextReq >= 0xfffffffe ? 1 : this.nextReq + 1;
    return id;
  }

  /**
   * Since when this side has been waiting on the link without progress: the later of the last progress
   * and the oldest open request's time (a request sent after a quiet spell starts its own wait). Null when
   * no request is open. A link waiting longer than the request timeout is closed, without blame.
   */
  waitingSince(counts: (p: Pending) => boolean = () => true): number | null {
    let oldest = Infinity;
    for (const p of this.pending.values()) if (counts(p)) oldest = Math.min(oldest, p.at);
    if (oldest === Infinity) return null;
    return Math.max(this.lastProgress, oldest);
  }

  /**
   * When the oldest answer to our request `reqId` that this side holds unhandled arrived (in the inbox, or
   * being handled: e.g. a MSGS part waiting for room in our own pipeline), or null. Such an answer came in
   * time however long we take to read it: our slowness is not the peer's (G5 deadlines).
   */
  heldSince(reqId: number): number | null {
    let since: number | null = null;
    for (const e of this.current ? [this.current, ...this.inbox] : this.inbox) {
      if (e.frame.reqId === reqId && ANSWER_KINDS.has(e.frame.kind)) since = Math.min(since ?? e.at, e.at);
    }
    return since;
  }

  /** Remembers chunk indices asked for on this link (bounded: the oldest attachment is forgotten first). */
  noteChunksAsked(id: string, chunkCount: number, indices: readonly number[]): void {
    let bits = this.chunksAsked.get(id);
    if (!bits) {
      if (this.chunksAsked.size >= MAX_ASKED_ATTACHMENTS) this.chunksAsked.delete(this.chunksAsked.keys().next().value!);
      this.chunksAsked.set(id, (bits = new Uint8Array(Math.ceil(chunkCount / 8))));
    }
    for (const i of indices) if (i >> 3 < bits.length) bits[i >> 3]! |= 1 << (i & 7);
  }

  /** Whether chunk `index` of `id` was asked for on this link already. */
  chunkAsked(id: string, index: number): boolean {
    const bits = this.chunksAsked.get(id);
    return bits !== undefined && ((bits[index >> 3] ?? 0) & (1 << (index & 7))) !== 0;
  }

  hello(): void {
    this.sendControl(PeerKind.HELLO, 0, { protocol: PEER_PROTOCOL_VERSION });
  }

  /** Sends a control body (several frames when long). Returns false when the link is closed. */
  sendControl<K extends ControlKind>(kind: K, reqId: number, body: ControlBody<K>): boolean {
    const frames = encodeControl(kind, reqId, body);
    if (!frames || this.closed) return false;
    for (const f of frames) this.sendFrame(f);
    return !this.closed;
  }

  /**
   * Sends one frame, or queues it behind frames the link refused (SPEC.md G9, T2: a refused frame is not
   * queued by the link). Returns false when the frame had to wait: a bulk sender then awaits `waitDrain`
   * before producing more, which is what paces uploads on the link's buffer.
   */
  sendFrame(frame: Uint8Array): boolean {
    if (this.closed) return false;
    this.lastActive = this.now();
    if (this.out.length === 0 && this.link.send(frame)) {
      this.handedBytes += frame.length;
      return true;
    }
    if (this.link.closed) return false;
    this.out.push(frame);
    this.outBytes += frame.length;
    this.held.add(frame.length);
    if (this.outBytes > OUT_QUEUE_MAX_BYTES) this.handlers.slow(this);
    return false;
  }

  /** Resolves once every queued frame was taken by the link (or the link closed). */
  waitDrain(): Promise<void> {
    if (this.closed || this.out.length === 0) return Promise.resolve();
    return new Promise((resolve) => this.drainWaiters.push(resolve));
  }

  // Never throws: it is the link's drain listener.
  private flush(): void {
    while (this.out.length > 0 && !this.link.closed) {
      let taken: boolean;
      try {
        taken = this.link.send(this.out[0]!);
      } catch {
        // A send that throws (a channel torn down under us) would otherwise leave the queue stuck for
        // good with nobody told; the link is unusable, so it closes, without blame.
        this.close('INTERNAL', 'now');
        return;
      }
      if (!taken) return; // Still full: the link fires onDrain again later.
      const sent = this.out.shift()!.length;
      this.handedBytes += sent;
      this.outBytes -= sent;
      this.held.add(-sent);
      this.lastProgress = this.now();
    }
    this.wakeDrainWaiters();
  }

  /**
   * Stops reading at once and says why: a BYE, then the link closes after BYE_GRACE_MS (or when the other
   * side closes first). `now` closes the link immediately (engine stop, an answer to the peer's own BYE).
   * Idempotent.
   */
  close(reason: PeerReason | string, mode: 'bye' | 'now' = 'bye'): void {
    if (this.closed) return;
    this.onLinkClosed(reason);
    if (mode === 'now' || this.link.closed) {
      this.link.close(reason);
      return;
    }
    // BYE's body is tiny and its layout the same in every version; it goes ahead of queued frames.
    this.dropHeld();
    if (!this.link.send(encodeFrame(PeerKind.BYE, 0, utf8(JSON.stringify({ reason }))))) {
      this.link.close(reason);
      return;
    }
    const off = this.link.onClose(() => this.endGrace());
    this.disposers.push(off);
    this.graceTimer = this.clock.setTimeout(() => {
      this.graceTimer = null;
      this.link.close(reason);
      off();
    }, BYE_GRACE_MS);
  }

  /** Closes a link still in its BYE grace at once (engine stop: nothing may outlive it). */
  closeNow(): void {
    this.endGrace();
    if (!this.link.closed) this.link.close('SHUTTING_DOWN');
    if (!this.closed) this.onLinkClosed('SHUTTING_DOWN');
  }

  get lingering(): boolean {
    return this.graceTimer !== null;
  }

  private endGrace(): void {
    if (this.graceTimer !== null) this.clock.clearTimeout(this.graceTimer);
    this.graceTimer = null;
  }

  private onLinkClosed(reason: string): void {
    if (this.closed) {
      this.endGrace();
      return;
    }
    this.closed = true;
    // Keep the close listener while a BYE lingers (close() registers it after this), drop the rest.
    for (const d of this.disposers.splice(0)) d();
    this.dropHeld();
    this.wakeDrainWaiters();
    this.handlers.closed(this, reason);
  }

  /** Forgets everything queued either way, and its accounting. */
  private dropHeld(): void {
    this.held.add(-this.heldBytes);
    this.inbox.length = 0;
    this.current = null;
    this.early.length = 0;
    this.inboxBytes = 0;
    this.partialBytes = 0;
    this.out.length = 0;
    this.outBytes = 0;
  }

  /** A frame held before HELLO still counts against the inbox bound until it is handled. */
  holdEarly(frame: Frame): boolean {
    if (this.early.length >= EARLY_FRAMES_MAX) return false;
    this.early.push(frame);
    this.inboxBytes += frame.body.length;
    this.held.add(frame.body.length);
    return true;
  }

  /** Takes the frames held before HELLO (their bytes are released as each is handled, see `handled`). */
  takeEarly(): Frame[] {
    return this.early.splice(0);
  }

  /** An early frame was handled: its bytes leave the inbox accounting. */
  handled(frame: Frame): void {
    if (this.closed) return; // Closing reset the accounting.
    this.inboxBytes -= frame.body.length;
    this.held.add(-frame.body.length);
  }

  private wakeDrainWaiters(): void {
    const waiters = this.drainWaiters;
    this.drainWaiters = [];
    for (const w of waiters) w();
  }

  /** Token bucket for control frames: a peer that asks faster than this is flooding (G11). */
  private takeToken(): boolean {
    const t = this.now();
    this.tokens = Math.min(CONTROL_BURST, this.tokens + ((t - this.tokensAt) / 1000) * CONTROL_PER_SECOND);
    this.tokensAt = t;
    if (this.tokens < 1) return false;
    this.tokens -= 1;
    return true;
  }

  // Never throws: it is the link's frame listener.
  private receive(bytes: Uint8Array): void {
    if (this.closed) return;
    try {
      const decoded = decodeFrame(bytes);
      if (!decoded.ok) {
        // A BYE from a peer on another protocol version still closes politely.
        if (decoded.reason === 'PROTOCOL_MISMATCH' && bytes[1] === PeerKind.BYE) this.close('PROTOCOL_MISMATCH', 'now');
        else this.handlers.bad(this, decoded.reason);
        return;
      }
      const frame = decoded.frame;
      if (frame.reqId !== 0 && ANSWER_KINDS.has(frame.kind) && this.pending.has(frame.reqId)) this.lastProgress = this.now();
      if (frame.kind !== PeerKind.CHUNK && frame.kind !== PeerKind.HASHES && frame.kind !== PeerKind.RECON && frame.kind !== PeerKind.RECON_REPLY) {
        const whole = this.assembler.push(frame);
        if (whole === null) return this.handlers.bad(this, 'BAD_FRAME');
        if (whole === 'pending') {
          // The assembler copies the piece: it counts as held until the body is whole (<= 256 KiB).
          this.partialBytes += frame.body.length;
          this.held.add(frame.body.length);
          return;
        }
        this.held.add(-this.partialBytes);
        this.partialBytes = 0;
        if (!this.takeToken()) return this.handlers.bad(this, 'FLOOD');
        this.enqueue({ ...frame, more: false, body: whole });
      } else {
        if (frame.more || this.assembler.busy) return this.handlers.bad(this, 'BAD_FRAME');
        if ((frame.kind === PeerKind.RECON || frame.kind === PeerKind.RECON_REPLY) && !this.takeToken()) {
          return this.handlers.bad(this, 'FLOOD');
        }
        this.enqueue(frame);
      }
    } catch {
      this.handlers.bad(this, 'BAD_FRAME');
    }
  }

  private enqueue(frame: Frame): void {
    const verdict = this.handlers.admit?.(this, frame) ?? null;
    if (verdict === 'ignore') return;
    if (verdict !== null) return this.handlers.bad(this, verdict);
    if (this.inbox.length >= INBOX_MAX_FRAMES || this.inboxBytes + frame.body.length > INBOX_MAX_BYTES) {
      return this.handlers.bad(this, 'FLOOD');
    }
    this.inbox.push({ frame, at: this.now() });
    this.inboxBytes += frame.body.length;
    this.held.add(frame.body.length);
    this.lastActive = this.now();
    if (!this.draining) this.drainInbox().catch(() => this.close("INTERNAL", "now"));
  }

  private async drainInbox(): Promise<void> {
    this.draining = true;
    try {
      while (this.inbox.length > 0 && !this.closed) {
        this.current = this.inbox.shift()!;
        const frame = this.current.frame;
        try {
          await this.handlers.frame(this, frame);
        } catch {
          // A handler failure (our bug, our store) must not wedge the link, nor count against the peer.
          this.close('INTERNAL');
        } finally {
          this.current = null;
          // Held until handled, not until dequeued: a slow handler is what lets an inbox fill.
          // (A frame kept as early is counted again by holdEarly.)
          this.handled(frame);
        }
      }
    } finally {
      this.draining = false;
    }
  }
}
