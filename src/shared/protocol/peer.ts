// The peer protocol: everything peers say to each other over a data channel, once. The sync engine
// (src/shared/sync) and every test import these; nobody redeclares a frame. Rules: ./SPEC.md G1-G14.
//
// A frame is a small fixed header followed by a body:
//
//   0      1     2      3      4..7
//   [ver] [kind] [flags] [0]   [reqId u32 BE]   body...
//
// Control bodies are UTF-8 JSON checked with the zod schemas below; a control body longer than one frame
// continues in the next frames of the same link (flag MORE), up to PEER_LIMITS.maxControlBodyBytes.
// Three bodies are binary because they carry the bulk: RECON/RECON_REPLY (range reconciliation),
// HASHES (a page of the chunk-hash list) and CHUNK (raw attachment bytes).
import { z } from 'zod';
import { fromUtf8, utf8 } from '../encoding';
import { MAX_FRAME_BYTES } from '../transport/PeerTransport';
import { LIMITS, zDigest, zEnvelope, zUlid } from './relay';

/** Bumped on any incompatible change to this file (SPEC.md G3). Carried in every frame header. */
// 2: envelopes carry posts bound to a relay and a client time (SPEC.md M6), which version-1 peers lack.
// 3: envelopes may carry the relay-attested `authorName` (M7); a version-2 peer would strip it, fail the
//    relay signature and ban an honest peer for BAD_SIGNATURE, so it hears PROTOCOL_MISMATCH instead.
// 4: a GET_MSGS answer holds at most maxMsgsAnswerBytes of envelopes and names the rest `later` (G5); a
//    version-3 responder would answer in full and overflow the asker's inbox, a version-3 asker would take
//    the unsent ids for missing.
export const PEER_PROTOCOL_VERSION = 4;

/** Frame kinds. Values are wire bytes: never renumber, only add. BYE keeps 0 in every version. */
export const PeerKind = {
  /** Last words before closing a link: { reason }. */
  BYE: 0,
  /** First frame on each side of a link: { protocol }. */
  HELLO: 1,
  /** Range reconciliation, initiator -> responder (binary, see encodeReconcile). reqId = session. */
  RECON: 2,
  /** Range reconciliation, responder -> initiator. No ranges = the responder found nothing to split. */
  RECON_REPLY: 3,
  /** Ask for envelopes by id. */
  GET_MSGS: 4,
  /** Envelopes answering GET_MSGS, in parts, the last one has `last: true` (and names what did not fit `later`). */
  MSGS: 5,
  /** "I hold attachment id (sha256)": a few dozen bytes, never the content (SPEC.md G6). */
  OFFER: 6,
  OFFER_REPLY: 7,
  /** "Who holds these attachments?" (the pull half of the gossip). */
  WANT: 8,
  /** Answer to WANT: the subset of ids held. */
  HAVE: 9,
  /** Ask for an attachment's chunk-hash list; answered by HASHES pages in order. */
  GET_HASHES: 10,
  HASHES: 11,
  GET_CHUNKS: 12,
  CHUNK: 13,
  /** A request that will not be served: { reason }. */
  NACK: 14,
} as const;
export type PeerKind = (typeof PeerKind)[keyof typeof PeerKind];
const KIND_MAX = 14;

