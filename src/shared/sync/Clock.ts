// Time for the sync core, injected (SPEC.md G12) so tests and the simulator run on a manual clock.

export type TimerHandle = { readonly __timer: unique symbol } | number | object;

export interface Clock {
  now(): number;
  setTimeout(fn: () => void, ms: number): TimerHandle;
  clearTimeout(handle: TimerHandle): void;
}

export const systemClock: Clock = {
  now: () => Date.now(),
  setTimeout: (fn, ms) => setTimeout(fn, ms) as unknown as TimerHandle,
  clearTimeout: (h) => clearTimeout(h as Parameters<typeof clearTimeout>[0]),
};
