// SPEC.md R18: one major GC once the relay is idle with a heap grown since the last one, at most once per gap.
import assert from 'node:assert/strict';
import { it } from 'node:test';
import { getHeapStatistics, setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { startIdleGc } from './idleGc';

setFlagsFromString('--expose-gc'); // node:test's children do not get the flag
const realGc = runInNewContext('gc') as () => void;

it('R18 idle GC: only when idle, after a busy spell or enough growth, at most once per gap', () => {
  let used = 10;
  let load = 0.5;
  let clock = 0;
  let calls = 0;
  const g = startIdleGc({
    gc: () => {
      calls++;
      used = 10; // what the collection leaves
    },
    intervalMs: 60_000, // the test calls check() itself
    minGrowthBytes: 4,
    minGapMs: 30_000,
    heapUsed: () => used,
    utilization: () => load,
    now: () => clock,
  });
  try {
    assert.equal(g.active, true);
    used = 20;
    g.check();
    assert.equal(calls, 0, 'busy: no collection during a storm');
    load = 0.01;
    g.check();
    assert.equal(calls, 1, 'idle with 10 grown: collected');
    used = 20;
    clock += 10_000;
    g.check();
    assert.equal(calls, 1, 'within the gap');
    clock += 20_000;
    used = 12;
    g.check();
    assert.equal(calls, 1, 'too little growth');
    used = 15;
    g.check();
    assert.equal(calls, 2, 'past the gap, grown enough');
    assert.equal(g.collections, 2);
    // A busy spell (a storm) counts by itself: its garbage may be native memory, not heap growth.
    clock += 30_000;
    load = 0.6;
    g.check();
    assert.equal(calls, 2, 'busy');
    load = 0.01;
    g.check();
    assert.equal(calls, 3, 'idle after the busy spell, without growth');
    clock += 30_000;
    g.check();
    assert.equal(calls, 3, 'idle and not grown: nothing to collect');
  } finally {
    g.stop();
  }
});

it("R18 idle GC: V8's own major GC moves the baseline; without gc() nothing starts", async () => {
  let calls = 0;
  let used = 0;
  const g = startIdleGc({ gc: () => void calls++, intervalMs: 60_000, minGrowthBytes: 4, minGapMs: 0, heapUsed: () => used, utilization: () => 0 });
  try {
    used = 100;
    realGc(); // a major GC that is not idleGc's: the observer takes `used` as the new baseline
    await new Promise((r) => setTimeout(r, 50));
    g.check();
    assert.equal(calls, 0, 'the growth was seen by a major GC already');
    used = 110;
    g.check();
    assert.equal(calls, 1);
  } finally {
    g.stop();
  }
  const off = startIdleGc({ gc: null });
  assert.equal(off.active, false);
  off.stop();
});

it('R18 idle GC with the real gc() and heap: a heap grown by garbage is collected', () => {
  let garbage: unknown[] | null = Array.from({ length: 200_000 }, (_, i) => ({ i, s: `x${i}` }));
  garbage = null; // unreachable now, still in the heap
  const before = getHeapStatistics().used_heap_size;
  const g = startIdleGc({ gc: realGc, intervalMs: 60_000, minGrowthBytes: 0, minGapMs: 0, utilization: () => 0 });
  try {
    g.check();
    assert.equal(g.collections, 1);
    assert.ok(getHeapStatistics().used_heap_size < before, 'the garbage went');
  } finally {
    g.stop();
  }
  void garbage;
});
