import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { forwardFrame, isPeerId, normalizePeerjsPath, parseClientMessage, parseUpgradeUrl } from './peerjsWire';

// Shapes copied from what peerjs 1.5.5 sends (lib/negotiator.ts), as JSON.
const OFFER = {
  type: 'OFFER',
  payload: {
    sdp: { type: 'offer', sdp: 'v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\n' },
    type: 'data',
    connectionId: 'dc_8x0mzj3m0vq',
    label: 'dc_8x0mzj3m0vq',
    reliable: true,
    serialization: 'raw',
  },
  dst: 'a1b2c3d4e5f60718-k3j4h5g6f7',
};
const CANDIDATE = {
  type: 'CANDIDATE',
  payload: {
    candidate: { candidate: 'candidate:1 1 udp 2122260223 127.0.0.1 50000 typ host', sdpMid: '0', sdpMLineIndex: 0 },
    type: 'data',
    connectionId: 'dc_8x0mzj3m0vq',
  },
  dst: 'a1b2c3d4e5f60718-k3j4h5g6f7',
};

describe('PeerJS wire', () => {
  it('W6 accepts the messages a PeerJS client sends', () => {
    for (const m of [OFFER, CANDIDATE, { type: 'HEARTBEAT' }, { type: 'LEAVE', dst: 'bob' }]) {
      assert.equal(parseClientMessage(JSON.stringify(m)).ok, true, m.type);
    }
    const answer = { type: 'ANSWER', dst: 'bob', payload: { sdp: { type: 'answer', sdp: 'v=0' }, type: 'data', connectionId: 'dc_1' } };
    assert.equal(parseClientMessage(JSON.stringify(answer)).ok, true);
  });

  it('W6 refuses anything else', () => {
    const bad: unknown[] = [
      'nope',
      null,
      [],
      { type: 'EXPIRE', dst: 'bob' },
      { ...OFFER, dst: '-bob' },
      { ...OFFER, dst: 'x'.repeat(65) },
      { ...OFFER, payload: { ...OFFER.payload, serialization: '__proto__' } },
      { ...OFFER, payload: { ...OFFER.payload, type: 'video' } },
      { ...OFFER, payload: { ...OFFER.payload, connectionId: 'dc_<script>' } },
      { ...OFFER, payload: { ...OFFER.payload, sdp: { type: 'answer', sdp: '' } } },
      { ...CANDIDATE, payload: { ...CANDIDATE.payload, candidate: 'x' } },
    ];
    for (const m of bad) assert.equal(parseClientMessage(JSON.stringify(m)).ok, false, JSON.stringify(m));
    assert.equal(parseClientMessage('{"type":').ok, false);
  });

  it('W4 the forwarded frame carries the given src, never the client-written one', () => {
    const parsed = parseClientMessage(JSON.stringify({ ...OFFER, src: 'mallory' }));
    assert.ok(parsed.ok && parsed.msg.type === 'OFFER');
    const out = JSON.parse(forwardFrame('alice', parsed.msg));
    assert.equal(out.src, 'alice');
    assert.deepEqual(out.payload, OFFER.payload);
  });

  it('W9 reads the PeerJS socket URL', () => {
    const ok = parseUpgradeUrl('/peerjs?key=peerchat&id=alice&token=t0k&version=1.5.5', '/peerjs');
    assert.deepEqual(ok, { ok: true, params: { key: 'peerchat', id: 'alice', token: 't0k', version: '1.5.5' } });
    assert.deepEqual(parseUpgradeUrl('/peerjsx?key=a&id=b&token=c', '/peerjs'), { ok: false, reason: 'NOT_FOUND' });
    assert.deepEqual(parseUpgradeUrl('/peerjs?key=a&id=b', '/peerjs'), { ok: false, reason: 'BAD_QUERY' });
    assert.equal(normalizePeerjsPath('/'), '/');
    assert.equal(normalizePeerjsPath('signal'), '/signal/');
    assert.ok(isPeerId('a1b2c3d4e5f60718-k3j4h5g6f7'));
    assert.ok(!isPeerId('a--b'));
  });
});
