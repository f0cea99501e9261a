// The name shown for a message is the one the relay countersigned into its envelope (SPEC.md M7): it
// travels with the history, so an author this browser never saw online still has a name. Envelopes from
// before M7 carry none: for those, the last name presence reported for the key, remembered in the app
// database so offline authors keep their names.
import { useLiveQuery } from 'dexie-react-hooks';
import { useCallback, useEffect } from 'react';
import type { PresenceEntry } from '../../shared/client/PeerchatClient';
import type { Envelope } from '../../shared/protocol/relay';
import { appDb } from '../appDb';

/** Names remembered at most (a small community has far fewer authors). */
export const MAX_NAMES = 5000;

export function useNames(): (publicKey: string) => string | undefined {
  const map = useLiveQuery(async () => {
    const rows = await appDb().names.limit(MAX_NAMES).toArray();
    return new Map(rows.map((r) => [r.publicKey, r.name]));
  }, []);
  return useCallback((k: string) => map?.get(k), [map]);
}

export function useRememberNames(presence: readonly PresenceEntry[]): void {
  useEffect(() => {
    if (presence.length === 0) return;
    const now = Date.now();
    const rows = new Map(presence.map((p) => [p.userId, { publicKey: p.userId, name: p.name, fingerprint: p.fingerprint, kind: p.kind, seenAt: now }]));
    void appDb().names.bulkPut([...rows.values()]);
  }, [presence]);
}

/** The name to show for a message's author (SPEC.md M7): relay-attested if the envelope has one, else presence's. */
export function authorNameOf(env: Pick<Envelope, 'authorName' | 'post'>, names: (publicKey: string) => string | undefined): string | undefined {
  return env.authorName ?? names(env.post.author);
}
