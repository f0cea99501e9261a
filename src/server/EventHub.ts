// Local fan-out of bus traffic to every `events` stream on this relay (SPEC.md R7).
//
// Fan-out cost is what limits a relay on a small VM (platform-facts: tRPC serializes each event once per
// connection). So envelopes published in the same event-loop turn are coalesced into one `msgs` event whose
// `raw` string is built once per distinct channel filter and shared by every subscriber with that filter;
// the frame encoder then reuses one escaped copy of it (frameEncoder.ts).
//
// Presence is lazy and coalesced (SPEC.md P6, P8-P12; PresenceFanout.ts): the changes of one turn reach
// each stream as at most one event per kind, and a stream is shown counts, one page of members, the keys it
// watches and a peer sample -- never the whole roster, which made a login storm O(n^2) in bytes.
import { CloseCode, type PresenceViewInput, type RelayEvent } from '../shared/protocol/relay';
import type { BusListener, RelayBus } from './bus';
import type { PreEncoded } from './frameEncoder';
import { PresenceFanout, type PresenceFanoutOptions } from './PresenceFanout';
import { PUSH_ITERATOR, type PushSink } from './trpcWsAdapter';

type MsgsEvent = Extract<RelayEvent, { t: 'msgs' }>;

/** What a stream needs from its connection. */
export interface StreamOwner {
  /** Unsent bytes on the socket, read at fan-out (SPEC.md R10). */
  readonly bufferedAmount: number;
  /** Logged in yet? A stream opened before login starts at login (SPEC.md R7). */
  readonly session: unknown;
  /** Streams waiting for this connection's login. */
  pendingStreams: EventStream[] | null;
  subscriptions: number;
  closeFor(code: number, reason: string): void;
}

const DONE: IteratorReturnResult<undefined> = Object.freeze({ value: undefined, done: true });
const CREATED = 0;
const WAITING_FOR_LOGIN = 1;
const ATTACHED = 2;
const ENDED = 3;

/**
 * One `events` subscription: the hub's mailbox for it and the async iterator tRPC drains, in one object.
 *
 * Hand-written instead of an async generator (platform-facts: a generator over `events.on()` costs ~64 KiB
 * per stream, a small generator ~28 KiB): no generator context, no AbortSignal listener, no closures.
 * The relay's adapter (trpcWsAdapter.ts) drives it by push (`PUSH_ITERATOR`): each event goes straight to
 * the adapter's sink, so an idle stream holds no pending promise at all. Pulled with `next()` (any other
 * consumer) it queues. Either way it is ended through `return()` (stop, socket close), which completes at
 * once even while a `next()` is pending -- an async generator suspended in an `await` could not, and
 * would leak. It attaches to the hub on the first `next()` / push, so a stream never consumed (socket
 * closed during setup) is never registered anywhere.
 */
export class EventStream implements AsyncIterableIterator<RelayEvent, undefined>, AsyncDisposable {
  private state = CREATED;
  private queue: RelayEvent[] | null = null;
  private head = 0;
  private waiting: ((r: IteratorResult<RelayEvent, undefined>) => void) | null = null;
  /** Set when the tRPC adapter drives this stream by push (no pending next() per idle stream). */
  private sink: PushSink | null = null;
  /** Set when the hub dropped this stream (slow consumer). */
  dropped = false;

  constructor(
    private readonly hub: EventHub,
    readonly owner: StreamOwner,
    /** null = every channel. */
    channels: ReadonlySet<string> | null,
    readonly presence: boolean,
    /**
     * Unused: the hub sends the presence snapshot itself (one serialization per turn for all newcomers).
     * Kept so existing callers compile; drop it from router.ts.
     */
    _initial?: unknown,
  ) {
    const filter = hub.filterFor(channels);
    this.channels = filter.channels;
    this.filterKey = filter.key;
  }

  /** null = every channel. Shared by every stream with the same filter. */
  readonly channels: ReadonlySet<string> | null;
  /** Streams with equal keys receive the same `msgs` events (sorted channel list, or '*'). */
  readonly filterKey: string;

  get queued(): number {
    return this.queue ? this.queue.length - this.head : 0;
  }

  /** Called when the owner logs in, for streams that were waiting. */
  start(): void {
    if (this.state !== WAITING_FOR_LOGIN && this.state !== CREATED) return;
    this.state = ATTACHED;
    // The snapshot follows at the end of this turn, taken after every change of the turn, so no change is
    // missed or doubled (SPEC.md P6).
    this.hub.attach(this);
  }

