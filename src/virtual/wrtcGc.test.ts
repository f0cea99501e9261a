// SPEC.md VC5: closed wrtc links are collected by one gc() per period, none while nothing closes.
import assert from 'node:assert/strict';
import { it } from 'node:test';
import { enableWrtcGc, noteWrtcClosed, wrtcGcStats } from './wrtcGc';

it('VC5 closes are collected once per period, not once per close', async () => {
  assert.equal(enableWrtcGc({ delayMs: 30 }), true, 'gc() is available, with or without --expose-gc');
  const before = wrtcGcStats().runs;
  for (let i = 0; i < 5; i++) noteWrtcClosed();
  assert.equal(wrtcGcStats().pendingCloses, 5);
  while (wrtcGcStats().pendingCloses > 0) await new Promise((r) => setTimeout(r, 10));
  assert.equal(wrtcGcStats().runs, before + 1);
  // Nothing closed since: no further collection.
  await new Promise((r) => setTimeout(r, 60));
  assert.equal(wrtcGcStats().runs, before + 1);
});
