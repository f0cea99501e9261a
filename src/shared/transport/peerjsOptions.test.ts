import assert from 'node:assert/strict';
import { it } from 'node:test';
import { peerjsOptions } from './peerjsOptions';

const info = {
  peerjs: { path: '/', key: 'peerchat' },
  iceServers: [{ urls: 'turn:turn.chat.example:3478', username: 'u', credential: 'c' }],
};

it('T7 Peer options come only from the relay URL, ServerInfo and the login token', () => {
  const o = peerjsOptions({ relayUrl: 'https://chat.example', info, peerToken: 'AbC_-09' });
  assert.deepEqual(o, {
    host: 'chat.example',
    port: 443,
    path: '/',
    key: 'peerchat',
    token: 'AbC_-09',
    secure: true,
    config: { iceServers: [{ urls: 'turn:turn.chat.example:3478', username: 'u', credential: 'c' }] },
    debug: 0,
  });
  assert.notEqual(o.config.iceServers[0], info.iceServers[0], 'a copy: PeerJS must not share our object');
  const local = peerjsOptions({ relayUrl: 'http://127.0.0.1:8080', info: { ...info, iceServers: [] }, peerToken: 't' });
  assert.deepEqual([local.host, local.port, local.secure, local.config.iceServers], ['127.0.0.1', 8080, false, []]);
  assert.equal(peerjsOptions({ relayUrl: 'http://localhost', info, peerToken: 't' }).port, 80);
});

it('T7 a token that is not URL-safe is refused (PeerJS puts it in the URL unencoded)', () => {
  assert.throws(() => peerjsOptions({ relayUrl: 'http://127.0.0.1:1', info, peerToken: 'a+b/c=' }), RangeError);
  assert.throws(() => peerjsOptions({ relayUrl: 'http://127.0.0.1:1', info, peerToken: 'a&id=x' }), RangeError);
});
