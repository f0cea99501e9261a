import * as noble from '@noble/ed25519';
import { sha512 } from '@noble/hashes/sha2.js';
import { StrictReason, strictPrecheck } from './strictPolicy';

noble.hashes.sha512 = sha512;

function concat3(a: Uint8Array, b: Uint8Array, c: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.length + b.length + c.length);
  out.set(a, 0);
  out.set(b, a.length);
  out.set(c, a.length + b.length);
  return out;
}

/**
 * A raw Ed25519 implementation. Backends never decide validity alone: `strictVerify` runs the shared
 * policy first, so every backend accepts the same signatures.
 */
export interface Ed25519Backend {
  readonly name: string;
  /** Plain cofactorless RFC 8032 verification; false for anything it cannot parse. Never throws. */
  verifyRaw(publicKey: Uint8Array, message: Uint8Array, signature: Uint8Array): Promise<boolean>;
  sign(secretKey: Uint8Array, message: Uint8Array): Promise<Uint8Array>;
  publicKeyOf(secretKey: Uint8Array): Promise<Uint8Array>;
}

export type VerifyResult = { ok: true } | { ok: false; reason: StrictReason };

export async function strictVerify(
  backend: Ed25519Backend,
  publicKey: Uint8Array,
  message: Uint8Array,
  signature: Uint8Array,
): Promise<VerifyResult> {
  const pre = strictPrecheck(publicKey, signature);
  if (pre) return { ok: false, reason: pre };
  const ok = await backend.verifyRaw(publicKey, message, signature);
  return ok ? { ok: true } : { ok: false, reason: StrictReason.BAD_SIGNATURE };
}

const ORDER_L = 2n ** 252n + 27742317777372353535851937790883648493n;
const bytesToBigLE = (b: Uint8Array): bigint => {
  let n = 0n;
  for (let i = b.length - 1; i >= 0; i--) n = (n << 8n) | BigInt(b[i]!);
  return n;
};

/**
 * Pure-JS fallback (browsers without WebCrypto Ed25519). noble's own verify checks the cofactored
 * equation even with `zip215: false` (it accepts speccheck vectors 7 and 8, OpenSSL and libsodium do
 * not), so we run the cofactorless check ourselves on noble's point arithmetic: encode([S]B - [k]A) == R.
 */
export const nobleBackend: Ed25519Backend = {
  name: '@noble/ed25519',
  async verifyRaw(publicKey, message, signature) {
    try {
      const A = noble.Point.fromBytes(publicKey, false);
      const S = bytesToBigLE(signature.subarray(32));
      if (S >= ORDER_L) return false;
      const k = noble.etc.mod(bytesToBigLE(sha512(concat3(signature.subarray(0, 32), publicKey, message))), ORDER_L);
      const R = noble.Point.BASE.multiplyUnsafe(S).subtract(A.multiplyUnsafe(k));
      const encoded = R.toBytes();
      for (let i = 0; i < 32; i++) if (encoded[i] !== signature[i]) return false;
      return true;
    } catch {
      return false;
    }
  },
  async sign(secretKey, message) {
    return noble.sign(message, secretKey);
  },
  async publicKeyOf(secretKey) {
    return noble.getPublicKey(secretKey);
  },
};

export function randomSecretKey(): Uint8Array {
  return noble.utils.randomSecretKey();
}

const subtleKeyCacheMax = 1024;

const ED25519 = { name: 'Ed25519' } as const;

/**
 * WebCrypto (browser, also Node 20's globalThis.crypto.subtle). Public keys are cached as CryptoKeys, by
 * their bytes and, once imported, by the key's Uint8Array itself: a batch verifier that hands in the same
 * decoded key object each time (verifyEnvelopes) reaches `subtle.verify` with no lookup by content and no
 * await in between (bench:client profile: building the string key took ~5 us of each envelope).
 */
export function webCryptoBackend(subtle: SubtleCrypto = globalThis.crypto.subtle): Ed25519Backend {
  const verifyKeys = new Map<string, Promise<CryptoKey>>();
  // Weak: an entry lives as long as its caller keeps the key bytes (bounded by that caller's cache).
  const imported = new WeakMap<Uint8Array, CryptoKey>();
  const keyFor = (publicKey: Uint8Array): Promise<CryptoKey> => {
    const k = String.fromCharCode(...publicKey);
    let p = verifyKeys.get(k);
    if (!p) {
      p = subtle.importKey('raw', publicKey as BufferSource, ED25519, false, ['verify']);
      // Bound the cache: drop the oldest entry (Map keeps insertion order).
      if (verifyKeys.size >= subtleKeyCacheMax) verifyKeys.delete(verifyKeys.keys().next().value!);
      verifyKeys.set(k, p);
    }
    return p;
  };
  const verifyWith = (key: CryptoKey, message: Uint8Array, signature: Uint8Array): Promise<boolean> =>
    subtle.verify(ED25519, key, signature as BufferSource, message as BufferSource).catch(() => false);
  return {
    name: 'WebCrypto',
    verifyRaw(publicKey, message, signature) {
      const key = imported.get(publicKey);
      if (key) return verifyWith(key, message, signature);
      return keyFor(publicKey).then(
        (k) => (imported.set(publicKey, k), verifyWith(k, message, signature)),
        () => false,
      );
    },
    // Signing stays in noble: WebCrypto needs PKCS#8 wrapping for raw seeds and gains little for a
    // client that signs a few messages a minute.
    sign: nobleBackend.sign,
    publicKeyOf: nobleBackend.publicKeyOf,
  };
}

let probed: Promise<Ed25519Backend> | null = null;

/** WebCrypto when this runtime supports Ed25519 there, else the pure-JS fallback. */
export function detectBackend(): Promise<Ed25519Backend> {
  probed ??= (async () => {
    try {
      const subtle = globalThis.crypto?.subtle;
      if (!subtle) return nobleBackend;
      // RFC 8032 test 1 public key: importing it proves Ed25519 support.
      await subtle.importKey(
        'raw',
        new Uint8Array([
          0xd7, 0x5a, 0x98, 0x01, 0x82, 0xb1, 0x0a, 0xb7, 0xd5, 0x4b, 0xfe, 0xd3, 0xc9, 0x64, 0x07, 0x3a, 0x0e,
          0xe1, 0x72, 0xf3, 0xda, 0xa6, 0x23, 0x25, 0xaf, 0x02, 0x1a, 0x68, 0xf7, 0x07, 0x51, 0x1a,
        ]),
        { name: 'Ed25519' },
        false,
        ['verify'],
      );
      return webCryptoBackend(subtle);
    } catch {
      return nobleBackend;
    }
  })();
  return probed;
}
