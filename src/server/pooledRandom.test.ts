// L1 P1: nonces, session ids and tokens come from the CSPRNG; the pool never hands out a byte twice.
import assert from 'node:assert/strict';
import { it } from 'node:test';
import { createPooledRandom } from './pooledRandom';

it('L1 pooled random bytes are fresh for every call, across refills and for sizes beyond the pool', () => {
  const random = createPooledRandom(64);
  const seen = new Set<string>();
  for (let i = 0; i < 200; i++) {
    const b = random(24); // 24 does not divide 64: every refill leaves a tail unused
    assert.equal(b.length, 24);
    const hex = Buffer.from(b).toString('hex');
    assert.ok(!seen.has(hex), 'no value repeats');
    seen.add(hex);
  }
  const big = random(100);
  assert.equal(big.length, 100);
  assert.ok(big.some((x) => x !== 0));
  const a = random(8);
  a.fill(0xff); // a caller's copy: changing it does not touch what the pool hands out next
  assert.notDeepEqual(random(8), a);
});
