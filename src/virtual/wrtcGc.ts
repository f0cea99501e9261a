// @roamhq/wrtc keeps native threads (and their memory) for every RTCPeerConnection until its JS object
// is garbage-collected, even after close() (platform-facts; e2e/peerjs-node.test.ts measured 16 -> 96
// threads over 20 closed links, back to 16 after gc()). A mostly idle headless peer allocates little JS,
// so V8 may not collect for hours while browsers come and go. SPEC.md VC5: every closed link is noted
// here, and one full gc() runs `delayMs` after the first close since the last run: at most one
// collection per period, none while nothing closes. Links are also capped (engine maxLinks).
//
// Process-wide on purpose: ten virtual clients in one process share one collector and one timer.
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

/** Default wait between the first closed link and the collection. */
export const WRTC_GC_DELAY_MS = 30_000;

let gcFn: (() => void) | null = null;
let delayMs = WRTC_GC_DELAY_MS;
let timer: ReturnType<typeof setTimeout> | null = null;
let closedSinceGc = 0;
let runs = 0;

/**
 * Makes `gc()` available: `globalThis.gc` when Node runs with --expose-gc, else turns the flag on at run
 * time and takes `gc` from a fresh context (V8 installs it in contexts created after the flag is set).
 * Returns whether collection is now available. Idempotent; NodePeer.start calls it.
 */
export function enableWrtcGc(opts: { delayMs?: number } = {}): boolean {
  if (opts.delayMs !== undefined) delayMs = opts.delayMs;
  if (gcFn) return true;
  const exposed = (globalThis as { gc?: () => void }).gc;
  if (typeof exposed === 'function') {
    gcFn = exposed;
  } else {
    try {
      setFlagsFromString('--expose-gc');
      const fn = runInNewContext('gc') as unknown;
      if (typeof fn === 'function') gcFn = fn as () => void;
    } catch {
      gcFn = null;
    }
  }
  // A process that ends on its own with closed-but-uncollected wrtc connections can crash in wrtc's
  // native teardown (SPEC.md VC7: measured 4 of 5 runs after stopping 10 clients). 'beforeExit' fires
  // when the event loop is empty, i.e. right before such an exit: collect first. Only when closes are
  // pending, so it cannot keep the process alive.
  if (gcFn) process.on('beforeExit', collectIfPending);
  return gcFn !== null;
}

function collectIfPending(): void {
  if (closedSinceGc > 0) collectWrtcNow();
}

/** A WebRTC link (or a session's Peer) was closed: schedules one collection if none is pending. */
export function noteWrtcClosed(): void {
  if (!gcFn) return;
  closedSinceGc++;
  if (timer) return;
  timer = setTimeout(runGc, delayMs);
  // Never the reason a process stays alive.
  timer.unref();
}

function runGc(): void {
  timer = null;
  if (closedSinceGc === 0 || !gcFn) return;
  closedSinceGc = 0;
  runs++;
  gcFn();
}

/** One full collection now (if enabled): before exit, so wrtc frees closed connections' native side (VC7). */
export function collectWrtcNow(): void {
  if (!gcFn) return;
  closedSinceGc = 0;
  runs++;
  gcFn();
}

/** For status and tests: whether gc is available, closes waiting, collections run. */
export function wrtcGcStats(): { enabled: boolean; pendingCloses: number; runs: number } {
  return { enabled: gcFn !== null, pendingCloses: closedSinceGc, runs };
}
