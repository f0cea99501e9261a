import assert from 'node:assert/strict';
import { it } from 'node:test';
import { PendingSignals } from './PendingSignals';

const limits = { perDestination: 3, total: 5, perSender: 100, perAddress: 100, perSourceAndDestination: 100, ttlMs: 100 };
/** A sender on its own address, with its own key. */
const from = (src: string, addr = `addr-${src}`, key = src) => ({ src, key, addr });

it('W5 held messages come back in arrival order, once', () => {
  const q = new PendingSignals(limits);
  assert.equal(q.push('bob', from('alice'), 'm1', 0), null);
  assert.equal(q.push('bob', from('carol'), 'm2', 1), null);
  assert.equal(q.push('bob', from('alice'), 'm3', 2), null);
  assert.deepEqual(q.take('bob', 50), { frames: ['m1', 'm2', 'm3'], dropped: [] });
  assert.deepEqual(q.take('bob', 50), { frames: [], dropped: [] });
  assert.equal(q.size, 0);
  assert.equal(q.trackedKeys, 0, 'no bookkeeping outlives the messages');
});

it('W5 the queue is bounded per destination and in total', () => {
  const q = new PendingSignals(limits);
  for (let i = 0; i < 3; i++) assert.equal(q.push('bob', from('alice'), `m${i}`, 0), null);
  assert.equal(q.push('bob', from('alice'), 'm3', 0), 'destination');
  assert.equal(q.push('carol', from('alice'), 'c0', 0), null);
  assert.equal(q.push('dave', from('alice'), 'd0', 0), null);
  assert.equal(q.push('erin', from('alice'), 'e0', 0), 'total');
  assert.equal(q.size, 5);
});

it('W5 fair bounds: one sender key, one address, and either at one destination, hold only their share', () => {
  const q = new PendingSignals({ perDestination: 8, total: 100, perSender: 6, perAddress: 10, perSourceAndDestination: 4, ttlMs: 100 });
  // One key, many sessions (peer ids), one address: capped per destination, then overall.
  for (let i = 0; i < 4; i++) assert.equal(q.push('bob', from(`m-${i}`, 'evil', 'mkey'), 'x', 0), null);
  assert.equal(q.push('bob', from('m-4', 'evil', 'mkey'), 'x', 0), 'source_destination');
  assert.equal(q.push('bob', { src: 'alice', key: 'alice', addr: 'home' }, 'honest', 0), null, 'the destination still has room for others');
  assert.equal(q.push('carol', from('m-5', 'evil', 'mkey'), 'x', 0), null);
  assert.equal(q.push('dave', from('m-6', 'evil', 'mkey'), 'x', 0), null);
  assert.equal(q.push('erin', from('m-7', 'evil', 'mkey'), 'x', 0), 'sender');
  // Other keys from the same address: capped per address and per (address, destination).
  for (let i = 0; i < 4; i++) assert.equal(q.push(`d${i}`, from(`k${i}`, 'evil'), 'x', 0), null);
  assert.equal(q.push('zed', from('k9', 'evil'), 'x', 0), 'address');
  assert.equal(q.push('bob', from('k8', 'evil2'), 'x', 0), null);
  q.take('bob', 1);
  assert.equal(q.push('zed', from('k9', 'evil'), 'x', 0), null, 'room again once held messages are delivered');
  q.sweep(1000);
  assert.equal(q.size, 0);
  assert.equal(q.trackedKeys, 0);
});

it('W5 stale messages are dropped and each (sender, destination) pair reported once', () => {
  const q = new PendingSignals(limits);
  q.push('bob', from('alice'), 'old1', 0);
  q.push('bob', from('alice'), 'old2', 4);
  q.push('bob', from('carol'), 'fresh', 90);
  q.push('dave', from('alice'), 'gone', 95);
  const dropped = q.sweep(105, (dst) => dst !== 'dave');
  assert.deepEqual(dropped, [{ src: 'alice', dst: 'bob' }, { src: 'alice', dst: 'dave' }]);
  assert.equal(q.size, 1);
  assert.deepEqual(q.take('bob', 200), { frames: [], dropped: [{ src: 'carol', dst: 'bob' }] });
  assert.equal(q.size, 0);
  assert.equal(q.trackedKeys, 0);
});
