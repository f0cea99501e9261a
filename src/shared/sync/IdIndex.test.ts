import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { IdIndex } from './IdIndex';
import { createPrng } from './prng';

function randomKeys(seed: number, n: number): Uint8Array[] {
  const rng = createPrng(seed);
  return Array.from({ length: n }, () => {
    const b = new Uint8Array(16);
    for (let j = 0; j < 16; j++) b[j] = rng.int(256);
    return b;
  });
}

describe('G4 H13 the reconciliation index', () => {
  it('H13 removing reported ids leaves exactly the rest, with the fingerprints of an index built without them', () => {
    const keys = randomKeys(1, 2000);
    const rng = createPrng(2);
    const gone = new Set(rng.shuffle(keys.map((_, i) => i)).slice(0, 300));
    // The oldest 100 as well, as an eviction reports them.
    const sorted = keys.map((k, i) => ({ k, i })).sort((a, b) => Buffer.compare(a.k, b.k));
    for (const { i } of sorted.slice(0, 100)) gone.add(i);
    const index = new IdIndex();
    const fresh = new IdIndex();
    keys.forEach((k, i) => {
      index.add(k);
      if (!gone.has(i)) fresh.add(k);
    });
    const report = [...gone].map((i) => keys[i]!);
    // Reported twice, and an id the index never had: both harmless.
    const removed = index.remove([...report, report[0]!, new Uint8Array(16).fill(255)]);
    assert.equal(removed, gone.size);
    assert.equal(index.size, fresh.size);
    for (let i = 0; i < index.size; i++) assert.deepEqual(index.key(i), fresh.key(i));
    assert.deepEqual(index.fingerprint(0, index.size), fresh.fingerprint(0, fresh.size));
    assert.equal(index.remove([]), 0);
  });

  it('G4 addMany: a batch (newest first, overlapping, with repeats) leaves the index and fingerprints of one-by-one adds, moving each held id once per batch', () => {
    const keys = randomKeys(3, 3000);
    const one = new IdIndex();
    const many = new IdIndex();
    for (const k of keys.slice(0, 1000)) one.add(k);
    many.addMany(keys.slice(0, 1000));
    const batches = [keys.slice(1000, 1500), [...keys.slice(1400, 2200), keys[5]!, keys[1700]!], keys.slice(2200).reverse()];
    for (const b of batches) {
      let fresh = 0;
      for (const k of b) if (one.add(k)) fresh++;
      assert.equal(many.addMany(b), fresh);
    }
    assert.equal(many.addMany([new Uint8Array(3), 'not a ulid']), 0);
    assert.equal(many.size, one.size);
    for (let i = 0; i < one.size; i++) assert.deepEqual(many.key(i), one.key(i));
    assert.deepEqual(many.fingerprint(0, many.size), one.fingerprint(0, one.size));
    assert.deepEqual(many.fingerprint(100, 2000), one.fingerprint(100, 2000));
  });
});
