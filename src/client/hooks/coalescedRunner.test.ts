import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { type RunnerTimers, coalescedRunner } from './coalescedRunner';

/** Timers on a hand-moved clock. */
function manualTimers() {
  let t = 0;
  const due: { at: number; fn: () => void; handle: number }[] = [];
  let next = 1;
  const timers: RunnerTimers = {
    now: () => t,
    setTimeout: (fn, ms) => (due.push({ at: t + ms, fn, handle: next }), next++),
    clearTimeout: (h) => void due.splice(due.findIndex((d) => d.handle === h), 1),
  };
  const advance = async (ms: number) => {
    t += ms;
    for (;;) {
      const i = due.findIndex((d) => d.at <= t);
      if (i < 0) break;
      due.splice(i, 1)[0]!.fn();
      await flush();
    }
    await flush();
  };
  return { timers, advance, pending: () => due.length };
}
const flush = () => new Promise((r) => setImmediate(r));

describe('UI1 window refresh while writes pour in', () => {
  it('UI1 the first change runs at once; a burst of changes within the interval is one more run, never two at once', async () => {
    const { timers, advance, pending } = manualTimers();
    const starts: number[] = [];
    let inFlight = 0;
    let most = 0;
    let finish: (() => void) | null = null;
    const runner = coalescedRunner(
      () => {
        starts.push(timers.now());
        most = Math.max(most, ++inFlight);
        return new Promise<void>((resolve) => (finish = () => (inFlight--, resolve())));
      },
      500,
      timers,
    );
    runner.poke();
    assert.deepEqual(starts, [0], 'a live change shows at once');
    for (let i = 0; i < 50; i++) runner.poke(); // a catch-up's batches land while the first run reads
    finish!();
    await flush();
    assert.deepEqual(starts, [0], 'not again inside the interval');
    for (let i = 0; i < 49; i++) {
      await advance(10);
      runner.poke();
    }
    assert.deepEqual(starts, [0], 'still inside the interval');
    await advance(10);
    assert.deepEqual(starts, [0, 500], 'the changes of the interval are one run at its end');
    finish!();
    await flush();
    await advance(2000);
    assert.deepEqual(starts, [0, 500], 'nothing changed after the run started: nothing more');
    assert.equal(most, 1);
    runner.poke();
    assert.deepEqual(starts, [0, 500, 2500], 'after a quiet spell the next change shows at once again');
    finish!();
    runner.dispose();
    runner.poke();
    assert.equal(pending(), 0);
  });

  it('UI1 a change while a run is under way is not lost: it runs once the run ends (and the interval passed)', async () => {
    const { timers, advance } = manualTimers();
    const starts: number[] = [];
    let finish: (() => void) | null = null;
    const runner = coalescedRunner(() => (starts.push(timers.now()), new Promise<void>((r) => (finish = r))), 100, timers);
    runner.poke();
    await advance(300);
    runner.poke(); // during the slow run
    finish!();
    await flush();
    assert.deepEqual(starts, [0, 300], 'the run that saw the change ran right after');
    finish!();
    runner.dispose();
    await advance(1000);
    assert.deepEqual(starts, [0, 300]);
  });
});
