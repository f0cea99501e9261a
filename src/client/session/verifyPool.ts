// Envelope verification over a small pool of Web Workers (SPEC.md G2). In Chromium a WebCrypto Ed25519
// verify runs synchronously on the calling thread (a trace of 10,000 envelopes shows all 20,000 `DoVerify`
// calls on the worker's own thread, none on a shared crypto thread), so each worker verifies on its own
// core and the page's rendering does not wait behind it.
// The pool cuts a batch into slices, runs the shared `verifyEnvelopes` on each in a worker (every check of
// every envelope: the worker runs the very code the page would) and puts the results back in input order.
// A worker that fails (did not load, crashed, answered garbage) is let go and its slices are verified in
// this thread by `fallback`, so a result is never missing and never a guess.
import type { Envelope } from '../../shared/protocol/relay';
import type { EnvelopeVerifier, SignedCheck } from '../../shared/protocol/signed';

/** What the page sends a worker. */
export interface VerifyJob {
  job: number;
  envs: readonly Envelope[];
  relayKey: string;
}
/** A worker's answer: one check per envelope of the job, in order, or why it could not run. */
export type VerifyJobResult = { job: number; checks: SignedCheck[]; backend: string } | { job: number; error: string };

/** The part of `Worker` the pool uses (tests pass in-process fakes). */
export interface WorkerLike {
  postMessage(message: VerifyJob): void;
  onmessage: ((e: MessageEvent<VerifyJobResult>) => void) | null;
  onerror: ((e: ErrorEvent) => void) | null;
  terminate(): void;
}

/** Workers at most, whatever the core count: each holds its own WebCrypto and a copy of the code. */
export const MAX_VERIFY_WORKERS = 4;
/**
 * Envelopes per slice at most. A slice is the unit a worker answers, and the next one goes to whichever
 * worker answers first, so the workers of a 10,000-envelope batch finish within about one slice of each
 * other (~25 ms of work at 128; with 512 sent out up front one of two workers finished 100 ms after the
 * other in a bench:client trace); large enough that the per-message cost stays small.
 */
export const MAX_SLICE_ENVELOPES = 128;
/**
 * Slices out to one worker at most: one it verifies and one waiting in its queue, so it never waits on
 * the page between slices, and the rest stay here for whichever worker is free first.
 */
export const SLICES_PER_WORKER = 2;

export interface VerifyPoolOptions {
  /** Starts one worker; called at `warm()` or at the first batch. */
  createWorker: () => WorkerLike;
  /** Verifies in this thread: slices of a failed worker, and everything once no worker is left. */
  fallback: EnvelopeVerifier;
  /**
   * @default min(MAX_VERIFY_WORKERS, navigator.hardwareConcurrency), at least 1: one worker per core. The
   * page's own thread needs no core of its own while a batch is out: it waits (idle in the profile) and
   * the OS shares the cores when it renders. With one core left out, a 2-core machine verified on one core
   * (bench:client: one worker and the pool took the same time).
   */
  size?: number;
}

export interface VerifyPool {
  readonly verify: EnvelopeVerifier;
  /**
   * Starts the workers now (else at the first batch) and resolves once each has answered a first, empty
   * job (its script loaded, its backend probed), with the backend they use ('WebCrypto'), or
   * 'this thread' when there is no worker.
   */
  warm(): Promise<string>;
  /** Ends the workers; slices still out are verified in this thread, so no caller is left waiting. */
  close(): void;
}

interface Slice {
  envs: readonly Envelope[];
  relayKey: string;
  resolve(checks: SignedCheck[]): void;
}

interface Slot {
  worker: WorkerLike;
  /** Envelopes sent to it and not answered: the next slice goes to the least loaded worker. */
  load: number;
  /**
   * Its slices not yet answered. Bounded by the callers, not here: the pool holds only envelopes its
   * callers already hold while they wait (the engine verifies one frame per link at a time, G11).
   */
  slices: Map<number, Slice>;
}