  /** Hub side: hands over one event (the hub already checked the bounds). A PreEncoded is a RelayEvent. */
  deliver(value: RelayEvent | PreEncoded): void {
    const event = value as RelayEvent;
    if (this.sink) {
      this.sink.data(event);
      return;
    }
    const waiting = this.waiting;
    if (waiting) {
      this.waiting = null;
      waiting({ value: event, done: false });
      return;
    }
    (this.queue ??= []).push(event);
  }

  /** Hub side: this stream's reader fell too far behind. */
  drop(): void {
    if (this.dropped || this.state === ENDED) return;
    this.dropped = true;
    this.hub.detach(this);
    this.owner.closeFor(CloseCode.SLOW_CONSUMER, 'SLOW_CONSUMER');
    this.finish();
  }

  /** The adapter's push fast path (trpcWsAdapter.ts): events go straight to `sink`, as they arrive. */
  [PUSH_ITERATOR](sink: PushSink): void {
    if (this.state !== CREATED) return;
    this.sink = sink;
    this.begin();
  }

  private begin(): void {
    if (this.owner.session) this.start();
    else {
      this.state = WAITING_FOR_LOGIN;
      (this.owner.pendingStreams ??= []).push(this);
    }
  }

  next(): Promise<IteratorResult<RelayEvent, undefined>> {
    if (this.state === CREATED) this.begin();
    const q = this.queue;
    if (q && this.head < q.length) {
      const value = q[this.head]!;
      q[this.head++] = undefined as never; // release the reference now
      if (this.head === q.length) {
        this.queue = null;
        this.head = 0;
      }
      return Promise.resolve({ value, done: false });
    }
    if (this.state === ENDED || this.dropped) return Promise.resolve(DONE);
    return new Promise((resolve) => {
      this.waiting = resolve;
    });
  }

  return(): Promise<IteratorResult<RelayEvent, undefined>> {
    this.finish();
    return Promise.resolve(DONE);
  }

  async [Symbol.asyncDispose](): Promise<void> {
    this.finish();
  }

  [Symbol.asyncIterator](): this {
    return this;
  }

  /** Idempotent end: detached, off the login wait list, counted out, pending `next()` (or the sink) told. */
  private finish(): void {
    if (this.state === ENDED) return;
    const sink = this.sink;
    this.sink = null;
    this.state = ENDED;
    this.hub.detach(this);
    const pending = this.owner.pendingStreams;
    if (pending) {
      const i = pending.indexOf(this);
      if (i >= 0) pending.splice(i, 1);
    }
    this.owner.subscriptions--; // counted up when the procedure created this stream
    this.queue = null;
    const waiting = this.waiting;
    this.waiting = null;
    waiting?.(DONE);
    sink?.end(); // a no-op when the adapter itself ended the stream (return())
  }
}

export interface EventHubOptions {
  /** Max queued events per stream before it is dropped. */
  maxQueued: number;
  /** Max socket bufferedAmount before the stream is dropped. */
  maxBufferedBytes: number;
  /**
   * Flush a pending batch early once its JSON reaches this many characters, so one `msgs` frame stays well
   * under client frame limits. @default 192 KiB
   */
  maxBatchChars?: number;
  /** Lazy presence: page and sample sizes, the counts interval (PresenceFanout.ts). */
  presence?: Omit<PresenceFanoutOptions, 'requestFlush'>;
  /** Called after each fan-out (a flush, a broadcast): per-event caches can let go of the event (frameEncoder.ts release). */
  afterFanOut?: () => void;
}

const ALL_CHANNELS = Object.freeze({ key: '*', channels: null });
const MAX_FILTERS = 256;

export class EventHub {
  private readonly streams = new Set<EventStream>();
  private readonly filters = new Map<string, { key: string; channels: ReadonlySet<string> }>();
  private pending: { channel: string; json: string }[] = [];
  private pendingChars = 0;
  private readonly presenceFanout: PresenceFanout;
  private flushScheduled: NodeJS.Immediate | null = null;
  private readonly unsubscribe: () => void;
  private readonly maxBatchChars: number;
  /** Envelopes handed to streams (metrics: messages relayed = envelopes x recipients). */
  deliveries = 0;

  constructor(
    bus: RelayBus,
    private readonly opts: EventHubOptions,
  ) {
    this.maxBatchChars = opts.maxBatchChars ?? 192 * 1024;
    this.presenceFanout = new PresenceFanout({ ...opts.presence, requestFlush: () => this.schedule() });
    const listener: BusListener = {
      envelope: (env, json) => this.onEnvelope(env.post.channel, json),
      presence: (change) => {
        this.presenceFanout.onChange(change);
        this.schedule();
      },
    };
    this.unsubscribe = bus.subscribe(listener);
  }

