// Lazy presence (SPEC.md P6, P8-P12): what each `events` stream with presence on is shown of who is online.
//
// Sending every stream the whole roster made a login storm of N clients move N x N entries (~225 B each:
// 214 MB for 1,000), whatever the framing. Like Discord's member list for large servers, a stream is shown
// instead: the online counts (throttled), one page of members in a stable order (`comparePresence`), the
// sessions of the keys it watches (itself, authors in view), and a random sample of peers for its sync
// engine to link to. A storm then costs N x (page + sample), and a small community (online <= one page)
// still sees everyone.
//
// Shared work stays shared: streams showing the same page form a group that gets one diff event per turn,
// serialized once; the page's JSON is built once per turn for every snapshot that shows it; counts are one
// event for everyone. Only watched diffs and peer samples are per stream, and both are small and bounded.
import {
  comparePresence,
  LIMITS,
  type PresenceCounts,
  type PresenceUser,
  type PresenceViewInput,
  type RelayEvent,
  type SamplePeer,
} from '../shared/protocol/relay';
import type { PresenceChange } from './bus';
import type { EventStream } from './EventHub';
import { PreEncoded } from './frameEncoder';
import { MultiMap } from './MultiMap';

export interface PresenceFanoutOptions {
  /** Members per page. @default LIMITS.presencePageSize */
  pageSize?: number;
  /** Peers per sample. @default LIMITS.presenceSampleSize */
  sampleSize?: number;
  /**
   * Counts go out at most once per this many ms (SPEC.md P8): in a storm they change every turn, and a
   * count per turn to every stream would be O(N^2) frames again. @default 250
   */
  countsIntervalMs?: number;
  /**
   * Changed counts wait for a pause this long in their changes (SPEC.md P8): in a login storm they change
   * every turn, and each counts event is a frame to every stream (~80% of a 1,000-login storm's presence
   * frames were counts at one per 250 ms). 0: no waiting. @default 50
   */
  countsQuietMs?: number;
  /** ...but never longer than this after the first change not yet sent: the bound on stale counts. @default 1000 */
  countsMaxDelayMs?: number;
  /** @default Date.now */
  now?: () => number;
  /** Picks the peer samples. @default Math.random */
  random?: () => number;
  /** Asks the hub for a flush (the counts timer fired). */
  requestFlush: () => void;
}

type Push = (stream: EventStream, event: RelayEvent | PreEncoded) => void;

/**
 * Sessions of one watched key a stream is shown at most (SPEC.md P10, P12). One key can log in many times
 * (every login is a session, P2); without this a watched key with hundreds of sessions would make every
 * watcher's snapshot that big.
 */
export const MAX_SESSIONS_PER_WATCHED_KEY = 8;

interface Entry {
  user: PresenceUser;
  /** JSON.stringify(user), made once per change: pages and snapshots are concatenations. */
  json: string;
}

/**
 * What one presence stream is shown and asked for. Bounded: page, <= maxPresenceWatch + 1 keys, sample.
 * Arrays, not Sets: most streams watch only their own key and sample 16 sessions, and a Set's hash table
 * per stream was ~0.4 KiB per client (bench:relay heap snapshot).
 */
interface View {
  page: number;
  /**
   * Watched keys, the stream's own key included (P10), distinct. At most `LIMITS.maxPresenceWatch` keys and
   * our own (the `presence.view` schema and `watchList` cut it).
   */
  watch: readonly string[];
  /** The stream's own session: never in its sample. */
  self: string | null;
  /** Sampled session ids, distinct (<= sampleSize, so lookups are a short scan). */
  sample: string[];
  /** Attached in this turn: gets the snapshot at the next flush, nothing else of this turn. */
  fresh: boolean;
  pageReset: boolean;
  watchReset: boolean;
  peersDirty: boolean;
  /** The counts version its snapshot or last counts event carried: it is not sent the same counts twice. */
  countsVersion: number;
}

interface Group {
  /** The page's session ids as last sent to this group. */
  ids: string[];
  streams: Set<EventStream>;
}

interface Change {
  user: PresenceUser | null;
  userId: string;
  /** Joined in this turn: a leave in the same turn cancels it for everyone (P8). */
  isNew: boolean;
}

/** The stream owner's session, as RelaySocket holds it (EventHub's StreamOwner types it `unknown`). */
function sessionUser(stream: EventStream): { userId: string; sessionId: string } | null {
  const s = stream.owner.session as { user?: { userId: string; sessionId: string } } | null;
  return s?.user ?? null;
}

