// Page-test harness (served by Vite in tests, never built into the app): the real views over the real
// IndexedDB history, with a FakeClient in place of the network. Tests drive it through window.__harness.
import { StrictMode } from 'react';
import { createRoot } from 'react-dom/client';
import { monotonicFactory } from 'ulidx';
import { detectBackend, nobleBackend } from '../../shared/crypto/ed25519';
import { verifyEnvelopes } from '../../shared/protocol/signed';
import { browserVerifyPool } from '../session/verifyPool';
import { fingerprint } from '../../shared/crypto/signing';
import { toB64url } from '../../shared/encoding';
import type { Envelope } from '../../shared/protocol/relay';
import { DexieStore } from '../../shared/store/DexieStore';
import { type IdentityRow, appDb } from '../appDb';
import { ChatApp } from '../components/ChatApp';
import { HISTORY_DB_NAME } from '../history/historyDb';
import { markRead } from '../hooks/useUnread';
import { ClientContext } from '../session/ClientContext';
import { FakeClient } from './FakeClient';
import '../global.css';

const CHANNELS = [
  { id: 'general', title: 'general' },
  { id: 'random', title: 'random' },
  { id: 'media', title: 'media' },
];

function keyOf(n: number): Uint8Array {
  const k = new Uint8Array(32);
  k[0] = n;
  k[31] = 7;
  return k;
}

async function person(n: number, name: string) {
  const secretKey = keyOf(n);
  const pub = await nobleBackend.publicKeyOf(secretKey);
  return { secretKey, publicKey: toB64url(pub), fingerprint: fingerprint(pub), name };
}

const ulid = monotonicFactory();
const store = new DexieStore(HISTORY_DB_NAME);

/**
 * Envelopes shaped like the relay's (ids, ts, prev chain). Signatures are placeholders: the views never
 * verify (the store's writers do, SPEC.md G2), and these never leave the page.
 */
function makeEnvelope(channel: string, author: string, text: string, ts: number, replyTo: string | null = null): Envelope {
  const id = ulid(ts);
  const sig = 'A'.repeat(86);
  return {
    id, ts, epoch: '01JAAAAAAAAAAAAAAAAAAAAAAA', prev: null, relay: 'R'.repeat(43), rsig: sig,
    post: { channel, clientId: `c${id}`, text, attachments: [], replyTo, author, relay: 'R'.repeat(43), sentAt: ts, sig },
  };
}

async function main() {
  const q = new URLSearchParams(location.search);
  const me = await person(1, q.get('name') ?? 'tester');
  const others = [await person(2, 'alice'), await person(3, 'bob'), await person(4, 'alice'), await person(5, 'vc-cache')];
  const identity: IdentityRow = { id: 'self', secretKey: me.secretKey, publicKey: me.publicKey, name: me.name, createdAt: Date.now() };
  await appDb().identity.put(identity);
  await appDb().names.bulkPut(
    [me, ...others].map((p) => ({ publicKey: p.publicKey, name: p.name, fingerprint: p.fingerprint, kind: p.name.startsWith('vc') ? 'virtual' : 'browser', seenAt: Date.now() }) as const),
  );
  const fake = new FakeClient(me, CHANNELS);
  const harness = {
    fake,
    me,
    others,
    /** Stores `n` messages in `channel`, `stepMs` apart, ending now; returns the ids. */
    async seed(channel: string, n: number, opts: { stepMs?: number; author?: number; text?: string; endTs?: number } = {}) {
      const step = opts.stepMs ?? 20_000;
      const end = opts.endTs ?? Date.now();
      const envs: Envelope[] = [];
      for (let i = 0; i < n; i++) {
        const who = opts.author === undefined ? others[i % 3]! : opts.author < 0 ? me : others[opts.author]!;
        envs.push(makeEnvelope(channel, who.publicKey, opts.text ? `${opts.text} ${i}` : `message ${i} in #${channel}`, end - (n - 1 - i) * step));
      }
      for (let i = 0; i < envs.length; i += 1000) await store.putMessages(envs.slice(i, i + 1000));
      return envs.map((e) => e.id);
    },
    async add(channel: string, author: number, text: string, replyTo: string | null = null) {
      const who = author < 0 ? me : others[author]!;
      const env = makeEnvelope(channel, who.publicKey, text, Date.now(), replyTo);
      await store.putMessages([env]);
      return env;
    },
    /** Confirms the fake's pending post `clientId` as the relay would: the envelope lands in the store. */
    async confirm(clientId: string) {
      const p = fake.snap.outbox.find((o) => o.clientId === clientId)!;
      const env = makeEnvelope(p.channel, me.publicKey, p.text, Date.now(), p.replyTo);
      env.post.clientId = clientId;
      await store.putMessages([env]);
      fake.confirmed(env);
      return env.id;
    },
    markRead,
    /** bench:client: verifies every envelope with the app's backend (WebCrypto here) or the fallback; ms taken. */
    /**
     * 'pool': what the app runs (verifyPool.ts: the shared verifyEnvelopes in Web Workers; `concurrency`
     * workers, default one per core; start-up reported apart); 'detect' / 'noble': verifyEnvelopes in
     * this thread, `concurrency` (default 1) envelopes in flight.
     */
    async verify(envs: Envelope[], relayKey: string, which: 'pool' | 'detect' | 'noble' = 'detect', concurrency?: number) {
      const backend = which === 'noble' ? nobleBackend : await detectBackend();
      const t0 = performance.now();
      let bad = 0;
      if (which === 'pool') {
        // The app starts its pool's workers before the first catch-up; their start-up is reported apart.
        // `concurrency` is the pool's size here (default: one worker per core).
        const pool = browserVerifyPool((e, k) => verifyEnvelopes(backend, e, k), concurrency);
        const inWorkers = await pool.warm();
        const warmMs = performance.now() - t0;
        const t1 = performance.now();
        bad = (await pool.verify(envs, relayKey)).filter((r) => !r.ok).length;
        pool.close();
        return { ms: performance.now() - t1, warmMs, bad, backend: `${inWorkers} in Web Workers` };
      }
      bad = (await verifyEnvelopes(backend, envs, relayKey, concurrency ?? 1)).filter((r) => !r.ok).length;
      return { ms: performance.now() - t0, bad, backend: backend.name };
    },
    mount() {
      createRoot(document.getElementById('root')!).render(
        <StrictMode>
          <ClientContext.Provider value={fake}>
            <ChatApp identity={identity} />
          </ClientContext.Provider>
        </StrictMode>,
      );
    },
  };
  (window as unknown as { __harness: typeof harness }).__harness = harness;
  document.body.dataset.ready = 'true';
}

void main();
