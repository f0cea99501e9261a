// The virtual client (SPEC.md VC1-VC7): a headless peer of kind 'virtual' that keeps the recent past of
// every channel in a bounded memory cache, so a browser that logs in after the authors left still gets
// the history and the attachments. It serves last (G7: real peers are asked first; it answers requests
// that are not lastResort only after virtualDelayMs) and never forwards gossip. Its identity is a key
// file it creates once (0600) and reuses, so presence shows the same virtual user across restarts.
import { loadOrCreateKeyFile } from '../shared/crypto/keyFile.node.js';
import type { SignedAttachment } from '../shared/protocol/relay';
import { MemoryStore } from '../shared/store/MemoryStore';
import type { SyncTuning } from '../shared/sync/SyncEngine';
import { NodePeer, type NodePeerLog, type NodePeerOptions, type NodePeerStatus } from './NodePeer';

export const VIRTUAL_DEFAULTS = {
  /** Three hours: what a user back from a meeting or a commute expects to find. */
  maxAgeMs: 3 * 60 * 60 * 1000,
  /** 64 MiB accounted (~1.3x that in heap for text, SPEC.md H10): fits one client on a 256 MB VM. */
  maxBytes: 64 * 1024 * 1024,
  /** Largest attachment fetched in the background: a quarter of the cache, at most 16 MiB. */
  maxAttachmentFraction: 1 / 4,
  maxLinks: 32,
  name: 'virtual',
} as const;

export interface VirtualClientOptions {
  /** The relay's origin, e.g. `http://127.0.0.1:8080`. */
  relayUrl: string;
  /** Path of this client's key file: created (0600) on first start, never overwritten. */
  keyFile: string;
  /** Display name in presence. @default 'virtual' */
  name?: string;
  /** Drop what the relay stamped longer ago than this. @default 3 h */
  maxAgeMs?: number;
  /** Cache budget (MemoryStore accounting). @default 64 MiB */
  maxBytes?: number;
  /** Clock of the cache's age bound (tests move it). @default Date.now */
  now?: () => number;
  /** Peer links at most (wrtc holds native threads per link, VC5). @default 32 */
  maxLinks?: number;
  /** Further sync engine tuning. */
  sync?: SyncTuning & { seed?: number };
  relay?: NodePeerOptions['relay'];
  /** @default silent */
  log?: NodePeerLog;
  /** Log every link event too (debugging). @default false */
  traceLinks?: boolean;
}

export interface VirtualClientStatus extends NodePeerStatus {
  name: string;
}

export class VirtualClient {
  private constructor(
    readonly node: NodePeer,
    readonly store: MemoryStore,
    readonly name: string,
    /** The key file used (created now or before). */
    readonly keyFile: string,
    readonly keyCreated: boolean,
  ) {}

  /** Loads or creates the key, then connects and logs in (see NodePeer.start for failures). */
  static async start(opts: VirtualClientOptions): Promise<VirtualClient> {
    const key = loadOrCreateKeyFile(opts.keyFile);
    const maxBytes = opts.maxBytes ?? VIRTUAL_DEFAULTS.maxBytes;
    const store = new MemoryStore({ maxAgeMs: opts.maxAgeMs ?? VIRTUAL_DEFAULTS.maxAgeMs, maxBytes, now: opts.now });
    const name = opts.name ?? VIRTUAL_DEFAULTS.name;
    const maxAttachment = Math.min(16 * 1024 * 1024, Math.floor(maxBytes * VIRTUAL_DEFAULTS.maxAttachmentFraction));
    const maxLinks = opts.maxLinks ?? VIRTUAL_DEFAULTS.maxLinks;
    try {
      const node = await NodePeer.start({
        relayUrl: opts.relayUrl,
        secretKey: key.secretKey,
        name,
        kind: 'virtual',
        store,
        // Every channel: channels omitted from the events input.
        sync: {
          // Background-fetch what the cache can hold without evicting most of itself for one file.
          wantAttachment: (a: SignedAttachment) => a.meta.size <= maxAttachment,
          ...opts.sync,
          maxLinks,
        },
        maxLinks: maxLinks + 8,
        relay: opts.relay,
        log: opts.log,
        traceLinks: opts.traceLinks,
      });
      return new VirtualClient(node, store, name, key.path, key.created);
    } catch (err) {
      await store.close();
      throw err;
    }
  }

  get publicKey(): string {
    return this.node.publicKey;
  }

  status(): VirtualClientStatus {
    return { name: this.name, ...this.node.status() };
  }

  /** Closes every peer connection, the engine, the Peer, the relay socket and the cache. */
  async stop(): Promise<void> {
    await this.node.stop();
    await this.store.close();
  }
}
