// Two tabs, one session (issue 8, item 2). One tab per browser profile holds the peer session: the relay
// login, the WebRTC links and the sync engine writing the shared IndexedDB history. Another tab shows "open
// in another tab" with a "Use here" button that takes the session over (Web Locks `steal`); when the
// holding tab closes, a waiting tab gets the lock by itself.
//
// Why not one session per tab: the store would survive it (first write wins, one transaction per put),
// but each tab would keep its own engine index of the same history, fetch the same envelopes twice, hold
// twice the peer links and show the user twice in everyone's member list. Why not "follow over
// BroadcastChannel": the history is already shared through IndexedDB; what a follower would gain is
// posting, at the price of a second protocol between tabs. Taking over is one click.
import { useCallback, useEffect, useRef, useState } from 'react';

export const SESSION_LOCK = 'peerchat-session';

export type TabRole = 'pending' | 'leader' | 'follower';

export function useTabLeadership(lockName = SESSION_LOCK): { role: TabRole; takeOver(): void } {
  const [role, setRole] = useState<TabRole>('pending');
  /** The current effect run's `hold`; each run has its own abort signal (StrictMode runs effects twice). */
  const holdRef = useRef<((opts: LockOptions) => Promise<boolean>) | null>(null);

  useEffect(() => {
    if (!('locks' in navigator)) {
      // No Web Locks (very old browsers): every tab runs its own session, which the store tolerates.
      setRole('leader');
      return;
    }
    const run = new AbortController();
    const hold = (opts: LockOptions): Promise<boolean> =>
      (navigator.locks
        // A pending request is withdrawn when this run ends (`signal`; not allowed with ifAvailable/steal).
        .request(lockName, opts.ifAvailable || opts.steal ? opts : { ...opts, signal: run.signal }, async (lock) => {
          if (!lock) return false;
          if (run.signal.aborted) return true;
          setRole('leader');
          // Held until this run ends (unmount), or the tab closes and the browser releases it.
          await new Promise<void>((res) => run.signal.addEventListener('abort', () => res(), { once: true }));
          return true;
        }) as unknown as Promise<boolean>)
        .catch(() => {
          // Stolen by another tab (or withdrawn): follow, and wait to get it back when that tab closes.
          if (!run.signal.aborted) {
            setRole('follower');
            void hold({});
          }
          return true;
        });
    holdRef.current = hold;
    void hold({ ifAvailable: true }).then((got) => {
      if (!got && !run.signal.aborted) {
        setRole('follower');
        void hold({});
      }
    });
    return () => run.abort();
  }, [lockName]);

  const takeOver = useCallback(() => void holdRef.current?.({ steal: true }), []);
  return { role, takeOver };
}