/** Stable machine codes, in BYE, NACK and link close reasons (SPEC.md G13). Never match on text. */
export const PeerReason = {
  PROTOCOL_MISMATCH: 'PROTOCOL_MISMATCH',
  /** Undecodable frame, schema failure, or a frame that breaks the protocol's order. */
  BAD_FRAME: 'BAD_FRAME',
  /** An envelope or attachment metadata failed verifyEnvelope/verifyAttachment. */
  BAD_SIGNATURE: 'BAD_SIGNATURE',
  /** Attachment content, hash list or offer digest that does not match the signed metadata. */
  WRONG_DIGEST: 'WRONG_DIGEST',
  BAD_CHUNK_COUNT: 'BAD_CHUNK_COUNT',
  /** Data nobody asked for, or asked for twice (a replay). */
  UNSOLICITED: 'UNSOLICITED',
  /** Claimed to hold ids, then could not produce them (made-up ids). */
  MADE_UP_IDS: 'MADE_UP_IDS',
  /** More requests, frames or ids than the bounds allow. */
  FLOOD: 'FLOOD',
  TIMEOUT: 'TIMEOUT',
  /** This peer was dropped recently and is still remembered as bad. */
  BANNED: 'BANNED',
  NOT_FOUND: 'NOT_FOUND',
  /** A virtual peer declining to serve while a real peer could (SPEC.md G7). */
  DEFERRED: 'DEFERRED',
  IDLE: 'IDLE',
  /** The peer does not read what it asked for: our send queue to it passed its bound. */
  SLOW_PEER: 'SLOW_PEER',
  TOO_MANY_LINKS: 'TOO_MANY_LINKS',
  SHUTTING_DOWN: 'SHUTTING_DOWN',
  /** This side failed (a bug or its store); not the peer's fault, so the peer is not remembered as bad. */
  INTERNAL: 'INTERNAL',
} as const;
export type PeerReason = (typeof PeerReason)[keyof typeof PeerReason];

/** Bounds of the peer protocol (SPEC.md G11). Every queue in the engine is sized from these. */
export const PEER_LIMITS = {
  headerBytes: 8,
  /** Largest JSON control body after reassembly: a batch of envelopes at their largest fits. */
  maxControlBodyBytes: 256 * 1024,
  /** Ids in one GET_MSGS, WANT or HAVE. */
  maxIdsPerRequest: 128,
  /**
   * Envelope bytes (their JSON) in one answer to a GET_MSGS, over all its MSGS parts; what does not fit is
   * named in the final part's `later` and asked for again (G5). At least one envelope goes out whatever its
   * size. So what an asker can have in flight is GETS_PER_PEER x this (1 MiB), whatever the messages'
   * length, and its inbox is sized from that (Conn INBOX_MAX_BYTES): 128 ids of 8.5 KB were 1.1 MB.
   */
  maxMsgsAnswerBytes: 128 * 1024,
  /** Chunk indices in one GET_CHUNKS. */
  maxChunksPerRequest: 16,
  /**
   * Chunks a peer may have requested from us and not yet received, per link, over all its downloads
   * (1 MiB: one link's uploads can fill the send buffer to its high-water mark, where pacing takes over).
   */
  maxChunksInFlight: 64,
  /** Unanswered requests a peer may have open on us, per link. */
  maxRequestsInFlight: 16,
  /** Chunk hashes per HASHES page (32 KiB): 64 MiB / 16 KiB = 4096 hashes = 4 pages. */
  maxHashesPerFrame: 1024,
  /** Ids in one IDS range of a reconciliation message. */
  maxReconcileIds: 1024,
  /** Round trips in one reconciliation session before it is abandoned. */
  maxReconcileRounds: 32,
  /** Reconciliation body budget: leaves room for the header inside MAX_FRAME_BYTES. */
  reconcileBudgetBytes: MAX_FRAME_BYTES - 1024,
} as const;

const FLAG_MORE = 1;

export interface Frame {
  version: number;
  kind: PeerKind;
  reqId: number;
  /** The body continues in the next frame (control bodies only). */
  more: boolean;
  body: Uint8Array;
}

export function encodeFrame(kind: PeerKind, reqId: number, body: Uint8Array, more = false): Uint8Array {
  const out = new Uint8Array(PEER_LIMITS.headerBytes + body.length);
  out[0] = PEER_PROTOCOL_VERSION;
  out[1] = kind;
  out[2] = more ? FLAG_MORE : 0;
  new DataView(out.buffer).setUint32(4, reqId >>> 0);
  out.set(body, PEER_LIMITS.headerBytes);
  return out;
}

export type DecodedFrame = { ok: true; frame: Frame } | { ok: false; reason: PeerReason };

