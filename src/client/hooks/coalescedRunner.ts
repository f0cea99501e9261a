// Re-running a query on every write is what a live view wants for a live message, and what it cannot
// afford when a catch-up stores 128 envelopes every few milliseconds: each re-run re-reads and re-renders
// the whole window. This runs the query at once on the first change after a quiet spell, then at most
// once per interval while changes keep coming, and never two at once.

export interface RunnerTimers {
  now(): number;
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

const defaultTimers: RunnerTimers = {
  now: () => performance.now(),
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (h) => clearTimeout(h as ReturnType<typeof setTimeout>),
};

export interface CoalescedRunner {
  /** Something changed: run now if the last run started `minIntervalMs` ago and none is running, else once later. */
  poke(): void;
  /** No run starts after this (one under way finishes). */
  dispose(): void;
}

export function coalescedRunner(
  run: () => Promise<void>,
  /** Least time between the starts of two runs. */
  minIntervalMs: number,
  timers: RunnerTimers = defaultTimers,
): CoalescedRunner {
  let running = false;
  let dirty = false;
  let disposed = false;
  let lastStart = -Infinity;
  let timer: unknown = null;

  const start = (): void => {
    timer = null;
    if (disposed) return;
    running = true;
    dirty = false;
    lastStart = timers.now();
    void run()
      .catch(() => {}) // the caller's run reports its own failures; a failed run must not stop later ones
      .finally(() => {
        running = false;
        if (dirty) poke();
      });
  };

  const poke = (): void => {
    if (disposed) return;
    if (running) {
      dirty = true;
      return;
    }
    if (timer !== null) return; // a run is already due; it will see this change
    const wait = lastStart + minIntervalMs - timers.now();
    if (wait <= 0) start();
    else timer = timers.setTimeout(start, wait);
  };

  return {
    poke,
    dispose() {
      disposed = true;
      if (timer !== null) timers.clearTimeout(timer);
      timer = null;
    },
  };
}
