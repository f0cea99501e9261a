// The passphrase-protected identity file, shaped like Nostr's NIP-49 `ncryptsec`: scrypt derives a key
// from the NFKC-normalised passphrase, XChaCha20-Poly1305 seals the 32-byte seed. The header (every field
// but the ciphertext) is the AEAD's associated data, so changing the KDF cost, the salt or the public key
// in the file breaks decryption instead of silently weakening or relabelling it.
//
// Import refuses KDF parameters outside a fixed window before deriving anything: a hostile file could
// otherwise ask for gigabytes of memory or minutes of CPU (nostr-tools' decrypt trusts the file's logn).
import { xchacha20poly1305 } from '@noble/ciphers/chacha.js';
import { scryptAsync } from '@noble/hashes/scrypt.js';
import { randomBytes } from '@noble/hashes/utils.js';
import { bytesEqual, fromB64url, toB64url, utf8 } from '../../shared/encoding';
import type { Ed25519Backend } from '../../shared/crypto/ed25519';

export const IDENTITY_FILE_VERSION = 1;

/**
 * scrypt cost. N = 2^17, r = 8 needs 128 MiB and about a second in a browser: memory-hard enough that a
 * leaked file resists guessing, cheap enough to run once per import.
 */
export const DEFAULT_KDF = { logN: 17, r: 8, p: 1 } as const;

/**
 * Import bounds. 128 * r * N bytes of memory: logN 20 with r 8 is 1 GiB, the most a phone can be asked
 * for; below logN 14 (16 MiB) the file would be weak, so it is refused too (nobody we know wrote it).
 */
export const KDF_BOUNDS = { minLogN: 14, maxLogN: 20, maxR: 16, maxP: 4, maxMemoryBytes: 1024 * 1024 * 1024 } as const;

export const IdentityFileReason = {
  NOT_AN_IDENTITY_FILE: 'NOT_AN_IDENTITY_FILE',
  UNSUPPORTED_VERSION: 'UNSUPPORTED_VERSION',
  KDF_REFUSED: 'KDF_REFUSED',
  WRONG_PASSPHRASE: 'WRONG_PASSPHRASE',
  KEY_MISMATCH: 'KEY_MISMATCH',
} as const;
export type IdentityFileReason = (typeof IdentityFileReason)[keyof typeof IdentityFileReason];

export interface IdentityFile {
  'peerchat-identity': typeof IDENTITY_FILE_VERSION;
  kdf: 'scrypt';
  logN: number;
  r: number;
  p: number;
  salt: string;
  nonce: string;
  publicKey: string;
  name: string;
  ciphertext: string;
}

export type ImportResult =
  | { ok: true; secretKey: Uint8Array; publicKey: string; name: string }
  | { ok: false; reason: IdentityFileReason; message: string };

function header(f: Omit<IdentityFile, 'ciphertext'>): Uint8Array {
  // Fixed field order: the AAD must be byte-identical on export and import.
  return utf8(JSON.stringify([f['peerchat-identity'], f.kdf, f.logN, f.r, f.p, f.salt, f.nonce, f.publicKey, f.name]));
}

const deriveKey = (passphrase: string, salt: Uint8Array, kdf: { logN: number; r: number; p: number }, onProgress?: (f: number) => void) =>
  scryptAsync(utf8(passphrase.normalize('NFKC')), salt, {
    N: 2 ** kdf.logN,
    r: kdf.r,
    p: kdf.p,
    dkLen: 32,
    maxmem: KDF_BOUNDS.maxMemoryBytes + 1024 * 1024,
    ...(onProgress ? { onProgress } : {}),
  });

export async function exportIdentity(opts: {
  secretKey: Uint8Array;
  publicKey: string;
  name: string;
  passphrase: string;
  kdf?: { logN: number; r: number; p: number };
  onProgress?: (fraction: number) => void;
}): Promise<IdentityFile> {
  const kdf = opts.kdf ?? DEFAULT_KDF;
  const salt = randomBytes(16);
  const nonce = randomBytes(24);
  const head = {
    'peerchat-identity': IDENTITY_FILE_VERSION,
    kdf: 'scrypt',
    ...kdf,
    salt: toB64url(salt),
    nonce: toB64url(nonce),
    publicKey: opts.publicKey,
    name: opts.name,
  } as const;
  const key = await deriveKey(opts.passphrase, salt, kdf, opts.onProgress);
  const ct = xchacha20poly1305(key, nonce, header(head)).encrypt(opts.secretKey);
  return { ...head, ciphertext: toB64url(ct) };
}

const fail = (reason: IdentityFileReason, message: string): ImportResult => ({ ok: false, reason, message });

/** Parses and decrypts an identity file's text. Never throws; every refusal has a reason and a sentence. */
export async function importIdentity(
  text: string,
  passphrase: string,
  backend: Ed25519Backend,
  onProgress?: (fraction: number) => void,
): Promise<ImportResult> {
  let f: Partial<IdentityFile>;
  try {
    f = JSON.parse(text) as Partial<IdentityFile>;
  } catch {
    return fail('NOT_AN_IDENTITY_FILE', 'This file is not a peerchat identity file.');
  }
  if (typeof f !== 'object' || f === null || !('peerchat-identity' in f)) {
    return fail('NOT_AN_IDENTITY_FILE', 'This file is not a peerchat identity file.');
  }
  if (f['peerchat-identity'] !== IDENTITY_FILE_VERSION || f.kdf !== 'scrypt') {
    return fail('UNSUPPORTED_VERSION', 'This identity file was made by a newer or unknown version of peerchat.');
  }
  const { logN, r, p } = f;
  if (
    !Number.isInteger(logN) || !Number.isInteger(r) || !Number.isInteger(p) ||
    logN! < KDF_BOUNDS.minLogN || logN! > KDF_BOUNDS.maxLogN || r! < 1 || r! > KDF_BOUNDS.maxR || p! < 1 || p! > KDF_BOUNDS.maxP ||
    128 * r! * 2 ** logN! > KDF_BOUNDS.maxMemoryBytes
  ) {
    return fail('KDF_REFUSED', `The file asks for key-derivation settings outside what this app accepts (logN ${String(logN)}, r ${String(r)}, p ${String(p)}).`);
  }
  const salt = typeof f.salt === 'string' ? fromB64url(f.salt) : null;
  const nonce = typeof f.nonce === 'string' ? fromB64url(f.nonce) : null;
  const ct = typeof f.ciphertext === 'string' ? fromB64url(f.ciphertext) : null;
  if (!salt || salt.length !== 16 || !nonce || nonce.length !== 24 || !ct || ct.length !== 48 ||
      typeof f.publicKey !== 'string' || typeof f.name !== 'string') {
    return fail('NOT_AN_IDENTITY_FILE', 'This identity file is damaged.');
  }
  const key = await deriveKey(passphrase, salt, { logN: logN!, r: r!, p: p! }, onProgress);
  let secretKey: Uint8Array;
  try {
    secretKey = xchacha20poly1305(key, nonce, header(f as IdentityFile)).decrypt(ct);
  } catch {
    // Poly1305 cannot tell a wrong passphrase from a tampered header; the first is by far the likelier.
    return fail('WRONG_PASSPHRASE', 'Wrong passphrase (or the file was altered).');
  }
  const derived = toB64url(await backend.publicKeyOf(secretKey));
  if (!bytesEqual(utf8(derived), utf8(f.publicKey))) {
    return fail('KEY_MISMATCH', 'The key inside the file does not match the public key it names.');
  }
  return { ok: true, secretKey, publicKey: derived, name: f.name };
}
