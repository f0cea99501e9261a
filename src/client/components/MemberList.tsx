// Who is online: people (browsers) and virtual clients (caches that keep history) apart, this session
// marked, another session of the same key marked, and who is in which voice room (from the relay's voice
// rooms, SPEC.md VR4, not from presence).
import type { PresenceEntry } from '../../shared/client/PeerchatClient';
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

export function MemberList({ presence, voice, open }: { presence: readonly PresenceEntry[]; voice: VoiceSnapshot; open: boolean }) {
  const people = presence.filter((p) => p.kind === 'browser');
  const virtual = presence.filter((p) => p.kind === 'virtual');
  const bySession = new Map<string, { channel: string; member: VoiceMember }>();
  for (const [channel, members] of Object.entries(voice.rooms)) for (const member of members) bySession.set(member.sessionId, { channel, member });
  const rooms = Object.entries(voice.rooms);
  return (
    <aside className={styles.members} data-open={open} aria-label="Members" id="members">
      <h2 className={styles.heading}>Online — {people.length}</h2>
      <ul className={styles.list}>
        {people.map((p) => (
          <Entry key={p.sessionId} p={p} inVoice={bySession.get(p.sessionId)} />
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
        rooms.map(([channel, members]) => (
          <p key={channel} className={styles.empty}>
            #{channel}: {members.length} in the room
          </p>
        ))
      )}
    </aside>
  );
}
