// Signed payloads: the fields each signature covers, in their fixed order, and the functions that sign
// and verify them. Pure: the Ed25519 backend is passed in. SPEC.md S1-S4, L4, L9, M2-M6, A2.
import { concatBytes, fromB64url, toB64url, utf8Batch } from '../encoding';
import { type Ed25519Backend, strictVerify } from '../crypto/ed25519';
import { createSha256, sha256, sha256B64 } from '../crypto/hash';
import { type CanonicalField, signingBytes } from '../crypto/signing';
import { StrictReason, checkPublicKey, checkSignature } from '../crypto/strictPolicy';
import { LIMITS, POST_TIME_WINDOW_MS, type AttachmentMeta, type ClientKind, type Envelope, type Post, type SignedAttachment } from './relay';

export type SignedCheck =
  | { ok: true }
  | { ok: false; reason: StrictReason | 'BAD_ENCODING' | 'WRONG_RELAY' | 'BAD_ATTACHMENT' | 'WRONG_AUTHOR' | 'STALE_POST' };

/**
 * The relay's origin as a client sees it (SPEC.md L9): `ws(s)://` and `http(s)://` URLs both give
 * `http(s)://host[:port]` (WHATWG URL: lowercase host, default port left out), so a browser page at
 * `https://chat.example` and its socket `wss://chat.example/trpc` name the same origin. Null if not a URL
 * of those schemes.
 */
export function relayOrigin(url: string): string | null {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    return null;
  }
  const scheme = u.protocol === 'ws:' || u.protocol === 'http:' ? 'http:' : u.protocol === 'wss:' || u.protocol === 'https:' ? 'https:' : null;
  if (!scheme || !u.host) return null;
  // Re-parse with the http(s) scheme so the default port of THAT scheme is dropped (ws:80 == http:80).
  return `${scheme}//${new URL(`${scheme}//${u.host}`).host}`;
}

/**
 * Login signing fields (SPEC.md L4). `origin` binds the login to the relay the client meant to reach, as
 * NIP-42 binds its AUTH event to the relay URL: a relay that passes another relay's challenge on gets a
 * signature that relay refuses (L9).
 */
export function loginFields(a: {
  nonce: string;
  relayKey: string;
  origin: string;
  publicKey: string;
  name: string;
  kind: ClientKind;
}): CanonicalField[] {
  return [a.nonce, a.relayKey, a.origin, a.publicKey, a.name, a.kind];
}

export type UnsignedPost = Omit<Post, 'sig'>;

/** Post signing fields (SPEC.md M2, M6): `relay` and `sentAt` bind the post to one relay and one moment. */
export function postFields(p: UnsignedPost): CanonicalField[] {
  return [p.channel, p.clientId, p.author, p.relay, p.sentAt, p.text, p.attachments.map((a) => a.id).join(','), p.replyTo];
}

/**
 * Attachment signing fields (SPEC.md A1, A6). The placeholder is appended only when present, as M7 appends
 * `authorName`: metadata minted before it keeps its 13 fields and still verifies, and 15 can never equal 13,
 * so a placeholder can be neither stripped from nor added to a signed attachment.
 */
export function attachmentFields(a: Omit<SignedAttachment, 'rsig'>): CanonicalField[] {
  const m = a.meta;
  const fields: CanonicalField[] = [
    a.id,
    a.ts,
    a.uploader,
    a.relay,
    m.name,
    m.mime,
    m.size,
    m.sha256,
    m.chunkRoot,
    m.width ?? null,
    m.height ?? null,
    m.thumbnail?.mime ?? null,
    m.thumbnail?.data ?? null,
  ];
  if (m.placeholder !== undefined) fields.push(m.placeholder.kind, m.placeholder.data);
  return fields;
}

/** Null when the metadata's placeholder is absent or within A6's bound, else why not (relay and verifier). */
export function placeholderProblem(meta: AttachmentMeta): string | null {
  if (!meta.placeholder) return null;
  const bytes = fromB64url(meta.placeholder.data);
  if (!bytes) return 'placeholder is not canonical base64url';
  if (bytes.length > LIMITS.maxPlaceholderBytes) return `placeholder is ${bytes.length} bytes; at most ${LIMITS.maxPlaceholderBytes}`;
  return null;
}

