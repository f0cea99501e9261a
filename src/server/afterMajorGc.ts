// Runs something in the turn after each major (mark-compact) GC: mallocTrim.ts trims the C heap then (V8
// frees the ArrayBuffers it collected in a major GC), idleGc.ts takes the heap's size as its baseline.
import { type PerformanceEntry, PerformanceObserver, constants } from 'node:perf_hooks';

const isMajor = (e: PerformanceEntry): boolean => ((e as { detail?: unknown }).detail as { kind?: number } | undefined)?.kind === constants.NODE_PERFORMANCE_GC_MAJOR;

/**
 * Calls `run` once after a major GC -- not inside the observer's callback: the GC's own bookkeeping finishes
 * first -- unless `skip()` says so when it is seen. At most one call is pending at a time.
 */
export function afterMajorGc(run: () => void, skip: () => boolean = () => false): { stop(): void } {
  let pending: NodeJS.Immediate | null = null;
  const observer = new PerformanceObserver((list) => {
    if (pending || skip() || !list.getEntries().some(isMajor)) return;
    pending = setImmediate(() => {
      pending = null;
      run();
    });
    pending.unref();
  });
  observer.observe({ entryTypes: ['gc'] });
  return {
    stop() {
      observer.disconnect();
      if (pending) clearImmediate(pending);
      pending = null;
    },
  };
}
