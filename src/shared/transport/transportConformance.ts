// The one conformance suite every PeerTransport runs (SPEC.md T1-T5, T9-T11), like automerge-repo's
// network-adapter-tests. It imports no test runner and no Node module, so a browser page can run it
// too: each case is a named async function that throws on failure. A Node test file does
// `for (const c of transportConformance(factory)) it(c.name, c.run)`.
import { HIGH_WATER_BYTES, MAX_FRAME_BYTES, type PeerLink, type PeerTransport, TransportError, TransportReason } from './PeerTransport';

export interface TransportPair {
  a: PeerTransport;
  b: PeerTransport;
  /** A peer id nobody answers to (never logged in, or gone). */
  offlinePeerId: string;
  /**
   * Links, their listeners, timers and underlying connections the implementation still holds, summed
   * over both transports. Must reach 0 once every link is closed (T4).
   */
  liveResources(): number;
  /** Open links on `b` (claimed by an `onLink` handler or not): lets a case wait for a link nobody claimed yet. */
  linksOfB(): number;
  /** Closes both transports and whatever the factory started. */
  dispose(): Promise<void>;
}

export interface TransportFactory {
  name: string;
  create(): Promise<TransportPair>;
  /** Upper bound for each wait inside a case, in ms. @default 10_000 */
  waitMs?: number;
}

export interface ConformanceCase {
  name: string;
  run(): Promise<void>;
}

