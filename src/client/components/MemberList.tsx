// Who is online: people (browsers) and virtual clients (caches that keep history) apart, this session
// marked, another session of the same key marked, and who is in which voice room (from the relay's voice
// rooms, SPEC.md VR4, not from presence). The relay shows one page of members at a time (SPEC.md P9): the
// counts are of everyone, the list is the page (everyone in a small community), and "Show more" / "Show
// earlier" move through the pages.
import type { MembersState, PresenceEntry } from '../../shared/client/PeerchatClient';
import type { VoiceSnapshot } from '../../shared/client/voice/VoiceController';
import type { VoiceMember } from '../../shared/protocol/relay';
import { AuthorName } from './AuthorName';
import { DeafenedIcon, MutedIcon } from './VoiceIcons';
import styles from './MemberList.module.css';

function Entry({ p, inVoice }: { p: PresenceEntry; inVoice?: { channel: string; member: VoiceMember } }) {
  return (
    <li className={styles.entry} data-testid="member" data-kind={p.kind} data-self={p.isSelf}>
      <AuthorName name={p.name} publicKey={p.userId} fingerprint={p.fingerprint} self={p.isSelf} />
      {p.isSameUser && !p.isSelf && <span className={styles.tag}>other tab/device</span>}
      {inVoice && (
        <span className={styles.voice}>
          in voice #{inVoice.channel}
          {inVoice.member.muted && <MutedIcon />}
          {inVoice.member.deafened && <DeafenedIcon />}
        </span>
      )}
    </li>
  );
}

const count = new Intl.NumberFormat();

function Pages({ members, onPage }: { members: MembersState; onPage: (page: number) => void }) {
  const total = members.online.browser + members.online.virtual;
  const first = members.page * members.pageSize;
  const more = Math.max(0, total - first - members.pageSize);
  if (total <= members.pageSize && members.page === 0) return null;
  return (
    <nav className={styles.pages} aria-label="Member pages">
      <p className={styles.range}>
        {total > 0 ? `${count.format(Math.min(first + 1, total))}–${count.format(Math.min(first + members.pageSize, total))}` : '0'} of {count.format(total)} online
      </p>
      {members.page > 0 && (
        <button type="button" className={styles.pageButton} onClick={() => onPage(members.page - 1)}>
          Show earlier ({count.format(Math.min(first, total))})
        </button>
      )}
      {more > 0 && (
        <button type="button" className={styles.pageButton} onClick={() => onPage(members.page + 1)}>
          Show more (and {count.format(more)} more)
        </button>
      )}
    </nav>
  );
}

export function MemberList({
  presence,
  members,
  voice,
  open,
  onPage,
}: {
  presence: readonly PresenceEntry[];
  members: MembersState;
  voice: VoiceSnapshot;
  open: boolean;
  onPage: (page: number) => void;
}) {
  const people = presence.filter((p) => p.kind === 'browser');
  const virtual = presence.filter((p) => p.kind === 'virtual');
  const bySession = new Map<string, { channel: string; member: VoiceMember }>();
  for (const [channel, inRoom] of Object.entries(voice.rooms)) for (const member of inRoom) bySession.set(member.sessionId, { channel, member });
  const rooms = Object.entries(voice.rooms);
  return (
    <aside className={styles.members} data-open={open} aria-label="Members" id="members">
      <h2 className={styles.heading}>Online — {count.format(members.online.browser)}</h2>
      <ul className={styles.list}>
        {people.map((p) => (
          <Entry key={p.sessionId} p={p} inVoice={bySession.get(p.sessionId)} />
        ))}
      </ul>
      {members.online.virtual > 0 && (
        <>
          <h2 className={styles.heading} title="Headless peers that keep history for others">
            Virtual clients — {count.format(members.online.virtual)}
          </h2>
          {virtual.length === 0 ? (
            <p className={styles.empty}>Listed after the people, on a later page.</p>
          ) : (
            <ul className={styles.list}>
              {virtual.map((p) => (
                <Entry key={p.sessionId} p={p} />
              ))}
            </ul>
          )}
        </>
      )}
      <Pages members={members} onPage={onPage} />
      <h2 className={styles.heading}>Voice</h2>
      {rooms.length === 0 ? (
        <p className={styles.empty}>Nobody is in a voice room.</p>
      ) : (
        rooms.map(([channel, inRoom]) => (
          <p key={channel} className={styles.empty}>
            #{channel}: {inRoom.length} in the room
          </p>
        ))
      )}
    </aside>
  );
}
