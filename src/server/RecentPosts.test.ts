// SPEC.md R3-R4, M6: the idempotency memory is bounded by count and age, forgets failed attempts, and never
// forgets a relayed post while its `sentAt` could still pass the window.
import assert from 'node:assert/strict';
import { it } from 'node:test';
import type { Envelope } from '../shared/protocol/relay';
import { RecentPosts } from './RecentPosts';

const env = (id: string) => Promise.resolve({ id } as Envelope);

it('R4 same digest is the same attempt, another digest conflicts; failed attempts are forgotten', async () => {
  const r = new RecentPosts({ maxEntries: 10, ttlMs: 1000, windowMs: 100, now: () => 0 });
  const first = env('a');
  r.remember('k', 'c1', 'd1', 0, first);
  const same = r.lookup('k', 'c1', 'd1');
  assert.equal(same.kind === 'same' && same.result, first);
  assert.deepEqual(r.lookup('k', 'c1', 'd2'), { kind: 'conflict' });
  assert.deepEqual(r.lookup('other', 'c1', 'd1'), { kind: 'new' });
  const failed = Promise.reject(new Error('bad signature'));
  r.remember('k', 'c2', 'd', 0, failed);
  await failed.catch(() => {});
  await new Promise((res) => setImmediate(res));
  assert.deepEqual(r.lookup('k', 'c2', 'd'), { kind: 'new' });
});

it('R3 R4 bounded by count and by age', () => {
  let now = 0;
  const r = new RecentPosts({ maxEntries: 3, ttlMs: 100, windowMs: 50, now: () => now });
  for (let i = 0; i < 5; i++) r.remember('k', `c${i}`, 'd', -60, env(`${i}`)); // windows already closed
  assert.equal(r.size, 3);
  assert.equal(r.tombstoneCount, 0, 'a post whose window closed needs no tombstone');
  assert.deepEqual(r.lookup('k', 'c0', 'd'), { kind: 'new' });
  now = 500;
  assert.deepEqual(r.lookup('k', 'c4', 'd'), { kind: 'new' }, 'expired entries are not answered');
  r.remember('k', 'late', 'd', 500, env('late'));
  assert.equal(r.size, 1, 'expired entries are evicted');
});

it('M6 R4 a post pushed out by the count bound while its window is open stays spent', () => {
  let now = 1000;
  const r = new RecentPosts({ maxEntries: 2, ttlMs: 200, windowMs: 100, maxTombstones: 2, now: () => now });
  r.remember('k', 'a', 'd', now, env('a'));
  r.remember('k', 'b', 'd', now, env('b'));
  r.remember('k', 'c', 'd', now, env('c'));
  assert.deepEqual(r.lookup('k', 'a', 'd'), { kind: 'spent' }, 'forgotten envelope, still refused');
  assert.equal(r.tombstoneCount, 1);
  r.remember('k', 'd', 'd', now, env('d'));
  assert.equal(r.hasRoom('k', 'e'), false, 'entries and tombstones full of open windows: refuse, never forget');
  assert.equal(r.hasRoom('k', 'c'), true, 'a known key replaces its own entry');
  now += 101; // every window closed
  assert.equal(r.hasRoom('k', 'e'), true);
  assert.equal(r.tombstoneCount, 0, 'closed windows are pruned');
  assert.deepEqual(r.lookup('k', 'a', 'd'), { kind: 'new' });
});
