// ULIDs on the wire and in the reconciliation index: the 128-bit value as 16 big-endian bytes, so byte
// order equals ULID order equals the stores' key order (SPEC.md G1).
import { ID_BYTES } from '../protocol/peer';

const CROCKFORD = '0123456789ABCDEFGHJKMNPQRSTVWXYZ';
const INDEX = new Int8Array(128).fill(-1);
for (let i = 0; i < CROCKFORD.length; i++) INDEX[CROCKFORD.charCodeAt(i)] = i;

/** Decodes a canonical (uppercase) ULID; null for anything else (the first character must be 0-7). */
export function ulidToBytes(id: string): Uint8Array | null {
  if (id.length !== 26) return null;
  const out = new Uint8Array(ID_BYTES);
  const first = id.charCodeAt(0) < 128 ? INDEX[id.charCodeAt(0)]! : -1;
  if (first < 0 || first > 7) return null;
  // 26 characters carry 130 bits; the top two are zero, so the first character contributes 3 bits.
  let acc = first;
  let bits = 3;
  let o = 0;
  for (let i = 1; i < 26; i++) {
    const c = id.charCodeAt(i);
    const v = c < 128 ? INDEX[c]! : -1;
    if (v < 0) return null;
    acc = (acc << 5) | v;
    bits += 5;
    if (bits >= 8) {
      bits -= 8;
      out[o++] = (acc >> bits) & 0xff;
      acc &= (1 << bits) - 1;
    }
  }
  return out;
}

export function bytesToUlid(bytes: Uint8Array): string {
  let out = CROCKFORD[bytes[0]! >> 5]!;
  let acc = bytes[0]! & 31;
  let bits = 5;
  for (let i = 1; i <= ID_BYTES; i++) {
    while (bits >= 5) {
      bits -= 5;
      out += CROCKFORD[(acc >> bits) & 31];
      acc &= (1 << bits) - 1;
    }
    if (i < ID_BYTES) {
      acc = (acc << 8) | bytes[i]!;
      bits += 8;
    }
  }
  return out;
}

/** The ULID's millisecond timestamp (its first 48 bits). */
export function ulidTime(bytes: Uint8Array): number {
  let t = 0;
  for (let i = 0; i < 6; i++) t = t * 256 + bytes[i]!;
  return t;
}
