import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createMemoryHub } from './memoryTransport';
import { TransportError, TransportReason } from './PeerTransport';
import { transportConformance } from './transportConformance';

describe('memory transport conformance', () => {
  for (const c of transportConformance({
    name: 'memory',
    async create() {
      const hub = createMemoryHub();
      const a = hub.transport('alice');
      const b = hub.transport('bob');
      return {
        a,
        b,
        offlinePeerId: 'nobody',
        liveResources: () => hub.liveResources(),
        dispose: async () => {
          await a.close();
          await b.close();
        },
      };
    },
  })) {
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
