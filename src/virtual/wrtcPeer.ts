// PeerJS in Node (SPEC.md T7-T8): @roamhq/wrtc supplies WebRTC, `ws` supplies WebSocket, and the Peer
// is pointed at our relay only. PeerJS checks for WebRTC when it is imported, so the globals go in
// first and PeerJS is imported dynamically afterwards.
import type { Peer } from 'peerjs';
import { WebSocket as WsWebSocket } from 'ws';
import type { ServerInfo } from '../shared/protocol/relay';
import { type PeerjsClientOptions, peerjsOptions } from '../shared/transport/peerjsOptions';
import { type RelaySignalChannel, relaySignalledPeer } from '../shared/transport/relaySignalling';

let loading: Promise<typeof Peer> | undefined;

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

/** Installs the globals PeerJS needs (once) and returns PeerJS's `Peer` class. */
export function loadPeerjsForNode(): Promise<typeof Peer> {
  loading ??= (async () => {
    const wrtc = (await import('@roamhq/wrtc')).default;
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
  /** Signal over the client's relay socket (SPEC.md W11) instead of a `/peerjs` socket. */
  relaySignal?: RelaySignalChannel;
}

/**
 * Creates a Peer registered (asynchronously) with our relay. The caller owns it: `peer.destroy()`
 * closes every connection; do it explicitly (wrtc holds native threads per RTCPeerConnection).
 */
export async function createWrtcPeer(args: WrtcPeerArgs): Promise<Peer> {
  const PeerClass = await loadPeerjsForNode();
  const options: PeerjsClientOptions = {
    ...peerjsOptions({ relayUrl: args.relayUrl, info: args.info, peerToken: args.peerToken }),
    ...(args.relaySignal && { relaySignal: args.relaySignal }),
  };
  // wrtc's early and reordered first messages are handled by the shared transport (SPEC.md T9, T11).
  return new (relaySignalledPeer(PeerClass))(args.peerId, options);
}
