// Channel URLs: /c/<channel>. The History API, so a link opens a channel and back/forward work.
import { useCallback, useSyncExternalStore } from 'react';

const subscribe = (cb: () => void) => {
  window.addEventListener('popstate', cb);
  return () => window.removeEventListener('popstate', cb);
};
const getPath = () => location.pathname;

export function channelFromPath(path: string): string | null {
  const m = /^\/c\/([a-z0-9][a-z0-9_-]{0,31})\/?$/.exec(path);
  return m ? m[1]! : null;
}

export function useRoute(): { channel: string | null; go(channel: string, opts?: { replace?: boolean }): void } {
  const path = useSyncExternalStore(subscribe, getPath);
  const go = useCallback((channel: string, opts: { replace?: boolean } = {}) => {
    const to = `/c/${channel}`;
    if (location.pathname === to) return;
    if (opts.replace) history.replaceState(null, '', to);
    else history.pushState(null, '', to);
    window.dispatchEvent(new PopStateEvent('popstate'));
  }, []);
  return { channel: channelFromPath(path), go };
}
