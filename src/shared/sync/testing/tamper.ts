// Adversaries for the sync tests: a transport wrapper that rewrites, drops or repeats what a peer sends
// (a liar, a replayer), and a store that claims ids it does not hold (a made-up-id flooder). Honest
// engine code runs on top, so the adversary speaks the protocol except where the test bends it.
import { PeerKind } from '../../protocol/peer';
import type { IdRange } from '../../store/HistoryStore';
import { MemoryStore, type MemoryStoreOptions } from '../../store/MemoryStore';
import type { PeerLink, PeerTransport } from '../../transport/PeerTransport';

/** Returns the frames actually sent in place of `frame` (none, it changed, or it plus a replay). */
export type Tamper = (frame: Uint8Array, remotePeerId: string) => Uint8Array[];

/** A link that is `link` except for what `over` replaces (a test bending one side of a link). */
export function overrideLink(link: PeerLink, over: Partial<Pick<PeerLink, 'send' | 'bufferedAmount' | 'onDrain'>>): PeerLink {
  return {
    get remotePeerId() {
      return link.remotePeerId;
    },
    get closed() {
      return link.closed;
    },
    send: over.send ?? ((frame) => link.send(frame)),
    bufferedAmount: over.bufferedAmount ?? (() => link.bufferedAmount()),
    onFrame: (h) => link.onFrame(h),
    onDrain: over.onDrain ?? ((h) => link.onDrain(h)),
    onClose: (h) => link.onClose(h),
    close: (reason) => link.close(reason),
  };
}

/** A transport whose links, made and accepted, pass through `wrap`. */
export function wrapLinks(inner: PeerTransport, wrap: (link: PeerLink) => PeerLink): PeerTransport {
  return {
    get localPeerId() {
      return inner.localPeerId;
    },
    connect: async (remotePeerId, opts) => wrap(await inner.connect(remotePeerId, opts)),
    onLink: (handler) => inner.onLink((link) => handler(wrap(link))),
    close: () => inner.close(),
  };
}

export function tamperTransport(inner: PeerTransport, tamper: Tamper): PeerTransport {
  return wrapLinks(inner, (link) =>
    overrideLink(link, {
      send(frame) {
        let ok = !link.closed;
        for (const f of tamper(frame, link.remotePeerId)) ok = link.send(f);
        return ok;
      },
    }),
  );
}

/** Frame kind (byte 1 of the header). */
export const kindOf = (frame: Uint8Array): number => frame[1]!;

/** CHUNK frames from chunk `fromIndex` on carry one flipped byte (the index sits at body offset 16). */
export function corruptChunksFrom(fromIndex: number): Tamper {
  return (frame) => {
    if (kindOf(frame) !== PeerKind.CHUNK) return [frame];
    const index = new DataView(frame.buffer, frame.byteOffset).getUint32(8 + 16);
    if (index < fromIndex) return [frame];
    const bad = frame.slice();
    bad[bad.length - 1]! ^= 0xff;
    return [bad];
  };
}

/** Every frame of `kind` is sent twice: the second copy is a replay. */
export function replay(kind: number): Tamper {
  return (frame) => (kindOf(frame) === kind ? [frame, frame.slice()] : [frame]);
}

/** HASHES frames claim `total` chunks. */
export function bogusChunkCount(delta: number): Tamper {
  return (frame) => {
    if (kindOf(frame) !== PeerKind.HASHES) return [frame];
    const bad = frame.slice();
    const view = new DataView(bad.buffer);
    view.setUint32(8 + 16 + 4, view.getUint32(8 + 16 + 4) + delta);
    return [bad];
  };
}

/** A store that also lists `madeUp` ids it cannot produce (claims them in reconciliation). */
export class LyingStore extends MemoryStore {
  constructor(
    private readonly madeUp: string[],
    opts: MemoryStoreOptions = {},
  ) {
    super(opts);
    this.madeUp.sort();
  }

  override async listIds(range: IdRange, channel?: string): Promise<string[]> {
    const real = await super.listIds({ ...range, limit: undefined }, channel);
    const fake = this.madeUp.filter((id) => (range.from === undefined || id >= range.from) && (range.to === undefined || id < range.to));
    return [...real, ...fake].sort().slice(0, range.limit ?? 10_000);
  }

  override async countMessages(): Promise<number> {
    return (await super.countMessages()) + this.madeUp.length;
  }
}
