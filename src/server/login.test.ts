// SPEC.md L1-L7, L9: challenge-response login and its refusals, over a real relay and real tRPC clients.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { signingBytes } from '../shared/crypto/signing';
import { fromB64url, toB64url } from '../shared/encoding';
import { PROTOCOL_VERSION, zLoginOutput, zPeerId } from '../shared/protocol/relay';
import { loginFields, signLogin } from '../shared/protocol/signed';
import type { Relay } from './createRelay';
import { backend, identity, login, originOf, rawClient, rawRequest, rawSocket, refusal, startTestRelay, type Identity } from './testKit';

let relay: Relay;
let clock = Date.now();
const clients: { close(): Promise<void> }[] = [];

function client() {
  const c = rawClient(relay);
  clients.push(c);
  return c.client;
}

async function loginInput(c: ReturnType<typeof client>, id: Identity, override: { nonce?: string; name?: string; origin?: string } = {}) {
  const ch = await c.auth.challenge.mutate({ protocol: PROTOCOL_VERSION });
  const nonce = override.nonce ?? ch.nonce;
  const name = override.name ?? 'alice';
  const origin = override.origin ?? originOf(c);
  const signature = await signLogin(backend, id.secretKey, { nonce, relayKey: ch.relayKey, origin, publicKey: id.publicKey, name, kind: 'browser' });
  return { protocol: PROTOCOL_VERSION, publicKey: id.publicKey, name, kind: 'browser' as const, nonce, origin, signature };
}

before(async () => {
  relay = await startTestRelay({ clock: () => clock });
});
after(async () => {
  await Promise.all(clients.map((c) => c.close()));
  await relay.close();
});

