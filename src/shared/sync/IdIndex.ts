// The reconciliation index: the sorted set of message ids a peer holds, with what range fingerprints need
// (SPEC.md G4). Packed in two typed arrays (32 bytes per id) so 100k messages cost ~3 MiB, not ~30.
import { sha256 } from '../crypto/hash';
import { type Bound, FINGERPRINT_BYTES, ID_BYTES } from '../protocol/peer';
import { bytesToUlid, ulidToBytes } from './ulidBytes';

export class IdIndex {
  private keys = new Uint8Array(ID_BYTES * 64);
  /** Per id: the first 16 bytes of SHA-256(id) as four little-endian u32 limbs (the summed element). */
  private limbs = new Uint32Array(4 * 64);
  private count = 0;
  /**
   * Ids summed into fingerprints so far: the reconciliation work done, a deterministic measure of CPU that
   * tests can bound (G11) where wall time would depend on the machine.
   */
  scanned = 0;

  get size(): number {
    return this.count;
  }

  /** Adds a ULID (string or 16 bytes); false when it was already present or is not a ULID. */
  add(id: string | Uint8Array): boolean {
    const key = typeof id === 'string' ? ulidToBytes(id) : id;
    if (!key || key.length !== ID_BYTES) return false;
    // Ids mostly arrive in order (live messages), so the append case skips the search.
    const at = this.count > 0 && this.cmpAt(this.count - 1, key) < 0 ? this.count : this.lowerBound(key);
    if (at < this.count && this.cmpAt(at, key) === 0) return false;
    this.grow();
    this.keys.copyWithin((at + 1) * ID_BYTES, at * ID_BYTES, this.count * ID_BYTES);
    this.limbs.copyWithin((at + 1) * 4, at * 4, this.count * 4);
    this.setAt(at, key);
    this.count++;
    return true;
  }

  /**
   * Adds a batch of ULIDs in one pass: each id already held moves once, however many land below it. A
   * catch-up stores its batches newest first, so adding them one by one moved the whole index per id
   * (10,000 ids: ~50 million id moves). Returns how many were new.
   */
  addMany(ids: readonly (string | Uint8Array)[]): number {
    const fresh: Uint8Array[] = [];
    for (const id of ids) {
      const key = typeof id === 'string' ? ulidToBytes(id) : id;
      if (key && key.length === ID_BYTES && !this.has(key)) fresh.push(key);
    }
    fresh.sort(compareBytes);
    const add = fresh.filter((k, i) => i === 0 || compareBytes(fresh[i - 1]!, k) !== 0);
    if (add.length === 0) return 0;
    this.grow(add.length);
    // From the top down: the ids above the j-th new one shift up by j + 1 places, as one block.
    let end = this.count;
    for (let j = add.length - 1; j >= 0; j--) {
      const at = this.lowerBound(add[j]!, end);
      this.keys.copyWithin((at + j + 1) * ID_BYTES, at * ID_BYTES, end * ID_BYTES);
      this.limbs.copyWithin((at + j + 1) * 4, at * 4, end * 4);
      this.setAt(at + j, add[j]!);
      end = at;
    }
    this.count += add.length;
    return add.length;
  }

  has(id: string | Uint8Array): boolean {
    const key = typeof id === 'string' ? ulidToBytes(id) : id;
    if (!key) return false;
    const at = this.lowerBound(key);
    return at < this.count && this.cmpAt(at, key) === 0;
  }

  clear(): void {
    this.count = 0;
  }

  /**
   * Removes these ids (those present; the rest are ignored) in one pass over the index: what a store
   * reports it evicted (H13). Evictions are the oldest ids, so the usual case is one move of the rest.
   */
  remove(ids: readonly (string | Uint8Array)[]): number {
    const at: number[] = [];
    for (const id of ids) {
      const key = typeof id === 'string' ? ulidToBytes(id) : id;
      if (!key || key.length !== ID_BYTES) continue;
      const i = this.lowerBound(key);
      if (i < this.count && this.cmpAt(i, key) === 0) at.push(i);
    }
    if (at.length === 0) return 0;
    at.sort((a, b) => a - b);
    // The same id twice in the report is removed once.
    for (let k = at.length - 1; k > 0; k--) if (at[k] === at[k - 1]) at.splice(k, 1);
    let write = at[0]!;
    const removed = at.length;
    for (let k = 0; k < at.length; k++) {
      const from = at[k]! + 1;
      const to = k + 1 < at.length ? at[k + 1]! : this.count;
      if (to > from) {
        this.keys.copyWithin(write * ID_BYTES, from * ID_BYTES, to * ID_BYTES);
        this.limbs.copyWithin(write * 4, from * 4, to * 4);
        write += to - from;
      }
    }
    this.count -= removed;
    return removed;
  }

