import assert from 'node:assert/strict';
import { it } from 'node:test';
import { TokenBucket } from './TokenBucket';

it('W7 a bucket allows its burst, refuses beyond it, and refills at its rate', () => {
  const b = new TokenBucket(3, 10, 0);
  assert.ok(b.take(1, 0) && b.take(1, 0) && b.take(1, 0));
  assert.equal(b.take(1, 0), false);
  assert.equal(b.take(1, 50), false, 'half a token after 50 ms');
  assert.ok(b.take(1, 100));
  assert.ok(b.take(3, 10_000), 'never more than the burst');
  assert.equal(b.take(1, 10_000), false);
});
