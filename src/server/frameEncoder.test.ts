// R7: the fan-out fast path must put on the wire exactly what tRPC's own JSON encoding would.
import assert from 'node:assert/strict';
import { it } from 'node:test';
import superjson from 'superjson';
import { createFrameEncoder, isSerializedAsIs, PreEncoded } from './frameEncoder';

// The exact shape tRPC's ws adapter hands the encoder: `jsonrpc` is present and undefined.
const response = (id: unknown, data: unknown) => ({ id, jsonrpc: undefined, result: { type: 'data', data: superjson.serialize(data) } });

it('R7 msgs frames from the cache are byte-identical to JSON.stringify, for every id and raw text', () => {
  const enc = createFrameEncoder();
  const raws = ['[]', '[{"a":"quote \\" and \\\\ backslash","u":"é \u2028 🙂"}]', JSON.stringify([{ text: '</script>\n\t' }])];
  for (const raw of raws) {
    for (const id of [1, 42, 'abc', 'q"uote']) {
      const msg = response(id, { t: 'msgs', raw });
      const text = enc.encode(msg) as string;
      assert.equal(text, JSON.stringify(msg));
      assert.deepEqual(enc.cachedBytes(text), Buffer.from(text));
      // A second subscriber with the same id gets the very same string and bytes.
      assert.equal(enc.encode(response(id, { t: 'msgs', raw })), text);
    }
  }
});

it('R7 other messages are plain JSON and never served from the cache', () => {
  const enc = createFrameEncoder();
  const others = [
    response(1, { t: 'presence', op: 'leave', sessionId: 'x' }),
    { id: 1, jsonrpc: '2.0', result: { type: 'data', data: superjson.serialize({ t: 'msgs', raw: '[]' }) } },
    { id: 1, result: { type: 'data', id: 'tracked', data: superjson.serialize({ t: 'msgs', raw: '[]' }) } },
    response(1, { t: 'msgs', raw: '[]', extra: 1 }),
    { id: 1, jsonrpc: undefined, other: 1, result: { type: 'data', data: superjson.serialize({ t: 'msgs', raw: '[]' }) } },
    response(2, { t: 'msgs', raw: undefined }),
    { id: null, error: { json: { message: 'x' } } },
  ];
  for (const m of others) {
    const text = enc.encode(m) as string;
    assert.equal(text, JSON.stringify(m));
    assert.equal(enc.cachedBytes(text), null);
  }
  assert.throws(() => enc.decode(new Uint8Array([1])));
});

it('R7 P8 PreEncoded events are framed byte-identically to JSON.stringify, once per event and id', () => {
  const enc = createFrameEncoder();
  const users = [{ sessionId: 's"1', name: 'é \u2028 🙂 </script>', voiceRoom: null, since: 1 }];
  const event = new PreEncoded({ t: 'presence', op: 'diff', users, left: ['x'] });
  for (const id of [3, 'q"uote']) {
    const msg = response(id, event);
    assert.equal((msg.result.data as { json: unknown }).json, event, 'superjson passes the instance through untouched');
    const text = enc.encode(msg) as string;
    assert.equal(text, JSON.stringify(response(id, { t: 'presence', op: 'diff', users, left: ['x'] })));
    assert.deepEqual(enc.cachedBytes(text), Buffer.from(text));
    assert.equal(enc.encode(response(id, event)), text, 'the next recipient gets the same frame');
  }
});

it('R7 values isSerializedAsIs accepts are exactly what superjson makes {json: value} of, without meta', () => {
  const yes = [{ t: 'msgs', raw: '[{"a":"é"}]' }, new PreEncoded({ t: 'presence', op: 'diff', users: [], left: ['x'] })];
  for (const v of yes) {
    assert.equal(isSerializedAsIs(v), true);
    const s = superjson.serialize(v);
    assert.equal(s.meta, undefined);
    assert.equal(JSON.stringify({ json: v }), JSON.stringify(s));
  }
  const no = [{ t: 'msgs', raw: '[]', extra: 1 }, { t: 'msgs', raw: 1 }, { t: 'msgs', raw: '[]', when: new Date(0) }, null, 'msgs', [1], Object.assign(Object.create(null), { t: 'msgs', raw: '[]' })];
  for (const v of no) assert.equal(isSerializedAsIs(v), false, JSON.stringify(v));
});
