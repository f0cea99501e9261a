// Stands in for src/shared/crypto/nodeBackend in browser bundles (harness.ts `replace`): test fixtures
// that sign with node:crypto sign with Chromium's native WebCrypto instead. Native signing matters: a
// conformance case mints 10,005 envelopes (two signatures each), ~33 s with noble's JS signing.
import { fromHex } from '../../../src/shared/encoding';
import { type Ed25519Backend, webCryptoBackend } from '../../../src/shared/crypto/ed25519';

/** PKCS#8 header for a raw 32-byte Ed25519 seed (RFC 8410). */
const PKCS8_ED25519 = fromHex('302e020100300506032b657004220420');

export function nodeBackend(): Ed25519Backend {
  const subtle = globalThis.crypto.subtle;
  const base = webCryptoBackend(subtle);
  const signingKeys = new Map<string, Promise<CryptoKey>>();
  return {
    ...base,
    name: 'WebCrypto (native signing)',
    async sign(secretKey, message) {
      const k = String.fromCharCode(...secretKey);
      let key = signingKeys.get(k);
      if (!key) {
        const der = new Uint8Array(PKCS8_ED25519.length + 32);
        der.set(PKCS8_ED25519);
        der.set(secretKey, PKCS8_ED25519.length);
        key = subtle.importKey('pkcs8', der, { name: 'Ed25519' }, false, ['sign']);
        signingKeys.set(k, key);
      }
      return new Uint8Array(await subtle.sign({ name: 'Ed25519' }, await key, message as BufferSource));
    },
  };
}
