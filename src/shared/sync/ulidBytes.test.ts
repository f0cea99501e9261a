import assert from 'node:assert/strict';
import { it } from 'node:test';
import { monotonicFactory } from 'ulidx';
import { compareBounds } from '../protocol/peer';
import { createPrng } from './prng';
import { bytesToUlid, ulidTime, ulidToBytes } from './ulidBytes';

it('G1 a ULID and its 16 bytes convert both ways, and byte order is ULID order', () => {
  const rng = createPrng(9);
  const mint = monotonicFactory(() => rng.next());
  const ids: string[] = [];
  for (let i = 0; i < 500; i++) ids.push(mint(1_700_000_000_000 + Math.floor(i / 7)));
  ids.push('00000000000000000000000000', '7ZZZZZZZZZZZZZZZZZZZZZZZZZ');
  for (const id of ids) assert.equal(bytesToUlid(ulidToBytes(id)!), id);
  const sorted = [...ids].sort();
  const byBytes = [...ids].sort((a, b) => compareBounds(ulidToBytes(a)!, ulidToBytes(b)!));
  assert.deepEqual(byBytes, sorted);
  assert.equal(ulidTime(ulidToBytes(ids[0]!)!), 1_700_000_000_000);
});

it('G1 non-canonical ULIDs are refused', () => {
  assert.equal(ulidToBytes('8ZZZZZZZZZZZZZZZZZZZZZZZZZ'), null, 'above 2^128');
  assert.equal(ulidToBytes('01hzx3k8q9abcdefghjkmnpqrs'), null, 'lowercase');
  assert.equal(ulidToBytes('01HZX3K8Q9ABCDEFGHJKMNPQRU'), null, 'U is not Crockford');
  assert.equal(ulidToBytes('01HZX3K8Q9'), null);
});
