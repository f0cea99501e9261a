// A live read whose dependencies are observed through a cheap `signal` query instead of the read itself.
// Dexie's live queries track every primary key a query over a secondary index returns (an interval tree
// of single keys), so a channel window re-read of 3,000 envelopes after each store write cost its
// tracking as much as its reading; a count over the same index range is tracked as that one range (plus
// deletes anywhere), which is all the window depends on: stored envelopes never change (SPEC.md H2).
import { liveQuery } from 'dexie';

/**
 * Runs `read` once `signal` has answered and again after every change it observes; `onValue` gets each
 * result (never after the disposer ran). Reads do not overlap: a change during a read is answered by one
 * more read after it. Returns the disposer.
 */
export function liveRead<T>(
  signal: () => Promise<unknown>,
  read: () => Promise<T>,
  onValue: (value: T) => void,
  onError: (err: unknown) => void,
): () => void {
  let closed = false;
  let running = false;
  let again = false;
  const run = async (): Promise<void> => {
    running = true;
    try {
      do {
        again = false;
        // A read scheduled just before the disposer ran does not start after it.
        if (closed) return;
        const value = await read();
        if (!closed) onValue(value);
      } while (again && !closed);
    } catch (err) {
      if (!closed) onError(err);
    } finally {
      running = false;
    }
  };
  const changed = (): void => {
    if (closed) return;
    if (running) {
      again = true;
      return;
    }
    // A task of its own: out of the live query's zone, so what `read` reads is not tracked key by key.
    running = true;
    setTimeout(() => void run(), 0);
  };
  const sub = liveQuery(signal).subscribe({ next: changed, error: (err) => !closed && onError(err) });
  return () => {
    closed = true;
    sub.unsubscribe();
  };
}
