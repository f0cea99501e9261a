import { createContext, useContext, useSyncExternalStore } from 'react';
import type { ClientSnapshot } from '../../shared/client/PeerchatClient';
import type { ClientLike } from './ClientLike';

export const ClientContext = createContext<ClientLike | null>(null);

export function useClient(): ClientLike {
  const c = useContext(ClientContext);
  if (!c) throw new Error('useClient outside <ClientContext.Provider>');
  return c;
}

/** The client's snapshot; re-renders on every change. */
export function useClientSnapshot(): ClientSnapshot {
  const c = useClient();
  return useSyncExternalStore(c.subscribe, c.getSnapshot);
}