export class PresenceFanout {
  private readonly pageSize: number;
  private readonly sampleSize: number;
  private readonly countsIntervalMs: number;
  private readonly countsQuietMs: number;
  private readonly countsMaxDelayMs: number;
  private readonly now: () => number;
  private readonly random: () => number;

  /** Who is online, by sessionId, and in member order. Bounded by the sessions the bus announces. */
  private readonly roster = new Map<string, Entry>();
  /** The roster's entries in `comparePresence` order: as many as the roster, no more. */
  private readonly order: Entry[] = [];
  private readonly counts: PresenceCounts = { browser: 0, virtual: 0 };
  /** Sessions per key, for watchers: every session is under one key, so bounded by the roster. */
  private readonly byUser = new MultiMap<string, string>();

  /** Bounded by the presence streams. */
  private readonly views = new Map<EventStream, View>();
  private readonly groups = new Map<number, Group>();
  /** Streams watching each key. */
  private readonly watchers = new MultiMap<string, EventStream>();
  /** Streams whose sample holds each session. */
  private readonly samplers = new MultiMap<string, EventStream>();
  /** Streams whose sample is below sampleSize (only while few are online): joins fill them. */
  private readonly hungry = new Set<EventStream>();
  /** Streams with something of their own to send at the next flush. */
  private readonly dirty = new Set<EventStream>();
  /** The view each connection asked for (presence.view), for its streams now and later. */
  private readonly asked = new WeakMap<object, PresenceViewInput>();
  private readonly byOwner = new MultiMap<object, EventStream>();

  /** This turn's net changes by sessionId. Bounded by the roster. */
  private changes = new Map<string, Change>();
  private orderChanged = false;
  /** Bumped whenever the counts change (by versions, not values: a join and a leave still reach a stream
   * whose snapshot came between them). */
  private countsVersion = 0;
  private countsSentVersion = 0;
  private countsSentAt = -Infinity;
  /** When the counts last changed, and when they first changed after the last counts event (P8's bounds). */
  private countsChangedAt = -Infinity;
  private countsPendingSince = -Infinity;
  private countsTimer: ReturnType<typeof setTimeout> | null = null;

  /** Presence events handed to streams, one per recipient (tests, metrics): one frame each. */
  events = 0;
  /** Flushes that had presence to send: the relay turns presence went out in (metrics, bench:relay). */
  flushes = 0;

  constructor(private readonly opts: PresenceFanoutOptions) {
    this.pageSize = opts.pageSize ?? LIMITS.presencePageSize;
    this.sampleSize = opts.sampleSize ?? LIMITS.presenceSampleSize;
    this.countsIntervalMs = opts.countsIntervalMs ?? 250;
    this.countsQuietMs = opts.countsQuietMs ?? 50;
    this.countsMaxDelayMs = opts.countsMaxDelayMs ?? 1000;
    this.now = opts.now ?? Date.now;
    this.random = opts.random ?? Math.random;
  }

  get online(): number {
    return this.roster.size;
  }

  // ---- input: the bus, streams, views ----

  onChange(change: PresenceChange): void {
    if (change.op === 'leave') {
      const id = change.sessionId;
      const e = this.roster.get(id);
      if (!e) return; // never announced here: nothing to take back
      this.roster.delete(id);
      this.order.splice(this.indexOf(e.user), 1);
      this.counts[e.user.kind]--;
      this.countsChanged();
      this.byUser.delete(e.user.userId, id);
      this.orderChanged = true;
      if (this.changes.get(id)?.isNew) this.changes.delete(id);
      else this.changes.set(id, { user: null, userId: e.user.userId, isNew: false });
      return;
    }
    const user = change.user;
    const id = user.sessionId;
    const entry: Entry = { user, json: JSON.stringify(user) };
    const known = this.roster.get(id);
    if (known) {
      // An update (voice room): kind, since and sessionId are fixed, so the place in the order is too.
      this.order[this.indexOf(known.user)] = entry;
    } else {
      this.order.splice(this.insertionPoint(user), 0, entry);
      this.counts[user.kind]++;
      this.countsChanged();
      this.byUser.add(user.userId, id);
      this.orderChanged = true;
    }
    this.roster.set(id, entry);
    const prev = this.changes.get(id);
    this.changes.set(id, { user, userId: user.userId, isNew: prev ? prev.isNew : !known });
  }

  /** A presence stream attached: it gets its snapshot at the next flush. */
  attach(stream: EventStream): void {
    const self = sessionUser(stream);
    const asked = this.asked.get(stream.owner);
    const view: View = {
      page: asked?.page ?? 0,
      watch: [],
      self: self?.sessionId ?? null,
      sample: [],
      fresh: true,
      pageReset: false,
      watchReset: false,
      peersDirty: false,
      countsVersion: -1,
    };
    this.views.set(stream, view);
    this.byOwner.add(stream.owner, stream);
    this.setWatch(stream, view, watchList(asked?.watch ?? [], self?.userId));
    this.dirty.add(stream);
  }

