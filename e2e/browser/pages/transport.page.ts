// Page entry: the transport conformance suite (SPEC.md T1-T5, T9-T11) between two Chromium pages, each
// with its own browser PeerJS Peer on the real relay. Page A (`?role=a`) runs the cases; page B
// (`?role=b`) holds the other transport and lets A drive it over a BroadcastChannel (same origin, same
// browser context). In A, `b` is a mirror of B's transport: calls go to B, events come back, and what a
// mirror answers synchronously (`send`'s result, `closed`, `liveResources`) is B's last reported state;
// every `send` result B actually got is checked against what the mirror answered, after each case.
import { Peer } from 'peerjs';
import type { LoginOutput } from '../../../src/shared/protocol/relay';
import { type PeerjsTransport, createPeerjsTransport } from '../../../src/shared/transport/peerjsTransport';
import { peerjsOptions } from '../../../src/shared/transport/peerjsOptions';
import { MAX_FRAME_BYTES, type PeerLink, type PeerTransport, TransportError, type TransportReason } from '../../../src/shared/transport/PeerTransport';
import { type TransportPair, transportConformance } from '../../../src/shared/transport/transportConformance';
import { registerCases } from '../pageCases';

/** What Node hands each case: two fresh logins on the relay. */
export interface PairInput {
  relayUrl: string;
  a: Pick<LoginOutput, 'peerToken' | 'info'> & { peerId: string };
  b: Pick<LoginOutput, 'peerToken' | 'info'> & { peerId: string };
  offlinePeerId: string;
}

/** T11's quiet wait, short: the case with a silent remote waits it out. */
const transportOptions = { oneFrameUntilHeard: { quietMaxMs: 500 } };

type Msg = Record<string, unknown> & { op: string };

const channel = new BroadcastChannel('peerchat-transport-conformance');
const role = new URL(location.href).searchParams.get('role');

async function makeTransport(relayUrl: string, login: PairInput['a']): Promise<{ peer: Peer; transport: PeerjsTransport }> {
  const peer = new Peer(login.peerId, peerjsOptions({ relayUrl, info: login.info, peerToken: login.peerToken }));
  try {
    return { peer, transport: await createPeerjsTransport({ peer, ...transportOptions }) };
  } catch (err) {
    peer.destroy();
    throw err;
  }
}

// ---- page B: the real transport behind the mirror ----

function serveB(): void {
  let current: { peer: Peer; transport: PeerjsTransport; links: Map<number, PeerLink>; subs: Map<number, () => void>; timer: ReturnType<typeof setInterval> } | null = null;
  let linkSeq = 0;
  const post = (m: Msg) => channel.postMessage(m);
  const state = () => {
    if (!current) return;
    const buffered: Record<number, number> = {};
    for (const [id, l] of current.links) buffered[id] = l.bufferedAmount();
    post({ op: 'state', live: current.transport.liveResources(), links: current.transport.linkCount(), buffered });
  };
  const adopt = (link: PeerLink): number => {
    const id = ++linkSeq;
    current!.links.set(id, link);
    link.onClose((reason) => {
      post({ op: 'closed', linkId: id, reason });
      state();
    });
    return id;
  };
  channel.onmessage = async (ev: MessageEvent<Msg>) => {
    const m = ev.data;
    try {
      if (m.op === 'create') {
        const input = m.input as PairInput;
        const { peer, transport } = await makeTransport(input.relayUrl, input.b);
        current = { peer, transport, links: new Map(), subs: new Map(), timer: setInterval(state, 20) };
        post({ op: 'created', localPeerId: transport.localPeerId });
        state();
        return;
      }
      if (m.op === 'dispose') {
        if (current) {
          clearInterval(current.timer);
          await current.transport.close();
          current.peer.destroy();
          current = null;
        }
        return post({ op: 'disposed' });
      }
      const c = current;
      if (!c) return;
      const link = c.links.get(m.linkId as number);
      switch (m.op) {
        case 'subscribe':
          c.subs.set(
            m.subId as number,
            c.transport.onLink((l) => {
              post({ op: 'link', subId: m.subId, linkId: adopt(l), remotePeerId: l.remotePeerId });
              state();
            }),
          );
          break;
        case 'unsubscribe':
          c.subs.get(m.subId as number)?.();
          c.subs.delete(m.subId as number);
          break;
        case 'connect':
          try {
            const l = await c.transport.connect(m.peerId as string, { timeoutMs: m.timeoutMs as number | undefined });
            post({ op: 'connected', reqId: m.reqId, linkId: adopt(l), remotePeerId: l.remotePeerId });
          } catch (err) {
            post({ op: 'connectFailed', reqId: m.reqId, reason: (err as TransportError).reason ?? String(err) });
          }
          break;
        case 'send':
          if (link) post({ op: 'sent', linkId: m.linkId, ok: link.send(m.frame as Uint8Array), promised: m.promised });
          break;
        case 'onFrame':
          link?.onFrame((frame) => post({ op: 'frame', linkId: m.linkId, frame }));
          break;
        case 'onDrain':
          link?.onDrain(() => post({ op: 'drain', linkId: m.linkId }));
          break;
        case 'close':
          link?.close(m.reason as string | undefined);
          break;
      }
      state();
    } catch (err) {
      post({ op: 'error', error: String(err) });
    }
  };
}

