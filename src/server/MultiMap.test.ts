// The presence indexes' multimap: lone values stored as themselves, Sets only for two or more.
import assert from 'node:assert/strict';
import { it } from 'node:test';
import { MultiMap } from './MultiMap';

it('R3 a MultiMap holds a set of values per key, a lone value without a Set', () => {
  const m = new MultiMap<string, object>();
  const a = {};
  const b = {};
  m.add('k', a);
  m.add('k', a);
  assert.equal(m.count('k'), 1);
  assert.deepEqual([...m.get('k')], [a]);
  assert.equal((m as unknown as { map: Map<string, unknown> }).map.get('k'), a, 'no Set for one value');
  m.add('k', b);
  assert.equal(m.count('k'), 2);
  assert.deepEqual(new Set(m.get('k')), new Set([a, b]));
  m.delete('k', a);
  assert.equal((m as unknown as { map: Map<string, unknown> }).map.get('k'), b, 'back to the lone form');
  m.delete('k', a); // not there: nothing happens
  assert.equal(m.count('k'), 1);
  m.delete('k', b);
  assert.equal(m.has('k'), false);
  assert.equal(m.size, 0);
  assert.deepEqual([...m.get('k')], []);
  m.add('x', a);
  m.add('x', b);
  m.deleteKey('x');
  assert.equal(m.size, 0);
});
