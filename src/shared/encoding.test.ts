import assert from 'node:assert/strict';
import { it } from 'node:test';
import { fromB64url, portableToB64url, toB64url } from './encoding';

// SPEC.md S2: keys, signatures and digests travel as unpadded base64url (RFC 4648 §5), one text per byte string.
function samples(): Uint8Array[] {
  const out: Uint8Array[] = [];
  let seed = 7;
  for (let len = 0; len <= 100; len++) {
    const b = new Uint8Array(len);
    for (let i = 0; i < len; i++) b[i] = (seed = (seed * 1103515245 + 12345) >>> 0) >>> 24;
    out.push(b);
  }
  out.push(new Uint8Array(64).fill(0xff), new Uint8Array(32), new Uint8Array([0xfb, 0xff, 0xbf]));
  return out;
}

it('S2 toB64url (native where the platform has it) and the portable encoder give RFC 4648 §5 unpadded base64url', () => {
  for (const b of samples()) {
    const expected = Buffer.from(b).toString('base64url');
    assert.equal(portableToB64url(b), expected);
    assert.equal(toB64url(b), expected);
    assert.deepEqual(fromB64url(expected), b);
  }
});

it('S2 toB64url encodes a view, not its whole buffer', () => {
  const view = new Uint8Array([1, 2, 3, 4, 5, 6, 7, 8, 9]).subarray(2, 7);
  assert.equal(toB64url(view), Buffer.from(view).toString('base64url'));
  assert.equal(portableToB64url(view), Buffer.from(view).toString('base64url'));
});
