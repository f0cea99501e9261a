// R15 and W3 as a unit: what a session runs when it ends, held without a Set for the usual single callback.
import assert from 'node:assert/strict';
import { it } from 'node:test';
import { randomBytes } from 'node:crypto';
import { toB64url } from '../shared/encoding';
import { SessionRegistry } from './SessionRegistry';

function registry() {
  return new SessionRegistry({ now: () => 1, random: (n) => new Uint8Array(randomBytes(n)), publish: () => {} });
}
const userId = () => toB64url(randomBytes(32));

it('R15 a session runs each end callback once, one or several, and not those taken back', () => {
  const r = registry();
  const calls: string[] = [];
  const one = r.open({ userId: userId(), name: 'a', kind: 'virtual', connId: 1 });
  const grant = r.authorize(one.user.peerId, one.peerToken)!;
  grant.onSessionEnd(() => calls.push('signalling'));
  assert.equal(typeof one.endCallbacks, 'function', 'a lone callback is held as itself');
  r.end(one);
  r.end(one);
  assert.deepEqual(calls, ['signalling']);

  const many = r.open({ userId: userId(), name: 'b', kind: 'virtual', connId: 2 });
  const g = r.authorize(many.user.peerId, many.peerToken)!;
  g.onSessionEnd(() => calls.push('first'));
  const takenBack = () => calls.push('taken back');
  g.onSessionEnd(takenBack);
  g.onSessionEnd({ sessionEnded: () => calls.push('third') });
  g.offSessionEnd(takenBack);
  r.end(many);
  assert.deepEqual(calls, ['signalling', 'first', 'third']);
  assert.equal(many.endCallbacks, null);
});