  get size(): number {
    return this.streams.size;
  }

  /** Presence events sent (tests, metrics): frames = events x recipients. */
  get presenceEvents(): number {
    return this.presenceFanout.events;
  }

  /** Relay turns in which presence went out (metrics): a storm's events over its ticks. */
  get presenceFlushes(): number {
    return this.presenceFanout.flushes;
  }

  /** `presence.view` of one connection (SPEC.md P9-P11): its presence streams show that from the next turn. */
  setPresenceView(owner: object, view: PresenceViewInput): void {
    this.presenceFanout.setView(owner, view);
    this.schedule();
  }

  /**
   * One shared Set and key string per distinct channel filter, instead of one per stream (most clients ask
   * for the same channels). Bounded: past MAX_FILTERS distinct filters, streams keep their own.
   */
  filterFor(channels: ReadonlySet<string> | null): { key: string; channels: ReadonlySet<string> | null } {
    if (!channels) return ALL_CHANNELS;
    const key = [...channels].sort().join(',');
    let shared = this.filters.get(key);
    if (!shared) {
      shared = { key, channels };
      if (this.filters.size < MAX_FILTERS) this.filters.set(key, shared);
    }
    return shared;
  }

  attach(stream: EventStream): void {
    this.streams.add(stream);
    if (stream.presence) {
      this.presenceFanout.attach(stream);
      this.schedule();
    }
  }

  detach(stream: EventStream): void {
    this.streams.delete(stream);
    if (stream.presence) this.presenceFanout.detach(stream);
  }

  /** Sends one event to every stream (the shutdown `bye`), after whatever is pending. */
  broadcast(event: RelayEvent): void {
    this.flush();
    for (const s of this.streams) this.push(s, event);
    this.opts.afterFanOut?.();
  }

  close(): void {
    this.unsubscribe();
    if (this.flushScheduled) clearImmediate(this.flushScheduled);
    this.flushScheduled = null;
    this.pending = [];
    this.presenceFanout.close();
  }

  private schedule(): void {
    // setImmediate (not a microtask): runs after this poll phase, so posts and logins read from many sockets
    // in the same loop turn share one batch, at a latency cost of one loop turn.
    this.flushScheduled ??= setImmediate(() => this.flush());
  }

  private onEnvelope(channel: string, json: string): void {
    this.pending.push({ channel, json });
    this.pendingChars += json.length;
    if (this.pendingChars >= this.maxBatchChars) {
      this.flush();
      return;
    }
    this.schedule();
  }

  /**
   * Delivers this turn's work: the `msgs` batch, then presence (after the messages published before its
   * changes, SPEC.md P6). Exposed for tests and shutdown.
   */
  flush(): void {
    if (this.flushScheduled) {
      clearImmediate(this.flushScheduled);
      this.flushScheduled = null;
    }
    this.flushMsgs();
    if (this.presenceFanout.pending) this.presenceFanout.flush((s, ev) => this.push(s, ev));
    this.opts.afterFanOut?.();
  }

  private flushMsgs(): void {
    const batch = this.pending;
    if (batch.length === 0) return;
    this.pending = [];
    this.pendingChars = 0;
    // One event per distinct filter; most clients use '*' so this is usually a single build.
    const byFilter = new Map<string, { event: MsgsEvent; count: number } | null>();
    for (const s of this.streams) {
      const key = s.filterKey;
      let built = byFilter.get(key);
      if (built === undefined) {
        const parts: string[] = [];
        for (const p of batch) if (!s.channels || s.channels.has(p.channel)) parts.push(p.json);
        built = parts.length ? { event: { t: 'msgs', raw: `[${parts.join(',')}]` }, count: parts.length } : null;
        byFilter.set(key, built);
      }
      if (built) {
        this.deliveries += built.count;
        this.push(s, built.event);
      }
    }
  }

  private push(s: EventStream, event: RelayEvent | PreEncoded): void {
    if (s.dropped) return;
    // Checked here, in fan-out, so one stuck reader cannot make the relay buffer without bound (STYLE 11).
    if (s.queued >= this.opts.maxQueued || s.owner.bufferedAmount > this.opts.maxBufferedBytes) {
      s.drop();
      return;
    }
    s.deliver(event);
  }
}