  detach(stream: EventStream): void {
    const view = this.views.get(stream);
    if (!view) return;
    this.views.delete(stream);
    this.leaveGroup(stream, view.page);
    this.setWatch(stream, view, []);
    for (const id of view.sample) this.samplers.delete(id, stream);
    view.sample = [];
    this.hungry.delete(stream);
    this.dirty.delete(stream);
    this.byOwner.delete(stream.owner, stream);
  }

  /** `presence.view` on this connection: applies to its presence streams at the next flush, and to later ones. */
  setView(owner: object, input: PresenceViewInput): void {
    this.asked.set(owner, input);
    for (const stream of [...this.byOwner.get(owner)]) {
      const view = this.views.get(stream)!;
      if (view.fresh) {
        // Its snapshot is still to come: it will show the new view.
        view.page = input.page;
        this.setWatch(stream, view, watchList(input.watch, sessionUser(stream)?.userId));
        continue;
      }
      if (input.page !== view.page) {
        this.leaveGroup(stream, view.page);
        view.page = input.page;
        view.pageReset = true;
      }
      const watch = watchList(input.watch, sessionUser(stream)?.userId);
      if (!sameKeys(watch, view.watch)) {
        this.setWatch(stream, view, watch);
        view.watchReset = true;
      }
      if (input.resample) {
        for (const id of view.sample) this.samplers.delete(id, stream);
        view.sample = [];
        view.peersDirty = true;
      }
      this.dirty.add(stream);
    }
  }

  close(): void {
    if (this.countsTimer) clearTimeout(this.countsTimer);
    this.countsTimer = null;
    this.changes = new Map();
  }

  // ---- output: one flush per relay turn ----

  /** Anything to send at the next flush? */
  get pending(): boolean {
    return this.changes.size > 0 || this.dirty.size > 0 || this.orderChanged || this.countsVersion !== this.countsSentVersion;
  }

  /**
   * This turn's presence, in an order that keeps every stream consistent: the page groups' diffs (bringing
   * each group's page up to date), then the snapshots and resets (built from those current pages), the
   * watched diffs, the peer samples, and the counts.
   */
  flush(push: Push): void {
    this.flushes++;
    const changes = this.changes;
    this.changes = new Map();
    const orderChanged = this.orderChanged;
    this.orderChanged = false;
    const send = (s: EventStream, ev: RelayEvent | PreEncoded) => {
      this.events++;
      push(s, ev);
    };

    if (changes.size > 0 || orderChanged) for (const [page, g] of this.groups) this.flushGroup(page, g, changes, send);

    // Samples lose the sessions that left, and streams still short of peers take this turn's joins.
    for (const [id, c] of changes) {
      if (c.user || !this.samplers.has(id)) continue;
      for (const s of this.samplers.get(id)) {
        const v = this.views.get(s)!;
        removeFrom(v.sample, id);
        v.peersDirty = true;
        this.hungry.add(s);
        this.dirty.add(s);
      }
      this.samplers.deleteKey(id);
    }
    if (this.hungry.size > 0) {
      for (const [id, c] of changes) {
        if (!c.user || !c.isNew) continue;
        for (const s of this.hungry) {
          const v = this.views.get(s)!;
          if (v.fresh || id === v.self || v.sample.length >= this.sampleSize) continue;
          this.sample(s, v, id);
          v.peersDirty = true;
          this.dirty.add(s);
        }
      }
    }

    // Watched diffs, per stream (only streams that watch a changed key).
    const watched = new Map<EventStream, { users: PresenceUser[]; left: string[] }>();
    for (const [id, c] of changes) {
      if (!this.watchers.has(c.userId)) continue;
      // Past the bound, joins and updates of that key are not shown (its leaves still are: harmless).
      if (c.user && this.byUser.count(c.userId) > MAX_SESSIONS_PER_WATCHED_KEY) continue;
      for (const s of this.watchers.get(c.userId)) {
        const v = this.views.get(s)!;
        if (v.fresh || v.watchReset) continue;
        let w = watched.get(s);
        if (!w) watched.set(s, (w = { users: [], left: [] }));
        if (c.user) w.users.push(c.user);
        else w.left.push(id);
      }
    }

    const countsNow = this.countsDue();
    const pageJson = new Map<number, string>();
    for (const s of this.dirty) {
      const v = this.views.get(s);
      if (!v) continue;
      if (v.fresh) {
        v.fresh = false;
        this.joinGroup(s, v.page);
        this.refill(s, v);
        send(s, this.snapshot(v, pageJson));
        v.countsVersion = this.countsVersion;
        continue;
      }
      if (v.pageReset) {
        v.pageReset = false;
        this.joinGroup(s, v.page);
        const users = this.pageUsers(v.page);
        send(s, { t: 'presence', op: 'page', page: v.page, users, left: [], reset: true });
      }
      if (v.watchReset) {
        v.watchReset = false;
        send(s, { t: 'presence', op: 'watched', users: this.watchedUsers(v), left: [], reset: true });
      }
      if (v.peersDirty) {
        v.peersDirty = false;
        this.refill(s, v);
        send(s, { t: 'presence', op: 'peers', peers: v.sample.map((id) => samplePeer(this.roster.get(id)!.user)) });
      }
    }
    this.dirty.clear();
    for (const [s, w] of watched) send(s, { t: 'presence', op: 'watched', users: w.users, left: w.left, reset: false });

    if (countsNow) {
      const event = new PreEncoded({ t: 'presence', op: 'counts', online: { ...this.counts } } satisfies RelayEvent);
      // A stream whose snapshot already held these counts is not sent them again.
      for (const [s, v] of this.views) {
        if (v.fresh || v.countsVersion === this.countsVersion) continue;
        v.countsVersion = this.countsVersion;
        send(s, event);
      }
    }
  }

