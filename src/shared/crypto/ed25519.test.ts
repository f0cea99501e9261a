import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { fromHex, utf8 } from '../encoding';
import { type Ed25519Backend, nobleBackend, randomSecretKey, strictVerify, webCryptoBackend } from './ed25519';
import { nodeBackend } from './nodeBackend';

const vectors = JSON.parse(readFileSync(new URL('./fixtures/ed25519-speccheck.json', import.meta.url), 'utf8'));
const backends: Ed25519Backend[] = [nodeBackend(), webCryptoBackend(), nobleBackend];

for (const backend of backends) {
  describe(`C1 strict Ed25519 policy on ${backend.name}`, () => {
    it('C1 accepts exactly the speccheck vectors libsodium accepts (only vector 6)', async () => {
      const accepted: number[] = [];
      for (const c of vectors.cases) {
        const r = await strictVerify(backend, fromHex(c.pub_key), fromHex(c.message), fromHex(c.signature));
        if (r.ok) accepted.push(c.index);
      }
      assert.deepEqual(accepted, [6]);
    });

    it('C2 signs and verifies; a flipped bit in message or signature fails', async () => {
      const sk = randomSecretKey();
      const pk = await backend.publicKeyOf(sk);
      const msg = utf8('hello peerchat');
      const sig = await backend.sign(sk, msg);
      assert.deepEqual(await strictVerify(backend, pk, msg, sig), { ok: true });
      const badMsg = msg.slice();
      badMsg[0]! ^= 1;
      assert.equal((await strictVerify(backend, pk, badMsg, sig)).ok, false);
      const badSig = sig.slice();
      badSig[5]! ^= 1;
      assert.equal((await strictVerify(backend, pk, msg, badSig)).ok, false);
    });
  });
}

it('C3 all backends derive the same public key and interoperate', async () => {
  const sk = randomSecretKey();
  const keys = await Promise.all(backends.map((b) => b.publicKeyOf(sk)));
  for (const k of keys) assert.deepEqual(k, keys[0]);
  const msg = utf8('cross');
  for (const signer of backends) {
    const sig = await signer.sign(sk, msg);
    for (const verifier of backends) assert.equal((await strictVerify(verifier, keys[0]!, msg, sig)).ok, true);
  }
});
