// SPEC.md R3-R4: the idempotency memory is bounded by count and age, and forgets failed attempts.
import assert from 'node:assert/strict';
import { it } from 'node:test';
import type { Envelope } from '../shared/protocol/relay';
import { RecentPosts } from './RecentPosts';

const env = (id: string) => Promise.resolve({ id } as Envelope);

it('R4 same digest is the same attempt, another digest conflicts; failed attempts are forgotten', async () => {
  const r = new RecentPosts({ maxEntries: 10, ttlMs: 1000, now: () => 0 });
  const first = env('a');
  r.remember('k', 'c1', 'd1', first);
  const same = r.lookup('k', 'c1', 'd1');
  assert.equal(same.kind === 'same' && same.result, first);
  assert.deepEqual(r.lookup('k', 'c1', 'd2'), { kind: 'conflict' });
  assert.deepEqual(r.lookup('other', 'c1', 'd1'), { kind: 'new' });
  const failed = Promise.reject(new Error('bad signature'));
  r.remember('k', 'c2', 'd', failed);
  await failed.catch(() => {});
  await new Promise((res) => setImmediate(res));
  assert.deepEqual(r.lookup('k', 'c2', 'd'), { kind: 'new' });
});

it('R3 R4 bounded by count and by age', () => {
  let now = 0;
  const r = new RecentPosts({ maxEntries: 3, ttlMs: 100, now: () => now });
  for (let i = 0; i < 5; i++) r.remember('k', `c${i}`, 'd', env(`${i}`));
  assert.equal(r.size, 3);
  assert.deepEqual(r.lookup('k', 'c0', 'd'), { kind: 'new' });
  now = 500;
  assert.deepEqual(r.lookup('k', 'c4', 'd'), { kind: 'new' }, 'expired entries are not answered');
  r.remember('k', 'late', 'd', env('late'));
  assert.equal(r.size, 1, 'expired entries are evicted');
});