  private countsChanged(): void {
    const now = this.now();
    if (this.countsVersion === this.countsSentVersion) this.countsPendingSince = now;
    this.countsVersion++;
    this.countsChangedAt = now;
  }

  /**
   * Are the counts to go out now (P8)? Not sooner than countsIntervalMs after the last, and only once their
   * changes paused for countsQuietMs or the oldest unsent change is countsMaxDelayMs old. If not yet, a timer
   * asks for a flush then (a flush before it, for other changes, looks again).
   */
  private countsDue(): boolean {
    if (this.countsVersion === this.countsSentVersion) return false;
    const settled = Math.min(this.countsChangedAt + this.countsQuietMs, this.countsPendingSince + this.countsMaxDelayMs);
    const wait = Math.max(this.countsSentAt + this.countsIntervalMs, settled) - this.now();
    if (wait > 0) {
      this.countsTimer ??= setTimeout(() => {
        this.countsTimer = null;
        this.opts.requestFlush();
      }, wait);
      this.countsTimer.unref?.();
      return false;
    }
    this.countsSentVersion = this.countsVersion;
    this.countsSentAt = this.now();
    return true;
  }

  private flushGroup(page: number, g: Group, changes: Map<string, Change>, send: (s: EventStream, ev: RelayEvent | PreEncoded) => void): void {
    const start = page * this.pageSize;
    const now = this.order.slice(start, start + this.pageSize);
    const before = new Set(g.ids);
    const users: string[] = [];
    const objs: PresenceUser[] = [];
    for (const e of now) {
      const id = e.user.sessionId;
      if (!before.delete(id) || changes.get(id)?.user) {
        users.push(e.json);
        objs.push(e.user);
      }
    }
    const left = [...before];
    g.ids = now.map((e) => e.user.sessionId);
    if (objs.length === 0 && left.length === 0) return;
    const event = { t: 'presence', op: 'page', page, users: objs, left, reset: false } satisfies RelayEvent;
    const encoded = new PreEncoded(
      event,
      `{"t":"presence","op":"page","page":${page},"users":[${users.join(',')}],"left":${JSON.stringify(left)},"reset":false}`,
    );
    for (const s of g.streams) {
      const v = this.views.get(s);
      if (v && !v.fresh && !v.pageReset) send(s, encoded);
    }
  }

  private snapshot(v: View, pageJson: Map<number, string>): PreEncoded {
    let json = pageJson.get(v.page);
    if (json === undefined) {
      json = this.pageEntries(v.page).map((e) => e.json).join(',');
      pageJson.set(v.page, json);
    }
    const watchedEntries = this.watchedEntries(v);
    const event = {
      t: 'presence',
      op: 'snapshot',
      online: { ...this.counts },
      page: v.page,
      users: this.pageUsers(v.page),
      watched: watchedEntries.map((e) => e.user),
      // Stringified per snapshot (at most presenceSampleSize small objects, a few us) rather than kept as
      // JSON per entry: that string was ~0.13 KiB per online session (SPEC.md R18).
      peers: v.sample.map((id) => samplePeer(this.roster.get(id)!.user)),
    } satisfies RelayEvent;
    return new PreEncoded(
      event,
      `{"t":"presence","op":"snapshot","online":${JSON.stringify(event.online)},"page":${v.page},"users":[${json}],` +
        `"watched":[${watchedEntries.map((e) => e.json).join(',')}],"peers":${JSON.stringify(event.peers)}}`,
    );
  }