/** Header check only; bodies are parsed by kind. A wrong version is reported, not guessed at (G3). */
export function decodeFrame(bytes: Uint8Array): DecodedFrame {
  if (bytes.length < PEER_LIMITS.headerBytes || bytes.length > MAX_FRAME_BYTES) return { ok: false, reason: 'BAD_FRAME' };
  const kind = bytes[1]!;
  if (bytes[0] !== PEER_PROTOCOL_VERSION) {
    // BYE's layout is the same in every version, so a peer on another version can still say why it left.
    return { ok: false, reason: 'PROTOCOL_MISMATCH' };
  }
  if (kind > KIND_MAX || (bytes[2]! & ~FLAG_MORE) !== 0 || bytes[3] !== 0) return { ok: false, reason: 'BAD_FRAME' };
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  return {
    ok: true,
    frame: {
      version: bytes[0]!,
      kind: kind as PeerKind,
      reqId: view.getUint32(4),
      more: (bytes[2]! & FLAG_MORE) !== 0,
      body: bytes.subarray(PEER_LIMITS.headerBytes),
    },
  };
}

// ---- control bodies (JSON) ----

const zIds = z.array(zUlid).max(PEER_LIMITS.maxIdsPerRequest);

export const zHelloBody = z.object({ protocol: z.number().int() });
export const zByeBody = z.object({ reason: z.string().max(64) });
export const zGetMsgsBody = z.object({
  ids: zIds.min(1),
  /** The requester found no real peer holding these: a virtual peer serves at once (G7). */
  lastResort: z.boolean().optional(),
});
export const zMsgsBody = z.object({
  envs: z.array(zEnvelope).max(PEER_LIMITS.maxIdsPerRequest),
  /** Requested ids this peer does not hold. */
  missing: z.array(zUlid).max(PEER_LIMITS.maxIdsPerRequest),
  /**
   * Final part only: requested ids this peer holds but did not send, as the answer was full
   * (maxMsgsAnswerBytes); the asker asks for them again. Never in an answer without envelopes (G5).
   */
  later: z.array(zUlid).max(PEER_LIMITS.maxIdsPerRequest).optional(),
  last: z.boolean(),
});
export const zOfferBody = z.object({ id: zUlid, sha256: zDigest });
export const OfferStatus = {
  /** Already holds the bytes: counts toward the offerer's coverage estimate (G6). */
  HAVE: 'have',
  /** Will fetch from the offerer. */
  TAKE: 'take',
  /** Lacks it but fetches from someone else (or later). */
  LATER: 'later',
  /** Does not know this attachment's metadata, or does not want it. */
  SKIP: 'skip',
} as const;
export const zOfferReplyBody = z.object({ id: zUlid, status: z.enum(['have', 'take', 'later', 'skip']) });
export const zWantBody = z.object({ ids: zIds.min(1), lastResort: z.boolean().optional() });
export const zHaveBody = z.object({ ids: zIds });
export const zGetHashesBody = z.object({ id: zUlid, lastResort: z.boolean().optional() });
export const zGetChunksBody = z.object({
  id: zUlid,
  indices: z
    .array(z.number().int().min(0).max(LIMITS.maxAttachmentBytes / LIMITS.chunkBytes))
    .min(1)
    .max(PEER_LIMITS.maxChunksPerRequest),
  lastResort: z.boolean().optional(),
});
export const zNackBody = z.object({ reason: z.string().max(64) });

export type HelloBody = z.infer<typeof zHelloBody>;
export type ByeBody = z.infer<typeof zByeBody>;
export type GetMsgsBody = z.infer<typeof zGetMsgsBody>;
export type MsgsBody = z.infer<typeof zMsgsBody>;
export type OfferBody = z.infer<typeof zOfferBody>;
export type OfferReplyBody = z.infer<typeof zOfferReplyBody>;
export type WantBody = z.infer<typeof zWantBody>;
export type HaveBody = z.infer<typeof zHaveBody>;
export type GetHashesBody = z.infer<typeof zGetHashesBody>;
export type GetChunksBody = z.infer<typeof zGetChunksBody>;
export type NackBody = z.infer<typeof zNackBody>;