/** What the author signs (SPEC.md M2). A caller that needs it for the digest and the check builds it once. */
export const postSigningBytes = (p: UnsignedPost, encode?: (text: string) => Uint8Array): Uint8Array =>
  signingBytes('post', postFields(p), encode);

/** The post is bound into the envelope by digest: SHA-256(post signing bytes || author signature). */
export function postDigest(p: Post, bytes: Uint8Array = postSigningBytes(p)): string {
  const sig = fromB64url(p.sig) ?? new Uint8Array(0);
  return sha256B64(concatBytes(bytes, sig));
}

/**
 * Envelope signing fields (SPEC.md M3, M7). `digest` is `postDigest(e.post)`; a caller that already has it
 * saves hashing the post again. The relay-attested `authorName` is appended only when present: envelopes
 * minted before it existed keep their 8 fields and still verify, and the canonical JSON array of 9 can never
 * equal one of 8, so a name can be neither stripped from nor added to a signed envelope.
 */
export function envelopeFields(e: Omit<Envelope, 'rsig'>, digest: string = postDigest(e.post)): CanonicalField[] {
  const fields: CanonicalField[] = [e.id, e.ts, e.epoch, e.post.channel, e.prev?.id ?? null, e.prev?.hash ?? null, e.relay, digest];
  if (e.authorName !== undefined) fields.push(e.authorName);
  return fields;
}

/** The hash a following envelope's `prev` links to (SPEC.md R6). */
export function envelopeHash(e: Envelope): string {
  const rsig = fromB64url(e.rsig) ?? new Uint8Array(0);
  return sha256B64(concatBytes(signingBytes('envelope', envelopeFields(e)), rsig));
}

async function check(
  backend: Ed25519Backend,
  key: string,
  bytes: Uint8Array,
  sig: string,
): Promise<SignedCheck> {
  const k = fromB64url(key);
  const s = fromB64url(sig);
  if (!k || !s) return { ok: false, reason: 'BAD_ENCODING' };
  return strictVerify(backend, k, bytes, s);
}

async function signB64(backend: Ed25519Backend, secretKey: Uint8Array, bytes: Uint8Array): Promise<string> {
  return toB64url(await backend.sign(secretKey, bytes));
}

export const signLogin = (
  backend: Ed25519Backend,
  secretKey: Uint8Array,
  a: Parameters<typeof loginFields>[0],
): Promise<string> => signB64(backend, secretKey, signingBytes('login', loginFields(a)));

export const verifyLogin = (
  backend: Ed25519Backend,
  a: Parameters<typeof loginFields>[0],
  signature: string,
): Promise<SignedCheck> => check(backend, a.publicKey, signingBytes('login', loginFields(a)), signature);

export async function signPost(backend: Ed25519Backend, secretKey: Uint8Array, p: UnsignedPost): Promise<Post> {
  return { ...p, sig: await signB64(backend, secretKey, signingBytes('post', postFields(p))) };
}

/** `bytes` is `postSigningBytes(p)`, passed by a caller that already built it. */
export const verifyPostSignature = (backend: Ed25519Backend, p: Post, bytes: Uint8Array = postSigningBytes(p)): Promise<SignedCheck> =>
  check(backend, p.author, bytes, p.sig);

export async function signAttachment(
  backend: Ed25519Backend,
  relaySecretKey: Uint8Array,
  a: Omit<SignedAttachment, 'rsig'>,
): Promise<SignedAttachment> {
  return { ...a, rsig: await signB64(backend, relaySecretKey, signingBytes('attachment', attachmentFields(a))) };
}

/** Checks the relay's signature and the thumbnail and placeholder bounds (SPEC.md A2, A6). `relayKey` is the trusted relay key. */
export async function verifyAttachment(
  backend: Ed25519Backend,
  a: SignedAttachment,
  relayKey: string,
): Promise<SignedCheck> {
  if (a.relay !== relayKey) return { ok: false, reason: 'WRONG_RELAY' };
  if (a.meta.thumbnail) {
    const t = fromB64url(a.meta.thumbnail.data);
    if (!t || t.length > LIMITS.maxThumbnailBytes) return { ok: false, reason: 'BAD_ATTACHMENT' };
  }
  if (placeholderProblem(a.meta)) return { ok: false, reason: 'BAD_ATTACHMENT' };
  return check(backend, a.relay, signingBytes('attachment', attachmentFields(a)), a.rsig);
}

