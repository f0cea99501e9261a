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
  const release = useRef<AbortController | null>(null);
  const alive = useRef(true);

  const hold = useCallback(
    (opts: LockOptions) => {
      const locks = navigator.locks;
      const ctl = new AbortController();
      return locks
        .request(lockName, opts, async (lock) => {
          if (!lock) return false;
          if (!alive.current) return true;
          release.current?.abort();
          release.current = ctl;
          setRole('leader');
          // Held until this tab unmounts (or closes: the browser releases it then).
          await new Promise<void>((res) => ctl.signal.addEventListener('abort', () => res(), { once: true }));
          return true;
        })
        .catch(() => {
          // Another tab stole the lock: this one follows, and waits to get it back when that tab closes.
          if (!alive.current) return true;
          setRole('follower');
          void hold({});
          return true;
        });
    },
    [lockName],
  );

  useEffect(() => {
    alive.current = true;
    if (!('locks' in navigator)) {
      // No Web Locks (very old browsers): every tab runs its own session, which the store tolerates.
      setRole('leader');
      return;
    }
    void hold({ ifAvailable: true }).then((got) => {
      if (got === false && alive.current) {
        setRole('follower');
        void hold({});
      }
    });
    return () => {
      alive.current = false;
      release.current?.abort();
    };
  }, [hold]);

  const takeOver = useCallback(() => void hold({ steal: true }), [hold]);
  return { role, takeOver };
}
