// PeerTransport over a PeerJS `Peer`: the same code in the browser and in Node (where src/virtual/
// wrtcPeer.ts supplies the WebRTC and WebSocket globals and creates the Peer). The Peer is injected,
// so this file imports only PeerJS's types.
//
// Data connections use `serialization: 'raw'` and `reliable: true` (SPEC.md T6): raw hands our
// Uint8Array straight to RTCDataChannel.send and gives back an ArrayBuffer, with no msgpack and no
// PeerJS chunking. PeerJS's 'binary' serializer would chunk at 16,300 bytes and reassemble without
// any bound (a peer could make us hold unfinished messages forever); 'json' refuses 16,300 bytes and
// more. Our frames are at most MAX_FRAME_BYTES (64 KiB), under every browser's and wrtc's
// maxMessageSize (256 KiB), so no chunking is needed. `reliable` matters: PeerJS maps it to
// `ordered`, and without it the channel is unordered.
//
// Nothing a new link carries is lost or reordered (T9-T11): the transport listens from the moment it is
// made, before the signalling socket is open; each connection's messages are read from the moment it
// exists and held until it opens; links that open while nobody subscribed are held; and a new link sends
// one frame until the remote has spoken. Each was seen to lose or reorder frames on real wrtc links.
import type { DataConnection, Peer } from 'peerjs';
import { BaseLink, EARLY_FRAME_BYTES, type ErrorReporter, type OneFrameUntilHeard } from './BaseLink';
import { IncomingLinks } from './IncomingLinks';
import {
  LOW_WATER_BYTES,
  MAX_FRAME_BYTES,
  type PeerLink,
  type PeerTransport,
  TransportError,
  TransportReason,
} from './PeerTransport';

export interface PeerjsTransportOptions {
  /** A created Peer (open or still opening). The transport never destroys it: its creator does. */
  peer: Peer;
  /** Default bound of `connect` (signalling + ICE + DTLS + SCTP), and of an incoming link opening. @default 20_000 */
  connectTimeoutMs?: number;
  /** How long to wait for the Peer's signalling socket to open. @default 15_000 */
  openTimeoutMs?: number;
  /** Max links (open plus opening); beyond it connect rejects TOO_MANY_LINKS and incoming ones are closed. @default 64 */
  maxLinks?: number;
  /**
   * Max incoming connections still opening from one peer. The relay stamps the true sender id on
   * every OFFER, so this stops one peer from filling `maxLinks` with offers it never completes. @default 4
   */
  maxOpeningPerPeer?: number;
  /** Drain polling period: wrtc never fires `bufferedamountlow`, browsers do. @default 20 */
  drainPollMs?: number;
  /** Where exceptions thrown by handlers, and refused incoming connections, are reported. @default console.error */
  onError?: ErrorReporter;
  /**
   * T11: a new link sends one frame, then waits for the remote's first frame before sending more (wrtc
   * reorders the first messages of a channel the receiver is still setting up). `false` turns it off.
   * @default { quietMaxMs: 5_000 }
   */
  oneFrameUntilHeard?: OneFrameUntilHeard | false;
}

export interface PeerjsTransport extends PeerTransport {
  /** Links, pending connects, timers and PeerJS connections still held; 0 when idle (SPEC.md T4). */
  liveResources(): number;
  /** Open links, incoming and outgoing, claimed or not. */
  linkCount(): number;
}

/**
 * Messages one connection may deliver before it reports open (T9); beyond this many, or beyond
 * EARLY_FRAME_BYTES, the connection is dropped: an honest remote sends one frame before it hears us (T11).
 */
export const MAX_FRAMES_BEFORE_OPEN = 256;

/**
 * Returns a transport over `peer` once the peer is registered with the relay. It listens before that
 * (T9): the relay delivers offers held for us right after OPEN, in the same read, before an `await`
 * here would resume, and PeerJS answers them whether or not anyone listens.
 */
export async function createPeerjsTransport(opts: PeerjsTransportOptions): Promise<PeerjsTransport> {
  const transport = new PeerjsTransportImpl(opts);
  try {
    await whenOpen(opts.peer, opts.openTimeoutMs ?? 15_000);
  } catch (err) {
    await transport.close();
    throw err;
  }
  return transport;
}

