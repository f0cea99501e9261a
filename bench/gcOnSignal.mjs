// bench:relay's only addition to the relay process (`--expose-gc --import` this file): SIGUSR2 runs a full
// garbage collection, so the bench can read resident memory with and without a forced GC. It changes
// nothing else: without the signal, V8 collects as it would in production.
process.on('SIGUSR2', () => globalThis.gc?.());
