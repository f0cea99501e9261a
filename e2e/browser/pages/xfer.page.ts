// Page entry: one peerchat peer as the browser app runs it for attachments: the shared SyncEngine over
// the browser PeerJS transport (a real RTCDataChannel, signalling through the real relay's /peerjs
// endpoint), WebCrypto Ed25519 and a DexieStore on this page's real IndexedDB. Node drives it through
// `globalThis.xfer` (page.evaluate): it logs the page in, hands it its roster and the signed message
// and metadata, and reads back what happened. `corruptFrom` makes this page a liar that flips a byte in
// every chunk it serves from that index on (an honest engine under a bent transport, testing/tamper.ts).
// Used by e2e/browser/xfer.test.ts and bench/media.bench.ts.
import { Peer } from 'peerjs';
import { webCryptoBackend } from '../../../src/shared/crypto/ed25519';
import { sha256 } from '../../../src/shared/crypto/hash';
import { toHex } from '../../../src/shared/encoding';
import type { Envelope, LoginOutput, SignedAttachment } from '../../../src/shared/protocol/relay';
import { DexieStore } from '../../../src/shared/store/DexieStore';
import { createPrng } from '../../../src/shared/sync/prng';
import type { RosterPeer } from '../../../src/shared/sync/SyncContext';
import { SyncEngine } from '../../../src/shared/sync/SyncEngine';
import { corruptChunksFrom, tamperTransport } from '../../../src/shared/sync/testing/tamper';
import { peerjsOptions } from '../../../src/shared/transport/peerjsOptions';
import { type PeerjsTransport, createPeerjsTransport } from '../../../src/shared/transport/peerjsTransport';
import { registerCases } from '../pageCases';

export interface XferStart {
  relayUrl: string;
  login: Pick<LoginOutput, 'peerToken' | 'info'> & { peerId: string };
  /** The key the signed messages and metadata verify against (G2). */
  relayKey: string;
  /** This page's IndexedDB database. */
  db: string;
  corruptFrom?: number;
}

export interface XferEvents {
  /** Per verified chunk (G8): bytes so far, and when (Date.now()). */
  progress: { id: string; receivedBytes: number; totalBytes: number; from: string; at: number }[];
  attachments: { id: string; from: string | null; at: number }[];
  drops: { peerId: string; reason: string; banned: boolean }[];
}

export type XferFetch = { ok: true; size: number; sha256: string } | { ok: false; reason: string };

/** The same bytes as src/shared/sync/testing/fixtures.ts `content` (which is Node-only through its imports). */
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

let peer: Peer | null = null;
let transport: PeerjsTransport | null = null;
let store: DexieStore | null = null;
let engine: SyncEngine | null = null;
let dbName = '';
const events: XferEvents = { progress: [], attachments: [], drops: [] };
const raw: { pc: RTCPeerConnection | null; dc: RTCDataChannel | null; expect: number; received: number; doneAt: number } = {
  pc: null,
  dc: null,
  expect: 0,
  received: 0,
  doneAt: 0,
};

/** Non-trickle: the benchmark hands whole descriptions over (loopback host candidates only). */
function gathered(pc: RTCPeerConnection): Promise<void> {
  if (pc.iceGatheringState === 'complete') return Promise.resolve();
  return new Promise((resolve) => {
    pc.addEventListener('icegatheringstatechange', () => {
      if (pc.iceGatheringState === 'complete') resolve();
    });
  });
}

function need<T>(x: T | null, what: string): T {
  if (x === null) throw new Error(`${what}: call start() first`);
  return x;
}

