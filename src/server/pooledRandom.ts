// Random bytes for nonces, session ids and peer tokens, drawn from a pool that one randomFillSync call
// refills. Each randomBytes() call is a trip into OpenSSL's DRBG with a lock and a fresh Buffer; a login
// needs four (challenge nonce, session id, peer token, peer id tag), and in a 1,000-login storm those calls
// were 4% of the relay's profile. The bytes are the same CSPRNG's; a byte is handed out once and then zeroed.
import { randomFillSync } from 'node:crypto';

/** Bytes fetched from the CSPRNG at a time. @default 4096 */
const POOL_BYTES = 4096;

export function createPooledRandom(poolBytes = POOL_BYTES): (n: number) => Uint8Array {
  const pool = new Uint8Array(poolBytes);
  let at = poolBytes; // empty: the first call fills it
  return (n) => {
    if (n > poolBytes) return randomFillSync(new Uint8Array(n));
    if (at + n > poolBytes) {
      randomFillSync(pool);
      at = 0;
    }
    const out = pool.slice(at, at + n); // a copy: callers keep it, the pool moves on
    pool.fill(0, at, at + n);
    at += n;
    return out;
  };
}
