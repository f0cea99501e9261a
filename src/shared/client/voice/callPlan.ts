// Who calls whom in a voice room, and which incoming calls are answered (SPEC.md VR5), as pure functions of
// the room as the relay described it. The IO (PeerJS calls, media) lives in VoiceController and the shell.
import { VOICE_LIMITS, type VoiceMember } from '../../protocol/relay';

/** Calls one member holds at most: one with each other member of a full room. */
export const MAX_CALLS = VOICE_LIMITS.maxMembers - 1;
/** Incoming calls held unanswered at once, waiting for the room event that lists their caller. */
export const MAX_HELD_CALLS = MAX_CALLS;
/**
 * How long a call from a peer not (yet) in our copy of the room is held before it is closed. The caller saw
 * us in the room before the relay's event about it reached us; that event follows within a relay turn
 * plus a network trip, so 5 s is generous without holding an unknown caller for long.
 */
export const ADMIT_WAIT_MS = 5_000;

/** Does `a` call `b`? The later joiner calls (relay-wide join order), so every pair has exactly one call. */
export function calls(a: VoiceMember, b: VoiceMember): boolean {
  return a.joinSeq !== b.joinSeq ? a.joinSeq > b.joinSeq : a.peerId > b.peerId;
}

/**
 * What to change so that our calls match the room: dial the members we are to call and hold no call with,
 * hang up calls with peers no longer in the room (or whose peerId now belongs to nobody in it).
 */
export function planCalls(
  selfSessionId: string | null,
  members: readonly VoiceMember[],
  active: ReadonlySet<string>,
): { dial: VoiceMember[]; hangUp: string[] } {
  const self = selfSessionId ? members.find((m) => m.sessionId === selfSessionId) : undefined;
  if (!self) return { dial: [], hangUp: [...active] };
  const others = members.filter((m) => m.sessionId !== self.sessionId);
  const peers = new Set(others.map((m) => m.peerId));
  const hangUp = [...active].filter((p) => !peers.has(p));
  const room = MAX_CALLS - (active.size - hangUp.length);
  const dial = others.filter((m) => !active.has(m.peerId) && calls(self, m)).slice(0, Math.max(0, room));
  return { dial, hangUp };
}

export type AdmitReason = 'NOT_IN_VOICE' | 'NOT_A_MEMBER' | 'NOT_THE_CALLER' | 'ALREADY_IN_CALL' | 'TOO_MANY_CALLS';
export type AdmitVerdict = { answer: true; member: VoiceMember } | { answer: false; reason: AdmitReason };

/**
 * Is a call from `callerPeerId` (the sender the signalling relay authenticated, W4) to be answered? Only
 * from a member of our room other than us, who is the one to call, while we hold no call with it and have
 * room for one. NOT_A_MEMBER may be a caller whose join we have not heard of yet: the caller holds it.
 */
export function admitCall(
  selfSessionId: string | null,
  members: readonly VoiceMember[] | null,
  callerPeerId: string,
  active: ReadonlySet<string>,
): AdmitVerdict {
  const self = selfSessionId && members ? members.find((m) => m.sessionId === selfSessionId) : undefined;
  if (!self || !members) return { answer: false, reason: 'NOT_IN_VOICE' };
  const member = members.find((m) => m.peerId === callerPeerId && m.sessionId !== self.sessionId);
  if (!member) return { answer: false, reason: 'NOT_A_MEMBER' };
  if (!calls(member, self)) return { answer: false, reason: 'NOT_THE_CALLER' };
  if (active.has(callerPeerId)) return { answer: false, reason: 'ALREADY_IN_CALL' };
  if (active.size >= MAX_CALLS) return { answer: false, reason: 'TOO_MANY_CALLS' };
  return { answer: true, member };
}
