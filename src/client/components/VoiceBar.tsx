// A channel's voice room under its header (SPEC.md VR1-VR8, UI contract "Voice"): Join/Leave, Mute, Deafen,
// the microphone, the stated cap, and who is in the room with a ring while they speak.
import { useId } from 'react';
import type { ClientSnapshot } from '../../shared/client/PeerchatClient';
import { VOICE_LIMITS } from '../../shared/protocol/limits';
import type { ClientLike } from '../session/ClientLike';
import { SELF } from '../voice/browserVoiceMedia';
import { useMicrophones, useVoiceLevels } from '../voice/VoiceMediaContext';
import { DeafenedIcon, MutedIcon } from './VoiceIcons';
import styles from './VoiceBar.module.css';

const ERROR_TEXT: Record<string, string> = {
  ROOM_FULL: `The room is full (${VOICE_LIMITS.maxMembers} people).`,
  MICROPHONE_FAILED: 'The microphone could not be opened.',
  NOT_ONLINE: 'Not connected to the relay.',
  NO_MEDIA: 'This browser cannot do voice.',
  RATE_LIMITED: 'Too many changes at once; try again in a minute.',
  RELAY_REFUSED: 'The relay refused it.',
  DROPPED: 'You left the room (joined from another tab or device).',
};

export function VoiceBar({ channel, snapshot, client }: { channel: string; snapshot: ClientSnapshot; client: ClientLike }) {
  const v = snapshot.voice;
  const levels = useVoiceLevels();
  const mics = useMicrophones(v.joined?.state);
  const members = v.rooms[channel] ?? [];
  const here = v.joined?.channel === channel;
  const selfSession = snapshot.session.sessionId;
  const full = !here && members.length >= VOICE_LIMITS.maxMembers;
  const online = snapshot.connection.state === 'online';
  const micId = useId();
  return (
    <section className={styles.bar} aria-label={`Voice room of #${channel}`} data-refused-calls={v.refusedCalls}>
      <div className={styles.controls}>
        {here ? (
          <button type="button" className={styles.leave} onClick={() => void client.voice.leave()}>
            Leave voice
          </button>
        ) : (
          <button type="button" className={styles.join} disabled={!online || full || v.joined?.state === 'joining'} onClick={() => void client.voice.join(channel)}>
            Join voice
          </button>
        )}
        <button type="button" className={styles.toggle} aria-pressed={v.muted} onClick={() => void client.voice.setMuted(!v.muted)} disabled={v.deafened}>
          Mute
        </button>
        <button type="button" className={styles.toggle} aria-pressed={v.deafened} onClick={() => void client.voice.setDeafened(!v.deafened)}>
          Deafen
        </button>
        <span className={styles.mic}>
          <label htmlFor={micId} className={styles.micLabel}>
            Microphone
          </label>
          <select id={micId} value={v.microphone ?? ''} onChange={(e) => void client.voice.setMicrophone(e.target.value || null)}>
            <option value="">Default</option>
            {mics
              .filter((m) => m.deviceId && m.deviceId !== 'default')
              .map((m) => (
                <option key={m.deviceId} value={m.deviceId}>
                  {m.label}
                </option>
              ))}
          </select>
        </span>
        <span className={styles.cap}>Up to {VOICE_LIMITS.maxMembers} people</span>
        {full && <span className={styles.cap}>· The room is full</span>}
      </div>
      <ul className={styles.room} aria-label={`Voice in #${channel}`}>
        {members.map((m) => {
          const self = m.sessionId === selfSession;
          const level = self ? (here ? levels[SELF] : undefined) : levels[m.peerId];
          const speaking = !!level?.speaking && !(self && v.muted);
          return (
            <li key={m.sessionId} className={styles.member} data-speaking={speaking} data-level={level?.rms ?? 0} data-self={self}>
              <span className={styles.avatar} aria-hidden>
                {[...m.name][0]?.toUpperCase()}
              </span>
              <bdi className={styles.name}>{m.name}</bdi>
              {self && <span className={styles.you}>(you)</span>}
              {m.muted && !m.deafened && <MutedIcon />}
              {m.deafened && (
                <>
                  <MutedIcon />
                  <DeafenedIcon />
                </>
              )}
              {!self && here && v.calls[m.peerId] !== 'connected' && <span className={styles.connecting}>connecting…</span>}
            </li>
          );
        })}
      </ul>
      {v.error && (
        <p role="alert" className={styles.error}>
          {ERROR_TEXT[v.error.reason] ?? v.error.message}
        </p>
      )}
    </section>
  );
}
