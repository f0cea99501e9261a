// The presence indexes' multimap: a lone value stored as itself, a few in an array, many in a Set.
import assert from 'node:assert/strict';
import { it } from 'node:test';
import { MultiMap } from './MultiMap';

const stored = (m: MultiMap<string, object>, k: string) => (m as unknown as { map: Map<string, unknown> }).map.get(k);

it('R3 a MultiMap holds a set of values per key, a lone value without a Set', () => {
  const m = new MultiMap<string, object>();
  const a = {};
  const b = {};
  m.add('k', a);
  m.add('k', a);
  assert.equal(m.count('k'), 1);
  assert.deepEqual([...m.get('k')], [a]);
  assert.equal(stored(m, 'k'), a, 'no Set for one value');
  m.add('k', b);
  m.add('k', b);
  assert.equal(m.count('k'), 2);
  assert.deepEqual(new Set(m.get('k')), new Set([a, b]));
  m.delete('k', a);
  assert.equal(stored(m, 'k'), b, 'back to the lone form');
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

it('R18 a MultiMap keeps a few values per key in an array and many in a Set, each value once', () => {
  const m = new MultiMap<string, object>();
  const values = Array.from({ length: 40 }, () => ({}));
  for (const v of values.slice(0, 16)) m.add('k', v);
  m.add('k', values[3]!);
  assert.equal(m.count('k'), 16);
  assert.ok(Array.isArray(stored(m, 'k')), '16 values: an array, not a Set (~0.2 against ~0.4 KiB)');
  for (const v of values) m.add('k', v);
  assert.equal(m.count('k'), 40);
  assert.ok(stored(m, 'k') instanceof Set, '40 values: a Set');
  assert.deepEqual(new Set(m.get('k')), new Set(values));
  for (const v of values.slice(0, 30)) m.delete('k', v);
  assert.ok(Array.isArray(stored(m, 'k')), 'back to an array once few are left');
  assert.deepEqual(new Set(m.get('k')), new Set(values.slice(30)));
  for (const v of values.slice(30, 39)) m.delete('k', v);
  assert.equal(stored(m, 'k'), values[39], 'back to the lone form');
});
