// The one Ed25519 validity policy every verifier in peerchat meets (SPEC.md C1-C4).
//
// Verifiers disagree on edge cases (ed25519-speccheck): OpenSSL and WebCrypto accept small-order keys,
// ZIP-215 accepts non-canonical encodings. Peers that disagree on validity would end up with different
// histories, so before any backend runs we apply libsodium's byte-level rules, which makes every backend
// (node:crypto, WebCrypto, @noble/ed25519) accept exactly what libsodium accepts.

export const StrictReason = {
  BAD_LENGTH: 'BAD_LENGTH',
  NON_CANONICAL_S: 'NON_CANONICAL_S',
  SMALL_ORDER_R: 'SMALL_ORDER_R',
  NON_CANONICAL_KEY: 'NON_CANONICAL_KEY',
  SMALL_ORDER_KEY: 'SMALL_ORDER_KEY',
  BAD_SIGNATURE: 'BAD_SIGNATURE',
} as const;
export type StrictReason = (typeof StrictReason)[keyof typeof StrictReason];

// Group order L = 2^252 + 27742317777372353535851937790883648493, little-endian.
const L = [
  0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9, 0xde, 0x14, 0, 0, 0, 0,
  0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10,
];

// Encodings of the points of order 1, 2, 4 and 8 (and their non-canonical aliases p, p+1), compared with
// the sign bit ignored, as libsodium's ge25519_has_small_order does.
const SMALL_ORDER: readonly number[][] = [
  new Array(32).fill(0),
  [1, ...new Array(31).fill(0)],
  [
    0x26, 0xe8, 0x95, 0x8f, 0xc2, 0xb2, 0x27, 0xb0, 0x45, 0xc3, 0xf4, 0x89, 0xf2, 0xef, 0x98, 0xf0, 0xd5, 0xdf,
    0xac, 0x05, 0xd3, 0xc6, 0x33, 0x39, 0xb1, 0x38, 0x02, 0x88, 0x6d, 0x53, 0xfc, 0x05,
  ],
  [
    0xc7, 0x17, 0x6a, 0x70, 0x3d, 0x4d, 0xd8, 0x4f, 0xba, 0x3c, 0x0b, 0x76, 0x0d, 0x10, 0x67, 0x0f, 0x2a, 0x20,
    0x53, 0xfa, 0x2c, 0x39, 0xcc, 0xc6, 0x4e, 0xc7, 0xfd, 0x77, 0x92, 0xac, 0x03, 0x7a,
  ],
  [0xec, ...new Array(30).fill(0xff), 0x7f],
  [0xed, ...new Array(30).fill(0xff), 0x7f],
  [0xee, ...new Array(30).fill(0xff), 0x7f],
];

function hasSmallOrder(p: Uint8Array): boolean {
  for (const bad of SMALL_ORDER) {
    // Keys and signatures are public: no need for constant time, and almost every one differs here.
    if (p[0] !== bad[0]) continue;
    let diff = 0;
    for (let i = 0; i < 31; i++) diff |= p[i]! ^ bad[i]!;
    diff |= (p[31]! & 0x7f) ^ bad[31]!;
    if (diff === 0) return true;
  }
  return false;
}

/** y >= p (2^255 - 19) is a non-canonical field element. Sign bit ignored. */
function isCanonicalPoint(p: Uint8Array): boolean {
  if ((p[31]! & 0x7f) !== 0x7f) return true;
  for (let i = 30; i >= 1; i--) if (p[i] !== 0xff) return true;
  return p[0]! < 0xed;
}

/** S < L. */
function isCanonicalScalar(s: Uint8Array): boolean {
  for (let i = 31; i >= 0; i--) {
    if (s[i]! < L[i]!) return true;
    if (s[i]! > L[i]!) return false;
  }
  return false; // S == L
}

/** Checks a public key alone (used at login, before any signature is considered). */
export function checkPublicKey(publicKey: Uint8Array): StrictReason | null {
  if (publicKey.length !== 32) return StrictReason.BAD_LENGTH;
  if (!isCanonicalPoint(publicKey)) return StrictReason.NON_CANONICAL_KEY;
  if (hasSmallOrder(publicKey)) return StrictReason.SMALL_ORDER_KEY;
  return null;
}

/**
 * The byte-level half of strict verification. Returns null when the backend may run; the backend then does
 * cofactorless verification, comparing the encoding of R (which rejects a non-canonical R).
 */
export function strictPrecheck(publicKey: Uint8Array, signature: Uint8Array): StrictReason | null {
  return checkSignature(signature) ?? checkPublicKey(publicKey);
}

/** The signature's half of `strictPrecheck` (a batch verifier checks each key once, each signature each time). */
export function checkSignature(signature: Uint8Array): StrictReason | null {
  if (signature.length !== 64) return StrictReason.BAD_LENGTH;
  if (!isCanonicalScalar(signature.subarray(32))) return StrictReason.NON_CANONICAL_S;
  if (hasSmallOrder(signature.subarray(0, 32))) return StrictReason.SMALL_ORDER_R;
  return null;
}
