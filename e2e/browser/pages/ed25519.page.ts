// Page entry: the shared Ed25519 policy (SPEC.md C1-C3) on the browser's backends: WebCrypto as
// Chromium provides it, and the @noble/ed25519 fallback for browsers without it.
import { fromHex, utf8 } from '../../../src/shared/encoding';
import { type Ed25519Backend, detectBackend, nobleBackend, randomSecretKey, strictVerify, webCryptoBackend } from '../../../src/shared/crypto/ed25519';
import vectors from '../../../src/shared/crypto/fixtures/ed25519-speccheck.json';
import { type PageCase, registerCases } from '../pageCases';

function check(cond: unknown, what: string): asserts cond {
  if (!cond) throw new Error(what);
}

const backends: Ed25519Backend[] = [webCryptoBackend(), nobleBackend];
const cases: PageCase[] = [
  {
    name: 'C1 Chromium has WebCrypto Ed25519, so detectBackend picks it',
    async run() {
      check((await detectBackend()).name === 'WebCrypto', `detectBackend chose ${(await detectBackend()).name}`);
    },
  },
];
for (const backend of backends) {
  cases.push(
    {
      name: `C1 ${backend.name} in Chromium accepts exactly the speccheck vectors libsodium accepts (only vector 6)`,
      async run() {
        const accepted: number[] = [];
        for (const c of vectors.cases) {
          const r = await strictVerify(backend, fromHex(c.pub_key), fromHex(c.message), fromHex(c.signature));
          if (r.ok) accepted.push(c.index);
        }
        check(accepted.length === 1 && accepted[0] === 6, `accepted ${JSON.stringify(accepted)}`);
      },
    },
    {
      name: `C2 ${backend.name} in Chromium signs and verifies; a flipped bit in message or signature fails`,
      async run() {
        const sk = randomSecretKey();
        const pk = await backend.publicKeyOf(sk);
        const msg = utf8('hello peerchat');
        const sig = await backend.sign(sk, msg);
        check((await strictVerify(backend, pk, msg, sig)).ok, 'own signature verifies');
        const badMsg = msg.slice();
        badMsg[0]! ^= 1;
        check(!(await strictVerify(backend, pk, badMsg, sig)).ok, 'flipped message fails');
        const badSig = sig.slice();
        badSig[5]! ^= 1;
        check(!(await strictVerify(backend, pk, msg, badSig)).ok, 'flipped signature fails');
      },
    },
    {
      name: `C3 ${backend.name} in Chromium verifies a signature made in Node (node:crypto), and rejects it on another message`,
      async run(input) {
        const { publicKey, message, signature } = input as { publicKey: string; message: string; signature: string };
        check((await strictVerify(backend, fromHex(publicKey), utf8(message), fromHex(signature))).ok, 'Node signature verifies');
        check(!(await strictVerify(backend, fromHex(publicKey), utf8(`${message}!`), fromHex(signature))).ok, 'other message fails');
      },
    },
  );
}
cases.push({
  name: 'C3 in Chromium, WebCrypto and noble derive the same public key and verify each other',
  async run() {
    const sk = randomSecretKey();
    const keys = await Promise.all(backends.map((b) => b.publicKeyOf(sk)));
    check(keys.every((k) => k.every((x, i) => x === keys[0]![i])), 'same public key');
    const msg = utf8('cross');
    for (const signer of backends) {
      const sig = await signer.sign(sk, msg);
      for (const verifier of backends) check((await strictVerify(verifier, keys[0]!, msg, sig)).ok, `${signer.name} -> ${verifier.name}`);
    }
  },
});
registerCases(cases);
