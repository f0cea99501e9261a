import assert from 'node:assert/strict';
import { test } from 'node:test';
import { nobleBackend, randomSecretKey } from '../../shared/crypto/ed25519';
import { toB64url } from '../../shared/encoding';
import { exportIdentity, importIdentity } from './identityFile';

// The minimum accepted cost keeps this test fast; the app exports at DEFAULT_KDF.
const FAST = { logN: 14, r: 8, p: 1 };

async function fixture() {
  const secretKey = randomSecretKey();
  const publicKey = toB64url(await nobleBackend.publicKeyOf(secretKey));
  const file = await exportIdentity({ secretKey, publicKey, name: 'alice', passphrase: 'correct horse battery', kdf: FAST });
  return { secretKey, publicKey, file };
}

test('Identity file: export then import gives back the same seed, key and name', async () => {
  const { secretKey, publicKey, file } = await fixture();
  const r = await importIdentity(JSON.stringify(file), 'correct horse battery', nobleBackend);
  assert.equal(r.ok, true);
  if (!r.ok) return;
  assert.deepEqual(r.secretKey, secretKey);
  assert.equal(r.publicKey, publicKey);
  assert.equal(r.name, 'alice');
});

test('Identity file: a wrong passphrase is refused with WRONG_PASSPHRASE', async () => {
  const { file } = await fixture();
  const r = await importIdentity(JSON.stringify(file), 'wrong horse', nobleBackend);
  assert.equal(r.ok, false);
  if (!r.ok) assert.equal(r.reason, 'WRONG_PASSPHRASE');
});

test('Identity file: absurd KDF parameters are refused before any derivation', async () => {
  const { file } = await fixture();
  for (const bad of [{ logN: 30 }, { logN: 21 }, { r: 1000 }, { p: 64 }, { logN: 8 }, { logN: 20, r: 16 }]) {
    const started = Date.now();
    const r = await importIdentity(JSON.stringify({ ...file, ...bad }), 'correct horse battery', nobleBackend);
    assert.equal(r.ok, false);
    if (!r.ok) assert.equal(r.reason, 'KDF_REFUSED', JSON.stringify(bad));
    assert.ok(Date.now() - started < 1000, 'refused without deriving');
  }
});

test('Identity file: a changed header (cheaper KDF, other name) breaks decryption', async () => {
  const { file } = await fixture();
  const r = await importIdentity(JSON.stringify({ ...file, name: 'mallory' }), 'correct horse battery', nobleBackend);
  assert.equal(r.ok, false);
  const r2 = await importIdentity('{"hello":1}', 'x', nobleBackend);
  assert.equal(!r2.ok && r2.reason, 'NOT_AN_IDENTITY_FILE');
});