const controlSchemas = {
  [PeerKind.BYE]: zByeBody,
  [PeerKind.HELLO]: zHelloBody,
  [PeerKind.GET_MSGS]: zGetMsgsBody,
  [PeerKind.MSGS]: zMsgsBody,
  [PeerKind.OFFER]: zOfferBody,
  [PeerKind.OFFER_REPLY]: zOfferReplyBody,
  [PeerKind.WANT]: zWantBody,
  [PeerKind.HAVE]: zHaveBody,
  [PeerKind.GET_HASHES]: zGetHashesBody,
  [PeerKind.GET_CHUNKS]: zGetChunksBody,
  [PeerKind.NACK]: zNackBody,
} as const;
export type ControlKind = keyof typeof controlSchemas;
export type ControlBody<K extends ControlKind> = z.infer<(typeof controlSchemas)[K]>;

export function isControlKind(kind: PeerKind): kind is ControlKind {
  return kind in controlSchemas;
}

/**
 * Encodes a control body as one frame, or several consecutive frames when it is longer than a frame
 * (send them back to back on one link). Returns null above maxControlBodyBytes: the caller splits its batch.
 */
export function encodeControl<K extends ControlKind>(kind: K, reqId: number, body: ControlBody<K>): Uint8Array[] | null {
  const bytes = utf8(JSON.stringify(body));
  if (bytes.length > PEER_LIMITS.maxControlBodyBytes) return null;
  const room = MAX_FRAME_BYTES - PEER_LIMITS.headerBytes;
  const frames: Uint8Array[] = [];
  for (let o = 0; o < bytes.length || frames.length === 0; o += room) {
    const end = Math.min(bytes.length, o + room);
    frames.push(encodeFrame(kind, reqId, bytes.subarray(o, end), end < bytes.length));
  }
  return frames;
}

export function parseControl<K extends ControlKind>(kind: K, body: Uint8Array): ControlBody<K> | null {
  try {
    const parsed = controlSchemas[kind].safeParse(JSON.parse(fromUtf8(body)));
    return parsed.success ? (parsed.data as ControlBody<K>) : null;
  } catch {
    return null;
  }
}

/**
 * Reassembles control bodies split over MORE frames, for one link. Links are ordered and a sender writes
 * the pieces of one body back to back, so a piece of another kind in the middle is a protocol error.
 */
export class ControlAssembler {
  private parts: Uint8Array[] = [];
  private bytes = 0;
  private kind: PeerKind | null = null;
  private reqId = 0;

  /** Returns the complete body, 'pending' while more pieces are due, or null on a protocol error. */
  push(frame: Frame): Uint8Array | 'pending' | null {
    if (this.kind !== null && (frame.kind !== this.kind || frame.reqId !== this.reqId)) return null;
    this.bytes += frame.body.length;
    if (this.bytes > PEER_LIMITS.maxControlBodyBytes) return null;
    if (frame.more) {
      this.kind = frame.kind;
      this.reqId = frame.reqId;
      this.parts.push(frame.body.slice());
      return 'pending';
    }
    if (this.kind === null) {
      this.bytes = 0;
      return frame.body;
    }
    this.parts.push(frame.body);
    const whole = new Uint8Array(this.bytes);
    let o = 0;
    for (const p of this.parts) {
      whole.set(p, o);
      o += p.length;
    }
    this.parts = [];
    this.bytes = 0;
    this.kind = null;
    return whole;
  }

  get busy(): boolean {
    return this.kind !== null;
  }
}

// ---- binary bodies ----

/** Attachment and message ids travel as the 16 bytes of the ULID (see sync/ulidBytes.ts). */
export const ID_BYTES = 16;
const HASH_BYTES = 32;

export interface ChunkBody {
  id: Uint8Array;
  index: number;
  data: Uint8Array;
}

/** CHUNK body: id (16) | index (u32 BE) | raw bytes (at most LIMITS.chunkBytes). */
export function encodeChunk(reqId: number, id: Uint8Array, index: number, data: Uint8Array): Uint8Array {
  const body = new Uint8Array(ID_BYTES + 4 + data.length);
  body.set(id, 0);
  new DataView(body.buffer).setUint32(ID_BYTES, index);
  body.set(data, ID_BYTES + 4);
  return encodeFrame(PeerKind.CHUNK, reqId, body);
}

export function decodeChunk(body: Uint8Array): ChunkBody | null {
  if (body.length < ID_BYTES + 4 || body.length > ID_BYTES + 4 + LIMITS.chunkBytes) return null;
  const view = new DataView(body.buffer, body.byteOffset, body.byteLength);
  return { id: body.subarray(0, ID_BYTES), index: view.getUint32(ID_BYTES), data: body.subarray(ID_BYTES + 4) };
}