export function createVerifyPool(options: VerifyPoolOptions): VerifyPool {
  const size = Math.max(1, Math.min(MAX_VERIFY_WORKERS, options.size ?? globalThis.navigator?.hardwareConcurrency ?? 2));
  let slots: Slot[] | null = null;
  let closed = false;
  let nextJob = 1;
  /** The backend the workers reported last (warm()'s answer). */
  let workerBackend = '';

  const inThread = (s: Slice): void => {
    options.fallback(s.envs, s.relayKey).then(s.resolve, () =>
      // The fallback failing (a broken backend) must not leave the caller waiting, nor let an unverified
      // envelope pass: every one is refused.
      s.resolve(s.envs.map(() => ({ ok: false, reason: 'BAD_SIGNATURE' }) as const)),
    );
  };

  /**
   * Slices waiting for a worker, in order. Bounded by the callers, as the slots' slices are: each is part
   * of a batch a caller holds while it waits.
   */
  const queue: Slice[] = [];

  /** Sends waiting slices to workers with room, the least loaded first; without workers, verifies here. */
  const pump = (): void => {
    while (queue.length > 0) {
      // Read afresh each time: a send that fails retires its worker (and pumps) on the way.
      const live = slots ?? [];
      if (live.length === 0) {
        for (const s of queue.splice(0)) inThread(s);
        return;
      }
      let best: Slot | null = null;
      for (const slot of live) if (slot.slices.size < SLICES_PER_WORKER && (!best || slot.load < best.load)) best = slot;
      if (!best) return;
      send(best, queue.shift()!);
    }
  };

  const retire = (slot: Slot): void => {
    if (!slots?.includes(slot)) return;
    slots = slots.filter((s) => s !== slot);
    slot.worker.onmessage = null;
    slot.worker.onerror = null;
    slot.worker.terminate();
    for (const s of slot.slices.values()) inThread(s);
    slot.slices.clear();
    pump();
  };

  const start = (): Slot[] => {
    const out: Slot[] = [];
    for (let i = 0; i < size; i++) {
      let worker: WorkerLike;
      try {
        worker = options.createWorker();
      } catch {
        break; // no workers here (an old browser, a CSP): this thread verifies
      }
      const slot: Slot = { worker, load: 0, slices: new Map() };
      worker.onmessage = (e) => {
        const r = e.data;
        const s = slot.slices.get(r?.job);
        if (!s) return;
        slot.slices.delete(r.job);
        slot.load -= s.envs.length;
        if ('checks' in r && Array.isArray(r.checks) && r.checks.length === s.envs.length) {
          workerBackend = String(r.backend);
          s.resolve(r.checks);
        } else {
          inThread(s);
        }
        pump();
      };
      // A script that did not load, or a crash: this worker is done; its slices are verified here.
      worker.onerror = () => retire(slot);
      out.push(slot);
    }
    return out;
  };

  const send = (slot: Slot, s: Slice): void => {
    const job = nextJob++;
    slot.slices.set(job, s);
    slot.load += s.envs.length;
    try {
      slot.worker.postMessage({ job, envs: s.envs, relayKey: s.relayKey });
    } catch {
      retire(slot); // an envelope that cannot be cloned, or a dead worker: verified here instead
    }
  };

  return {
    async verify(envs, relayKey) {
      if (envs.length === 0) return [];
      if (closed) return options.fallback(envs, relayKey);
      slots ??= start();
      if (slots.length === 0) return options.fallback(envs, relayKey);
      // Even slices, one per worker, unless that exceeds the slice bound.
      const per = Math.min(MAX_SLICE_ENVELOPES, Math.ceil(envs.length / slots.length));
      const parts: Promise<SignedCheck[]>[] = [];
      for (let i = 0; i < envs.length; i += per) {
        parts.push(new Promise((resolve) => queue.push({ envs: envs.slice(i, i + per), relayKey, resolve })));
      }
      pump();
      return (await Promise.all(parts)).flat();
    },
    async warm() {
      if (closed) return 'this thread';
      slots ??= start();
      await Promise.all(slots.map((slot) => new Promise<SignedCheck[]>((resolve) => send(slot, { envs: [], relayKey: '', resolve }))));
      return slots.length > 0 && workerBackend ? workerBackend : 'this thread';
    },
    close() {
      closed = true;
      for (const slot of slots ?? []) retire(slot);
      slots = [];
      pump();
    },
  };
}

/** The browser's pool: module workers running verifyWorker.ts, this thread's backend as the fallback. */
export function browserVerifyPool(fallback: EnvelopeVerifier, size?: number): VerifyPool {
  return createVerifyPool({
    fallback,
    ...(size ? { size } : {}),
    createWorker: () => new Worker(new URL('./verifyWorker.ts', import.meta.url), { type: 'module', name: 'peerchat-verify' }),
  });
}
