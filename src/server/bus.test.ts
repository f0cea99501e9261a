// SPEC.md R8: the in-process bus.
import assert from 'node:assert/strict';
import { it } from 'node:test';
import type { Envelope } from '../shared/protocol/relay';
import { createInProcessBus } from './bus';

it('R8 every listener gets each envelope with its JSON made once; a throwing listener is isolated', () => {
  const errors: unknown[] = [];
  const bus = createInProcessBus((e) => errors.push(e));
  const seen: string[] = [];
  const off1 = bus.subscribe({ envelope: () => { throw new Error('boom'); }, presence: () => { throw new Error('boom'); } });
  bus.subscribe({ envelope: (_e, json) => seen.push(json), presence: (c) => seen.push(c.op) });
  const env = { id: 'x', post: { channel: 'general' } } as unknown as Envelope;
  bus.publishEnvelope(env);
  bus.publishPresence({ op: 'leave', sessionId: 's' });
  assert.deepEqual(seen, [JSON.stringify(env), 'leave']);
  assert.equal(errors.length, 2);
  off1();
  bus.publishPresence({ op: 'leave', sessionId: 't' });
  assert.equal(errors.length, 2);
});
