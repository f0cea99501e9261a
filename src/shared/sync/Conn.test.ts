import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { PeerKind, decodeFrame, encodeFrame, parseControl } from '../protocol/peer';
import type { PeerLink } from '../transport/PeerTransport';
import { BYE_GRACE_MS, Conn, MAX_ASKED_ATTACHMENTS, OUT_QUEUE_MAX_BYTES } from './Conn';
import { ManualClock } from './testing/ManualClock';

/** A link whose buffer the test fills and drains by hand. */
class FakeLink implements PeerLink {
  readonly remotePeerId = '0000000000000001-fake000001';
  closed = false;
  closedWith: string | null = null;
  full = false;
  readonly sent: Uint8Array[] = [];
  private drain = new Set<() => void>();
  private closeHandlers = new Set<(r: string) => void>();
  send(frame: Uint8Array): boolean {
    if (this.closed || this.full) return false;
    this.sent.push(frame);
    return true;
  }
  bufferedAmount(): number {
    return 0;
  }
  onFrame(): () => void {
    return () => {};
  }
  onDrain(h: () => void): () => void {
    this.drain.add(h);
    return () => this.drain.delete(h);
  }
  onClose(h: (r: string) => void): () => void {
    this.closeHandlers.add(h);
    return () => this.closeHandlers.delete(h);
  }
  close(reason = 'LOCAL_CLOSE'): void {
    if (this.closed) return;
    this.closed = true;
    this.closedWith = reason;
    for (const h of [...this.closeHandlers]) h(reason);
  }
  emptied(): void {
    this.full = false;
    for (const h of [...this.drain]) h();
  }
}

function conn(link: FakeLink, clock = new ManualClock()) {
  const events: string[] = [];
  const c = new Conn(link, true, clock, {
    frame: async () => {},
    bad: (_, reason) => events.push(`bad:${reason}`),
    slow: () => events.push('slow'),
    closed: (_, reason) => events.push(`closed:${reason}`),
  });
  return { c, events, clock };
}

const frame = (n: number, size = 100): Uint8Array => encodeFrame(PeerKind.CHUNK, n, new Uint8Array(size));

describe('G9 sending on a link with backpressure', () => {
  it('G9 frames the link refuses wait in order and go out when it drains; waitDrain resolves then', async () => {
    const link = new FakeLink();
    const { c } = conn(link);
    assert.equal(c.sendFrame(frame(1)), true);
    link.full = true;
    assert.equal(c.sendFrame(frame(2)), false, 'refused: the caller should wait');
    assert.equal(c.sendFrame(frame(3)), false, 'queued behind the refused one, never reordered');
    let drained = false;
    void c.waitDrain().then(() => (drained = true));
    await Promise.resolve();
    assert.equal(drained, false);
    link.emptied();
    await Promise.resolve();
    assert.equal(drained, true);
    assert.deepEqual(link.sent.map((f) => decodeFrame(f).ok && (decodeFrame(f) as { frame: { reqId: number } }).frame.reqId), [1, 2, 3]);
  });

  it('G11 a peer that never reads what it asks for is reported once our queue passes its bound', () => {
    const link = new FakeLink();
    const { c, events } = conn(link);
    link.full = true;
    for (let i = 0; i * 60_000 <= OUT_QUEUE_MAX_BYTES; i++) c.sendFrame(frame(i, 60_000));
    assert.ok(events.includes('slow'));
  });
});

