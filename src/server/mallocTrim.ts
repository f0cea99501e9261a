// Hands the C heap's free pages back to the OS after V8's major collections (glibc's `malloc_trim`).
//
// Why: glibc returns freed memory only from the top of its heap. A login storm interleaves short-lived
// native allocations (socket reads and writes, ArrayBuffers of frames, TLS-free crypto jobs, compiler zones)
// with long-lived ones (each socket's handles), and when the short-lived ones are freed the holes stay
// resident: ~5 MB of a 1,000-client relay's RSS was free malloc memory (bench:relay, gdb `malloc_stats()`,
// and `malloc_trim(0)` gave it back). V8 frees the ArrayBuffers it collected during a major GC, so a trim
// right after one returns what that GC freed. glibc offers no automatic trim of those holes
// (M_TRIM_THRESHOLD only trims the top), so the relay calls it itself.
//
// Node has no binding for it; Node 26's `node:ffi` calls it from the process image. Where that is missing
// (older Node, `--no-experimental-ffi`, a libc without malloc_trim such as musl), this does nothing.
import { afterMajorGc } from './afterMajorGc';

/** `malloc_trim(0)`: 1 if memory was returned, 0 if none. */
export type TrimFn = () => number;

/** The minimal shape of `node:ffi` used here (@types/node has no declarations for it yet). */
interface Ffi {
  dlopen(path: null, defs: { malloc_trim: { arguments: ['u64']; return: 'i32' } }): { functions: { malloc_trim(pad: bigint): number } };
}

/** glibc's malloc_trim through node:ffi, or null where the runtime or the libc has none. */
export function loadMallocTrim(): TrimFn | null {
  if (process.platform !== 'linux') return null;
  try {
    const ffi = process.getBuiltinModule?.('node:ffi') as Ffi | undefined;
    if (!ffi) return null;
    const { functions } = ffi.dlopen(null, { malloc_trim: { arguments: ['u64'], return: 'i32' } });
    return () => functions.malloc_trim(0n);
  } catch {
    return null; // no such symbol (musl), FFI disabled or changed: the relay runs as before
  }
}

export interface MallocTrimOptions {
  /**
   * Trims at most this often. Each trim walks the heap's free chunks and costs ~1-7 ms of the event loop
   * at 20-60 MB of C heap; back-to-back major GCs (near the heap limit) must not turn that into a load.
   * @default 1000
   */
  minIntervalMs?: number;
  /** @default loadMallocTrim() */
  trim?: TrimFn | null;
  /** @default Date.now */
  now?: () => number;
}

export interface MallocTrimmer {
  /** False where malloc_trim is not available: then nothing was started. */
  readonly active: boolean;
  /** Trims done so far (metrics, tests). */
  readonly trims: number;
  stop(): void;
}

/** Trims after each major GC, at most once per `minIntervalMs`. */
export function startMallocTrim(opts: MallocTrimOptions = {}): MallocTrimmer {
  const trim = opts.trim === undefined ? loadMallocTrim() : opts.trim;
  const minIntervalMs = opts.minIntervalMs ?? 1000;
  const now = opts.now ?? Date.now;
  let trims = 0;
  let last = -Infinity;
  const run = (): void => {
    last = now();
    trims++;
    trim!();
  };
  // Only after a major GC: that is when V8 frees the ArrayBuffers it collected.
  const watch = trim ? afterMajorGc(run, () => now() - last < minIntervalMs) : null;
  return {
    active: trim !== null,
    get trims() {
      return trims;
    },
    stop() {
      watch?.stop();
    },
  };
}
