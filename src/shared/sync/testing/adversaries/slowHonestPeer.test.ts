import assert from 'node:assert/strict';
import { it } from 'node:test';
import { FILES, FILE_BYTES, runSlowHonestPeer } from './slowHonestPeer';

for (const seed of [1, 2, 3]) {
  it(`G9 G13 slow honest peer (seed ${seed}): 1 MiB asked ahead on a 16 KiB/s uplink, no timeout, no ban, every download completes`, async () => {
    const r = await runSlowHonestPeer(seed);
    assert.ok(r.seconds >= 60, `the uplink really was slow (${r.seconds} s)`);
    assert.equal(r.honestDelivery, 1);
    assert.equal(r.honestBans, 0);
    assert.equal(r.drops, 0, 'the slow link was never given up');
    assert.ok(r.victimPeakBytes <= FILES * FILE_BYTES + 64 * 1024, `peak ${r.victimPeakBytes}`);
  });
}
