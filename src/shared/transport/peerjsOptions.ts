// The PeerJS `Peer` options every peerchat client uses (browser and virtual), built only from what the
// relay says (SPEC.md T7). Nothing here may fall back to PeerJS's defaults: those point at the public
// PeerJS cloud signalling server and a public STUN server, neither of which peerchat may contact.
import type { IceServer, ServerInfo } from '../protocol/relay';
import type { RelaySignalChannel } from './relaySignalling';

export interface PeerjsClientOptions {
  host: string;
  port: number;
  /** PeerJS appends `peerjs` to it for the socket URL: `/` gives `/peerjs?key=..&id=..&token=..`. */
  path: string;
  key: string;
  /** The login's `peerToken`; travels unencoded in the socket URL, so it must be URL-safe. */
  token: string;
  /** Always explicit: PeerJS would otherwise read `location.protocol`, which Node lacks. */
  secure: boolean;
  config: { iceServers: IceServer[] };
  /** PeerJS logging off: it would print SDPs and candidates. */
  debug: 0;
  /**
   * Signal over the relay socket the client holds instead of a `/peerjs` socket (SPEC.md W11); read only by
   * a Peer class from `relaySignalledPeer`. Set by PeerchatClient for every login.
   */
  relaySignal?: RelaySignalChannel;
}

/**
 * @param relayUrl the relay's origin, e.g. `https://chat.example` or `http://127.0.0.1:8080`
 *   (in the browser: `location.origin`).
 */
export function peerjsOptions(args: {
  relayUrl: string;
  info: Pick<ServerInfo, 'peerjs' | 'iceServers'>;
  peerToken: string;
}): PeerjsClientOptions {
  const url = new URL(args.relayUrl);
  const secure = url.protocol === 'https:' || url.protocol === 'wss:';
  if (!/^[A-Za-z0-9_-]+$/.test(args.peerToken)) throw new RangeError('peerToken must be URL-safe (base64url)');
  return {
    host: url.hostname,
    port: url.port ? Number(url.port) : secure ? 443 : 80,
    path: args.info.peerjs.path,
    key: args.info.peerjs.key,
    token: args.peerToken,
    secure,
    // A copy: PeerJS hands this object to every RTCPeerConnection.
    config: { iceServers: args.info.iceServers.map((s) => ({ ...s })) },
    debug: 0,
  };
}
