// One attachment being fetched: the chunk-hash list, then verified chunks (SPEC.md G8). Pure state: the
// engine decides whom to ask; this decides whether what came back is true. Verified chunks survive a
// change of source, so a transfer resumes where it stopped when a peer drops or lies.
import { bytesEqual, concatBytes, toB64url as b64 } from '../encoding';
import { sha256 } from '../crypto/hash';
import type { PeerReason } from '../protocol/peer';
import { LIMITS, type SignedAttachment } from '../protocol/relay';
import { chunkRoot } from '../protocol/signed';

const HASH_BYTES = 32;

export type DownloadCheck = { ok: true } | { ok: false; reason: PeerReason };

export class Download {
  readonly id: string;
  readonly meta: SignedAttachment;
  /** What meta.size implies; a source claiming another count is lying (G8). */
  readonly chunkCount: number;
  private readonly chunkBytes: number;
  private readonly hashList: Uint8Array;
  private hashFill = 0;
  private hashesVerified = false;
  private readonly chunks: (Uint8Array | undefined)[];
  private readonly inFlight = new Set<number>();
  private verifiedCount = 0;
  private verifiedBytes = 0;

  constructor(meta: SignedAttachment, chunkBytes: number = LIMITS.chunkBytes) {
    this.id = meta.id;
    this.meta = meta;
    this.chunkBytes = chunkBytes;
    // chunkHashes() hashes one empty chunk for empty content, so even size 0 has one chunk.
    this.chunkCount = Math.max(1, Math.ceil(meta.meta.size / chunkBytes));
    this.hashList = new Uint8Array(this.chunkCount * HASH_BYTES);
    this.chunks = new Array(this.chunkCount);
  }

  get hasHashes(): boolean {
    return this.hashesVerified;
  }
  /** Index of the next hash expected (for the HASHES page order check). */
  get hashesReceived(): number {
    return this.hashFill / HASH_BYTES;
  }
  get receivedBytes(): number {
    return this.verifiedBytes;
  }
  get totalBytes(): number {
    return this.meta.meta.size;
  }
  get done(): boolean {
    return this.verifiedCount === this.chunkCount;
  }
  get chunksInFlight(): number {
    return this.inFlight.size;
  }
  /** Chunks neither verified nor in flight. */
  get chunksMissing(): number {
    return this.chunkCount - this.verifiedCount - this.inFlight.size;
  }

  /** A page of the hash list, in order. The whole list must hash to meta.chunkRoot. */
  acceptHashPage(from: number, total: number, hashes: Uint8Array): DownloadCheck {
    if (this.hashesVerified) return { ok: false, reason: 'UNSOLICITED' };
    if (total !== this.chunkCount) return { ok: false, reason: 'BAD_CHUNK_COUNT' };
    if (from * HASH_BYTES !== this.hashFill) return { ok: false, reason: 'BAD_FRAME' };
    if (this.hashFill + hashes.length > this.hashList.length || hashes.length === 0) {
      return { ok: false, reason: 'BAD_CHUNK_COUNT' };
    }
    this.hashList.set(hashes, this.hashFill);
    this.hashFill += hashes.length;
    if (this.hashFill < this.hashList.length) return { ok: true };
    if (chunkRoot(this.hashList) !== this.meta.meta.chunkRoot) {
      this.hashFill = 0;
      return { ok: false, reason: 'WRONG_DIGEST' };
    }
    this.hashesVerified = true;
    return { ok: true };
  }

  /** Forget a partial hash list (its source is gone; the next one starts from page 0). */
  resetPartialHashes(): void {
    if (!this.hashesVerified) this.hashFill = 0;
  }

  /** The verified chunk-hash list (what an uploader serves as HASHES), null until verified. */
  get hashes(): Uint8Array | null {
    return this.hashesVerified ? this.hashList : null;
  }

  /**
   * Up to `max` missing chunk indices not already asked for, lowest first; they become in flight. `skip`
   * leaves out indices that may not be asked where the caller is asking (a link that was asked for them
   * once already: a second ask there is a replay to the uploader, G13).
   */
  takeChunks(max: number, skip?: (index: number) => boolean): number[] {
    const out: number[] = [];
    if (!this.hashesVerified) return out;
    for (let i = 0; i < this.chunkCount && out.length < max; i++) {
      if (this.chunks[i] === undefined && !this.inFlight.has(i) && !skip?.(i)) {
        this.inFlight.add(i);
        out.push(i);
      }
    }
    return out;
  }

  /**
   * Whether `data` is chunk `index` of the signed content: its length and its hash in the verified list.
   * Pure (changes nothing), so it can run when the frame arrives, before it waits in the inbox (G8).
   */
  checkChunk(index: number, data: Uint8Array): DownloadCheck {
    // Chunks are only asked once the list verified; one arriving before is nobody's answer.
    if (!this.hashesVerified || index >= this.chunkCount) return { ok: false, reason: 'UNSOLICITED' };
    const expected = index < this.chunkCount - 1 ? this.chunkBytes : this.meta.meta.size - this.chunkBytes * index;
    if (data.length !== expected) return { ok: false, reason: 'WRONG_DIGEST' };
    const want = this.hashList.subarray(index * HASH_BYTES, (index + 1) * HASH_BYTES);
    if (!bytesEqual(sha256(data), want)) return { ok: false, reason: 'WRONG_DIGEST' };
    return { ok: true };
  }

  /** Takes one chunk in flight, checked against its hash, so a liar is caught at its first bad chunk. */
  acceptChunk(index: number, data: Uint8Array): DownloadCheck {
    if (!this.inFlight.has(index)) return { ok: false, reason: 'UNSOLICITED' };
    const check = this.checkChunk(index, data);
    if (!check.ok) return check;
    this.inFlight.delete(index);
    this.chunks[index] = data.slice();
    this.verifiedCount++;
    this.verifiedBytes += data.length;
    return { ok: true };
  }

  /** The source stopped (dropped, lied, refused): its outstanding chunks go back to the pool. */
  releaseInFlight(indices?: Iterable<number>): void {
    if (!indices) {
      this.inFlight.clear();
      return;
    }
    for (const i of indices) this.inFlight.delete(i);
  }

  /**
   * The verified chunks joined, null unless that is meta.size bytes. The caller still checks the whole
   * against meta.sha256 (assemble does; the engine does it with its async digest).
   */
  joined(): Uint8Array | null {
    const bytes = concatBytes(...(this.chunks as Uint8Array[]));
    return bytes.length === this.meta.meta.size ? bytes : null;
  }

  /**
   * The whole content, checked against meta.sha256 (G8). With every chunk verified against a list that
   * matches chunkRoot, a mismatch here means the signed metadata itself is inconsistent (its uploader
   * lied), not that the last source did.
   */
  assemble(): { ok: true; bytes: Uint8Array } | { ok: false; reason: 'WRONG_DIGEST' } {
    const bytes = this.joined();
    if (!bytes) return { ok: false, reason: 'WRONG_DIGEST' };
    const digest = sha256(bytes);
    const wantB64 = this.meta.meta.sha256;
    // Compare as base64url text: the metadata carries the digest in that form.
    return b64(digest) === wantB64 ? { ok: true, bytes } : { ok: false, reason: 'WRONG_DIGEST' };
  }
}
