// A scripted stand-in for PeerchatClient with the same UI surface (ClientLike), for page tests and
// screenshots: the test sets the snapshot and settles posts; the views cannot tell the difference.
import type {
  ClientEvents,
  ClientSnapshot,
  ConnectionState,
  OutgoingPost,
  PendingPost,
  PresenceEntry,
} from '../../shared/client/PeerchatClient';
import type { ClientError } from '../../shared/client/PeerchatClient';
import { contentDigests } from '../../shared/protocol/signed';
import type { AttachmentMeta, Channel, Envelope, SignedAttachment } from '../../shared/protocol/relay';
import type { HistoryStore } from '../../shared/store/HistoryStore';
import type { FetchResult } from '../../shared/sync/AttachmentSync';
import { Emitter } from '../../shared/sync/Emitter';
import type { ClientLike } from '../session/ClientLike';

export interface PostCall {
  channel: string;
  text: string;
  replyTo: string | null;
  clientId: string;
  attachments: readonly SignedAttachment[];
}

export class FakeClient implements ClientLike {
  snap: ClientSnapshot;
  readonly posts: PostCall[] = [];
  readonly trusted: string[] = [];
  reconnects = 0;
  /** What publishAttachment was given (the shared bytes), in order. */
  readonly published: { bytes: Uint8Array; meta: AttachmentMeta; attachment: SignedAttachment }[] = [];
  /** When set, the next mint fails with this relay reason (then clears): the composer must keep the file. */
  failNextMint: string | null = null;
  /** Resolves mints only when the test says so (to see the uploading state); null = at once. */
  mintGate: Promise<void> | null = null;
  /** Holds every fetch until it resolves (to see the progress bar); null = at once. */
  fetchGate: Promise<void> | null = null;
  #events = new Emitter<ClientEvents>();
  #listeners = new Set<() => void>();
  #seq = 0;
  readonly #store: HistoryStore | null;
  readonly #self: { publicKey: string };

  constructor(self: { publicKey: string; fingerprint: string; name: string }, channels: Channel[], store: HistoryStore | null = null) {
    this.#store = store;
    this.#self = self;
    this.snap = {
      connection: { state: 'online', since: Date.now() },
      self: { ...self, kind: 'browser' },
      relay: null,
      pinnedRelayKey: null,
      channels,
      session: { peerId: null, sessionId: null, peerOpen: true, logins: 1 },
      presence: [],
      members: { online: { browser: 0, virtual: 0 }, page: 0, pageSize: 50, shown: 0 },
      links: 0,
      sync: Object.fromEntries(channels.map((c) => [c.id, { state: 'synced', peers: 0, received: 0, lastSyncedAt: Date.now(), gaps: [] }])),
      outbox: [],
      errors: [],
      voice: { rooms: {}, joined: null, muted: false, deafened: false, microphone: null, calls: {}, refusedCalls: 0, error: null },
    };
  }

  /** Voice actions the views asked for, in order (e.g. `join general`, `mute true`). */
  readonly voiceActions: string[] = [];
  readonly voice: ClientLike['voice'] = {
    join: async (channel) => {
      this.voiceActions.push(`join ${channel}`);
      this.set({ voice: { ...this.snap.voice, joined: { channel, state: 'joined' } } });
      return { ok: true };
    },
    leave: async () => {
      this.voiceActions.push('leave');
      this.set({ voice: { ...this.snap.voice, joined: null } });
    },
    setMuted: async (muted) => {
      this.voiceActions.push(`mute ${muted}`);
      this.set({ voice: { ...this.snap.voice, muted: muted || this.snap.voice.deafened } });
    },
    setDeafened: async (deafened) => {
      this.voiceActions.push(`deafen ${deafened}`);
      this.set({ voice: { ...this.snap.voice, deafened, muted: deafened || this.snap.voice.muted } });
    },
    setMicrophone: async (deviceId) => {
      this.voiceActions.push(`microphone ${deviceId}`);
      this.set({ voice: { ...this.snap.voice, microphone: deviceId } });
    },
  };

