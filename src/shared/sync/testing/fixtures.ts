// Test data for the sync engine: real relay-signed envelopes and attachments made with the shared sign
// functions and a freshly generated relay key, deterministic ids (seeded), and helpers for forgeries.
// Node-only (nodeBackend); imported by tests, the simulator and the benchmark, never by app code.
import { monotonicFactory } from 'ulidx';
import { toB64url, toHex } from '../../encoding';
import { randomSecretKey } from '../../crypto/ed25519';
import { nodeBackend } from '../../crypto/nodeBackend';
import type { Envelope, SignedAttachment } from '../../protocol/relay';
import { contentDigests, envelopeHash, signAttachment, signEnvelope, signPost } from '../../protocol/signed';
import { createPrng } from '../prng';

export interface SyncFixtures {
  readonly backend: ReturnType<typeof nodeBackend>;
  readonly relayKey: string;
  readonly relaySk: Uint8Array;
  readonly authorKey: string;
  /** One envelope, chained to the previous one of its channel (SPEC.md R6), ts = the fixtures' clock. */
  envelope(opts?: { channel?: string; text?: string; attachments?: SignedAttachment[] }): Promise<Envelope>;
  envelopes(n: number, opts?: { channel?: string; text?: string }): Promise<Envelope[]>;
  /** Relay-signed metadata for `content`, uploaded by the fixtures' author. */
  attachment(content: Uint8Array, opts?: { name?: string; lieSha256?: boolean }): Promise<SignedAttachment>;
  /** An attachment plus the message that carries it. */
  attachedMessage(content: Uint8Array): Promise<{ env: Envelope; att: SignedAttachment }>;
  /** The same envelope with its text changed after signing: its signatures no longer verify. */
  forged(env: Envelope): Envelope;
  /** An envelope countersigned by a different relay key that claims to be the trusted relay. */
  foreignRelay(): Promise<Envelope>;
}

/** `now` stamps ts and ids (as the relay does); `seed` fixes the random part of every id. */
export async function createSyncFixtures(now: () => number, seed = 1): Promise<SyncFixtures> {
  const backend = nodeBackend();
  const relaySk = randomSecretKey();
  const authorSk = randomSecretKey();
  const relayKey = toB64url(await backend.publicKeyOf(relaySk));
  const authorKey = toB64url(await backend.publicKeyOf(authorSk));
  const rng = createPrng(seed);
  const mint = monotonicFactory(() => rng.next());
  const epoch = mint(now());
  const last = new Map<string, Envelope>();
  let counter = 0;

  const make = async (
    sk: Uint8Array,
    opts: { channel?: string; text?: string; attachments?: SignedAttachment[] },
    chain = true,
  ): Promise<Envelope> => {
    const channel = opts.channel ?? 'general';
    const ts = now();
    counter++;
    const post = await signPost(backend, authorSk, {
      channel,
      clientId: `client-${counter.toString().padStart(8, '0')}`,
      text: opts.text ?? `message ${counter} ${'lorem ipsum '.repeat(counter % 7)}`,
      attachments: opts.attachments ?? [],
      replyTo: null,
      author: authorKey,
      relay: relayKey,
      sentAt: ts,
    });
    const prev = last.get(channel);
    const env = await signEnvelope(backend, sk, {
      id: mint(ts),
      ts,
      epoch,
      prev: prev ? { id: prev.id, hash: envelopeHash(prev) } : null,
      post,
      relay: relayKey,
    });
    if (chain) last.set(channel, env);
    return env;
  };

  const attachment = async (content: Uint8Array, opts: { name?: string; lieSha256?: boolean } = {}) => {
    const ts = now();
    const digests = contentDigests(content);
    if (opts.lieSha256) digests.sha256 = toB64url(new Uint8Array(32).fill(7));
    return signAttachment(backend, relaySk, {
      id: mint(ts),
      ts,
      uploader: authorKey,
      meta: { name: opts.name ?? 'file.bin', mime: 'application/octet-stream', ...digests },
      relay: relayKey,
    });
  };

  return {
    backend,
    relayKey,
    relaySk,
    authorKey,
    envelope: (opts = {}) => make(relaySk, opts),
    async envelopes(n, opts = {}) {
      const out: Envelope[] = [];
      for (let i = 0; i < n; i++) out.push(await make(relaySk, opts));
      return out;
    },
    attachment,
    async attachedMessage(content) {
      const att = await attachment(content);
      const env = await make(relaySk, { attachments: [att] });
      return { env, att };
    },
    forged(env) {
      return { ...env, post: { ...env.post, text: env.post.text + ' (edited by a liar)' } };
    },
    async foreignRelay() {
      return make(randomSecretKey(), { text: 'signed by somebody else' }, false);
    },
  };
}

/** Deterministic pseudo-random content (every chunk differs, so a swapped chunk is detectable). */
export function content(size: number, seed = 1): Uint8Array {
  const rng = createPrng(seed);
  const out = new Uint8Array(size);
  for (let i = 0; i < size; i += 4) {
    const v = Math.floor(rng.next() * 4294967296);
    out[i] = v & 0xff;
    if (i + 1 < size) out[i + 1] = (v >>> 8) & 0xff;
    if (i + 2 < size) out[i + 2] = (v >>> 16) & 0xff;
    if (i + 3 < size) out[i + 3] = (v >>> 24) & 0xff;
  }
  return out;
}

/** A relay-style PeerJS id (`<16 hex>-<10 base36>`, relay.ts zPeerId) for simulated peer `i`. */
export function peerId(i: number, tag = 'sim'): string {
  const hex = toHex(new Uint8Array([0, 0, 0, 0, (i >>> 24) & 255, (i >>> 16) & 255, (i >>> 8) & 255, i & 255]));
  return `${hex}-${(tag + i.toString(36)).padEnd(10, '0').slice(0, 10)}`;
}