function whenOpen(peer: Peer, timeoutMs: number): Promise<void> {
  if (peer.destroyed || peer.disconnected) {
    return Promise.reject(new TransportError(TransportReason.SIGNALLING_LOST, 'peer is disconnected'));
  }
  if (peer.open) return Promise.resolve();
  return new Promise((resolve, reject) => {
    const done = (err?: TransportError) => {
      clearTimeout(timer);
      peer.off('open', onOpen);
      peer.off('error', onError);
      peer.off('disconnected', onDisconnected);
      if (err) reject(err);
      else resolve();
    };
    const onOpen = () => done();
    // The relay refuses with an ERROR message whose text is its reason code (e.g. UNAUTHORIZED):
    // PeerJS raises it as a 'server-error' PeerError carrying that text.
    const onError = (err: { type?: string; message?: string }) =>
      done(new TransportError(TransportReason.SIGNALLING_REFUSED, `${err.type}: ${err.message}`));
    const onDisconnected = () => done(new TransportError(TransportReason.SIGNALLING_LOST));
    const timer = setTimeout(() => done(new TransportError(TransportReason.TIMEOUT, 'signalling socket did not open')), timeoutMs);
    peer.on('open', onOpen);
    peer.on('error', onError);
    peer.on('disconnected', onDisconnected);
  });
}

/** One connection between its `connection` event (or `peer.connect`) and its data channel opening. */
interface Opening {
  conn: DataConnection;
  remotePeerId: string;
  outgoing: boolean;
  fail(reason: TransportReason, detail?: string): void;
}

class PeerjsLink extends BaseLink {
  readonly remotePeerId: string;
  private drainTimer: ReturnType<typeof setInterval> | undefined;
  private readonly onData = (data: unknown) => this.receive(data);
  private readonly onConnClose = () => this.finish(TransportReason.REMOTE_CLOSED);
  private readonly onConnError = (err: { type?: string }) =>
    this.finish(err?.type === 'negotiation-failed' ? TransportReason.NEGOTIATION_FAILED : TransportReason.REMOTE_CLOSED);
  private readonly onLow = () => this.checkDrain();

  constructor(
    private readonly conn: DataConnection,
    /** Kept ourselves: PeerJS sets `conn.dataChannel` to null when it closes. */
    private readonly dc: RTCDataChannel,
    private readonly drainPollMs: number,
    private readonly onFinished: (link: PeerjsLink) => void,
    report: ErrorReporter,
    oneFrameUntilHeard: OneFrameUntilHeard | false,
  ) {
    super(report, { oneFrameUntilHeard });
    this.remotePeerId = conn.peer;
    conn.on('data', this.onData);
    conn.on('close', this.onConnClose);
    conn.on('error', this.onConnError);
    dc.bufferedAmountLowThreshold = LOW_WATER_BYTES;
  }

  protected transmit(frame: Uint8Array): boolean {
    if (this.dc.readyState !== 'open') {
      this.finish(TransportReason.REMOTE_CLOSED);
      return false;
    }
    try {
      // Straight to the channel (what PeerJS's raw `send` does, minus its unbounded 8 MiB side buffer).
      // A view sends only its own bytes, copied before send returns, in browsers and wrtc alike.
      this.dc.send(frame as Uint8Array<ArrayBuffer>);
      return true;
    } catch (err) {
      this.reportError(err, 'send');
      this.finish(TransportReason.SEND_FAILED);
      return false;
    }
  }

  protected channelBuffered(): number {
    return this.dc.readyState === 'open' ? this.dc.bufferedAmount : 0;
  }

  /** Timers this link holds (for liveResources). */
  timerCount(): number {
    return (this.drainTimer ? 1 : 0) + this.quietTimerCount();
  }

  /** Messages that arrived before the connection opened (T9), in arrival order. */
  replay(held: unknown[]): void {
    for (const data of held) this.receive(data);
  }

  protected startDrainWatch(): void {
    this.dc.addEventListener('bufferedamountlow', this.onLow);
    this.drainTimer = setInterval(() => this.checkDrain(), this.drainPollMs);
  }

  protected stopDrainWatch(): void {
    this.dc.removeEventListener('bufferedamountlow', this.onLow);
    clearInterval(this.drainTimer);
    this.drainTimer = undefined;
  }

  protected teardown(): void {
    this.conn.off('data', this.onData);
    this.conn.off('close', this.onConnClose);
    this.conn.off('error', this.onConnError);
    // Closes the RTCPeerConnection too (PeerJS's negotiator cleanup). Closing explicitly matters in
    // Node: wrtc keeps native threads per connection until it is closed.
    this.conn.close();
    this.onFinished(this);
  }

