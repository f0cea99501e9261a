// SPEC.md VR5: who calls whom, and which incoming calls are answered.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { VoiceMember } from '../../protocol/relay';
import { MAX_CALLS, admitCall, calls, planCalls } from './callPlan';

const member = (i: number, joinSeq = i): VoiceMember => ({
  sessionId: `s${i}`,
  userId: `k${i}`.padEnd(43, 'A'),
  name: `m${i}`,
  fingerprint: 'F',
  peerId: `${String(i).padStart(16, '0')}-aaaaaaaaaa`,
  muted: false,
  deafened: false,
  joinSeq,
});

describe('voice call plan', () => {
  it('VR5 every pair of members has exactly one caller, the later joiner', () => {
    const room = [1, 2, 3, 4, 5, 6, 7, 8].map((i) => member(i));
    const dialled = new Map<string, string[]>();
    for (const m of room) dialled.set(m.sessionId, planCalls(m.sessionId, room, new Set()).dial.map((d) => d.sessionId));
    for (const a of room) {
      for (const b of room) {
        if (a === b) continue;
        const ab = dialled.get(a.sessionId)!.includes(b.sessionId);
        const ba = dialled.get(b.sessionId)!.includes(a.sessionId);
        assert.equal(Number(ab) + Number(ba), 1, `${a.sessionId}-${b.sessionId}`);
        assert.equal(ab, a.joinSeq > b.joinSeq);
      }
    }
    // The newcomer calls everyone already there; the first member calls nobody.
    assert.equal(dialled.get('s8')!.length, 7);
    assert.equal(dialled.get('s1')!.length, 0);
    assert.equal(calls(member(2), member(1)), true);
  });

  it('VR5 calls with peers who left are hung up; at most 7 calls', () => {
    const room = [member(1), member(2), member(3)];
    const gone = member(9).peerId;
    const plan = planCalls('s3', room, new Set([room[0]!.peerId, gone]));
    assert.deepEqual(plan.hangUp, [gone]);
    assert.deepEqual(plan.dial.map((m) => m.sessionId), ['s2']);
    // Not in the room (left): every call goes.
    assert.deepEqual(planCalls('s4', room, new Set([room[0]!.peerId])).hangUp, [room[0]!.peerId]);
    assert.equal(MAX_CALLS, 7);
  });

  it('VR5 an incoming call is answered only from a listed member who is the caller, once', () => {
    const room = [member(1), member(2), member(3)];
    assert.deepEqual(admitCall('s1', room, room[2]!.peerId, new Set()), { answer: true, member: room[2] });
    assert.deepEqual(admitCall('s1', room, member(7).peerId, new Set()), { answer: false, reason: 'NOT_A_MEMBER' });
    assert.deepEqual(admitCall('s3', room, room[0]!.peerId, new Set()), { answer: false, reason: 'NOT_THE_CALLER' });
    assert.deepEqual(admitCall('s1', room, room[2]!.peerId, new Set([room[2]!.peerId])), { answer: false, reason: 'ALREADY_IN_CALL' });
    assert.deepEqual(admitCall('s1', null, room[2]!.peerId, new Set()), { answer: false, reason: 'NOT_IN_VOICE' });
    assert.deepEqual(admitCall('s9', room, room[2]!.peerId, new Set()), { answer: false, reason: 'NOT_IN_VOICE' });
    // Our own peer id (a second tab of ours cannot pose as us): not a member other than us.
    assert.deepEqual(admitCall('s1', room, room[0]!.peerId, new Set()), { answer: false, reason: 'NOT_A_MEMBER' });
    const full = Array.from({ length: MAX_CALLS }, (_, i) => `x${i}`);
    assert.deepEqual(admitCall('s1', room, room[2]!.peerId, new Set(full)), { answer: false, reason: 'TOO_MANY_CALLS' });
  });
});
