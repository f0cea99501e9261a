import assert from 'node:assert/strict';
import { it } from 'node:test';
import { LIMITS } from '../../../protocol/relay';
import { CORRUPT_FROM, PHOTO_BYTES, runChunkCorrupter } from './chunkCorrupter';

for (const seed of [1, 2, 3]) {
  it(`G8 G13 chunk corrupter (seed ${seed}): each liar is banned at its first bad chunk, the photo completes from the honest holder, nothing unverified is stored`, async () => {
    const r = await runChunkCorrupter(seed);
    assert.equal(r.honestDelivery, 1, 'the photo arrived byte for byte');
    assert.equal(r.honestBans, 0);
    assert.deepEqual(r.liarDrops, CORRUPT_FROM.map(() => 'WRONG_DIGEST'), 'both liars caught, for a wrong chunk');
    assert.ok(r.onlyVerifiedStored, 'only the signed content was written to the store');
    for (const [i, n] of r.badChunksSent.entries()) assert.ok(n >= 1, `liar ${i} did serve a bad chunk`);
    // The good chunks a liar served before its first bad one are kept (G8): the honest holder serves the rest.
    assert.equal(r.honestChunks, PHOTO_BYTES / LIMITS.chunkBytes - Math.max(...CORRUPT_FROM));
  });
}
