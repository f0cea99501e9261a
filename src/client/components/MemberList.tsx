// Who is online: people (browsers) and virtual clients (caches that keep history) apart, this session
// marked, another session of the same key marked, and who is in which voice room (voice is part 2).
import type { PresenceEntry } from '../../shared/client/PeerchatClient';
import { AuthorName } from './AuthorName';
import styles from './MemberList.module.css';

function Entry({ p }: { p: PresenceEntry }) {
  return (
    <li className={styles.entry} data-testid="member" data-kind={p.kind} data-self={p.isSelf}>
      <AuthorName name={p.name} publicKey={p.userId} fingerprint={p.fingerprint} self={p.isSelf} />
      {p.isSameUser && !p.isSelf && <span className={styles.tag}>other tab/device</span>}
      {p.voiceRoom && <span className={styles.voice}>in voice: {p.voiceRoom}</span>}
    </li>
  );
}

export function MemberList({ presence, open }: { presence: readonly PresenceEntry[]; open: boolean }) {
  const people = presence.filter((p) => p.kind === 'browser');
  const virtual = presence.filter((p) => p.kind === 'virtual');
  const rooms = [...new Set(presence.map((p) => p.voiceRoom).filter((r): r is string => !!r))];
  return (
    <aside className={styles.members} data-open={open} aria-label="Members" id="members">
      <h2 className={styles.heading}>Online — {people.length}</h2>
      <ul className={styles.list}>
        {people.map((p) => (
          <Entry key={p.sessionId} p={p} />
        ))}
      </ul>
      {virtual.length > 0 && (
        <>
          <h2 className={styles.heading} title="Headless peers that keep history for others">
            Virtual clients — {virtual.length}
          </h2>
          <ul className={styles.list}>
            {virtual.map((p) => (
              <Entry key={p.sessionId} p={p} />
            ))}
          </ul>
        </>
      )}
      <h2 className={styles.heading}>Voice</h2>
      {rooms.length === 0 ? (
        <p className={styles.empty}>Nobody is in a voice room.</p>
      ) : (
        rooms.map((r) => (
          <p key={r} className={styles.empty}>
            {r}: {presence.filter((p) => p.voiceRoom === r).length} in the room
          </p>
        ))
      )}
    </aside>
  );
}
