import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { MAX_UNCLAIMED_LINKS } from './IncomingLinks';
import { type MemoryHubOptions, createMemoryHub } from './memoryTransport';
import { type PeerLink, TransportError, TransportReason } from './PeerTransport';
import { transportConformance } from './transportConformance';

function memoryFactory(name: string, opts: MemoryHubOptions) {
  return {
    name,
    async create() {
      const hub = createMemoryHub(opts);
      const a = hub.transport('alice');
      const b = hub.transport('bob');
      return {
        a,
        b,
        offlinePeerId: 'nobody',
        liveResources: () => hub.liveResources(),
        linksOfB: () => b.linkCount(),
        dispose: async () => {
          await a.close();
          await b.close();
        },
      };
    },
  };
}

describe('memory transport conformance', () => {
  // As the simulator runs it (no reordering, no T11 hold)...
  for (const c of transportConformance(memoryFactory('memory', {}))) it(c.name, c.run);
  // ...and as wrtc behaves, with the rule that undoes its reordering (quietMaxMs short: a case waits it out).
  for (const c of transportConformance(memoryFactory('memory+reordering', { reorderFirstFrames: true, oneFrameUntilHeard: { quietMaxMs: 100 } }))) {
    it(c.name, c.run);
  }
});

describe('memory transport', () => {
  it('T5 a peer whose transport closed is unavailable', async () => {
    const hub = createMemoryHub();
    const a = hub.transport('alice');
    const b = hub.transport('bob');
    await b.close();
    await assert.rejects(a.connect('bob'), (e: unknown) => e instanceof TransportError && e.reason === TransportReason.PEER_UNAVAILABLE);
    await a.close();
  });

  it('T2 bytesPerTurn models bandwidth: a slow link drains over several turns', async () => {
    const turns: (() => void)[] = [];
    // A hand-cranked scheduler: nothing happens until the test runs a turn.
    const hub = createMemoryHub({ bytesPerTurn: 1000, schedule: (fn) => { turns.push(fn); return () => { const i = turns.indexOf(fn); if (i >= 0) turns.splice(i, 1); }; } });
    const a = hub.transport('alice');
    const b = hub.transport('bob');
    const incoming: unknown[] = [];
    b.onLink((l) => incoming.push(l));
    const connecting = a.connect('bob');
    turns.shift()!();
    const ab = await connecting;
    assert.equal(incoming.length, 1);
    for (let i = 0; i < 5; i++) assert.ok(ab.send(new Uint8Array(600)));
    assert.equal(ab.bufferedAmount(), 3000);
    turns.shift()!();
    assert.equal(ab.bufferedAmount(), 1800, 'two frames (1,200 B) left in the first turn of 1,000 B');
    while (turns.length) turns.shift()!();
    assert.equal(ab.bufferedAmount(), 0);
    await a.close();
    while (turns.length) turns.shift()!();
    await b.close();
    assert.equal(hub.liveResources(), 0);
  });

  it('T4 a handler that throws is reported and does not break the link', async () => {
    const errors: string[] = [];
    const hub = createMemoryHub({ onError: (_e, where) => errors.push(where) });
    const a = hub.transport('alice');
    const b = hub.transport('bob');
    const got: number[] = [];
    b.onLink((l) => {
      l.onFrame(() => {
        throw new Error('engine bug');
      });
      l.onFrame((f) => got.push(f[0]!));
    });
    const ab = await a.connect('bob');
    ab.send(new Uint8Array([1]));
    ab.send(new Uint8Array([2]));
    while (got.length < 2) await new Promise((r) => setTimeout(r, 1));
    assert.deepEqual(got, [1, 2]);
    assert.deepEqual(errors, ['onFrame', 'onFrame']);
    await a.close();
    await b.close();
  });
});

describe('memory transport early frames', () => {
  it('T1 frames that arrive before the first onFrame handler are delivered, in order, once it registers', async () => {
    const hub = createMemoryHub();
    const a = hub.transport('alice');
    const b = hub.transport('bob');
    let incoming: import('./PeerTransport').PeerLink | undefined;
    b.onLink((l) => (incoming = l));
    const ab = await a.connect('bob');
    for (let i = 0; i < 3; i++) ab.send(new Uint8Array([i]));
    while (ab.bufferedAmount() > 0) await new Promise((r) => setTimeout(r, 1));
    const got: number[] = [];
    incoming!.onFrame((f) => got.push(f[0]!));
    assert.deepEqual(got, [], 'not inside the registration');
    await Promise.resolve();
    assert.deepEqual(got, [0, 1, 2]);
    await a.close();
    await b.close();
  });

  it('T1 more than 1 MiB of unclaimed frames closes the link with OVERFLOW', async () => {
    const hub = createMemoryHub();
    const a = hub.transport('alice');
    const b = hub.transport('bob');
    const reasons: string[] = [];
    b.onLink((l) => l.onClose((r) => reasons.push(r)));
    const ab = await a.connect('bob');
    let sent = 0;
    while (!ab.closed && sent < 40) {
      if (ab.send(new Uint8Array(64 * 1024))) sent++;
      else
        await new Promise<void>((r) => {
          ab.onDrain(r);
          ab.onClose(() => r());
        });
    }
    while (!ab.closed) await new Promise((r) => setTimeout(r, 1));
    assert.deepEqual(reasons, [TransportReason.OVERFLOW]);
    await a.close();
    await b.close();
  });
});

