// A subscription's iterator that the relay's tRPC adapter drives by push (PUSH_ITERATOR: each value goes to
// the socket at once, no pending promise per idle stream) and any other consumer (tests) pulls with next().
// The relay's small streams -- `voice.watch` (VoiceRooms.ts) and `signal.connect` (signalling/SignalStream.ts)
// -- are this with what starting and finishing mean to them. `events` has its own (EventHub.ts): it is
// coalesced per relay turn and pre-encoded.
import { PUSH_ITERATOR, type PushSink } from './trpcWsAdapter';

const DONE: IteratorReturnResult<undefined> = Object.freeze({ value: undefined, done: true });

export abstract class PushStream<T> implements AsyncIterableIterator<T, undefined> {
  private sink: PushSink | null = null;
  private queue: T[] = [];
  private waiting: ((r: IteratorResult<T, undefined>) => void) | null = null;
  private started = false;
  ended = false;

  /** @param maxQueued values a pulled stream may hold unread before it is ended (a pushed one holds none). */
  protected constructor(private readonly maxQueued: number) {}

  /** The consumer started (first push or next()): once. May finish() the stream. */
  protected abstract begin(): void;
  /** Called once by finish(), before the consumer is told. */
  protected abstract onFinish(): void;

  /** One value for the consumer; ignored once ended. */
  deliver(value: T): void {
    if (this.ended) return;
    if (this.sink) return this.sink.data(value);
    const w = this.waiting;
    if (w) {
      this.waiting = null;
      return w({ value, done: false });
    }
    if (this.queue.length >= this.maxQueued) return this.finish();
    this.queue.push(value);
  }

  [PUSH_ITERATOR](sink: PushSink): void {
    if (this.started) return;
    this.sink = sink;
    this.start();
  }

  private start(): void {
    this.started = true;
    this.begin();
  }

  next(): Promise<IteratorResult<T, undefined>> {
    if (!this.started) this.start();
    if (this.queue.length > 0) return Promise.resolve({ value: this.queue.shift()!, done: false });
    if (this.ended) return Promise.resolve(DONE);
    return new Promise((resolve) => {
      this.waiting = resolve;
    });
  }

  return(): Promise<IteratorResult<T, undefined>> {
    this.finish();
    return Promise.resolve(DONE);
  }

  [Symbol.asyncIterator](): this {
    return this;
  }

  /**
   * Idempotent: onFinish(), then the pending next() (or the sink) told. A pulled stream still reads what was
   * queued before it is done (a refusal's last word), unless `drop`.
   */
  finish(drop = false): void {
    if (this.ended) return;
    this.ended = true;
    this.onFinish();
    if (drop) this.queue = [];
    const sink = this.sink;
    this.sink = null;
    const w = this.waiting;
    this.waiting = null;
    w?.(DONE);
    sink?.end();
  }
}
