// The relay shows one page of members (SPEC.md P9), so the authors on screen may not be on it; watching
// their keys (P10) gets their presence, and with it their current names (useRememberNames), whatever the
// member list shows.
import { useEffect, useMemo } from 'react';
import { LIMITS } from '../../shared/protocol/limits';
import type { Envelope } from '../../shared/protocol/relay';
import type { ClientLike } from '../session/ClientLike';

/** Watches the authors of the loaded envelopes, newest first, at most LIMITS.maxPresenceWatch of them. */
export function useWatchAuthors(client: ClientLike, envelopes: readonly Envelope[] | undefined): void {
  // Sorted, so a new message by someone already watched changes nothing and sends no view call.
  const key = useMemo(() => {
    const authors = new Set<string>();
    for (let i = (envelopes?.length ?? 0) - 1; i >= 0 && authors.size < LIMITS.maxPresenceWatch; i--) authors.add(envelopes![i]!.post.author);
    return [...authors].sort().join(',');
  }, [envelopes]);
  useEffect(() => {
    client.watchUsers(key ? key.split(',') : []);
  }, [client, key]);
}
