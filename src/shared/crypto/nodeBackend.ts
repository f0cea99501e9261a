// node:crypto (OpenSSL) backend for the relay and the virtual client: ~2x WebCrypto's verify rate because
// KeyObjects are cached. Only Node entry points import this file.
import { createPrivateKey, createPublicKey, sign, verify, type KeyObject } from 'node:crypto';
import { toB64url } from '../encoding';
import type { Ed25519Backend } from './ed25519';

/** Default bound on cached public KeyObjects (~0.7 KiB of RSS each, measured). */
const KEY_CACHE_MAX = 4096;

export interface NodeBackendOptions {
  /**
   * Most public KeyObjects kept, least recently used dropped first. A relay verifies each login's key once
   * and then only active authors' keys: a small cache keeps the hot ones without a KeyObject per
   * connection. @default 4096
   */
  maxCachedKeys?: number;
}

export function nodeBackend(opts: NodeBackendOptions = {}): Ed25519Backend {
  const maxCachedKeys = Math.max(1, opts.maxCachedKeys ?? KEY_CACHE_MAX);
  const publicKeys = new Map<string, KeyObject>();
  const privateKeys = new Map<string, KeyObject>();
  const publicKeyObject = (publicKey: Uint8Array): KeyObject => {
    const x = toB64url(publicKey);
    let key = publicKeys.get(x);
    if (key) {
      publicKeys.delete(x); // re-inserted last: Map order is the recency order
    } else {
      key = createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x }, format: 'jwk' });
      if (publicKeys.size >= maxCachedKeys) publicKeys.delete(publicKeys.keys().next().value!);
    }
    publicKeys.set(x, key);
    return key;
  };
  const privateKeyObject = (secretKey: Uint8Array): KeyObject => {
    const d = toB64url(secretKey);
    let key = privateKeys.get(d);
    if (!key) {
      const jwk = createPrivateKey({
        key: Buffer.concat([Buffer.from('302e020100300506032b657004220420', 'hex'), secretKey]),
        format: 'der',
        type: 'pkcs8',
      });
      key = jwk;
      if (privateKeys.size >= 16) privateKeys.delete(privateKeys.keys().next().value!);
      privateKeys.set(d, key);
    }
    return key;
  };
  return {
    name: 'node:crypto',
    async verifyRaw(publicKey, message, signature) {
      try {
        return verify(null, message, publicKeyObject(publicKey), signature);
      } catch {
        return false;
      }
    },
    async sign(secretKey, message) {
      return new Uint8Array(sign(null, message, privateKeyObject(secretKey)));
    },
    async publicKeyOf(secretKey) {
      const jwk = createPublicKey(privateKeyObject(secretKey)).export({ format: 'jwk' });
      return new Uint8Array(Buffer.from(jwk.x!, 'base64url'));
    },
  };
}