describe('login', () => {
  it('L7 P1 a signed challenge logs in: relay-minted peer id bound to the key, a peer token, server info', async () => {
    const id = await identity();
    const out = await login(client(), id, { name: 'alice', kind: 'browser' });
    assert.ok(zLoginOutput.safeParse(out).success);
    assert.equal(out.self.userId, id.publicKey);
    assert.equal(out.self.kind, 'browser');
    assert.equal(out.self.name, 'alice');
    assert.ok(zPeerId.safeParse(out.self.peerId).success);
    assert.equal(out.self.peerId.slice(0, 16), Buffer.from(fromB64url(id.publicKey)!).toString('hex').slice(0, 16));
    assert.ok(out.peerToken.length >= 32);
    assert.equal(out.info.publicKey, relay.info.publicKey);
    assert.deepEqual(out.info, relay.info, 'the whole server info, as JSON (router.ts sends it pre-encoded)');
  });

  it("L1 the challenge names the relay key and the relay's time, and expires in the configured time", async () => {
    const ch = await client().auth.challenge.mutate({ protocol: PROTOCOL_VERSION });
    assert.equal(ch.relayKey, relay.info.publicKey);
    assert.equal(fromB64url(ch.nonce)!.length, 32);
    assert.equal(ch.expiresAt, clock + relay.config.timing.challengeTtlMs);
    assert.equal(ch.relayTime, clock);
  });

  it('L2 a login without a challenge is refused NO_CHALLENGE', async () => {
    const id = await identity();
    const c = client();
    const input = await loginInput(c, id, { nonce: toB64url(new Uint8Array(32).fill(7)) });
    assert.equal(await refusal(c.auth.login.mutate(input)), 'NO_CHALLENGE');
  });

  it("L2 another connection's nonce is refused NO_CHALLENGE and stays usable by its owner", async () => {
    const id = await identity();
    const a = client();
    const b = client();
    const ch = await a.auth.challenge.mutate({ protocol: PROTOCOL_VERSION });
    const stolen = await loginInput(b, id, { nonce: ch.nonce });
    assert.equal(await refusal(b.auth.login.mutate(stolen)), 'NO_CHALLENGE');
    const origin = originOf(a);
    const signature = await signLogin(backend, id.secretKey, { nonce: ch.nonce, relayKey: ch.relayKey, origin, publicKey: id.publicKey, name: 'alice', kind: 'browser' });
    const ok = await a.auth.login.mutate({ protocol: PROTOCOL_VERSION, publicKey: id.publicKey, name: 'alice', kind: 'browser', nonce: ch.nonce, origin, signature });
    assert.equal(ok.self.userId, id.publicKey);
  });

  it('L3 a replayed login (same nonce and signature, another connection) is refused NO_CHALLENGE', async () => {
    const id = await identity();
    const a = client();
    const input = await loginInput(a, id);
    await a.auth.login.mutate(input);
    assert.equal(await refusal(client().auth.login.mutate(input)), 'NO_CHALLENGE');
  });

  it('L3 a successful login forgets its challenges: /healthz counts none for logged-in connections', async () => {
    const id = await identity();
    const c = client();
    const before = relay.counts().challenges;
    await c.auth.challenge.mutate({ protocol: PROTOCOL_VERSION }); // a spare one, never used
    const input = await loginInput(c, id);
    assert.equal(relay.counts().challenges, before + 2);
    await c.auth.login.mutate(input);
    assert.equal(relay.counts().challenges, before);
    const health = (await (await fetch(`${relay.url}/healthz`)).json()) as { challenges: number };
    assert.equal(health.challenges, before);
  });

  it('L3 a nonce is single use even when the attempt failed', async () => {
    const id = await identity();
    const c = client();
    const input = await loginInput(c, id);
    const bad = { ...input, name: 'mallory' }; // signature covers the name
    assert.equal(await refusal(c.auth.login.mutate(bad)), 'BAD_SIGNATURE');
    assert.equal(await refusal(c.auth.login.mutate(input)), 'CHALLENGE_REPLAYED');
  });

  it('L3 an expired challenge is refused CHALLENGE_EXPIRED', async () => {
    const id = await identity();
    const c = client();
    const input = await loginInput(c, id);
    clock += relay.config.timing.challengeTtlMs + 1;
    assert.equal(await refusal(c.auth.login.mutate(input)), 'CHALLENGE_EXPIRED');
  });

  it('L4 a signature made for another purpose (post bytes over the same fields) is refused BAD_SIGNATURE', async () => {
    const id = await identity();
    const c = client();
    const input = await loginInput(c, id);
    const fields = loginFields({ nonce: input.nonce, relayKey: relay.info.publicKey, origin: input.origin, publicKey: id.publicKey, name: input.name, kind: input.kind });
    const wrongPurpose = toB64url(await backend.sign(id.secretKey, signingBytes('post', fields)));
    assert.equal(await refusal(c.auth.login.mutate({ ...input, signature: wrongPurpose })), 'BAD_SIGNATURE');
  });

  it('L4 a non-canonical S (S + L) is refused BAD_SIGNATURE', async () => {
    const id = await identity();
    const c = client();
    const input = await loginInput(c, id);
    const sig = fromB64url(input.signature)!;
    // S += L, little-endian; stays below 2^256 because S < L < 2^253.
    const L = 2n ** 252n + 27742317777372353535851937790883648493n;
    let s = 0n;
    for (let i = 63; i >= 32; i--) s = (s << 8n) | BigInt(sig[i]!);
    s += L;
    for (let i = 32; i < 64; i++) {
      sig[i] = Number(s & 0xffn);
      s >>= 8n;
    }
    assert.equal(await refusal(c.auth.login.mutate({ ...input, signature: toB64url(sig) })), 'BAD_SIGNATURE');
  });

  it('L5 a small-order public key is refused BAD_KEY', async () => {
    const id = await identity();
    const c = client();
    const input = await loginInput(c, id);
    const identityPoint = new Uint8Array(32);
    identityPoint[0] = 1;
    assert.equal(await refusal(c.auth.login.mutate({ ...input, publicKey: toB64url(identityPoint) })), 'BAD_KEY');
  });

  it('L5 a non-canonical public key encoding is refused BAD_KEY', async () => {
    const id = await identity();
    const c = client();
    const input = await loginInput(c, id);
    const key = new Uint8Array(32).fill(0xff);
    key[0] = 0xf0; // y = p + 3 >= p
    key[31] = 0x7f;
    assert.equal(await refusal(c.auth.login.mutate({ ...input, publicKey: toB64url(key) })), 'BAD_KEY');
  });

  it('L6 another protocol version is refused PROTOCOL_MISMATCH, at challenge and at login', async () => {
    const id = await identity();
    const c = client();
    assert.equal(await refusal(c.auth.challenge.mutate({ protocol: PROTOCOL_VERSION + 1 })), 'PROTOCOL_MISMATCH');
    const input = await loginInput(c, id);
    assert.equal(await refusal(c.auth.login.mutate({ ...input, protocol: PROTOCOL_VERSION + 1 })), 'PROTOCOL_MISMATCH');
  });

  it('L6 a version-1 client (its login signs no origin) is refused PROTOCOL_MISMATCH, at challenge and at login', async () => {
    assert.equal(PROTOCOL_VERSION, 4);
    const id = await identity();
    const c = client();
    assert.equal(await refusal(c.auth.challenge.mutate({ protocol: 1 })), 'PROTOCOL_MISMATCH');
    const { origin: _, ...v1 } = await loginInput(c, id);
    assert.equal(await refusal(c.auth.login.mutate({ ...v1, protocol: 1 })), 'PROTOCOL_MISMATCH');
  });

  it('L6 M7 P6 a version-2 client (it would strip the signed authorName and expects the whole roster in presence) is refused PROTOCOL_MISMATCH', async () => {
    const id = await identity();
    const c = client();
    assert.equal(await refusal(c.auth.challenge.mutate({ protocol: 2 })), 'PROTOCOL_MISMATCH');
    assert.equal(await refusal(c.auth.login.mutate({ ...(await loginInput(c, id)), protocol: 2 })), 'PROTOCOL_MISMATCH');
  });

  it('L6 W11 a version-3 client (it signals over a second /peerjs socket) is refused PROTOCOL_MISMATCH', async () => {
    const id = await identity();
    const c = client();
    assert.equal(await refusal(c.auth.challenge.mutate({ protocol: 3 })), 'PROTOCOL_MISMATCH');
    assert.equal(await refusal(c.auth.login.mutate({ ...(await loginInput(c, id)), protocol: 3 })), 'PROTOCOL_MISMATCH');
  });

  it("L9 a login signed for another relay's origin is refused WRONG_RELAY; relabelling the origin breaks the signature", async () => {
    // A man in the middle at another origin passes this relay's challenge to its victim, who signs it for
    // the origin it dialled. The attacker's own connection here then holds a signature for its origin only.
    const sessionsBefore = relay.counts().sessions;
    const victim = await identity();
    const attacker = client();
    const ch = await attacker.auth.challenge.mutate({ protocol: PROTOCOL_VERSION });
    const evil = 'https://evil.example';
    const signature = await signLogin(backend, victim.secretKey, { nonce: ch.nonce, relayKey: ch.relayKey, origin: evil, publicKey: victim.publicKey, name: 'victim', kind: 'browser' });
    const stolen = { protocol: PROTOCOL_VERSION, publicKey: victim.publicKey, name: 'victim', kind: 'browser' as const, nonce: ch.nonce, origin: evil, signature };
    assert.equal(await refusal(attacker.auth.login.mutate(stolen)), 'WRONG_RELAY');
    const again = client();
    const ch2 = await again.auth.challenge.mutate({ protocol: PROTOCOL_VERSION });
    const sig2 = await signLogin(backend, victim.secretKey, { nonce: ch2.nonce, relayKey: ch2.relayKey, origin: evil, publicKey: victim.publicKey, name: 'victim', kind: 'browser' });
    const relabelled = { ...stolen, nonce: ch2.nonce, signature: sig2, origin: originOf(again) };
    assert.equal(await refusal(again.auth.login.mutate(relabelled)), 'BAD_SIGNATURE');
    assert.equal(relay.counts().sessions, sessionsBefore, 'the victim was never logged in');
  });

  it('L7 one login per connection: a second is refused ALREADY_LOGGED_IN; procedures need a login', async () => {
    const id = await identity();
    const c = client();
    assert.equal(await refusal(c.presence.update.mutate({ voiceRoom: null })), 'NOT_LOGGED_IN');
    await login(c, id);
    assert.equal(await refusal(c.auth.challenge.mutate({ protocol: PROTOCOL_VERSION })), 'ALREADY_LOGGED_IN');
  });
});