export async function signEnvelope(
  backend: Ed25519Backend,
  relaySecretKey: Uint8Array,
  e: Omit<Envelope, 'rsig'>,
): Promise<Envelope> {
  return { ...e, rsig: await signB64(backend, relaySecretKey, signingBytes('envelope', envelopeFields(e))) };
}

/**
 * The relay's countersigning step (SPEC.md M3, R6): signEnvelope, and also the envelope's envelopeHash (the
 * next `prev` link), from one build of the envelope's signing bytes and the post's digest the caller already
 * has (it checked the post with it). Same results as signEnvelope + envelopeHash (signed.test.ts).
 */
export async function countersign(
  backend: Ed25519Backend,
  relaySecretKey: Uint8Array,
  e: Omit<Envelope, 'rsig'>,
  digest: string,
): Promise<{ env: Envelope; hash: string }> {
  const bytes = signingBytes('envelope', envelopeFields(e, digest));
  const rsig = await backend.sign(relaySecretKey, bytes);
  return { env: { ...e, rsig: toB64url(rsig) }, hash: sha256B64(concatBytes(bytes, rsig)) };
}

/**
 * Full offline verification of a relayed message (SPEC.md M5): the relay's countersignature, the author's
 * signature, the post's relay and time (M6), and every attachment's relay signature and uploader. Any
 * holder can run it.
 */
export async function verifyEnvelope(
  backend: Ed25519Backend,
  e: Envelope,
  relayKey: string,
): Promise<SignedCheck> {
  if (e.relay !== relayKey || e.post.relay !== relayKey) return { ok: false, reason: 'WRONG_RELAY' };
  // The relay refuses posts outside the window (M6), so an envelope minted outside it is not honest.
  if (Math.abs(e.ts - e.post.sentAt) > POST_TIME_WINDOW_MS) return { ok: false, reason: 'STALE_POST' };
  for (const a of e.post.attachments) if (a.uploader !== e.post.author) return { ok: false, reason: 'WRONG_AUTHOR' };
  // Every signature is checked; they are independent, so they run at once (WebCrypto verifies off the
  // main thread) and the first failure in the fixed order relay, author, attachments is the reason.
  // The post's signing bytes are both the author's signed message and part of the envelope's digest:
  // encoded once (a tenth of the JS cost per envelope went to encoding them twice).
  const postBytes = signingBytes('post', postFields(e.post));
  const checks = await Promise.all([
    check(backend, e.relay, signingBytes('envelope', envelopeFields(e, postDigest(e.post, postBytes))), e.rsig),
    check(backend, e.post.author, postBytes, e.post.sig),
    ...e.post.attachments.map((a) => verifyAttachment(backend, a, relayKey)),
  ]);
  return checks.find((c) => !c.ok) ?? { ok: true };
}

/**
 * Envelopes verified at once, at most this many in flight. One at a time, each verify waits out a
 * round trip to WebCrypto's thread; 64 keep that thread busy while bounding the pending promises and the
 * signing bytes held for them.
 */
export const VERIFY_CONCURRENCY = 64;

/**
 * Verifies many envelopes with the checks of `verifyEnvelope`, results in input order. `verifyEnvelopes`
 * over one backend is the default; the browser injects one that spreads the work over Web Workers
 * (SPEC.md G2). Whatever runs it must run every check of every envelope.
 */
export type EnvelopeVerifier = (envs: readonly Envelope[], relayKey: string) => Promise<SignedCheck[]>;

/** A public key as a batch sees it: decoded and checked once (C1-C4), or why it cannot verify anything. */
type DecodedKey = { bytes: Uint8Array; problem: StrictReason | null } | null;

/**
 * Keys decoded at most. A history has few authors and one relay; the bound keeps a stream of strangers'
 * keys from growing it (oldest dropped first). The same Uint8Array per key is what lets the WebCrypto
 * backend find its CryptoKey without a lookup by content.
 */
export const DECODED_KEYS_MAX = 1024;
const decodedKeys = new Map<string, DecodedKey>();

