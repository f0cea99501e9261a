import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ADVERSARY_BOUNDS } from './harness';
import { scenarios } from './index';

// Every scenario in the list, on a fixed seed: honest peers still deliver everything, none is banned,
// and the victim stays within the bounds the SPEC states (G11, G13).
describe('G13 G11 adversaries in the simulator', () => {
  for (const s of scenarios) {
    it(`G13 G11 ${s.name}: honest delivery 100%, no honest ban, memory and CPU within bounds`, async () => {
      const r = await s.run(1);
      assert.equal(r.honestDelivery, ADVERSARY_BOUNDS.honestDelivery, 'honest delivery');
      assert.equal(r.honestBans, ADVERSARY_BOUNDS.honestBans, 'honest bans');
      assert.ok(r.victimPeakBytes <= ADVERSARY_BOUNDS.peakBytes, `peak ${r.victimPeakBytes} B > ${ADVERSARY_BOUNDS.peakBytes}`);
      assert.ok(
        r.victimCpuMsPerAttackSecond <= ADVERSARY_BOUNDS.cpuMsPerAttackSecond,
        `${r.victimCpuMsPerAttackSecond.toFixed(1)} CPU ms per second of attack`,
      );
    });
  }
});
