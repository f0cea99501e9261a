import { sha256 as nobleSha256 } from '@noble/hashes/sha2.js';
import { toB64url } from '../encoding';

export const sha256 = (bytes: Uint8Array): Uint8Array => nobleSha256(bytes);
export const sha256B64 = (bytes: Uint8Array): string => toB64url(nobleSha256(bytes));
/** Incremental hasher, for attachments read in chunks. */
export const createSha256 = () => nobleSha256.create();

/** An async SHA-256, injected where bulk content is hashed (the sync engine's `digest`). */
export type Digest = (bytes: Uint8Array) => Promise<Uint8Array>;

/**
 * SHA-256 through WebCrypto where the platform has it (browsers, Node), else the JS one. Native hashing of
 * a 10 MB photo takes milliseconds; the JS hash took about a second on a loaded machine (bench:media).
 */
export const webDigest: Digest = async (bytes) => {
  const subtle = globalThis.crypto?.subtle;
  if (!subtle) return nobleSha256(bytes);
  return new Uint8Array(await subtle.digest('SHA-256', bytes as Uint8Array<ArrayBuffer>));
};

/** The JS hash as a Digest: resolves in a microtask, so a simulator's step sees it finish (G12). */
export const jsDigest: Digest = async (bytes) => nobleSha256(bytes);