  /** The index of the first id >= bound (a zero-padded prefix); size for +infinity. */
  lowerBound(bound: Bound, end = this.count): number {
    if (bound === null) return end;
    let lo = 0;
    let hi = end;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.cmpAt(mid, bound) < 0) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  /** A view of the i-th id's 16 bytes (valid until the next add). */
  key(i: number): Uint8Array {
    return this.keys.subarray(i * ID_BYTES, (i + 1) * ID_BYTES);
  }

  id(i: number): string {
    return bytesToUlid(this.key(i));
  }

  /** Copies of the ids in [lo, hi). */
  keysIn(lo: number, hi: number): Uint8Array[] {
    const out: Uint8Array[] = [];
    for (let i = lo; i < hi; i++) out.push(this.key(i).slice());
    return out;
  }

  /**
   * Fingerprint of the ids in [lo, hi): SHA-256(sum of element hashes mod 2^128 || count) truncated to
   * 16 bytes. A sum (not XOR) of hashed ids, as in negentropy: order-independent, incremental, and not
   * cancelled by pairs. Hashing the ids matters because monotonic ULIDs minted in the same millisecond
   * are consecutive numbers, whose plain sums collide ({a, a+3} and {a+1, a+2}).
   */
  fingerprint(lo: number, hi: number): Uint8Array {
    let s0 = 0;
    let s1 = 0;
    let s2 = 0;
    let s3 = 0;
    if (hi > lo) this.scanned += hi - lo;
    for (let i = lo; i < hi; i++) {
      const b = i * 4;
      // Carry through four 32-bit limbs using float arithmetic below 2^53.
      s0 += this.limbs[b]!;
      s1 += this.limbs[b + 1]!;
      s2 += this.limbs[b + 2]!;
      s3 += this.limbs[b + 3]!;
      if ((i & 0xffff) === 0xffff) [s0, s1, s2, s3] = normalize(s0, s1, s2, s3);
    }
    [s0, s1, s2, s3] = normalize(s0, s1, s2, s3);
    const buf = new Uint8Array(24);
    const dv = new DataView(buf.buffer);
    dv.setUint32(0, s0, true);
    dv.setUint32(4, s1, true);
    dv.setUint32(8, s2, true);
    dv.setUint32(12, s3, true);
    dv.setFloat64(16, hi - lo, true);
    return sha256(buf).subarray(0, FINGERPRINT_BYTES);
  }

  private cmpAt(i: number, bound: Uint8Array): number {
    const base = i * ID_BYTES;
    const k = this.keys;
    for (let j = 0; j < ID_BYTES; j++) {
      const x = k[base + j]!;
      const y = bound[j] ?? 0;
      if (x !== y) return x - y;
    }
    return 0;
  }

  private grow(extra = 1): void {
    if ((this.count + extra) * ID_BYTES <= this.keys.length) return;
    let n = this.keys.length / ID_BYTES;
    while (n < this.count + extra) n *= 2;
    const keys = new Uint8Array(n * ID_BYTES);
    keys.set(this.keys);
    this.keys = keys;
    const limbs = new Uint32Array(n * 4);
    limbs.set(this.limbs);
    this.limbs = limbs;
  }

  private setAt(at: number, key: Uint8Array): void {
    this.keys.set(key, at * ID_BYTES);
    const h = sha256(key);
    const dv = new DataView(h.buffer, h.byteOffset, 16);
    for (let j = 0; j < 4; j++) this.limbs[at * 4 + j] = dv.getUint32(j * 4, true);
  }
}

const TWO32 = 4294967296;
function normalize(s0: number, s1: number, s2: number, s3: number): [number, number, number, number] {
  let c = Math.floor(s0 / TWO32);
  s0 -= c * TWO32;
  s1 += c;
  c = Math.floor(s1 / TWO32);
  s1 -= c * TWO32;
  s2 += c;
  c = Math.floor(s2 / TWO32);
  s2 -= c * TWO32;
  s3 += c;
  s3 %= TWO32;
  return [s0, s1, s2, s3];
}

function compareBytes(a: Uint8Array, b: Uint8Array): number {
  for (let i = 0; i < ID_BYTES; i++) if (a[i] !== b[i]) return a[i]! - b[i]!;
  return 0;
}