export function transportConformance(factory: TransportFactory): ConformanceCase[] {
  const waitMs = factory.waitMs ?? 10_000;

  /** Runs `body` on a fresh pair and always disposes it. */
  const withPair = (body: (p: TransportPair) => Promise<void>) => async () => {
    const pair = await factory.create();
    try {
      await body(pair);
    } finally {
      await pair.dispose();
    }
  };

  /**
   * Connects a to b; returns both ends after each has said one frame to the other, as the sync engine
   * does (HELLO both ways): a transport that holds frames until the remote has spoken (T11) then sends
   * the case's frames at once, so a case that sends one way only does not wait out `quietMaxMs`.
   */
  async function link(p: TransportPair): Promise<{ ab: PeerLink; ba: PeerLink }> {
    const { ab, ba } = await rawLink(p);
    const hello = (l: PeerLink) =>
      new Promise<void>((resolve) => {
        const off = l.onFrame(() => {
          off();
          resolve();
        });
      });
    const heardByB = hello(ba);
    const heardByA = hello(ab);
    check(ab.send(new Uint8Array([0xaa])) && ba.send(new Uint8Array([0xbb])), 'hello sent');
    await within(Promise.all([heardByA, heardByB]), 'hello both ways');
    return { ab, ba };
  }

  /** Connects a to b with nothing said yet. */
  async function rawLink(p: TransportPair): Promise<{ ab: PeerLink; ba: PeerLink }> {
    const incoming = new Promise<PeerLink>((resolve) => {
      const off = p.b.onLink((l) => {
        off();
        resolve(l);
      });
    });
    const ab = await p.a.connect(p.b.localPeerId, { timeoutMs: waitMs });
    const ba = await within(incoming, 'incoming link');
    return { ab, ba };
  }

  function within<T>(promise: Promise<T>, what: string): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`timed out after ${waitMs} ms waiting for ${what}`)), waitMs);
      promise.then(
        (v) => {
          clearTimeout(t);
          resolve(v);
        },
        (e) => {
          clearTimeout(t);
          reject(e);
        },
      );
    });
  }

  async function until(cond: () => boolean, what: string): Promise<void> {
    const deadline = Date.now() + waitMs;
    while (!cond()) {
      if (Date.now() > deadline) throw new Error(`timed out after ${waitMs} ms waiting for ${what}`);
      await new Promise((r) => setTimeout(r, 10));
    }
  }

  /** Starts collecting every frame `l` receives; `upTo(n)` waits until n have arrived. */
  function collector(l: PeerLink): { frames: Uint8Array[]; upTo(n: number): Promise<Uint8Array[]> } {
    const frames: Uint8Array[] = [];
    l.onFrame((f) => frames.push(f));
    return {
      frames,
      upTo: async (n) => {
        await until(() => frames.length >= n, `${n} frames (got ${frames.length})`);
        return frames;
      },
    };
  }

  function collect(l: PeerLink, count: number): Promise<Uint8Array[]> {
    return collector(l).upTo(count);
  }

  async function expectReject(promise: Promise<unknown>, reason: TransportReason): Promise<void> {
    try {
      await within(promise, `rejection ${reason}`);
    } catch (err) {
      check(err instanceof TransportError, `expected a TransportError, got ${String(err)}`);
      check(err.reason === reason, `expected reason ${reason}, got ${err.reason}`);
      return;
    }
    throw new Error(`expected a rejection with ${reason}, but it resolved`);
  }

  const sizes = [1, 100, 16 * 1024, MAX_FRAME_BYTES - 1, MAX_FRAME_BYTES];

  return [
    {
      name: `T1 ${factory.name}: frames of 1 B to MAX_FRAME_BYTES arrive in order and intact, both directions`,
      run: withPair(async (p) => {
        const { ab, ba } = await link(p);
        check(ab.remotePeerId === p.b.localPeerId, 'outgoing link names the callee');
        check(ba.remotePeerId === p.a.localPeerId, 'incoming link names the caller');
        const toB = sizes.map((n, i) => pattern(n, i + 1));
        const toA = sizes.map((n, i) => pattern(n, i + 101));
        const atB = collect(ba, toB.length);
        const atA = collect(ab, toA.length);
        // Both directions at once, interleaved.
        for (let i = 0; i < sizes.length; i++) {
          check(ab.send(toB[i]!), `a->b send ${i}`);
          check(ba.send(toA[i]!), `b->a send ${i}`);
        }
        sameFrames(await atB, toB, 'a->b');
        sameFrames(await atA, toA, 'b->a');
      }),
    },
    {
      name: `T1 ${factory.name}: a sent frame is the sender's bytes at send time, even if the buffer is reused`,
      run: withPair(async (p) => {
        const { ab, ba } = await link(p);
        const buf = new Uint8Array(64);
        const got = collect(ba, 3);
        for (let i = 0; i < 3; i++) {
          buf.fill(i + 1);
          // A view into a larger buffer sends only the view.
          check(ab.send(buf.subarray(8, 40)), 'send');
        }
        const frames = await got;
        for (let i = 0; i < 3; i++) {
          check(frames[i]!.byteLength === 32 && frames[i]!.every((b) => b === i + 1), `frame ${i} intact`);
        }
      }),
    },
    {
      name: `T1 ${factory.name}: 500 small frames keep their order`,
      run: withPair(async (p) => {
        const { ab, ba } = await link(p);
        const got = collect(ba, 500);
        for (let i = 0; i < 500; i++) check(ab.send(seqFrame(i, 200)), `send ${i}`);
        const frames = await got;
        frames.forEach((f, i) => check(readSeq(f) === i, `frame ${i} in order (got ${readSeq(f)})`));
      }),
    },
    {
      name: `T2 ${factory.name}: send refuses above the high-water mark, onDrain fires, and every accepted frame arrives`,
      run: withPair(async (p) => {
        const { ab, ba } = await link(p);
        let drains = 0;
        ab.onDrain(() => drains++);
        const got = collector(ba);
        // Synchronous sends: the buffer can only grow faster than it drains.
        let accepted = 0;
        const cap = Math.ceil((HIGH_WATER_BYTES * 16) / MAX_FRAME_BYTES);
        while (accepted < cap && ab.send(seqFrame(accepted, MAX_FRAME_BYTES))) accepted++;
        check(accepted < cap, `send never returned false in ${cap} frames`);
        check(accepted * MAX_FRAME_BYTES >= HIGH_WATER_BYTES - MAX_FRAME_BYTES, `refused early, after ${accepted} frames`);
        await until(() => drains === 1, 'onDrain');
        check(ab.send(seqFrame(accepted, MAX_FRAME_BYTES)), 'accepted again after drain');
        const frames = await got.upTo(accepted + 1);
        check(frames.length === accepted + 1, `${frames.length} frames arrived, ${accepted + 1} were accepted`);
        frames.forEach((f, i) => check(readSeq(f) === i && f.byteLength === MAX_FRAME_BYTES, `frame ${i}`));
        check(drains === 1, 'onDrain fired once');
      }),
    },
    {
      name: `T2 ${factory.name}: a frame above MAX_FRAME_BYTES throws RangeError`,
      run: withPair(async (p) => {
        const { ab } = await link(p);
        let threw: unknown;
        try {
          ab.send(new Uint8Array(MAX_FRAME_BYTES + 1));
        } catch (err) {
          threw = err;
        }
        check(threw instanceof RangeError, 'RangeError');
        check(!ab.closed, 'the link stays open');
      }),
    },
    {
      name: `T3 ${factory.name}: close is seen by both sides, once, and nothing is delivered after it`,
      run: withPair(async (p) => {
        const { ab, ba } = await link(p);
        const localReasons: string[] = [];
        const remoteReasons: string[] = [];
        ab.onClose((r) => localReasons.push(r));
        ba.onClose((r) => remoteReasons.push(r));
        let lateFrames = 0;
        ab.onFrame(() => lateFrames++);
        ab.close('BYE');
        check(ab.closed, 'closed at once locally');
        check(localReasons.length === 1 && localReasons[0] === 'BYE', `local reason ${localReasons}`);
        check(!ab.send(new Uint8Array(1)), 'send after close returns false');
        await until(() => ba.closed, 'the remote side to see the close');
        check(remoteReasons.length === 1 && remoteReasons[0] === TransportReason.REMOTE_CLOSED, `remote reason ${remoteReasons}`);
        check(!ba.send(new Uint8Array(1)), 'remote send after close returns false');
        ab.close('AGAIN');
        check(localReasons.length === 1, 'a second close is a no-op');
        check(lateFrames === 0, 'no frame after close');
      }),
    },
    {
      name: `T4 ${factory.name}: after both sides close, no link, listener or timer is left`,
      run: withPair(async (p) => {
        check(p.liveResources() === 0, `idle pair holds ${p.liveResources()} resources`);
        const { ab, ba } = await link(p);
        ab.onFrame(() => {});
        ba.onFrame(() => {});
        ab.onDrain(() => {});
        ba.onClose(() => {});
        ab.send(new Uint8Array(10));
        check(p.liveResources() > 0, 'an open link is counted');
        ba.close();
        await until(() => ab.closed, 'close to reach the caller');
        await until(() => p.liveResources() === 0, `resources to reach 0 (now ${p.liveResources()})`);
        let frames = 0;
        ab.onFrame(() => frames++);
        check(!ab.send(new Uint8Array(1)), 'closed');
        check(frames === 0 && p.liveResources() === 0, 'registering on a closed link holds nothing');
      }),
    },
    {
      name: `T4 ${factory.name}: closing a transport closes its links on both sides and refuses new connects`,
      run: withPair(async (p) => {
        const { ab, ba } = await link(p);
        const reasons: string[] = [];
        ab.onClose((r) => reasons.push(r));
        await p.a.close();
        check(ab.closed && reasons[0] === TransportReason.CLOSED, `local link closed with CLOSED (${reasons})`);
        await until(() => ba.closed, 'the remote side to see the close');
        await expectReject(p.a.connect(p.b.localPeerId), TransportReason.CLOSED);
        await until(() => p.liveResources() === 0, `resources to reach 0 (now ${p.liveResources()})`);
      }),
    },
    {
      name: `T5 ${factory.name}: connecting to an unknown or offline peer rejects with PEER_UNAVAILABLE`,
      run: withPair(async (p) => {
        await expectReject(p.a.connect(p.offlinePeerId, { timeoutMs: waitMs }), TransportReason.PEER_UNAVAILABLE);
        await until(() => p.liveResources() === 0, `resources to reach 0 (now ${p.liveResources()})`);
        // The transport still works afterwards.
        const { ab } = await link(p);
        check(!ab.closed, 'a later connect succeeds');
      }),
    },
    {
      name: `T5 ${factory.name}: an aborted connect rejects with ABORTED`,
      run: withPair(async (p) => {
        const ac = new AbortController();
        ac.abort();
        await expectReject(p.a.connect(p.b.localPeerId, { signal: ac.signal }), TransportReason.ABORTED);
        const ac2 = new AbortController();
        const pending = p.a.connect(p.b.localPeerId, { signal: ac2.signal });
        ac2.abort();
        await expectReject(pending, TransportReason.ABORTED);
        await until(() => p.liveResources() === 0, `resources to reach 0 (now ${p.liveResources()})`);
      }),
    },
    {
      name: `T9 T11 ${factory.name}: frames sent the moment a link opens arrive in order, as the remote answers the first`,
      run: withPair(async (p) => {
        // The engine's start: the caller says HELLO then RECON at once; the callee answers once it heard.
        const atB: Uint8Array[] = [];
        let answered = false;
        const incoming = new Promise<PeerLink>((resolve) => {
          const off = p.b.onLink((l) => {
            off();
            l.onFrame((f) => {
              atB.push(f);
              if (!answered) {
                answered = true;
                l.send(seqFrame(100, 8));
              }
            });
            resolve(l);
          });
        });
        const ab = await p.a.connect(p.b.localPeerId, { timeoutMs: waitMs });
        const atA = collector(ab);
        for (let i = 0; i < 5; i++) check(ab.send(seqFrame(i, 100 + i)), `send ${i}`);
        await within(incoming, 'incoming link');
        await until(() => atB.length >= 5, `5 frames at b (got ${atB.length})`);
        atB.forEach((f, i) => check(readSeq(f) === i && f.byteLength === 100 + i, `frame ${i} in order (got ${readSeq(f)})`));
        const [reply] = await atA.upTo(1);
        check(readSeq(reply!) === 100, 'the answer arrives');
      }),
    },
    {
      name: `T9 T11 ${factory.name}: both sides sending several frames at open get them all, in order`,
      run: withPair(async (p) => {
        const atB: Uint8Array[] = [];
        const incoming = new Promise<PeerLink>((resolve) => {
          const off = p.b.onLink((l) => {
            off();
            l.onFrame((f) => atB.push(f));
            for (let i = 0; i < 4; i++) l.send(seqFrame(200 + i, 64));
            resolve(l);
          });
        });
        const ab = await p.a.connect(p.b.localPeerId, { timeoutMs: waitMs });
        const atA = collector(ab);
        for (let i = 0; i < 4; i++) check(ab.send(seqFrame(i, 64)), `send ${i}`);
        await within(incoming, 'incoming link');
        await until(() => atB.length >= 4, `4 frames at b (got ${atB.length})`);
        atB.forEach((f, i) => check(readSeq(f) === i, `a->b frame ${i} in order (got ${readSeq(f)})`));
        (await atA.upTo(4)).forEach((f, i) => check(readSeq(f) === 200 + i, `b->a frame ${i} in order (got ${readSeq(f)})`));
      }),
    },
    {
      name: `T11 ${factory.name}: a remote that never speaks still gets every frame, in order`,
      run: withPair(async (p) => {
        const { ab, ba } = await rawLink(p);
        const got = collector(ba);
        for (let i = 0; i < 3; i++) check(ab.send(seqFrame(i, 32)), `send ${i}`);
        (await got.upTo(3)).forEach((f, i) => check(readSeq(f) === i, `frame ${i} in order (got ${readSeq(f)})`));
        check(got.frames.length === 3, `exactly 3 frames (got ${got.frames.length})`);
      }),
    },
    {
      name: `T10 ${factory.name}: a link that opens before anyone subscribed is handed to the first subscriber, frames included`,
      run: withPair(async (p) => {
        const ab = await p.a.connect(p.b.localPeerId, { timeoutMs: waitMs });
        check(ab.send(seqFrame(7, 16)), 'send');
        // b's end is open, and nobody on b has subscribed yet.
        await until(() => p.linksOfB() === 1, `b to hold the link (has ${p.linksOfB()})`);
        const handed: PeerLink[] = [];
        p.b.onLink((l) => handed.push(l));
        check(handed.length === 0, 'not inside the registration');
        await until(() => handed.length === 1, 'the held link to be handed over');
        const ba = handed[0]!;
        check(ba.remotePeerId === p.a.localPeerId && !ba.closed, 'the open link from a');
        const [first] = await collector(ba).upTo(1);
        check(readSeq(first!) === 7, 'the frame sent before anyone subscribed');
        const atA = collector(ab);
        check(ba.send(seqFrame(8, 16)), 'reply');
        check(readSeq((await atA.upTo(1))[0]!) === 8, 'both directions work');
      }),
    },
  ];
}

