// PeerJS signalling over the relay's tRPC socket (SPEC.md W11). A peerchat client already holds one
// WebSocket to the relay; PeerJS would open a second one (`/peerjs`) for its signalling. Here the Peer's
// server connection is swapped for a `signal.connect` stream (what the relay says to this peer) and
// `signal.send` batches (what it says back), on the socket the client has: one socket per client, one
// handshake per login, and the relay's per-socket budgets (R11) cover signalling too.
//
// PeerJS has no hook for this, so `relaySignalledPeer` subclasses its `Peer` and patches the one object
// PeerJS talks to, its `Socket` (an EventEmitter with start/send/close that emits 'message', 'error' and
// 'disconnected'). A Peer built without the `relaySignal` option is left alone and opens `/peerjs`, so a
// stock PeerJS client and the relay's `/peerjs` endpoint keep working (W1-W10).
import type { Peer } from 'peerjs';
import { SIGNAL_MAX_BATCH } from '../protocol/relay';

/** The relay side of one Peer's signalling: built from the client's tRPC proxy (PeerchatClient). */
export interface RelaySignalChannel {
  /**
   * Opens `signal.connect` for `peerId`. `message` gets each server message (JSON text, OPEN first); `end`
   * is called once when the stream ends by the relay's doing (refused, kicked, the socket lost), not after
   * `close()`.
   */
  open(peerId: string, on: { message(text: string): void; end(why: string): void }): { close(): void };
  /** One `signal.send`: at most SIGNAL_MAX_BATCH messages, in order. */
  send(texts: string[]): Promise<unknown>;
}

/** The PeerJS options a Peer built by `relaySignalledPeer` reads (ignored by a plain Peer). */
export interface RelaySignalOption {
  relaySignal?: RelaySignalChannel;
}

/**
 * Least time between two flushes. A socket may send 50 frames a second (R11); signalling takes at most 20
 * of them however many links open at once, and an OFFER's first candidates usually go with it.
 */
export const SIGNAL_FLUSH_MS = 50;
/** Batches of one flush (a burst of 30 links is ~300 messages: three flushes). */
export const SIGNAL_BATCHES_PER_FLUSH = 4;
/**
 * Messages held unsent (the stream not open yet, or a burst): past this a message is dropped, as PeerJS
 * drops one its socket cannot take; the link it belongs to times out and is tried again.
 */
export const SIGNAL_MAX_QUEUED = 1024;

/** What this module touches of PeerJS 1.5.5's Socket (node_modules/peerjs/dist/bundler.mjs, class Socket). */
interface PeerjsSocket {
  _id?: string;
  _disconnected: boolean;
  _messagesQueue: unknown[];
  start(id: string, token: string): void;
  send(data: { type?: string }): void;
  close(): void;
  emit(event: string, ...args: unknown[]): boolean;
}

interface PeerInternals {
  _options: RelaySignalOption;
}

type PeerClass = typeof Peer;
const built = new WeakMap<PeerClass, PeerClass>();

/**
 * `Base` (PeerJS's Peer, or a subclass) made to signal over `options.relaySignal` when given one. Cached per
 * class: `new (relaySignalledPeer(Peer))(id, { ...options, relaySignal })`.
 */
export function relaySignalledPeer(Base: PeerClass): PeerClass {
  const known = built.get(Base);
  if (known) return known;
  const proto = Base.prototype as unknown as { _createServerConnection(this: PeerInternals): PeerjsSocket };
  const create = proto._createServerConnection;
  if (typeof create !== 'function') throw new Error('this PeerJS has no _createServerConnection (written for peerjs 1.5)');
  // Called from Peer's constructor, after `_options` is set and before `_initialize` starts the socket.
  class RelaySignalledPeer extends Base {}
  Object.defineProperty(RelaySignalledPeer.prototype, '_createServerConnection', {
    value(this: PeerInternals): PeerjsSocket {
      const socket = create.call(this);
      const channel = this._options.relaySignal;
      if (channel) overSignalChannel(socket, channel);
      return socket;
    },
  });
  built.set(Base, RelaySignalledPeer);
  return RelaySignalledPeer;
}

/** Replaces the socket's WebSocket with `channel`, keeping its events and its `_disconnected` bookkeeping. */
function overSignalChannel(socket: PeerjsSocket, channel: RelaySignalChannel): void {
  let stream: { close(): void } | null = null;
  /** Set by the stream's first message (OPEN): until then the relay has no stream to take `signal.send`. */
  let open = false;
  let queue: string[] = [];
  let timer: ReturnType<typeof setTimeout> | null = null;
  let lastFlush = -Infinity;
  /** Bumped by every start and close: a stream's late callbacks after close() (or a newer start) are ignored. */
  let gen = 0;

  const cleanup = (): void => {
    gen++;
    const s = stream;
    stream = null;
    open = false;
    queue = [];
    if (timer) clearTimeout(timer);
    timer = null;
    s?.close();
  };

  const flush = (): void => {
    timer = null;
    if (!open) return;
    lastFlush = Date.now();
    for (let i = 0; i < SIGNAL_BATCHES_PER_FLUSH && queue.length > 0; i++) {
      // A refusal ends the stream too (the relay says why there), which `end` reports; nothing to do here.
      channel.send(queue.splice(0, SIGNAL_MAX_BATCH)).catch(() => {});
    }
    if (queue.length > 0) schedule();
  };

  const schedule = (): void => {
    if (timer || !open || queue.length === 0) return;
    // Leading edge: a lone OFFER goes at the next tick; a burst after it waits for the interval.
    timer = setTimeout(flush, Math.max(0, lastFlush + SIGNAL_FLUSH_MS - Date.now()));
  };

  socket.start = (id: string): void => {
    socket._id = id;
    if (stream || !socket._disconnected) return;
    socket._disconnected = false;
    const mine = ++gen;
    stream = channel.open(id, {
      message(text) {
        if (mine !== gen || socket._disconnected) return;
        let data: unknown;
        try {
          data = JSON.parse(text);
        } catch {
          return; // as PeerJS does with an unreadable server message
        }
        if (!open) {
          open = true;
          schedule();
        }
        socket.emit('message', data);
      },
      end() {
        if (mine !== gen || socket._disconnected) return;
        cleanup();
        socket._disconnected = true;
        socket.emit('disconnected');
      },
    });
    // What was sent before the id was known (PeerJS queues it the same way).
    const early = socket._messagesQueue;
    socket._messagesQueue = [];
    for (const m of early) socket.send(m as { type?: string });
  };

  socket.send = (data: { type?: string }): void => {
    if (socket._disconnected) return;
    if (!socket._id) {
      socket._messagesQueue.push(data);
      return;
    }
    if (!data.type) {
      socket.emit('error', 'Invalid message');
      return;
    }
    // The relay's socket has its own keepalive; PeerJS's heartbeat only keeps a `/peerjs` socket busy.
    if (data.type === 'HEARTBEAT' || queue.length >= SIGNAL_MAX_QUEUED) return;
    queue.push(JSON.stringify(data));
    schedule();
  };

  socket.close = (): void => {
    if (socket._disconnected) return;
    cleanup();
    socket._disconnected = true;
  };
}
