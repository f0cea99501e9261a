// Byte <-> text helpers that work the same in Node and in the browser (no Buffer).

const B64URL = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
const B64URL_INDEX = new Int16Array(128).fill(-1);
for (let i = 0; i < B64URL.length; i++) B64URL_INDEX[B64URL.charCodeAt(i)] = i;

/** The platform's own encoder (TC39 `Uint8Array.prototype.toBase64`: Node 25+, current browsers), when it has one. */
const nativeToBase64 = (Uint8Array.prototype as { toBase64?: (o: { alphabet: 'base64url'; omitPadding: boolean }) => string }).toBase64;
const B64URL_OPTIONS = { alphabet: 'base64url', omitPadding: true } as const;

/**
 * Unpadded base64url (RFC 4648 §5), the encoding of every key, signature and digest on the wire. Native
 * where the platform has it: the portable loop builds its result from ~90 string pieces per signature, the
 * relay's largest source of garbage under a post stream (five calls per post; bench:relay heap profile).
 */
export const toB64url: (bytes: Uint8Array) => string = nativeToBase64
  ? (bytes) => nativeToBase64.call(bytes, B64URL_OPTIONS)
  : portableToB64url;

/** toB64url without the platform's encoder (exported for the test that holds both to the same output). */
export function portableToB64url(bytes: Uint8Array): string {
  let out = '';
  let i = 0;
  for (; i + 2 < bytes.length; i += 3) {
    const n = (bytes[i]! << 16) | (bytes[i + 1]! << 8) | bytes[i + 2]!;
    out += B64URL[n >> 18]! + B64URL[(n >> 12) & 63]! + B64URL[(n >> 6) & 63]! + B64URL[n & 63]!;
  }
  const rest = bytes.length - i;
  if (rest === 1) {
    const n = bytes[i]! << 16;
    out += B64URL[n >> 18]! + B64URL[(n >> 12) & 63]!;
  } else if (rest === 2) {
    const n = (bytes[i]! << 16) | (bytes[i + 1]! << 8);
    out += B64URL[n >> 18]! + B64URL[(n >> 12) & 63]! + B64URL[(n >> 6) & 63]!;
  }
  return out;
}

/**
 * Strict unpadded base64url decoding: returns null for any character outside the alphabet, an
 * impossible length, or non-zero trailing bits, so one byte string has exactly one text form
 * (a signature cannot be re-encoded into a second valid spelling).
 */
export function fromB64url(text: string): Uint8Array | null {
  if (text.length % 4 === 1) return null;
  const out = new Uint8Array(Math.floor((text.length * 3) / 4));
  let bits = 0;
  let acc = 0;
  let o = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    const v = c < 128 ? B64URL_INDEX[c]! : -1;
    if (v < 0) return null;
    acc = (acc << 6) | v;
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out[o++] = (acc >> bits) & 0xff;
    }
  }
  if (bits > 0 && (acc & ((1 << bits) - 1)) !== 0) return null;
  return out;
}

export function toHex(bytes: Uint8Array): string {
  let out = '';
  for (const b of bytes) out += b.toString(16).padStart(2, '0');
  return out;
}

export function fromHex(hex: string): Uint8Array {
  if (hex.length % 2 !== 0 || /[^0-9a-fA-F]/.test(hex)) throw new Error('invalid hex');
  const out = new Uint8Array(hex.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(hex.slice(i * 2, i * 2 + 2), 16);
  return out;
}

const CROCKFORD = '0123456789ABCDEFGHJKMNPQRSTVWXYZ';

/** Crockford base32 without padding: used for human-facing fingerprints. */
export function toBase32(bytes: Uint8Array): string {
  let out = '';
  let acc = 0;
  let bits = 0;
  for (const b of bytes) {
    acc = (acc << 8) | b;
    bits += 8;
    while (bits >= 5) {
      bits -= 5;
      out += CROCKFORD[(acc >> bits) & 31];
    }
    acc &= (1 << bits) - 1;
  }
  if (bits > 0) out += CROCKFORD[(acc << (5 - bits)) & 31];
  return out;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder('utf-8', { fatal: true });
export const utf8 = (text: string): Uint8Array => encoder.encode(text);
/**
 * `utf8` for code that encodes thousands of short strings in a row: each is written with `encodeInto`
 * into a shared chunk and returned as its own view of it. A chunk is never written twice, so a view stays
 * what it was for as long as it is held (nothing is reused). `TextEncoder.encode` allocates an ArrayBuffer
 * per call: in bench:client's verify worker that was the largest JS cost beside the two verifies.
 * `chunkBytes` @default 65536; a chunk lives as long as a view of it.
 */
export function utf8Batch(chunkBytes = 65_536): (text: string) => Uint8Array {
  let chunk = new Uint8Array(0);
  let used = 0;
  return (text) => {
    // At most 3 bytes per UTF-16 code unit (a surrogate pair is 2 units, 4 bytes).
    const max = text.length * 3;
    if (chunk.length - used < max) {
      chunk = new Uint8Array(Math.max(chunkBytes, max));
      used = 0;
    }
    const { written } = encoder.encodeInto(text, chunk.subarray(used));
    const out = chunk.subarray(used, used + written);
    used += written;
    return out;
  };
}
/** Throws on invalid UTF-8 (fatal decoder). */
export const fromUtf8 = (bytes: Uint8Array): string => decoder.decode(bytes);

export function concatBytes(...parts: Uint8Array[]): Uint8Array {
  let len = 0;
  for (const p of parts) len += p.length;
  const out = new Uint8Array(len);
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

export function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a[i]! ^ b[i]!;
  return diff === 0;
}
