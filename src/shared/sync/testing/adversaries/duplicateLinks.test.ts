import assert from 'node:assert/strict';
import { it } from 'node:test';
import { ATTACHMENT_BYTES, runDuplicateLinks } from './duplicateLinks';

for (const seed of [1, 2, 3]) {
  it(`G8 G10 G13 duplicate-link pair (seed ${seed}): the spare link closing costs no ban, the download completes, every chunk crosses once`, async () => {
    const r = await runDuplicateLinks(seed);
    assert.equal(r.linksBetweenPair, 2, 'both connected at once');
    assert.equal(r.honestDelivery, 1);
    assert.equal(r.honestBans, 0);
    assert.equal(r.payloadRatio, 1);
    // A download holds its verified chunks until the whole is stored; the reader's own queues are requests.
    assert.ok(r.victimPeakBytes <= ATTACHMENT_BYTES + 64 * 1024, `peak ${r.victimPeakBytes}`);
  });
}