  private receive(data: unknown): void {
    let frame: Uint8Array | null = null;
    if (data instanceof ArrayBuffer || Object.prototype.toString.call(data) === '[object ArrayBuffer]') {
      frame = new Uint8Array(data as ArrayBuffer);
    } else if (ArrayBuffer.isView(data)) {
      frame = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
    }
    // Text, blobs and oversize frames are not peerchat frames: the remote is not following T1.
    if (!frame || frame.byteLength > MAX_FRAME_BYTES) return this.finish(TransportReason.BAD_FRAME);
    this.deliver(frame);
  }
}

class PeerjsTransportImpl implements PeerjsTransport {
  private readonly peer: Peer;
  private readonly connectTimeoutMs: number;
  private readonly maxLinks: number;
  private readonly maxOpeningPerPeer: number;
  private readonly drainPollMs: number;
  private readonly report: ErrorReporter;
  private readonly oneFrameUntilHeard: OneFrameUntilHeard | false;
  private readonly links = new Set<PeerjsLink>();
  private readonly opening = new Set<Opening>();
  private readonly incoming: IncomingLinks;
  private closed = false;

  constructor(opts: PeerjsTransportOptions) {
    this.peer = opts.peer;
    this.connectTimeoutMs = opts.connectTimeoutMs ?? 20_000;
    this.maxLinks = opts.maxLinks ?? 64;
    this.maxOpeningPerPeer = opts.maxOpeningPerPeer ?? 4;
    this.drainPollMs = opts.drainPollMs ?? 20;
    this.report = opts.onError ?? ((err, where) => console.error(`[peerjsTransport] ${where}`, err));
    this.oneFrameUntilHeard = opts.oneFrameUntilHeard ?? {};
    this.incoming = new IncomingLinks(this.report);
    this.peer.on('connection', this.onConnection);
    this.peer.on('disconnected', this.onSignallingLost);
    this.peer.on('close', this.onPeerDestroyed);
    // EXPIRE (the relay could not deliver our signalling to that peer) is read off the socket itself:
    // PeerJS only turns it into a 'peer-unavailable' error whose sole data is English text.
    this.peer.socket.on('message', this.onServerMessage);
  }

  /** Read from the Peer: made before OPEN (T9), the transport may exist before a server-assigned id would. */
  get localPeerId(): string {
    return this.peer.id;
  }

  connect(remotePeerId: string, o: { signal?: AbortSignal; timeoutMs?: number } = {}): Promise<PeerLink> {
    return new Promise<PeerLink>((resolve, reject) => {
      if (this.closed) return reject(new TransportError(TransportReason.CLOSED));
      if (o.signal?.aborted) return reject(new TransportError(TransportReason.ABORTED));
      if (this.peer.disconnected || this.peer.destroyed) return reject(new TransportError(TransportReason.SIGNALLING_LOST));
      if (this.links.size + this.opening.size >= this.maxLinks) return reject(new TransportError(TransportReason.TOO_MANY_LINKS));
      const conn = this.peer.connect(remotePeerId, { serialization: 'raw', reliable: true });
      if (!conn) return reject(new TransportError(TransportReason.SIGNALLING_LOST));
      const onAbort = () => entry.fail(TransportReason.ABORTED);
      const entry = this.watchOpening(conn, remotePeerId, true, o.timeoutMs ?? this.connectTimeoutMs, {
        opened: (link) => {
          o.signal?.removeEventListener('abort', onAbort);
          resolve(link);
        },
        failed: (reason, detail) => {
          o.signal?.removeEventListener('abort', onAbort);
          reject(new TransportError(reason, detail));
        },
      });
      o.signal?.addEventListener('abort', onAbort, { once: true });
    });
  }

  onLink(handler: (link: PeerLink) => void): () => void {
    if (this.closed) return () => {};
    return this.incoming.subscribe(handler);
  }

  linkCount(): number {
    return this.links.size;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.peer.off('connection', this.onConnection);
    this.peer.off('disconnected', this.onSignallingLost);
    this.peer.off('close', this.onPeerDestroyed);
    this.peer.socket.off('message', this.onServerMessage);
    for (const o of [...this.opening]) o.fail(TransportReason.CLOSED);
    for (const link of [...this.links]) link.close(TransportReason.CLOSED);
    this.incoming.clear();
  }