function decodedKey(key: string): DecodedKey {
  let d = decodedKeys.get(key);
  if (d === undefined) {
    const bytes = fromB64url(key);
    d = bytes ? { bytes, problem: checkPublicKey(bytes) } : null;
    if (decodedKeys.size >= DECODED_KEYS_MAX) decodedKeys.delete(decodedKeys.keys().next().value!);
    decodedKeys.set(key, d);
  }
  return d;
}

// Shared answers (frozen: a caller that changed one would change everyone's).
const OK: SignedCheck = Object.freeze({ ok: true });
const BAD_ENCODING: SignedCheck = Object.freeze({ ok: false, reason: 'BAD_ENCODING' });
const BAD_SIGNATURE: SignedCheck = Object.freeze({ ok: false, reason: StrictReason.BAD_SIGNATURE });
const okOrBad = (ok: boolean): SignedCheck => (ok ? OK : BAD_SIGNATURE);

/**
 * `check` with the key from the batch's cache and the signature already decoded (null: not base64url):
 * the same reasons in the same order (encoding, then strictPrecheck's signature and key rules, then the
 * backend), with one promise per signature instead of four.
 */
function checkDecoded(backend: Ed25519Backend, key: DecodedKey, bytes: Uint8Array, sig: Uint8Array | null): SignedCheck | Promise<SignedCheck> {
  if (!key || !sig) return BAD_ENCODING;
  const pre = checkSignature(sig) ?? key.problem;
  if (pre) return { ok: false, reason: pre };
  return backend.verifyRaw(key.bytes, bytes, sig).then(okOrBad);
}

/** An envelope of a batch that passed the checks before the signatures: the bytes its signatures cover. */
interface Prepared {
  envBytes: Uint8Array;
  rsig: Uint8Array | null;
  postBytes: Uint8Array;
  postSig: Uint8Array | null;
  /** `envelopeHash` of the envelope, base64url; '' when its rsig is not base64url (nothing links to it). */
  hash: string;
}

/**
 * The checks before the signatures and the bytes the signatures cover, with less work than verifyEnvelope
 * (signed.test.ts holds the two to the same results): each key decoded and checked once (a bounded cache,
 * DECODED_KEYS_MAX), the author's signature decoded once for both its check and the post's digest, the
 * digests hashed without concatenating. In a bench:client profile of the verify worker these were about
 * half of the JS time around the two WebCrypto verifies.
 */
function prepare(e: Envelope, relayKey: string, encode: (text: string) => Uint8Array): Prepared | SignedCheck {
  if (e.relay !== relayKey || e.post.relay !== relayKey) return { ok: false, reason: 'WRONG_RELAY' };
  if (Math.abs(e.ts - e.post.sentAt) > POST_TIME_WINDOW_MS) return { ok: false, reason: 'STALE_POST' };
  for (const a of e.post.attachments) if (a.uploader !== e.post.author) return { ok: false, reason: 'WRONG_AUTHOR' };
  const postBytes = postSigningBytes(e.post, encode);
  const postSig = fromB64url(e.post.sig);
  const digest = toB64url(createSha256().update(postBytes).update(postSig ?? EMPTY).digest());
  const envBytes = signingBytes('envelope', envelopeFields(e, digest), encode);
  const rsig = fromB64url(e.rsig);
  // envelopeHash(e), from the bytes already built (its rsig decodes as envelopeHash decodes it).
  const hash = rsig ? toB64url(createSha256().update(envBytes).update(rsig).digest()) : '';
  return { envBytes, rsig, postBytes, postSig, hash };
}

const EMPTY = new Uint8Array(0);

/** The first failure in order, once every check has ended (so no verify outlives its envelope's turn, G2). */
async function firstFailure(checks: (SignedCheck | Promise<SignedCheck>)[]): Promise<SignedCheck> {
  let first: SignedCheck = OK;
  for (const c of checks) {
    const r = await c;
    if (first.ok && !r.ok) first = r;
  }
  return first;
}

/**
 * `verifyEnvelope` over many envelopes (the same checks on each), results in input order.
 *
 * A relay countersignature is checked once per chain (SPEC.md G2, R6): where the batch holds an
 * envelope's successor in its channel, whose `prev.hash` is this envelope's `envelopeHash` -- a SHA-256 of
 * everything its rsig covers and of the rsig itself -- and the successor's own countersignature holds
 * (checked, or proven the same way by its own successor), the relay has signed this envelope's exact bytes
 * through that link, and its rsig is not checked again. The newest envelope of each chain is checked
 * directly, and so is any envelope whose successor's countersignature fails: a forged successor never
 * costs an honest envelope its place. Author and attachment signatures are each checked.
 */