function check(cond: unknown, what: string): asserts cond {
  if (!cond) throw new Error(`conformance check failed: ${what}`);
}

/** Deterministic bytes that differ per frame and per position. */
function pattern(size: number, seed: number): Uint8Array {
  const out = new Uint8Array(size);
  let x = seed * 2654435761;
  for (let i = 0; i < size; i++) {
    x = (x * 1103515245 + 12345) >>> 0;
    out[i] = x >>> 24;
  }
  return out;
}

function sameFrames(got: Uint8Array[], want: Uint8Array[], dir: string): void {
  check(got.length === want.length, `${dir}: ${got.length} frames, want ${want.length}`);
  for (let i = 0; i < want.length; i++) {
    const g = got[i]!;
    const w = want[i]!;
    check(g.byteLength === w.byteLength, `${dir} frame ${i}: ${g.byteLength} bytes, want ${w.byteLength}`);
    for (let j = 0; j < w.byteLength; j++) {
      if (g[j] !== w[j]) check(false, `${dir} frame ${i} differs at byte ${j}`);
    }
  }
}

function seqFrame(seq: number, size: number): Uint8Array {
  const f = new Uint8Array(size);
  new DataView(f.buffer).setInt32(0, seq);
  return f;
}

function readSeq(f: Uint8Array): number {
  return new DataView(f.buffer, f.byteOffset, f.byteLength).getInt32(0);
}