  liveResources(): number {
    let n = this.opening.size * 2; // each holds a connection and a timer
    for (const link of this.links) n += 1 + link.handlerCount() + link.timerCount();
    // What PeerJS itself still tracks: proves the underlying connections were closed and dropped.
    for (const list of Object.values(this.peer.connections as Record<string, unknown[]>)) n += list.length;
    return n;
  }

  private readonly onConnection = (conn: DataConnection) => {
    if (this.closed) return void conn.close();
    // T6: only raw, reliable channels carry peerchat frames.
    if (conn.serialization !== 'raw' || !conn.reliable) {
      this.report(new Error(`refused a ${conn.serialization} connection from ${conn.peer}`), 'incoming');
      return void conn.close();
    }
    if (this.links.size + this.opening.size >= this.maxLinks) return void conn.close();
    let fromSamePeer = 0;
    for (const o of this.opening) if (!o.outgoing && o.remotePeerId === conn.peer) fromSamePeer++;
    if (fromSamePeer >= this.maxOpeningPerPeer) return void conn.close();
    this.watchOpening(conn, conn.peer, false, this.connectTimeoutMs, {
      opened: (link) => this.incoming.arrived(link),
      failed: () => {},
    });
  };

  /** Follows one connection until its data channel opens (a link) or it fails (closed, reported once). */
  private watchOpening(
    conn: DataConnection,
    remotePeerId: string,
    outgoing: boolean,
    timeoutMs: number,
    done: { opened(link: PeerjsLink): void; failed(reason: TransportReason, detail?: string): void },
  ): Opening {
    // T9: wrtc can deliver a channel's first messages before PeerJS reports it open, and PeerJS emits
    // them as 'data' at once. Read from the start and hand them to the link when it exists.
    let held: unknown[] = [];
    let heldBytes = 0;
    const onEarlyData = (data: unknown) => {
      heldBytes += ArrayBuffer.isView(data) || data instanceof ArrayBuffer ? data.byteLength : 1;
      if (held.length >= MAX_FRAMES_BEFORE_OPEN || heldBytes > EARLY_FRAME_BYTES) return entry.fail(TransportReason.OVERFLOW);
      held.push(data);
    };
    const settle = () => {
      clearTimeout(timer);
      conn.off('open', onOpen);
      conn.off('error', onError);
      conn.off('data', onEarlyData);
      this.opening.delete(entry);
    };
    const onOpen = () => {
      settle();
      const dc = conn.dataChannel;
      if (this.closed || !dc) {
        conn.close();
        return done.failed(this.closed ? TransportReason.CLOSED : TransportReason.NEGOTIATION_FAILED);
      }
      const link = new PeerjsLink(conn, dc, this.drainPollMs, (l) => this.links.delete(l), this.report, this.oneFrameUntilHeard);
      this.links.add(link);
      const early = held;
      held = [];
      // Into the link's own early-frame hold (T1), before anyone can have subscribed to it.
      link.replay(early);
      if (link.closed) return done.failed(TransportReason.BAD_FRAME);
      done.opened(link);
    };
    const onError = (err: { type?: string; message?: string }) =>
      entry.fail(TransportReason.NEGOTIATION_FAILED, `${err?.type}: ${err?.message}`);
    const entry: Opening = {
      conn,
      remotePeerId,
      outgoing,
      fail: (reason, detail) => {
        if (!this.opening.has(entry)) return;
        settle();
        held = [];
        conn.close();
        done.failed(reason, detail);
      },
    };
    const timer = setTimeout(() => entry.fail(TransportReason.TIMEOUT), timeoutMs);
    conn.on('open', onOpen);
    conn.on('error', onError);
    conn.on('data', onEarlyData);
    this.opening.add(entry);
    return entry;
  }

  private readonly onServerMessage = (msg: { type?: unknown; src?: unknown }) => {
    if (msg?.type !== 'EXPIRE' || typeof msg.src !== 'string') return;
    for (const o of [...this.opening]) {
      if (o.outgoing && o.remotePeerId === msg.src) o.fail(TransportReason.PEER_UNAVAILABLE, msg.src);
    }
  };

  /** Open links survive (they are peer-to-peer); connects still negotiating cannot finish. */
  private readonly onSignallingLost = () => {
    for (const o of [...this.opening]) o.fail(TransportReason.SIGNALLING_LOST);
  };

  private readonly onPeerDestroyed = () => {
    void this.close();
  };
}