/** Overhead of a CHUNK frame beyond its payload bytes (for byte accounting). */
export const CHUNK_OVERHEAD_BYTES = PEER_LIMITS.headerBytes + ID_BYTES + 4;

export interface HashesBody {
  id: Uint8Array;
  /** Index of the first hash in this page. */
  from: number;
  /** Number of chunks the sender says the attachment has (checked against meta.size, G8). */
  total: number;
  /** 32 bytes per chunk. */
  hashes: Uint8Array;
}

/** HASHES body: id (16) | from (u32) | total (u32) | 32-byte hashes. */
export function encodeHashes(reqId: number, h: HashesBody): Uint8Array {
  const body = new Uint8Array(ID_BYTES + 8 + h.hashes.length);
  body.set(h.id, 0);
  const view = new DataView(body.buffer);
  view.setUint32(ID_BYTES, h.from);
  view.setUint32(ID_BYTES + 4, h.total);
  body.set(h.hashes, ID_BYTES + 8);
  return encodeFrame(PeerKind.HASHES, reqId, body);
}

export function decodeHashes(body: Uint8Array): HashesBody | null {
  if (body.length < ID_BYTES + 8) return null;
  const n = body.length - ID_BYTES - 8;
  if (n % HASH_BYTES !== 0 || n / HASH_BYTES > PEER_LIMITS.maxHashesPerFrame) return null;
  const view = new DataView(body.buffer, body.byteOffset, body.byteLength);
  return {
    id: body.subarray(0, ID_BYTES),
    from: view.getUint32(ID_BYTES),
    total: view.getUint32(ID_BYTES + 4),
    hashes: body.subarray(ID_BYTES + 8),
  };
}

// ---- range reconciliation (G4) ----

/**
 * A bound over the 16-byte id order: a prefix, compared as if padded with zero bytes, so a split point
 * costs only the bytes that separate two neighbouring ids. `null` is +infinity.
 */
export type Bound = Uint8Array | null;

/**
 * SKIP: nothing to do. FINGERPRINT: compare and split if unequal. IDS: every id the sender holds in the
 * range. MISSING: the responder's answer to IDS, the ids of the range the initiator did not list (so a
 * pulling initiator learns exactly what it lacks, at half the bytes of a full list).
 */
export const RangeMode = { SKIP: 0, FINGERPRINT: 1, IDS: 2, MISSING: 3 } as const;
export type RangeMode = (typeof RangeMode)[keyof typeof RangeMode];

export const FINGERPRINT_BYTES = 16;

export type ReconcileRange =
  | { mode: typeof RangeMode.SKIP; upper: Bound }
  | { mode: typeof RangeMode.FINGERPRINT; upper: Bound; fp: Uint8Array }
  | { mode: typeof RangeMode.IDS | typeof RangeMode.MISSING; upper: Bound; ids: Uint8Array[] };

/**
 * Consecutive ranges covering [lower, ranges[last].upper); anything above the last range needs no work.
 * An empty list means the sender has nothing left to reconcile.
 */
export interface ReconcileMessage {
  lower: Uint8Array;
  ranges: ReconcileRange[];
}

/** Compares two bounds (prefixes padded with zeros); null is +infinity. */
export function compareBounds(a: Bound, b: Bound): number {
  if (a === null) return b === null ? 0 : 1;
  if (b === null) return -1;
  for (let i = 0; i < ID_BYTES; i++) {
    const x = a[i] ?? 0;
    const y = b[i] ?? 0;
    if (x !== y) return x - y;
  }
  return 0;
}

function boundBytes(b: Bound): number {
  return b === null ? 0 : 1 + b.length;
}

/** Encoded size of one range, so a reply can stay under its budget while it is being built. */
export function rangeBytes(r: ReconcileRange): number {
  const base = 1 + boundBytes(r.upper);
  if (r.mode === RangeMode.FINGERPRINT) return base + FINGERPRINT_BYTES;
  if (r.mode === RangeMode.IDS || r.mode === RangeMode.MISSING) return base + varintBytes(r.ids.length) + r.ids.length * ID_BYTES;
  return base;
}

