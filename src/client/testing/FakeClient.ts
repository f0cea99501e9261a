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
import type { Channel, Envelope } from '../../shared/protocol/relay';
import type { ClientLike } from '../session/ClientLike';

export interface PostCall {
  channel: string;
  text: string;
  replyTo: string | null;
  clientId: string;
}

export class FakeClient implements ClientLike {
  snap: ClientSnapshot;
  readonly posts: PostCall[] = [];
  readonly trusted: string[] = [];
  reconnects = 0;
  #listeners = new Set<() => void>();
  #seq = 0;

  constructor(self: { publicKey: string; fingerprint: string; name: string }, channels: Channel[]) {
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
  on<K extends keyof ClientEvents>(_event: K, _handler: (e: ClientEvents[K]) => void): () => void {
    return () => {};
  }

  post(channel: string, text: string, opts: { replyTo?: string | null } = {}): PendingPost {
    const clientId = `fake${String(++this.#seq).padStart(8, '0')}`;
    const record: OutgoingPost = {
      clientId, channel, text, replyTo: opts.replyTo ?? null, attachments: [], createdAt: Date.now(), status: 'sending', attempts: 1, error: null,
    };
    this.posts.push({ channel, text, replyTo: record.replyTo, clientId });
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
}
