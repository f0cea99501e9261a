// PeerJS in Node (SPEC.md T7-T8): @roamhq/wrtc supplies WebRTC, `ws` supplies WebSocket, and the Peer
// is pointed at our relay only. PeerJS checks for WebRTC when it is imported, so the globals go in
// first and PeerJS is imported dynamically afterwards.
import type { DataConnection, Peer } from 'peerjs';
import { WebSocket as WsWebSocket } from 'ws';
import type { ServerInfo } from '../shared/protocol/relay';
import { type PeerjsClientOptions, peerjsOptions } from '../shared/transport/peerjsOptions';

let loading: Promise<typeof Peer> | undefined;

/**
 * Diagnostics of the ordering fixes below: messages that found no listener and were held, messages that
 * arrived before their connection's 'open' and were replayed after it, 'open's that had been lost.
 */
export const wrtcOrderStats = { heldMessages: 0, replayed: 0, lateOpens: 0 };

/**
 * A `ws` WebSocket that never throws 'error' at the process. PeerJS sets only `onclose`/`onmessage`
 * /`onopen`; a `ws` client emits 'error' as a Node event when the relay refuses the upgrade or is
 * down, and with no listener that is an uncaught exception that kills the virtual client. With this
 * listener ws goes on to emit 'close', which PeerJS reports as a 'network' error.
 */
class QuietWebSocket extends WsWebSocket {
  constructor(...args: ConstructorParameters<typeof WsWebSocket>) {
    super(...args);
    this.on('error', () => {});
  }
}

type PcClass = new (config?: RTCConfiguration) => RTCPeerConnection;

/**
 * PeerJS 1.5.5's `handleCandidate` awaits `addIceCandidate` and, when it rejects, calls
 * `connection.provider.emitError`; if the connection was closed meanwhile (a candidate still in flight
 * when a link closed), `provider` is null and the TypeError becomes an unhandled rejection, which ends a
 * Node process (seen in e2e/virtual.test.ts on every run before this). A candidate for a closed
 * connection means nothing: it resolves instead of rejecting. Any other failure still rejects.
 */
function closedSafe(Base: PcClass): PcClass {
  const Loose = Base as unknown as new (config?: RTCConfiguration) => { addIceCandidate(c?: RTCIceCandidateInit | null): Promise<void>; signalingState: RTCSignalingState };
  class PeerjsSafeRTCPeerConnection extends Loose {
    override addIceCandidate(candidate?: RTCIceCandidateInit | null): Promise<void> {
      return super.addIceCandidate(candidate).catch((err: unknown) => {
        if (this.signalingState === 'closed') return;
        throw err;
      });
    }
  }
  return PeerjsSafeRTCPeerConnection as unknown as PcClass;
}

interface WrtcEvent {
  type: string;
}
type WrtcListener = ((this: unknown, e: WrtcEvent) => void) | { handleEvent(e: WrtcEvent): void };
interface ChannelLike {
  _listeners?: Record<string, Set<WrtcListener>>;
  onmessage?: unknown;
  __held?: WrtcEvent[];
}
interface ChannelProto {
  dispatchEvent(this: ChannelLike, e: WrtcEvent): void;
  addEventListener(this: ChannelLike, type: string, l: WrtcListener): void;
}

/** Messages a remote channel may receive before anyone listens; beyond, later ones are dropped (the link then fails its checks). */
const MAX_HELD_MESSAGES = 256;

/**
 * wrtc hands a remote data channel to JS in the peer connection's 'datachannel' event, and the
 * channel's own 'message' events come through another native queue: under load the first message
 * (our HELLO) was dispatched before PeerJS had added its listener, found nobody, and was gone (seen in
 * e2e/sync-node.test.ts: the answering side's first frame was RECON, and it dropped an honest peer as
 * BAD_FRAME). Here a message that finds no listener is held on its channel and delivered, in order,
 * the moment a 'message' listener is added. Same one-tick delivery as wrtc's EventTarget otherwise.
 */
function holdEarlyMessages(DC: { prototype: ChannelProto }): void {
  const proto = DC.prototype;
  const dispatch = proto.dispatchEvent;
  const add = proto.addEventListener;
  const listening = (ch: ChannelLike): boolean => (ch._listeners?.message?.size ?? 0) > 0 || typeof ch.onmessage === 'function';
  const deliver = (ch: ChannelLike, e: WrtcEvent): void => {
    const all = new Set<WrtcListener>(ch._listeners?.message ?? []);
    if (typeof ch.onmessage === 'function') all.add(ch.onmessage as WrtcListener);
    for (const l of all) {
      if (typeof l === 'function') l.call(ch, e);
      else l.handleEvent(e);
    }
  };
  proto.dispatchEvent = function (this: ChannelLike, e: WrtcEvent): void {
    if (e.type !== 'message') return dispatch.call(this, e);
    process.nextTick(() => {
      if (listening(this) && !this.__held?.length) return deliver(this, e);
      const held = (this.__held ??= []);
      wrtcOrderStats.heldMessages++;
      if (held.length < MAX_HELD_MESSAGES) held.push(e);
      if (listening(this)) flush(this);
    });
  };
  const flush = (ch: ChannelLike): void => {
    const held = ch.__held ?? [];
    ch.__held = [];
    for (const e of held) deliver(ch, e);
  };
  proto.addEventListener = function (this: ChannelLike, type: string, l: WrtcListener): void {
    add.call(this, type, l);
    if (type === 'message' && this.__held?.length) flush(this);
  };
}