/** A hand-cranked scheduler: nothing is delivered until the test runs a turn. */
function crank() {
  const turns: (() => void)[] = [];
  return {
    schedule: (fn: () => void) => {
      turns.push(fn);
      return () => {
        const i = turns.indexOf(fn);
        if (i >= 0) turns.splice(i, 1);
      };
    },
    /** Runs the turns queued so far (not the ones they queue). */
    turn() {
      for (const fn of turns.splice(0)) fn();
    },
    drain() {
      while (turns.length) this.turn();
    },
  };
}

async function pairOn(hub: ReturnType<typeof createMemoryHub>, c: ReturnType<typeof crank>) {
  const a = hub.transport('alice');
  const b = hub.transport('bob');
  const incoming: PeerLink[] = [];
  b.onLink((l) => incoming.push(l));
  const connecting = a.connect('bob');
  c.turn();
  const ab = await connecting;
  await Promise.resolve(); // the held link is handed over a microtask after it was subscribed for
  return { a, b, ab, ba: incoming[0]! };
}

describe('memory transport: one frame until the remote has spoken (T11)', () => {
  it('T11 the reordering hub reverses a new link\'s first frames when the rule is off (what the rule is for)', async () => {
    const c = crank();
    const hub = createMemoryHub({ schedule: c.schedule, reorderFirstFrames: true });
    const { a, b, ab, ba } = await pairOn(hub, c);
    const got: number[] = [];
    ba.onFrame((f) => got.push(f[0]!));
    for (let i = 1; i <= 3; i++) ab.send(new Uint8Array([i]));
    c.turn();
    await Promise.resolve();
    assert.deepEqual(got, [3, 2, 1]);
    await a.close();
    await b.close();
    c.drain();
  });

  it('T11 before the remote speaks only the first frame leaves; the rest follow in order once it does, and count as buffered', async () => {
    const c = crank();
    const hub = createMemoryHub({ schedule: c.schedule, reorderFirstFrames: true, oneFrameUntilHeard: { quietMaxMs: 60_000 } });
    const { a, b, ab, ba } = await pairOn(hub, c);
    const got: number[] = [];
    ba.onFrame((f) => got.push(f[0]!));
    for (let i = 1; i <= 3; i++) assert.ok(ab.send(new Uint8Array([i])));
    assert.equal(ab.bufferedAmount(), 3, 'the queued frames count in bufferedAmount (T2 unchanged)');
    for (let i = 0; i < 5; i++) c.turn();
    await Promise.resolve();
    assert.deepEqual(got, [1], 'one frame while the remote has said nothing');
    assert.equal(ab.bufferedAmount(), 2);
    ba.send(new Uint8Array([9]));
    c.drain();
    await Promise.resolve();
    assert.deepEqual(got, [1, 2, 3]);
    assert.equal(ab.bufferedAmount(), 0);
    await a.close();
    await b.close();
    c.drain();
    assert.equal(hub.liveResources(), 0);
  });

  it('T11 a remote that stays silent gets the queued frames after quietMaxMs', async () => {
    const hub = createMemoryHub({ oneFrameUntilHeard: { quietMaxMs: 30 } });
    const a = hub.transport('alice');
    const b = hub.transport('bob');
    const got: number[] = [];
    b.onLink((l) => l.onFrame((f) => got.push(f[0]!)));
    const ab = await a.connect('bob');
    const sentAt = Date.now();
    for (let i = 1; i <= 3; i++) ab.send(new Uint8Array([i]));
    while (got.length < 3) await new Promise((r) => setTimeout(r, 5));
    assert.deepEqual(got, [1, 2, 3]);
    assert.ok(Date.now() - sentAt >= 30, 'not before quietMaxMs');
    await a.close();
    await b.close();
  });
});

describe('memory transport: links nobody subscribed for (T10)', () => {
  it(`T10 at most MAX_UNCLAIMED_LINKS (${MAX_UNCLAIMED_LINKS}) are held; later ones close with TOO_MANY_LINKS`, async () => {
    const hub = createMemoryHub({ maxLinks: 100 });
    const b = hub.transport('bob');
    const callers = Array.from({ length: MAX_UNCLAIMED_LINKS + 2 }, (_, i) => hub.transport(`c${i}`));
    const links = await Promise.all(callers.map((t) => t.connect('bob')));
    while (links.filter((l) => l.closed).length < 2) await new Promise((r) => setTimeout(r, 1));
    assert.deepEqual(links.map((l) => l.closed), [...Array(MAX_UNCLAIMED_LINKS).fill(false), true, true]);
    const handed: PeerLink[] = [];
    b.onLink((l) => handed.push(l));
    await Promise.resolve();
    assert.equal(handed.length, MAX_UNCLAIMED_LINKS);
    for (const t of [b, ...callers]) await t.close();
  });

  it('T10 a held link that closes before anyone subscribes is not handed over, and holds nothing', async () => {
    const hub = createMemoryHub();
    const a = hub.transport('alice');
    const b = hub.transport('bob');
    const ab = await a.connect('bob');
    ab.close();
    while (b.linkCount() > 0) await new Promise((r) => setTimeout(r, 1));
    const handed: PeerLink[] = [];
    b.onLink((l) => handed.push(l));
    await new Promise((r) => setTimeout(r, 1));
    assert.deepEqual(handed, []);
    assert.equal(hub.liveResources(), 0);
    await a.close();
    await b.close();
  });
});