describe('G13 closing a link with a reason', () => {
  it('G13 close says BYE with the reason, stops reading at once, and closes the link after the grace', () => {
    const link = new FakeLink();
    const { c, events, clock } = conn(link);
    c.close('MADE_UP_IDS');
    assert.ok(c.closed);
    assert.deepEqual(events, ['closed:MADE_UP_IDS']);
    const bye = decodeFrame(link.sent.at(-1)!);
    assert.ok(bye.ok && bye.frame.kind === PeerKind.BYE);
    assert.equal(parseControl(PeerKind.BYE, bye.frame.body)?.reason, 'MADE_UP_IDS');
    assert.equal(link.closed, false, 'the BYE gets time to arrive');
    clock.advance(BYE_GRACE_MS);
    assert.equal(link.closedWith, 'MADE_UP_IDS');
    assert.equal(clock.pending, 0);
  });

  it('G14 closeNow ends a lingering close at once and leaves no timer', () => {
    const link = new FakeLink();
    const { c, clock } = conn(link);
    c.close('IDLE');
    assert.equal(clock.pending, 1);
    c.closeNow();
    assert.ok(link.closed);
    assert.equal(clock.pending, 0);
  });
});

describe('G13 progress on a link (attachment side)', () => {
  it('G13 a link waits from its oldest open request; an answer to one of ours or a drain is progress, other frames are not', () => {
    // A FakeLink whose frame handler the test calls, as the transport would.
    const link = new FakeLink();
    let handler: ((bytes: Uint8Array) => void) | null = null;
    link.onFrame = ((h: (bytes: Uint8Array) => void) => {
      handler = h;
      return () => {};
    }) as FakeLink['onFrame'];
    const { c, clock } = conn(link);
    const t0 = clock.now();
    assert.equal(c.waitingSince(), null, 'nothing open: not waiting');
    c.pending.set(5, { kind: 'hashes', at: t0, id: 'x' });
    assert.equal(c.waitingSince(), t0);
    clock.advance(10_000);
    handler!(encodeFrame(PeerKind.HASHES, 9, new Uint8Array(4))); // not a request of ours
    handler!(encodeFrame(PeerKind.GET_CHUNKS, 5, new Uint8Array(4))); // a request, not an answer
    assert.equal(c.waitingSince(), t0);
    handler!(encodeFrame(PeerKind.HASHES, 5, new Uint8Array(4)));
    assert.equal(c.waitingSince(), t0 + 10_000, 'an answer to an open request');
    clock.advance(10_000);
    link.full = true;
    c.sendFrame(frame(1));
    link.emptied();
    assert.equal(c.waitingSince(), t0 + 20_000, 'what we queued left');
    c.pending.clear();
    c.pending.set(6, { kind: 'want', at: t0 + 25_000, ids: new Set() });
    assert.equal(c.waitingSince(), t0 + 25_000, 'a request after a quiet spell waits from when it was sent');
  });

  it('G8 G13 chunks asked on a link are remembered per attachment, for MAX_ASKED_ATTACHMENTS attachments', () => {
    const { c } = conn(new FakeLink());
    c.noteChunksAsked('a', 20, [0, 9, 19]);
    assert.deepEqual([0, 1, 9, 19].map((i) => c.chunkAsked('a', i)), [true, false, true, true]);
    assert.equal(c.chunkAsked('b', 0), false);
    for (let i = 0; i < MAX_ASKED_ATTACHMENTS; i++) c.noteChunksAsked(`n${i}`, 1, [0]);
    assert.equal(c.chunkAsked('a', 0), false, 'the oldest is forgotten first');
    assert.equal(c.chunkAsked(`n${MAX_ASKED_ATTACHMENTS - 1}`, 0), true);
  });

  it('G9 G14 a link whose send throws while its queue drains is closed with a reason, not left stuck', () => {
    const link = new FakeLink();
    const { c, events } = conn(link);
    link.full = true;
    assert.equal(c.sendFrame(frame(1)), false);
    // The channel was torn down under us: its send throws instead of refusing.
    link.send = () => {
      throw new Error('InvalidStateError');
    };
    assert.doesNotThrow(() => link.emptied());
    assert.ok(c.closed);
    assert.deepEqual(events, ['closed:INTERNAL']);
    assert.equal(link.closedWith, 'INTERNAL');
    assert.equal(c.heldBytes, 0, 'the queue it held is let go');
  });
});
