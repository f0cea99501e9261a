// The PeerJS side of voice (SPEC.md VR5): media calls over the session's Peer, whose config carries the
// relay's ICE servers (T7). A small interface so VoiceController runs on a fake in Node tests.
import type { MediaConnection, Peer } from 'peerjs';

export interface VoiceCall {
  /** The other side's PeerJS id: for an incoming call, the sender the signalling relay authenticated (W4). */
  readonly peerId: string;
  answer(stream: MediaStream): void;
  /** Idempotent. */
  close(): void;
  /** The remote audio arrived (may be told more than once). */
  /** `receiver`: the call's audio receiver where there is one (a level source without WebAudio). */
  onStream(cb: (stream: MediaStream, receiver?: RTCRtpReceiver) => void): void;
  /** Closed by either side or failed; told once. */
  onClose(cb: () => void): void;
  /** Sends another microphone's track on this call without renegotiating. */
  replaceStream(stream: MediaStream): void;
}

export interface VoiceCalls {
  call(peerId: string, stream: MediaStream): VoiceCall;
  /** Every incoming call, unanswered; the handler answers or closes it. Returns the unsubscribe. */
  onIncoming(handler: (call: VoiceCall) => void): () => void;
}

function wrap(c: MediaConnection): VoiceCall {
  let closed = false;
  const closers: (() => void)[] = [];
  const done = (): void => {
    if (closed) return;
    closed = true;
    for (const f of closers.splice(0)) {
      try {
        f();
      } catch {
        // A listener's failure stays its own (STYLE 7).
      }
    }
  };
  c.on('close', done);
  // PeerJS reports a failed negotiation as an error on the connection; the call is over either way.
  c.on('error', () => {
    done();
    c.close();
  });
  return {
    peerId: c.peer,
    answer: (stream) => c.answer(stream),
    close: () => {
      c.close();
      done();
    },
    onStream: (cb) => c.on('stream', (s) => cb(s, c.peerConnection?.getReceivers().find((r) => r.track.kind === 'audio'))),
    onClose: (cb) => {
      if (closed) queueMicrotask(cb);
      else closers.push(cb);
    },
    replaceStream: (stream) => {
      const track = stream.getAudioTracks()[0];
      const sender = c.peerConnection?.getSenders().find((s) => s.track?.kind === 'audio' || s.track === null);
      if (track && sender) void sender.replaceTrack(track).catch(() => {});
    },
  };
}

export function peerjsCalls(peer: Peer): VoiceCalls {
  return {
    call: (peerId, stream) => wrap(peer.call(peerId, stream)),
    onIncoming(handler) {
      const on = (c: MediaConnection): void => {
        try {
          handler(wrap(c));
        } catch {
          c.close();
        }
      };
      peer.on('call', on);
      return () => peer.off('call', on);
    },
  };
}
