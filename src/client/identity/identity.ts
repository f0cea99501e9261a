// The browser's identity: an Ed25519 seed made here, kept in IndexedDB, never sent anywhere.
import { detectBackend, randomSecretKey } from '../../shared/crypto/ed25519';
import { fingerprint } from '../../shared/crypto/signing';
import { fromB64url, toB64url } from '../../shared/encoding';
import { type IdentityRow, appDb } from '../appDb';

export async function createIdentity(name: string): Promise<IdentityRow> {
  const secretKey = randomSecretKey();
  const backend = await detectBackend();
  const row: IdentityRow = { id: 'self', secretKey, publicKey: toB64url(await backend.publicKeyOf(secretKey)), name, createdAt: Date.now() };
  await appDb().identity.put(row);
  await requestPersistence();
  return row;
}

export async function replaceIdentity(secretKey: Uint8Array, publicKey: string, name: string): Promise<void> {
  await appDb().identity.put({ id: 'self', secretKey, publicKey, name, createdAt: Date.now() });
  await requestPersistence();
}

export type Persistence = 'persisted' | 'best-effort' | 'unsupported';

/** Asks the browser not to evict this site's storage under pressure (the identity lives there). */
export async function requestPersistence(): Promise<Persistence> {
  if (!navigator.storage?.persist) return 'unsupported';
  try {
    if (await navigator.storage.persisted()) return 'persisted';
    return (await navigator.storage.persist()) ? 'persisted' : 'best-effort';
  } catch {
    return 'best-effort';
  }
}

export function fingerprintOfKey(publicKey: string): string {
  const b = fromB64url(publicKey);
  return b ? fingerprint(b) : '????-????';
}