export async function verifyEnvelopes(
  backend: Ed25519Backend,
  envs: readonly Envelope[],
  relayKey: string,
  concurrency: number = VERIFY_CONCURRENCY,
): Promise<SignedCheck[]> {
  const encode = utf8Batch();
  const prepared = envs.map((e) => prepare(e, relayKey, encode));
  const byHash = new Map<string, number>();
  prepared.forEach((p, i) => {
    if ('envBytes' in p && p.hash && !byHash.has(p.hash)) byHash.set(p.hash, i);
  });
  /** successor[i]: the index of the envelope whose prev links to envelope i (-1: none in the batch). */
  const successor = new Int32Array(envs.length).fill(-1);
  envs.forEach((e, j) => {
    const i = e.prev && 'envBytes' in prepared[j]! ? byHash.get(e.prev.hash) : undefined;
    if (i !== undefined && i !== j && envs[i]!.id === e.prev!.id && successor[i] === -1) successor[i] = j;
  });
  const relayKeyBytes = decodedKey(relayKey);
  /** The countersignature checks, made as envelopes take their turn (a direct check is one verify in flight). */
  const relayChecks = new Array<Promise<SignedCheck> | SignedCheck | undefined>(envs.length);
  const direct = (i: number) => {
    const p = prepared[i] as Prepared; // only envelopes that passed prepare() are checked
    return checkDecoded(backend, relayKeyBytes, p.envBytes, p.rsig);
  };
  const relayCheck = (i: number): Promise<SignedCheck> | SignedCheck => {
    // Walk to the first envelope up the chain whose check exists or that has no successor (a loop would
    // need a SHA-256 cycle; the walk is bounded all the same), then link the checks back down to i.
    const path: number[] = [];
    let at = i;
    while (relayChecks[at] === undefined && successor[at]! >= 0 && path.length < envs.length) {
      path.push(at);
      at = successor[at]!;
    }
    relayChecks[at] ??= direct(at);
    for (let k = path.length - 1; k >= 0; k--) {
      const link = path[k]!;
      relayChecks[link] = Promise.resolve(relayChecks[successor[link]!]!).then((r) => (r.ok ? OK : direct(link)));
    }
    return relayChecks[i]!;
  };
  const out = new Array<SignedCheck>(envs.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < envs.length) {
      const i = next++;
      const p = prepared[i]!;
      if (!('envBytes' in p)) {
        out[i] = p;
        continue;
      }
      const author = checkDecoded(backend, decodedKey(envs[i]!.post.author), p.postBytes, p.postSig);
      const attachments = envs[i]!.post.attachments.map((a) => verifyAttachment(backend, a, relayKey));
      // The first failure in the order relay, author, attachments is the reason, as in verifyEnvelope.
      out[i] = await firstFailure([relayCheck(i), author, ...attachments]);
    }
  };
  await Promise.all(Array.from({ length: Math.min(Math.max(1, concurrency), envs.length) }, worker));
  return out;
}

/** SHA-256 of each LIMITS.chunkBytes chunk, concatenated (32 bytes per chunk). */
export function chunkHashes(content: Uint8Array, chunkBytes: number = LIMITS.chunkBytes): Uint8Array {
  const n = Math.max(1, Math.ceil(content.length / chunkBytes));
  const out = new Uint8Array(n * 32);
  for (let i = 0; i < n; i++) out.set(sha256(content.subarray(i * chunkBytes, (i + 1) * chunkBytes)), i * 32);
  return out;
}

/** The metadata's `chunkRoot`: SHA-256 of the chunk-hash list. */
export const chunkRoot = (hashes: Uint8Array): string => sha256B64(hashes);

/** Digest fields a client computes before asking the relay to sign an attachment (SPEC.md A1). */
export function contentDigests(content: Uint8Array): Pick<AttachmentMeta, 'sha256' | 'chunkRoot' | 'size'> {
  return { sha256: sha256B64(content), chunkRoot: chunkRoot(chunkHashes(content)), size: content.length };
}