describe('login: which origins a relay accepts (L9)', () => {
  let r: Relay;
  before(async () => {
    r = await startTestRelay({ publicOrigins: ['https://chat.example'] });
  });
  after(() => r.close());

  /** Challenge + login over a bare socket with chosen headers; resolves with the login reply. */
  async function attempt(origin: string, headers: Record<string, string> = {}) {
    const ws = await rawSocket(r, { headers });
    try {
      const ch = (await rawRequest(ws, 1, 'mutation', 'auth.challenge', { protocol: PROTOCOL_VERSION })).result.data.json;
      const id = await identity();
      const signature = await signLogin(backend, id.secretKey, { nonce: ch.nonce, relayKey: ch.relayKey, origin, publicKey: id.publicKey, name: 'o', kind: 'browser' });
      const reply = await rawRequest(ws, 2, 'mutation', 'auth.login', { protocol: PROTOCOL_VERSION, publicKey: id.publicKey, name: 'o', kind: 'browser', nonce: ch.nonce, origin, signature });
      return reply.error ? (reply.error.json.data.reason as string) : 'OK';
    } finally {
      ws.terminate();
    }
  }

  it('L9 a configured public origin is accepted from anywhere; the Host header then counts for nothing', async () => {
    assert.equal(await attempt('https://chat.example'), 'OK');
    assert.equal(await attempt('https://evil.example', { Host: 'evil.example' }), 'WRONG_RELAY');
    assert.equal(await attempt('http://evil.example', { Host: 'evil.example' }), 'WRONG_RELAY');
  });

  it("L9 a direct loopback connection may name the relay's own loopback origin, on its own port only", async () => {
    assert.equal(await attempt(`http://127.0.0.1:${r.port}`), 'OK');
    assert.equal(await attempt(`http://localhost:${r.port}`), 'OK');
    assert.equal(await attempt(`http://127.0.0.1:${r.port + 1}`), 'WRONG_RELAY', 'a relaying process on another port');
    assert.equal(await attempt(`http://127.0.0.1:${r.port}`, { 'X-Forwarded-For': '203.0.113.9' }), 'WRONG_RELAY', 'through a local proxy it is not loopback');
  });

  it('L9 local mode (no public origin): the origin the Host header names', async () => {
    // The shared relay of this file has none configured.
    const ws = await rawSocket(relay, { headers: { Host: 'localhost:5173' } });
    try {
      const ch = (await rawRequest(ws, 1, 'mutation', 'auth.challenge', { protocol: PROTOCOL_VERSION })).result.data.json;
      const id = await identity();
      const origin = 'http://localhost:5173'; // a page served by Vite's dev proxy
      const signature = await signLogin(backend, id.secretKey, { nonce: ch.nonce, relayKey: ch.relayKey, origin, publicKey: id.publicKey, name: 'vite', kind: 'browser' });
      const reply = await rawRequest(ws, 2, 'mutation', 'auth.login', { protocol: PROTOCOL_VERSION, publicKey: id.publicKey, name: 'vite', kind: 'browser', nonce: ch.nonce, origin, signature });
      assert.equal(reply.result?.data.json.self.name, 'vite', JSON.stringify(reply.error));
    } finally {
      ws.terminate();
    }
  });
});
