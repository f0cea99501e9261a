import assert from 'node:assert/strict';
import { it } from 'node:test';
import { HASH_LIST_CACHE_BYTES, HashListCache } from './HashListCache';

it('G8 G11 the hash-list cache stays within its byte bound, least recently used first', () => {
  const cache = new HashListCache(1000);
  const list = (n: number) => new Uint8Array(n * 32);
  cache.set('a', list(10)); // 320 + overhead
  cache.set('b', list(10));
  assert.ok(cache.get('a'), 'a is now the most recently used');
  cache.set('c', list(10));
  assert.equal(cache.get('b'), undefined, 'b went first');
  assert.ok(cache.get('a') && cache.get('c'));
  assert.ok(cache.bytes <= 1000);
  cache.set('huge', list(100));
  assert.equal(cache.get('huge'), undefined, 'a list above the whole bound is not kept');
  assert.ok(cache.get('a'), 'and evicts nothing');
  cache.set('a', list(5));
  assert.equal(cache.get('a')!.length, 160, 'replaced, accounted once');
  assert.ok(cache.bytes <= 1000);
  assert.equal(HASH_LIST_CACHE_BYTES, 1024 * 1024);
});