// ---- page A: the mirror of B's transport ----

class MirrorLink implements PeerLink {
  closed = false;
  buffered = 0;
  private readonly frameHandlers = new Set<(f: Uint8Array) => void>();
  private readonly drainHandlers = new Set<() => void>();
  private readonly closeHandlers = new Set<(r: string) => void>();
  private forwardingFrames = false;
  private forwardingDrain = false;

  constructor(
    private readonly mirror: MirrorTransport,
    readonly id: number,
    readonly remotePeerId: string,
  ) {}

  send(frame: Uint8Array): boolean {
    if (frame.byteLength > MAX_FRAME_BYTES) throw new RangeError(`frame of ${frame.byteLength} bytes exceeds MAX_FRAME_BYTES`);
    const promised = !this.closed;
    this.mirror.post({ op: 'send', linkId: this.id, frame: frame.slice(), promised });
    return promised;
  }

  bufferedAmount(): number {
    return this.closed ? 0 : this.buffered;
  }

  onFrame(h: (f: Uint8Array) => void): () => void {
    if (this.closed) return () => {};
    this.frameHandlers.add(h);
    if (!this.forwardingFrames) {
      this.forwardingFrames = true;
      this.mirror.post({ op: 'onFrame', linkId: this.id });
    }
    return () => this.frameHandlers.delete(h);
  }

  onDrain(h: () => void): () => void {
    if (this.closed) return () => {};
    this.drainHandlers.add(h);
    if (!this.forwardingDrain) {
      this.forwardingDrain = true;
      this.mirror.post({ op: 'onDrain', linkId: this.id });
    }
    return () => this.drainHandlers.delete(h);
  }

  onClose(h: (r: string) => void): () => void {
    if (this.closed) return () => {};
    this.closeHandlers.add(h);
    return () => this.closeHandlers.delete(h);
  }

  close(reason?: string): void {
    if (this.closed) return;
    this.mirror.post({ op: 'close', linkId: this.id, reason });
    // Closed at once locally with the given reason (T3), as the real link in B is.
    this.closedBy(reason ?? 'LOCAL_CLOSE');
  }

  frame(f: Uint8Array): void {
    if (this.closed) return;
    for (const h of [...this.frameHandlers]) h(f);
  }

  drained(): void {
    if (this.closed) return;
    for (const h of [...this.drainHandlers]) h();
  }

  closedBy(reason: string): void {
    if (this.closed) return;
    this.closed = true;
    const hs = [...this.closeHandlers];
    this.frameHandlers.clear();
    this.drainHandlers.clear();
    this.closeHandlers.clear();
    for (const h of hs) h(reason);
  }
}

class MirrorTransport implements PeerTransport {
  live = 0;
  links = 0;
  /** Sends B refused although the mirror had answered true (or the reverse): checked after each case. */
  readonly mismatches: string[] = [];
  private readonly mirrors = new Map<number, MirrorLink>();
  private readonly subs = new Map<number, (l: PeerLink) => void>();
  private readonly connects = new Map<number, { resolve(l: PeerLink): void; reject(e: unknown): void }>();
  private seq = 0;

  constructor(readonly localPeerId: string) {}

  post(m: Msg): void {
    channel.postMessage(m);
  }

