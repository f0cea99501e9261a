// Page-test harness (served by Vite in tests, never built into the app): the real views over the real
// IndexedDB history, with a FakeClient in place of the network. Tests drive it through window.__harness.
import { StrictMode } from 'react';
import { createRoot } from 'react-dom/client';
import { monotonicFactory, ulid as ulidAt } from 'ulidx';
import { detectBackend, nobleBackend } from '../../shared/crypto/ed25519';
import { contentDigests, verifyEnvelopes } from '../../shared/protocol/signed';
import { prepareAttachment } from '../media/prepareAttachment';
import { browserVerifyPool } from '../session/verifyPool';
import { fingerprint } from '../../shared/crypto/signing';
import { toB64url } from '../../shared/encoding';
import type { AttachmentMeta, Envelope, SignedAttachment } from '../../shared/protocol/relay';
import { DexieStore } from '../../shared/store/DexieStore';
import { type IdentityRow, appDb } from '../appDb';
import { ChatApp } from '../components/ChatApp';
import { HISTORY_DB_NAME } from '../history/historyDb';
import { historyPlaced } from '../history/historyPlaced';
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
function makeEnvelope(channel: string, author: string, text: string, ts: number, replyTo: string | null = null, attachments: SignedAttachment[] = []): Envelope {
  const id = ulid(ts);
  const sig = 'A'.repeat(86);
  return {
    id, ts, epoch: '01JAAAAAAAAAAAAAAAAAAAAAAA', prev: null, relay: 'R'.repeat(43), rsig: sig,
    post: { channel, clientId: `c${id}`, text, attachments, replyTo, author, relay: 'R'.repeat(43), sentAt: ts, sig },
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
  // Never in presence nor in the names table: what this browser knows of them is what their envelopes say.
  const strangers = [await person(6, 'carol')];
  const fake = new FakeClient(me, CHANNELS, store);
  const harness = {
    fake,
    me,
    others,
    strangers,
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
    /**
     * A message minted `ageMs` ago, stored now: it arrives after newer ones, as a catch-up (newest first) or
     * the relay's stream racing our own post's confirmation delivers them. Not the monotonic factory: its
     * id must sort before the ones already stored.
     */
    async addLate(channel: string, author: number, text: string, ageMs: number) {
      const who = author < 0 ? me : others[author]!;
      const ts = Date.now() - ageMs;
      const env = { ...makeEnvelope(channel, who.publicKey, text, ts), id: ulidAt(ts) };
      await store.putMessages([env]);
      return env;
    },
    /** A message by a stranger (never seen in presence), with the relay-attested `authorName` or without (SPEC.md M7). */
    async addFromStranger(channel: string, text: string, authorName?: string) {
      const env = makeEnvelope(channel, strangers[0]!.publicKey, text, Date.now());
      if (authorName !== undefined) env.authorName = authorName;
      await store.putMessages([env]);
      return env;
    },
    /**
     * A message by `others[0]` with one attachment of `size` bytes whose metadata and content are stored,
     * minted `ageMs` ago (Storage section, UI11). Placeholder digests: nothing here verifies them.
     */
    async addAttachment(channel: string, size: number, ageMs: number, name = 'photo.jpg') {
      const ts = Date.now() - ageMs;
      const meta: SignedAttachment = {
        // Not the monotonic factory: that one never goes back in time, and this id must say "ageMs ago".
        id: ulidAt(ts), ts, uploader: others[0]!.publicKey, relay: 'R'.repeat(43), rsig: 'A'.repeat(86),
        meta: { name, mime: 'application/octet-stream', size, sha256: 'S'.repeat(43), chunkRoot: 'C'.repeat(43) },
      };
      const env = makeEnvelope(channel, others[0]!.publicKey, `with ${name}`, ts);
      env.post.attachments = [meta];
      await store.putMessages([env]);
      await store.putAttachmentMeta(meta);
      await store.putAttachmentBytes(meta.id, new Uint8Array(size).fill(7));
      return meta.id;
    },
    hasAttachmentBytes: (id: string) => store.hasAttachmentBytes(id),
    /** The client reports a full store, as PeerchatClient does (QUOTA_EXCEEDED, H16). */
    quotaExceeded() {
      fake.set({ errors: [...fake.snap.errors, { reason: 'QUOTA_EXCEEDED', message: 'storage full', where: 'store', at: Date.now() }] });
    },
    /** Confirms the fake's pending post `clientId` as the relay would: the envelope lands in the store. */
    async confirm(clientId: string) {
      const p = fake.snap.outbox.find((o) => o.clientId === clientId)!;
      const env = makeEnvelope(p.channel, me.publicKey, p.text, Date.now(), p.replyTo, [...p.attachments]);
      env.post.clientId = clientId;
      await store.putMessages([env]);
      fake.confirmed(env);
      return env.id;
    },
    /**
     * A message of `author` carrying attachments as another peer shared them: signed metadata stored (as
     * the engine does with a message), bytes stored only when `held` (else no peer "has" them yet).
     */
    async addAttachments(channel: string, author: number, text: string, files: { meta: AttachmentMeta; bytes?: Uint8Array; held?: boolean }[]) {
      const who = author < 0 ? me : others[author]!;
      const atts: SignedAttachment[] = [];
      for (const f of files) {
        const att: SignedAttachment = { id: ulid(), ts: Date.now(), uploader: who.publicKey, meta: f.meta, relay: 'R'.repeat(43), rsig: 'A'.repeat(86) };
        await store.putAttachmentMeta(att);
        if (f.bytes && f.held !== false) await store.putAttachmentBytes(att.id, f.bytes);
        atts.push(att);
      }
      const env = makeEnvelope(channel, who.publicKey, text, Date.now(), null, atts);
      await store.putMessages([env]);
      return env;
    },
    /** Stores the bytes of a known attachment, as a finished peer download would. */
    async holdBytes(id: string, bytes: Uint8Array) {
      return store.putAttachmentBytes(id, bytes);
    },
    getAttachment: (id: string) => store.getAttachment(id),
    digests: contentDigests,
    /** What the sender's app makes of a picked file (metadata with a real thumbnail). */
    prepare: (bytes: Uint8Array, name: string) => prepareAttachment(bytes, { name }),
    /** A photo-like picture from the page's own encoder. */
    async photo(width: number, height: number, type: 'image/jpeg' | 'image/png', hue = 200): Promise<Uint8Array> {
      // A little landscape: sky, sun, two ridges; `hue` varies the scene.
      const c = new OffscreenCanvas(width, height);
      const ctx = c.getContext('2d')!;
      const sky = ctx.createLinearGradient(0, 0, 0, height);
      sky.addColorStop(0, `hsl(${hue} 70% 45%)`);
      sky.addColorStop(1, `hsl(${(hue + 40) % 360} 80% 75%)`);
      ctx.fillStyle = sky;
      ctx.fillRect(0, 0, width, height);
      ctx.fillStyle = 'rgb(255 240 200 / 0.9)';
      ctx.beginPath();
      ctx.arc(width * 0.7, height * 0.3, Math.min(width, height) * 0.12, 0, Math.PI * 2);
      ctx.fill();
      for (const [i, y] of [0.62, 0.78].entries()) {
        ctx.fillStyle = `hsl(${(hue + 150) % 360} 35% ${30 - i * 12}%)`;
        ctx.beginPath();
        ctx.moveTo(0, height);
        for (let x = 0; x <= width; x += width / 8) ctx.lineTo(x, height * (y + 0.08 * Math.sin((x / width) * 9 + i * 2)));
        ctx.lineTo(width, height);
        ctx.fill();
      }
      return new Uint8Array(await (await c.convertToBlob({ type, quality: 0.9 })).arrayBuffer());
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
  // When the page says its history is placed (what the real client core waits for before it starts); the
  // bound is far beyond any test, so only the views can set it.
  void historyPlaced(600_000).then(() => (document.body.dataset.historyPlaced = 'true'));
  document.body.dataset.ready = 'true';
}

void main();
