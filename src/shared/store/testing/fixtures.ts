// Test fixtures for the history stores: real relay-signed envelopes and attachments, made with the same
// sign functions the relay uses, so a store test can also prove that what comes back still verifies.
// Node-only (nodeBackend); imported by tests, never by app code.
import { monotonicFactory, ulid } from 'ulidx';
import { toB64url } from '../../encoding';
import { randomSecretKey } from '../../crypto/ed25519';
import { nodeBackend } from '../../crypto/nodeBackend';
import type { Envelope, SignedAttachment } from '../../protocol/relay';
import { contentDigests, envelopeHash, signAttachment, signEnvelope, signPost } from '../../protocol/signed';

export interface EnvelopeOptions {
  /** @default 'general' */
  channel?: string;
  /** @default a counter-based text */
  text?: string;
  /** Relay timestamp; the id is minted from it. @default the fixtures' clock */
  ts?: number;
  attachments?: SignedAttachment[];
}

export interface AttachmentOptions {
  /** @default the fixtures' clock */
  ts?: number;
  /** @default 'file.bin' */
  name?: string;
  /** @default 'application/octet-stream' */
  mime?: string;
}

export interface StoreFixtures {
  readonly backend: ReturnType<typeof nodeBackend>;
  readonly relayKey: string;
  readonly authorKey: string;
  /** One relay-countersigned envelope, chained to the previous one of its channel (SPEC.md R6). */
  envelope(opts?: EnvelopeOptions): Promise<Envelope>;
  /** `n` envelopes in id order, all with `opts`. */
  envelopes(n: number, opts?: EnvelopeOptions): Promise<Envelope[]>;
  /** Relay-signed metadata for `content` (SPEC.md A1). */
  attachment(content: Uint8Array, opts?: AttachmentOptions): Promise<SignedAttachment>;
}

/**
 * `now` is the fixtures' clock (ids and ts are minted from it, as the relay does). Mint in time order:
 * the monotonic ULID factory will not go back in time, so an earlier `ts` than the last would not match
 * its id's time.
 */
export async function createFixtures(now: () => number = Date.now): Promise<StoreFixtures> {
  const backend = nodeBackend();
  const relaySk = randomSecretKey();
  const authorSk = randomSecretKey();
  const relayKey = toB64url(await backend.publicKeyOf(relaySk));
  const authorKey = toB64url(await backend.publicKeyOf(authorSk));
  const mint = monotonicFactory();
  // Not from `mint`: the epoch must not pin the id sequence to the clock's present (tests mint past ts).
  const epoch = ulid(now());
  const lastOfChannel = new Map<string, Envelope>();
  let counter = 0;

  const envelope = async (opts: EnvelopeOptions = {}): Promise<Envelope> => {
    const channel = opts.channel ?? 'general';
    const ts = opts.ts ?? now();
    counter++;
    const post = await signPost(backend, authorSk, {
      channel,
      clientId: `client-${counter.toString().padStart(8, '0')}`,
      text: opts.text ?? `message ${counter}`,
      attachments: opts.attachments ?? [],
      replyTo: null,
      author: authorKey,
      relay: relayKey,
      sentAt: ts,
    });
    const last = lastOfChannel.get(channel);
    const env = await signEnvelope(backend, relaySk, {
      id: mint(ts),
      ts,
      epoch,
      prev: last ? { id: last.id, hash: envelopeHash(last) } : null,
      post,
      relay: relayKey,
    });
    lastOfChannel.set(channel, env);
    return env;
  };

  return {
    backend,
    relayKey,
    authorKey,
    envelope,
    async envelopes(n, opts) {
      const out: Envelope[] = [];
      for (let i = 0; i < n; i++) out.push(await envelope(opts));
      return out;
    },
    async attachment(content, opts = {}) {
      const ts = opts.ts ?? now();
      return signAttachment(backend, relaySk, {
        id: mint(ts),
        ts,
        uploader: authorKey,
        meta: {
          name: opts.name ?? 'file.bin',
          mime: opts.mime ?? 'application/octet-stream',
          ...contentDigests(content),
        },
        relay: relayKey,
      });
    },
  };
}

/** Deterministic content of `size` bytes (a test can tell two contents apart). */
export function content(size: number, seed = 1): Uint8Array {
  const out = new Uint8Array(size);
  for (let i = 0; i < size; i++) out[i] = (i * 31 + seed * 17) & 0xff;
  return out;
}