  private pageEntries(page: number): Entry[] {
    const start = page * this.pageSize;
    return this.order.slice(start, start + this.pageSize);
  }

  private pageUsers(page: number): PresenceUser[] {
    return this.pageEntries(page).map((e) => e.user);
  }

  private watchedEntries(v: View): Entry[] {
    const out: Entry[] = [];
    for (const key of v.watch) {
      let n = 0;
      for (const id of this.byUser.get(key)) {
        if (n++ >= MAX_SESSIONS_PER_WATCHED_KEY) break;
        out.push(this.roster.get(id)!);
      }
    }
    return out;
  }

  private watchedUsers(v: View): PresenceUser[] {
    return this.watchedEntries(v).map((e) => e.user);
  }

  // ---- groups, watchers, samples ----

  private joinGroup(s: EventStream, page: number): void {
    let g = this.groups.get(page);
    if (!g) this.groups.set(page, (g = { ids: this.pageEntries(page).map((e) => e.user.sessionId), streams: new Set() }));
    g.streams.add(s);
  }

  private leaveGroup(s: EventStream, page: number): void {
    const g = this.groups.get(page);
    if (!g) return;
    g.streams.delete(s);
    if (g.streams.size === 0) this.groups.delete(page);
  }

  private setWatch(s: EventStream, v: View, watch: readonly string[]): void {
    // Both lists are distinct keys; MultiMap's add and delete are idempotent, so keys in both stay watched.
    const keep = lookup(watch);
    for (const key of v.watch) if (!keep(key)) this.watchers.delete(key, s);
    for (const key of watch) this.watchers.add(key, s);
    v.watch = watch;
  }

  private sample(s: EventStream, v: View, id: string): void {
    v.sample.push(id);
    this.samplers.add(id, s);
    if (v.sample.length >= this.sampleSize) this.hungry.delete(s);
  }

  /** Tops the sample up to sampleSize with random online sessions (not its own); hungry if there are too few. */
  private refill(s: EventStream, v: View): void {
    const others = this.order.length - (v.self && this.roster.has(v.self) ? 1 : 0);
    const want = Math.min(this.sampleSize, others);
    if (others <= this.sampleSize) {
      for (const e of this.order) if (e.user.sessionId !== v.self && !v.sample.includes(e.user.sessionId)) this.sample(s, v, e.user.sessionId);
    } else {
      // Random picks; a few misses (self, already sampled) are retried, bounded so a flush stays O(sample).
      for (let tries = 0; v.sample.length < want && tries < want * 8; tries++) {
        const id = this.order[Math.floor(this.random() * this.order.length)]!.user.sessionId;
        if (id !== v.self && !v.sample.includes(id)) this.sample(s, v, id);
      }
    }
    if (v.sample.length < this.sampleSize) this.hungry.add(s);
    else this.hungry.delete(s);
  }

  // ---- the order ----

  /** First index whose entry sorts after `u`. */
  private insertionPoint(u: PresenceUser): number {
    let lo = 0;
    let hi = this.order.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (comparePresence(this.order[mid]!.user, u) <= 0) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  /** Index of the entry of `u`'s session (it is in the order). */
  private indexOf(u: PresenceUser): number {
    return this.insertionPoint(u) - 1;
  }
}

function samplePeer(u: PresenceUser): SamplePeer {
  return { peerId: u.peerId, userId: u.userId, kind: u.kind };
}

/** The keys a stream watches, distinct: what it asked for, bounded (the schema caps it too), and its own key. */
function watchList(keys: readonly string[], own: string | undefined): readonly string[] {
  const out = new Set(keys.slice(0, LIMITS.maxPresenceWatch));
  if (own) out.add(own);
  return [...out];
}

/** Membership in `keys`: a scan for the usual handful, a Set for long lists (up to maxPresenceWatch + 1). */
function lookup(keys: readonly string[]): (key: string) => boolean {
  if (keys.length <= 8) return (key) => keys.includes(key);
  const set = new Set(keys);
  return (key) => set.has(key);
}

function sameKeys(a: readonly string[], b: readonly string[]): boolean {
  if (a.length !== b.length) return false;
  const inB = lookup(b);
  return a.every(inB);
}

function removeFrom(list: string[], item: string): void {
  const at = list.indexOf(item);
  if (at >= 0) list.splice(at, 1);
}