const api = {
  async start(input: XferStart): Promise<string> {
    dbName = input.db;
    peer = new Peer(input.login.peerId, peerjsOptions({ relayUrl: input.relayUrl, info: input.login.info, peerToken: input.login.peerToken }));
    transport = await createPeerjsTransport({ peer });
    store = new DexieStore(input.db);
    const t = input.corruptFrom === undefined ? transport : tamperTransport(transport, corruptChunksFrom(input.corruptFrom));
    engine = new SyncEngine({ store, crypto: webCryptoBackend(), relayKey: input.relayKey, transport: t, selfKind: 'browser' });
    engine.on('progress', (e) => events.progress.push({ ...e, at: Date.now() }));
    engine.on('attachment', (e) => events.attachments.push({ ...e, at: Date.now() }));
    engine.on('peerDropped', (e) => events.drops.push({ peerId: e.peerId, reason: e.reason, banned: e.banned }));
    await engine.start();
    return transport.localPeerId;
  },
  roster(peers: RosterPeer[]): void {
    need(engine, 'roster').setRoster(peers);
  },
  async addMessages(envs: Envelope[]): Promise<void> {
    await need(engine, 'addMessages').addMessages(envs);
  },
  /** The author's side: stores and offers (G6). Returns when it was published (Date.now()). */
  async publish(meta: SignedAttachment, size: number, seed: number): Promise<{ ok: boolean; reason?: string; at: number }> {
    const bytes = content(size, seed);
    const at = Date.now();
    const r = await need(engine, 'publish').publishAttachment(meta, bytes);
    return r.ok ? { ok: true, at } : { ok: false, reason: r.reason, at };
  },
  /** A holder that does not offer: it only answers WANT (G6). */
  async hold(meta: SignedAttachment, size: number, seed: number): Promise<boolean> {
    const s = need(store, 'hold');
    await s.putAttachmentMeta(meta);
    return s.putAttachmentBytes(meta.id, content(size, seed));
  },
  async fetch(id: string): Promise<XferFetch> {
    const r = await need(engine, 'fetch').fetchAttachment(id);
    return r.ok ? { ok: true, size: r.bytes.length, sha256: toHex(sha256(r.bytes)) } : { ok: false, reason: r.reason };
  },
  events(): XferEvents {
    return events;
  },
  /**
   * What this page's IndexedDB holds, read with a fresh connection (not the engine's): every attachment
   * id with bytes, and each one's length and SHA-256.
   */
  async stored(): Promise<{ id: string; size: number; sha256: string }[]> {
    const fresh = new DexieStore(dbName);
    try {
      const out: { id: string; size: number; sha256: string }[] = [];
      for (const id of await fresh.listAttachmentIds({})) {
        const rec = await fresh.getAttachment(id);
        if (rec?.bytes) out.push({ id, size: rec.bytes.length, sha256: toHex(sha256(rec.bytes)) });
      }
      return out;
    } finally {
      await fresh.close();
    }
  },
  /** JS heap in use now (Chromium's performance.memory), for the benchmark's sampling fallback. */
  heapUsed(): number {
    return (performance as unknown as { memory?: { usedJSHeapSize: number } }).memory?.usedJSHeapSize ?? 0;
  },
  // ---- the benchmark's baseline: one bare RTCDataChannel between two pages, no engine, no PeerJS ----
  /** Offerer side: a new connection with one ordered channel; the SDP once ICE gathering is complete. */
  async rawOffer(): Promise<string> {
    raw.pc = new RTCPeerConnection({ iceServers: [] });
    raw.dc = raw.pc.createDataChannel('raw', { ordered: true });
    raw.dc.binaryType = 'arraybuffer';
    await raw.pc.setLocalDescription(await raw.pc.createOffer());
    await gathered(raw.pc);
    return raw.pc.localDescription!.sdp;
  },
  /** Answerer side: counts what arrives on the channel. */
  async rawAnswer(sdp: string): Promise<string> {
    raw.pc = new RTCPeerConnection({ iceServers: [] });
    raw.pc.ondatachannel = (ev) => {
      raw.dc = ev.channel;
      raw.dc.binaryType = 'arraybuffer';
      raw.dc.onmessage = (m) => {
        raw.received += (m.data as ArrayBuffer).byteLength;
        if (raw.received >= raw.expect && raw.doneAt === 0) raw.doneAt = Date.now();
      };
    };
    await raw.pc.setRemoteDescription({ type: 'offer', sdp });
    await raw.pc.setLocalDescription(await raw.pc.createAnswer());
    await gathered(raw.pc);
    return raw.pc.localDescription!.sdp;
  },
  async rawAccept(sdp: string): Promise<void> {
    await raw.pc!.setRemoteDescription({ type: 'answer', sdp });
    const dc = raw.dc!;
    if (dc.readyState !== 'open') await new Promise<void>((resolve) => dc.addEventListener('open', () => resolve(), { once: true }));
  },
  rawExpect(size: number): void {
    raw.expect = size;
    raw.received = 0;
    raw.doneAt = 0;
  },
  /**
   * Sends `size` bytes in `messageBytes` messages, paced on bufferedAmount the way the transport paces
   * (refuse above HIGH_WATER 1 MiB, resume at LOW_WATER 256 KiB). Returns when it started (Date.now()).
   */
  async rawSend(size: number, messageBytes: number): Promise<number> {
    const dc = raw.dc!;
    const bytes = content(size, 7);
    dc.bufferedAmountLowThreshold = 256 * 1024;
    const at = Date.now();
    for (let off = 0; off < size; off += messageBytes) {
      if (dc.bufferedAmount > 1024 * 1024) {
        await new Promise<void>((resolve) => dc.addEventListener('bufferedamountlow', () => resolve(), { once: true }));
      }
      dc.send(bytes.subarray(off, Math.min(size, off + messageBytes)) as Uint8Array<ArrayBuffer>);
    }
    return at;
  },
  rawDoneAt(): number {
    return raw.doneAt;
  },
  rawClose(): void {
    raw.pc?.close();
    raw.pc = null;
    raw.dc = null;
  },
  async stop(): Promise<void> {
    await engine?.stop();
    await transport?.close();
    peer?.destroy();
    await store?.close();
    engine = null;
    transport = null;
    peer = null;
    store = null;
  },
};

export type XferApi = typeof api;
(globalThis as unknown as { xfer: XferApi }).xfer = api;
registerCases([]);
