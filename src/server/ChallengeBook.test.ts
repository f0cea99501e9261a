// SPEC.md L2-L3 as a pure unit: binding, single use, expiry and bounds of login challenges.
import assert from 'node:assert/strict';
import { it } from 'node:test';
import { ChallengeBook } from './ChallengeBook';

function book(opts: { maxPerConnection?: number; maxEntries?: number } = {}) {
  let now = 1000;
  let n = 0;
  const b = new ChallengeBook({ ttlMs: 100, now: () => now, nonce: () => `n${n++}`, ...opts });
  return { b, tick: (ms: number) => (now += ms) };
}

it('L2 L3 a nonce is bound to its connection, single use, and expires', () => {
  const { b, tick } = book();
  const a = b.issue(1);
  assert.deepEqual(b.consume(2, a.nonce), { ok: false, reason: 'NO_CHALLENGE' });
  assert.deepEqual(b.consume(1, a.nonce), { ok: true });
  assert.deepEqual(b.consume(1, a.nonce), { ok: false, reason: 'CHALLENGE_REPLAYED' });
  assert.deepEqual(b.consume(2, a.nonce), { ok: false, reason: 'CHALLENGE_REPLAYED' });
  const late = b.issue(1);
  tick(101);
  assert.deepEqual(b.consume(1, late.nonce), { ok: false, reason: 'CHALLENGE_EXPIRED' });
  assert.deepEqual(b.consume(1, 'never-issued'), { ok: false, reason: 'NO_CHALLENGE' });
});

it('L2 memory is bounded: per connection, overall, after expiry and when a connection closes', () => {
  const { b, tick } = book({ maxPerConnection: 2, maxEntries: 10 });
  const first = b.issue(1);
  b.issue(1);
  b.issue(1);
  assert.equal(b.size, 2, 'the oldest unused challenge of a connection is dropped');
  assert.deepEqual(b.consume(1, first.nonce), { ok: false, reason: 'NO_CHALLENGE' });
  for (let c = 2; c < 30; c++) b.issue(c);
  assert.ok(b.size <= 10);
  b.dropConnection(29);
  assert.ok(b.size <= 9);
  tick(1000);
  b.issue(99);
  assert.equal(b.size, 1, 'long-expired entries are pruned');
});

it('L3 a nonce whose login succeeded is forgotten with every other challenge of its connection', () => {
  const { b } = book();
  const spare = b.issue(1);
  const used = b.issue(1);
  const other = b.issue(2);
  assert.deepEqual(b.consume(1, used.nonce), { ok: true });
  b.loggedIn(1, used.nonce);
  assert.equal(b.size, 1, "only the other connection's challenge is left");
  assert.deepEqual(b.consume(2, used.nonce), { ok: false, reason: 'NO_CHALLENGE' }, 'a replay is still refused');
  assert.deepEqual(b.consume(1, spare.nonce), { ok: false, reason: 'NO_CHALLENGE' });
  b.loggedIn(2, used.nonce); // not its nonce: nothing of connection 1 to forget, its own pending ones go
  assert.equal(b.size, 0);
  assert.ok(other.nonce);
});
