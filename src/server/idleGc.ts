// One major GC when the relay goes idle after a busy spell, or with a heap grown since the last major GC
// (SPEC.md R18).
//
// Why: a login storm leaves garbage that nothing collects while the relay sits idle afterwards -- JS objects
// in V8's old space, and the native memory (socket and frame buffers) that only their collection frees: V8
// starts a major GC when old space reaches its limit, and its memory reducer only follows an earlier major
// GC. After a 1,000-client storm that was 4-6 KiB per client of RSS that a collection returned (bench:relay:
// 12-15 KiB per client without one, 8-11 after); on a 256 MB machine that is the headroom of the next
// thousand clients. The heap's own growth undercounts it (V8 may have run a major GC mid-storm; the native
// part is not in the heap), so a busy spell counts by itself. One collection costs ~20-50 ms of a loop that
// has nothing else to do, at most once per `minGapMs`; the C heap's freed pages then go back too
// (mallocTrim.ts trims after major GCs).
//
// Needs `gc()`: the Dockerfile and `npm start` run the relay with `--expose-gc`. Without it nothing starts.
import { performance } from 'node:perf_hooks';
import { getHeapStatistics } from 'node:v8';
import { afterMajorGc } from './afterMajorGc';

export interface IdleGcOptions {
  /** @default globalThis.gc (present with --expose-gc) */
  gc?: (() => void) | null;
  /** How often the relay's load and heap are looked at. @default 2000 */
  intervalMs?: number;
  /** Event-loop utilization over one interval below which the relay counts as idle. @default 0.05 */
  idleUtilization?: number;
  /** Utilization over one interval from which it was busy: the next idle interval collects. @default 0.25 */
  busyUtilization?: number;
  /** Heap growth since the last major GC that makes a collection worth it. @default 4 MiB */
  minGrowthBytes?: number;
  /** Least time between two collections. @default 10000 */
  minGapMs?: number;
  /** @default V8's used heap size */
  heapUsed?: () => number;
  /** Event-loop utilization since the previous call (0-1). @default performance.eventLoopUtilization */
  utilization?: () => number;
  /** @default Date.now */
  now?: () => number;
}

export interface IdleGc {
  /** False without gc(): nothing was started. */
  readonly active: boolean;
  /** Collections run so far (metrics, tests). */
  readonly collections: number;
  /** One look now (what the timer does every interval). */
  check(): void;
  stop(): void;
}

export function startIdleGc(opts: IdleGcOptions = {}): IdleGc {
  const gc = opts.gc === undefined ? ((globalThis as { gc?: () => void }).gc ?? null) : opts.gc;
  const idleUtilization = opts.idleUtilization ?? 0.05;
  const busyUtilization = opts.busyUtilization ?? 0.25;
  const minGrowth = opts.minGrowthBytes ?? 4 * 1024 * 1024;
  const minGap = opts.minGapMs ?? 10_000;
  const heapUsed = opts.heapUsed ?? (() => getHeapStatistics().used_heap_size);
  const now = opts.now ?? Date.now;
  let elu = performance.eventLoopUtilization();
  const utilization =
    opts.utilization ??
    (() => {
      const next = performance.eventLoopUtilization();
      const u = performance.eventLoopUtilization(next, elu).utilization;
      elu = next;
      return u;
    });
  let collections = 0;
  let last = -Infinity;
  /** The used heap after the latest major GC (ours or V8's own). */
  let baseline = heapUsed();
  /** An interval since the last collection was busy. */
  let wasBusy = false;

  const check = (): void => {
    if (!gc) return;
    const u = utilization();
    if (u >= busyUtilization) wasBusy = true;
    if (u >= idleUtilization || now() - last < minGap) return;
    if (!wasBusy && heapUsed() - baseline < minGrowth) return;
    last = now();
    collections++;
    wasBusy = false;
    gc();
    baseline = heapUsed();
  };
  const timer = gc ? setInterval(check, opts.intervalMs ?? 2000) : null;
  timer?.unref();
  // V8's own major GCs move the baseline too: the growth that counts is what no collection has seen.
  const watch = gc
    ? afterMajorGc(() => {
        baseline = heapUsed();
      })
    : null;
  return {
    active: gc !== null,
    get collections() {
      return collections;
    },
    check,
    stop() {
      if (timer) clearInterval(timer);
      watch?.stop();
    },
  };
}