/** Installs the globals PeerJS needs (once) and returns PeerJS's `Peer` class. */
export function loadPeerjsForNode(): Promise<typeof Peer> {
  loading ??= (async () => {
    const wrtc = (await import('@roamhq/wrtc')).default;
    holdEarlyMessages(wrtc.RTCDataChannel as unknown as { prototype: ChannelProto });
    const g = globalThis as Record<string, unknown>;
    g.RTCPeerConnection ??= closedSafe(wrtc.RTCPeerConnection);
    g.RTCSessionDescription ??= wrtc.RTCSessionDescription;
    g.RTCIceCandidate ??= wrtc.RTCIceCandidate;
    // Node 22+ has a browser-like WebSocket (no crash on refusal); Node 20 has none.
    g.WebSocket ??= QuietWebSocket;
    // In Node, peerjs's CJS build exposes its classes on `default` only (its types say otherwise).
    const mod = (await import('peerjs')) as unknown as { default?: { Peer?: typeof Peer }; Peer?: typeof Peer };
    const PeerClass = mod.default?.Peer ?? mod.Peer;
    if (!PeerClass) throw new Error('peerjs exports no Peer class');
    return PeerClass;
  })();
  return loading;
}

export interface WrtcPeerArgs {
  /** The relay-minted PeerJS id of this login (LoginOutput.self.peerId). */
  peerId: string;
  /** LoginOutput.peerToken. */
  peerToken: string;
  /** The relay origin, e.g. `http://127.0.0.1:8080`. */
  relayUrl: string;
  /** From the relay's ServerInfo: where signalling lives and which ICE servers to use. */
  info: Pick<ServerInfo, 'peerjs' | 'iceServers'>;
}

/**
 * Creates a Peer registered (asynchronously) with our relay. The caller owns it: `peer.destroy()`
 * closes every connection; do it explicitly (wrtc holds native threads per RTCPeerConnection).
 */
export async function createWrtcPeer(args: WrtcPeerArgs): Promise<Peer> {
  const PeerClass = await loadPeerjsForNode();
  const options: PeerjsClientOptions = peerjsOptions({ relayUrl: args.relayUrl, info: args.info, peerToken: args.peerToken });
  const peer = new PeerClass(args.peerId, options);
  // Every data connection, incoming or outgoing, gets the open-before-data order (see openBeforeData).
  peer.on('connection', openBeforeData);
  const connect = peer.connect.bind(peer);
  peer.connect = (...a: Parameters<Peer['connect']>) => {
    const conn = connect(...a);
    if (conn) openBeforeData(conn);
    return conn;
  };
  return peer;
}

/** Frames a connection may deliver before it reports open; beyond this it is closed (a peer cannot get there honestly). */
const MAX_DATA_BEFORE_OPEN = 256;


/**
 * wrtc queues a data channel's events through process.nextTick from native callbacks, and a remote
 * channel's first 'message' can reach PeerJS before its 'open' (seen in e2e/sync-node.test.ts: the
 * answering side's first frame, HELLO, vanished, and the next frame made it drop an honest peer as
 * BAD_FRAME). PeerJS emits 'data' whether or not it emitted 'open', and whoever waits for 'open' to
 * start listening never sees that frame. Browsers order 'open' before 'message'; this restores that
 * order here: a message that arrives before 'open' is held and delivered right after every 'open' listener ran.
 */
function openBeforeData(conn: DataConnection): void {
  // PeerJS's buffered connections (raw included) deliver each message through `this._handleDataMessage`,
  // report open through `this.emit('open')` and get their channel through `this._initializeDataChannel`:
  // all looked up on the instance, so all can be wrapped.
  const c = conn as unknown as {
    _handleDataMessage(e: unknown): void;
    _initializeDataChannel(dc: RTCDataChannel): void;
    emit(event: string, ...args: unknown[]): boolean;
  };
  if (typeof c._handleDataMessage !== 'function' || typeof c._initializeDataChannel !== 'function') return;
  const handle = c._handleDataMessage.bind(conn);
  const init = c._initializeDataChannel.bind(conn);
  const emit = c.emit.bind(conn);
  let opened = false;
  let held: unknown[] = [];
  c._handleDataMessage = (e: unknown): void => {
    if (opened) return handle(e);
    if (held.length >= MAX_DATA_BEFORE_OPEN) {
      held = [];
      conn.close();
      return;
    }
    held.push(e);
  };
  c.emit = (event: string, ...args: unknown[]): boolean => {
    if (event === 'open' && opened) return false; // the real one after a stand-in (below)
    const result = emit(event, ...args);
    if (event === 'open') {
      opened = true;
      const replay = held;
      held = [];
      wrtcOrderStats.replayed += replay.length;
      for (const e of replay) handle(e);
    }
    return result;
  };
  // The channel's own 'open' can also be dispatched before PeerJS has set `onopen` on it (the answering
  // side gets the channel in a separate 'datachannel' event): then it never reports open, and the
  // remote's link is never read. A channel already open once pending events had their turn gets a
  // stand-in 'open'.
  c._initializeDataChannel = (dc: RTCDataChannel): void => {
    init(dc);
    setImmediate(() => {
      if (opened || dc.readyState !== 'open') return;
      wrtcOrderStats.lateOpens++;
      (dc.onopen as ((ev: Event) => void) | null)?.call(dc, new Event('open'));
    });
  };
}