  set(patch: Partial<ClientSnapshot>): void {
    this.snap = { ...this.snap, ...patch };
    for (const l of this.#listeners) l();
  }
  setConnection(c: ConnectionState): void {
    this.set({ connection: c });
  }
  /** Presence as a small community sees it: everyone on page 0 (or `online` counts for a larger one). */
  setPresence(p: PresenceEntry[], online?: { browser: number; virtual: number }): void {
    const counts = online ?? { browser: p.filter((e) => e.kind === 'browser').length, virtual: p.filter((e) => e.kind === 'virtual').length };
    this.set({ presence: p, members: { ...this.snap.members, online: counts, shown: p.length } });
  }
  /** Watch lists asked for (authors in view, SPEC.md P10). */
  readonly watched: string[][] = [];
  watchUsers(keys: readonly string[]): void {
    this.watched.push([...keys]);
  }
  /** Member pages asked for (the real client asks the relay). */
  readonly memberPages: number[] = [];
  setMemberPage(page: number): void {
    this.memberPages.push(page);
    this.set({ members: { ...this.snap.members, page } });
  }

  getSnapshot = (): ClientSnapshot => this.snap;
  subscribe = (l: () => void): (() => void) => {
    this.#listeners.add(l);
    return () => this.#listeners.delete(l);
  };
  on<K extends keyof ClientEvents>(event: K, handler: (e: ClientEvents[K]) => void): () => void {
    return this.#events.on(event, handler);
  }
  /** The test plays the engine: progress of a download, an attachment fetched in the background. */
  emit<K extends keyof ClientEvents>(event: K, e: ClientEvents[K]): void {
    this.#events.emit(event, e);
  }

  post(channel: string, text: string, opts: { replyTo?: string | null; attachments?: SignedAttachment[] } = {}): PendingPost {
    const clientId = `fake${String(++this.#seq).padStart(8, '0')}`;
    const attachments = opts.attachments ?? [];
    const record: OutgoingPost = {
      clientId, channel, text, replyTo: opts.replyTo ?? null, attachments, createdAt: Date.now(), status: 'sending', attempts: 1, error: null,
    };
    this.posts.push({ channel, text, replyTo: record.replyTo, clientId, attachments });
    this.set({ outbox: [...this.snap.outbox, record] });
    return { record, clientId, result: new Promise(() => {}) };
  }
  /** The test decides how a post ends. */
  fail(clientId: string, reason: string): void {
    this.set({
      outbox: this.snap.outbox.map((p) =>
        p.clientId === clientId ? { ...p, status: 'failed', error: { reason: reason as never, message: reason, where: 'post', at: Date.now() } } : p,
      ),
    });
  }
  confirmed(env: Envelope): void {
    this.set({ outbox: this.snap.outbox.filter((p) => p.clientId !== env.post.clientId) });
  }
  retry(clientId: string): PendingPost | null {
    const p = this.snap.outbox.find((o) => o.clientId === clientId);
    if (!p) return null;
    const record: OutgoingPost = { ...p, status: 'sending', attempts: p.attempts + 1, error: null };
    this.set({ outbox: this.snap.outbox.map((o) => (o.clientId === clientId ? record : o)) });
    return { record, clientId, result: new Promise(() => {}) };
  }
  discard(clientId: string): void {
    this.set({ outbox: this.snap.outbox.filter((o) => o.clientId !== clientId) });
  }
  async trustRelayKey(offered: string): Promise<void> {
    this.trusted.push(offered);
    this.setConnection({ state: 'online', since: Date.now() });
  }
  reconnect(): void {
    this.reconnects++;
  }
  syncNow(): void {}

  /** Mints like the relay (placeholder signature; the views never verify) and stores like the engine. */
  async publishAttachment(
    bytes: Uint8Array,
    meta: Pick<AttachmentMeta, 'name' | 'mime'> & Partial<AttachmentMeta>,
  ): Promise<{ ok: true; attachment: SignedAttachment } | { ok: false; error: ClientError }> {
    if (this.mintGate) await this.mintGate;
    if (this.failNextMint) {
      const reason = this.failNextMint;
      this.failNextMint = null;
      return { ok: false, error: { reason: reason as never, message: reason, where: 'attachment', at: Date.now() } };
    }
    const id = `01K${String(++this.#seq).padStart(23, '0')}`;
    const full: AttachmentMeta = { ...meta, ...contentDigests(bytes) } as AttachmentMeta;
    const attachment: SignedAttachment = { id, ts: Date.now(), uploader: this.#self.publicKey, meta: full, relay: 'R'.repeat(43), rsig: 'A'.repeat(86) };
    if (this.#store) {
      await this.#store.putAttachmentMeta(attachment);
      await this.#store.putAttachmentBytes(id, bytes);
    }
    this.published.push({ bytes, meta: full, attachment });
    return { ok: true, attachment };
  }

  /** From the store, as the engine does for held bytes; not held = no peer has it (NOT_FOUND). */
  async fetchAttachment(id: string, opts: { signal?: AbortSignal } = {}): Promise<FetchResult> {
    if (this.fetchGate) await this.fetchGate;
    const rec = await this.#store?.getAttachment(id);
    if (opts.signal?.aborted) return { ok: false, reason: 'ABORTED' };
    if (!rec) return { ok: false, reason: 'UNKNOWN' };
    return rec.bytes ? { ok: true, bytes: rec.bytes } : { ok: false, reason: 'NOT_FOUND' };
  }
}
