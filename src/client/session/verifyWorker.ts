// One verifier of the pool (verifyPool.ts): runs the shared `verifyEnvelopes` (every check of every
// envelope, SPEC.md G2) on the envelopes it is sent, with this worker's own WebCrypto. In Chromium an
// Ed25519 verify runs on the calling thread, so verifying here keeps it off the page's main thread and
// lets the pool use every core.
import { detectBackend } from '../../shared/crypto/ed25519';
import { verifyEnvelopes } from '../../shared/protocol/signed';
import type { VerifyJob, VerifyJobResult } from './verifyPool';

const post = (r: VerifyJobResult): void => (self as unknown as { postMessage(m: VerifyJobResult): void }).postMessage(r);

self.onmessage = (e: MessageEvent<VerifyJob>) => {
  const { job, envs, relayKey } = e.data;
  // Never throws out of the listener: a failure is answered, and the pool verifies that job itself.
  detectBackend()
    .then(async (backend) => ({ checks: await verifyEnvelopes(backend, envs, relayKey), backend: backend.name }))
    .then(
      ({ checks, backend }) => post({ job, checks, backend }),
      (err: unknown) => post({ job, error: String(err) }),
    );
};
