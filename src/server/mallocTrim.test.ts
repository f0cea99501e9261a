// SPEC.md R18: the relay returns the C heap's free pages after major GCs, at most once per interval.
import assert from 'node:assert/strict';
import { it } from 'node:test';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { loadMallocTrim, startMallocTrim } from './mallocTrim';
import { eventually } from './testKit';

setFlagsFromString('--expose-gc'); // node:test's children do not get the flag
const gc = runInNewContext('gc') as () => void; // a full (major) collection

it('R18 the C heap is trimmed after a major GC, at most once per interval, and never after stop()', async () => {
  let calls = 0;
  let clock = 0;
  const trimmer = startMallocTrim({ trim: () => ++calls, minIntervalMs: 1000, now: () => clock });
  try {
    assert.equal(trimmer.active, true);
    gc();
    await eventually(() => calls === 1, 'a trim after the major GC');
    gc();
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(calls, 1, 'a second trim within the interval');
    clock += 1000;
    gc();
    await eventually(() => calls === 2, 'a trim once the interval passed');
    assert.equal(trimmer.trims, 2);
  } finally {
    trimmer.stop();
  }
  clock += 1000;
  gc();
  await new Promise((r) => setTimeout(r, 50));
  assert.equal(calls, 2, 'a trim after stop()');
});

it('R18 without malloc_trim (no node:ffi, no glibc) nothing is started', () => {
  const trimmer = startMallocTrim({ trim: null });
  assert.equal(trimmer.active, false);
  trimmer.stop();
  const trim = loadMallocTrim();
  // Where it loads (Node 26 on glibc), it runs: 1 if pages went back, 0 if none.
  if (trim) assert.ok([0, 1].includes(trim()));
});
