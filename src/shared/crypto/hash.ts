import { sha256 as nobleSha256 } from '@noble/hashes/sha2.js';
import { toB64url } from '../encoding';

export const sha256 = (bytes: Uint8Array): Uint8Array => nobleSha256(bytes);
export const sha256B64 = (bytes: Uint8Array): string => toB64url(nobleSha256(bytes));
/** Incremental hasher, for attachments read in chunks. */
export const createSha256 = () => nobleSha256.create();