function varintBytes(n: number): number {
  let len = 1;
  while (n >= 0x80) {
    n = Math.floor(n / 128);
    len++;
  }
  return len;
}

/**
 * Layout: lower bound (u8 length + bytes), then per range: a mode byte (high bit set = upper is
 * +infinity), the upper bound unless infinite (u8 length 1..16 + bytes), then a 16-byte fingerprint
 * (FINGERPRINT) or a varint count and 16 bytes per id (IDS).
 */
export function encodeReconcile(msg: ReconcileMessage): Uint8Array {
  let size = 1 + msg.lower.length;
  for (const r of msg.ranges) size += rangeBytes(r);
  const out = new Uint8Array(size);
  let o = 0;
  out[o++] = msg.lower.length;
  out.set(msg.lower, o);
  o += msg.lower.length;
  for (const r of msg.ranges) {
    out[o++] = r.mode | (r.upper === null ? 0x80 : 0);
    if (r.upper !== null) {
      out[o++] = r.upper.length;
      out.set(r.upper, o);
      o += r.upper.length;
    }
    if (r.mode === RangeMode.FINGERPRINT) {
      out.set(r.fp, o);
      o += FINGERPRINT_BYTES;
    } else if (r.mode !== RangeMode.SKIP) {
      let n = r.ids.length;
      while (n >= 0x80) {
        out[o++] = (n & 0x7f) | 0x80;
        n = Math.floor(n / 128);
      }
      out[o++] = n;
      for (const id of r.ids) {
        out.set(id, o);
        o += ID_BYTES;
      }
    }
  }
  return out;
}

/**
 * Strict decoding: bounds strictly increasing, nothing after an infinite bound, ids sorted, unique and
 * inside their range, at most maxReconcileIds per range. Returns null otherwise (the sender is broken or
 * hostile; G13).
 */
export function decodeReconcile(bytes: Uint8Array): ReconcileMessage | null {
  let o = 0;
  const take = (n: number): Uint8Array | null => {
    if (o + n > bytes.length) return null;
    const s = bytes.subarray(o, o + n);
    o += n;
    return s;
  };
  const lowerLen = bytes[o++];
  if (lowerLen === undefined || lowerLen > ID_BYTES) return null;
  const lower = take(lowerLen);
  if (!lower) return null;
  const ranges: ReconcileRange[] = [];
  let prev: Bound = lower;
  while (o < bytes.length) {
    if (prev === null) return null;
    const head = bytes[o++]!;
    const mode = head & 0x7f;
    let upper: Bound = null;
    if ((head & 0x80) === 0) {
      const len = bytes[o++];
      if (len === undefined || len < 1 || len > ID_BYTES) return null;
      upper = take(len);
      if (!upper) return null;
    }
    if (compareBounds(upper, prev) <= 0) return null;
    if (mode === RangeMode.SKIP) {
      ranges.push({ mode, upper });
    } else if (mode === RangeMode.FINGERPRINT) {
      const fp = take(FINGERPRINT_BYTES);
      if (!fp) return null;
      ranges.push({ mode, upper, fp });
    } else if (mode === RangeMode.IDS || mode === RangeMode.MISSING) {
      let n = 0;
      let shift = 1;
      for (;;) {
        const b = bytes[o++];
        if (b === undefined || shift > 2 ** 21) return null;
        n += (b & 0x7f) * shift;
        if ((b & 0x80) === 0) break;
        shift *= 128;
      }
      if (n > PEER_LIMITS.maxReconcileIds) return null;
      const ids: Uint8Array[] = [];
      let last: Uint8Array | null = null;
      for (let i = 0; i < n; i++) {
        const id = take(ID_BYTES);
        if (!id) return null;
        if (last ? compareBounds(id, last) <= 0 : compareBounds(id, prev) < 0) return null;
        ids.push(id);
        last = id;
      }
      if (last && compareBounds(last, upper) >= 0) return null;
      ranges.push({ mode, upper, ids });
    } else {
      return null;
    }
    prev = upper;
  }
  return { lower, ranges };
}
