// The shared Ed25519 vectors and policy (SPEC.md C1-C3) in Chromium, on WebCrypto and on the noble
// fallback; a signature made here in Node must verify there.
import { toHex, utf8 } from '../../src/shared/encoding';
import { randomSecretKey } from '../../src/shared/crypto/ed25519';
import { nodeBackend } from '../../src/shared/crypto/nodeBackend';
import { describePage, here } from './harness';

const node = nodeBackend();
const sk = randomSecretKey();
const message = 'signed in Node, verified in Chromium';
const fromNode = {
  publicKey: toHex(await node.publicKeyOf(sk)),
  message,
  signature: toHex(await node.sign(sk, utf8(message))),
};

await describePage('Ed25519 in Chromium', here('./pages/ed25519.page.ts'), {
  inputFor: (name) => (name.startsWith('C3') ? fromNode : undefined),
});