  connect(remotePeerId: string, o: { signal?: AbortSignal; timeoutMs?: number } = {}): Promise<PeerLink> {
    if (o.signal) throw new Error('the mirror transport does not forward abort signals');
    const reqId = ++this.seq;
    this.post({ op: 'connect', reqId, peerId: remotePeerId, timeoutMs: o.timeoutMs });
    return new Promise((resolve, reject) => this.connects.set(reqId, { resolve, reject }));
  }

  onLink(handler: (link: PeerLink) => void): () => void {
    const subId = ++this.seq;
    this.subs.set(subId, handler);
    this.post({ op: 'subscribe', subId });
    return () => {
      this.subs.delete(subId);
      this.post({ op: 'unsubscribe', subId });
    };
  }

  async close(): Promise<void> {
    throw new Error('close B through the pair (dispose)');
  }

  /** One message from B. */
  receive(m: Msg): void {
    switch (m.op) {
      case 'state': {
        this.live = m.live as number;
        this.links = m.links as number;
        for (const [id, b] of Object.entries(m.buffered as Record<string, number>)) {
          const l = this.mirrors.get(Number(id));
          if (l) l.buffered = b;
        }
        break;
      }
      case 'link': {
        const l = this.mirrorOf(m.linkId as number, m.remotePeerId as string);
        this.subs.get(m.subId as number)?.(l);
        break;
      }
      case 'connected':
        this.connects.get(m.reqId as number)?.resolve(this.mirrorOf(m.linkId as number, m.remotePeerId as string));
        this.connects.delete(m.reqId as number);
        break;
      case 'connectFailed':
        this.connects.get(m.reqId as number)?.reject(new TransportError(m.reason as TransportReason));
        this.connects.delete(m.reqId as number);
        break;
      case 'frame':
        this.mirrors.get(m.linkId as number)?.frame(m.frame as Uint8Array);
        break;
      case 'drain':
        this.mirrors.get(m.linkId as number)?.drained();
        break;
      case 'closed':
        this.mirrors.get(m.linkId as number)?.closedBy(m.reason as string);
        break;
      case 'sent':
        if (m.ok !== m.promised) this.mismatches.push(`B's send on link ${m.linkId} returned ${m.ok}, the mirror answered ${m.promised}`);
        break;
      case 'error':
        this.mismatches.push(`B failed: ${m.error}`);
        break;
    }
  }

  private mirrorOf(id: number, remotePeerId: string): MirrorLink {
    let l = this.mirrors.get(id);
    if (!l) {
      l = new MirrorLink(this, id, remotePeerId);
      this.mirrors.set(id, l);
    }
    return l;
  }
}

function runA(): void {
  let input: PairInput | null = null;
  let mirror: MirrorTransport | null = null;
  const waiters = new Map<string, (m: Msg) => void>();
  channel.onmessage = (ev: MessageEvent<Msg>) => {
    const m = ev.data;
    const w = waiters.get(m.op);
    if (w) {
      waiters.delete(m.op);
      w(m);
    }
    mirror?.receive(m);
  };
  const reply = (op: string) => new Promise<Msg>((resolve) => waiters.set(op, resolve));

  const cases = transportConformance({
    name: 'peerjs in Chromium, two pages',
    waitMs: 20_000,
    async create(): Promise<TransportPair> {
      const i = input!;
      const created = reply('created');
      channel.postMessage({ op: 'create', input: i });
      const [{ peer, transport: a }, b] = await Promise.all([makeTransport(i.relayUrl, i.a), created]);
      const m = new MirrorTransport(b.localPeerId as string);
      mirror = m;
      return {
        a,
        b: m,
        offlinePeerId: i.offlinePeerId,
        liveResources: () => a.liveResources() + m.live,
        linksOfB: () => m.links,
        async dispose() {
          await a.close();
          peer.destroy();
          const disposed = reply('disposed');
          channel.postMessage({ op: 'dispose' });
          await disposed;
          mirror = null;
          if (m.mismatches.length > 0) throw new Error(m.mismatches.join('; '));
        },
      };
    },
  });
  registerCases(
    cases.map((c) => ({
      name: c.name,
      run: async (i?: unknown) => {
        input = i as PairInput;
        await c.run();
      },
    })),
  );
}

if (role === 'b') {
  serveB();
  registerCases([]);
} else {
  runA();
}
