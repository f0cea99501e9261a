import assert from 'node:assert/strict';
import { it } from 'node:test';
import { PendingSignals } from './PendingSignals';

const limits = { perDestination: 3, total: 5, ttlMs: 100 };

it('W5 held messages come back in arrival order, once', () => {
  const q = new PendingSignals(limits);
  assert.ok(q.push('bob', 'alice', 'm1', 0));
  assert.ok(q.push('bob', 'carol', 'm2', 1));
  assert.ok(q.push('bob', 'alice', 'm3', 2));
  assert.deepEqual(q.take('bob', 50), { frames: ['m1', 'm2', 'm3'], dropped: [] });
  assert.deepEqual(q.take('bob', 50), { frames: [], dropped: [] });
  assert.equal(q.size, 0);
});

it('W5 the queue is bounded per destination and in total', () => {
  const q = new PendingSignals(limits);
  for (let i = 0; i < 3; i++) assert.ok(q.push('bob', 'alice', `m${i}`, 0));
  assert.equal(q.push('bob', 'alice', 'm3', 0), false, 'per destination');
  assert.ok(q.push('carol', 'alice', 'c0', 0));
  assert.ok(q.push('dave', 'alice', 'd0', 0));
  assert.equal(q.push('erin', 'alice', 'e0', 0), false, 'total');
  assert.equal(q.size, 5);
});

it('W5 stale messages are dropped and each (sender, destination) pair reported once', () => {
  const q = new PendingSignals(limits);
  q.push('bob', 'alice', 'old1', 0);
  q.push('bob', 'alice', 'old2', 4);
  q.push('bob', 'carol', 'fresh', 90);
  q.push('dave', 'alice', 'gone', 95);
  const dropped = q.sweep(105, (dst) => dst !== 'dave');
  assert.deepEqual(dropped, [{ src: 'alice', dst: 'bob' }, { src: 'alice', dst: 'dave' }]);
  assert.equal(q.size, 1);
  assert.deepEqual(q.take('bob', 200), { frames: [], dropped: [{ src: 'carol', dst: 'bob' }] });
  assert.equal(q.size, 0);
});
