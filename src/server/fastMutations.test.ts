// SPEC.md R17, R19: the fast paths of chat.post, auth.challenge and auth.login (router.ts
// createFastMutations, trpcWsAdapter.ts `fastMutations`) answer exactly what the tRPC procedures answer, and
// a frame's replies leave in one write.
//
// One relay drives both paths: an input without superjson meta takes the fast path, the same input with an
// empty `meta` (which superjson deserializes to the same value) takes tRPC's procedure call. For the same
// request id the two reply frames must be the same bytes.
import assert from 'node:assert/strict';
import { Socket } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { WebSocket } from 'ws';
import { LIMITS, PROTOCOL_VERSION } from '../shared/protocol/relay';
import { relayOrigin, signLogin } from '../shared/protocol/signed';
import type { Relay } from './createRelay';
import { backend, identity, login, makePost, rawClient, rawSocket, startTestRelay } from './testKit';

let relay: Relay;
const closers: (() => Promise<void>)[] = [];

before(async () => {
  relay = await startTestRelay({ limits: { postsPerMinute: 40, maxFramesPerSecond: 10_000 } });
});
after(async () => {
  await Promise.all(closers.map((c) => c()));
  await relay.close();
});

/** A raw socket logged in through wsLink (which keeps it), for frames written by hand. */
async function loggedInSocket() {
  let ws: WebSocket | null = null;
  class Grab extends WebSocket {
    constructor(url: string) {
      super(url);
      ws = this;
    }
  }
  const c = rawClient(relay, { WebSocket: Grab });
  closers.push(c.close);
  const id = await identity();
  await login(c.client, id);
  return { ws: ws! as WebSocket, id, client: c.client };
}

/** Sends one frame and resolves with the raw text of the replies carrying `ids`, in that order. */
function exchange(ws: WebSocket, frame: unknown, ids: number[]): Promise<string[]> {
  return new Promise((resolve) => {
    const got = new Map<number, string>();
    const onMessage = (data: Buffer) => {
      const text = data.toString();
      const id = (JSON.parse(text) as { id?: unknown }).id;
      if (typeof id === 'number' && ids.includes(id)) got.set(id, text);
      if (got.size === ids.length) {
        ws.off('message', onMessage);
        resolve(ids.map((i) => got.get(i)!));
      }
    };
    ws.on('message', onMessage);
    ws.send(JSON.stringify(frame));
  });
}

const mutation = (id: number, input: unknown, meta?: object, path = 'chat.post') => ({
  id,
  method: 'mutation',
  params: { path, input: meta ? { json: input, meta } : { json: input } },
});
/** The reason of an error reply (superjson wraps the error shape in `json`). */
const reasonOf = (reply: string): unknown => JSON.parse(reply).error?.json?.data?.reason;
/** The same request for both paths, the same id each time: byte-equal replies expected. */
async function bothPaths(ws: WebSocket, id: number, input: unknown): Promise<{ fast: string; trpc: string }> {
  const [fast] = await exchange(ws, mutation(id, input), [id]);
  const [trpc] = await exchange(ws, mutation(id, input, {}), [id]);
  return { fast: fast!, trpc: trpc! };
}

describe('chat.post fast path', () => {
  it('R17 an envelope reply is byte-identical to the tRPC procedure\'s, whichever path relayed the post', async () => {
    const { ws, id } = await loggedInSocket();
    // Fast first (the reference path then answers the idempotent retry, R4), and the other way round.
    const a = await makePost(id, { text: 'fast first' });
    const first = await bothPaths(ws, 7, a);
    assert.equal(first.fast, first.trpc);
    const b = await makePost(id, { text: 'tRPC first' });
    const [trpc] = await exchange(ws, mutation(8, b, {}), [8]);
    const [fast] = await exchange(ws, mutation(8, b), [8]);
    assert.equal(fast, trpc);
    const env = JSON.parse(fast!).result.data.json;
    assert.equal(env.post.text, 'tRPC first');
    assert.equal(typeof env.rsig, 'string');
    // A jsonrpc request gets its `jsonrpc` back, in tRPC's key order.
    const c = await makePost(id, { text: 'jsonrpc' });
    const [j1] = await exchange(ws, { ...mutation(9, c), jsonrpc: '2.0' }, [9]);
    const [j2] = await exchange(ws, { ...mutation(9, c, {}), jsonrpc: '2.0' }, [9]);
    assert.equal(j1, j2);
    assert.match(j1!, /^\{"id":9,"jsonrpc":"2\.0","result":\{"type":"data","data":\{"json":\{"id":/);
  });

  it('R17 every refusal is byte-identical to the tRPC procedure\'s, in the procedure\'s order of checks', async () => {
    const { ws, id } = await loggedInSocket();
    const other = await identity();
    const cases: [string, unknown][] = [
      ['BAD_INPUT', { text: 'not a post' }],
      ['BAD_INPUT', undefined],
      ['WRONG_AUTHOR', await makePost(other, { relay: relay.info.publicKey })],
      ['BAD_SIGNATURE', { ...(await makePost(id)), text: 'changed after signing' }],
      ['UNKNOWN_CHANNEL', await makePost(id, { channel: 'nope' })],
      ['BAD_INPUT', await makePost(id, { text: '' })],
      ['WRONG_RELAY', await makePost(id, { relay: other.publicKey })],
      ['STALE_POST', await makePost(id, { sentAt: Date.now() - 2 * 5 * 60_000 })],
      ['CLOCK_SKEW', await makePost(id, { sentAt: Date.now() + 2 * 5 * 60_000 })],
    ];
    let n = 100;
    for (const [reason, input] of cases) {
      const { fast, trpc } = await bothPaths(ws, n++, input);
      assert.equal(fast, trpc, `${reason}: the paths differ`);
      assert.equal(reasonOf(fast), reason, fast);
    }
    // The same clientId with other content (R4).
    const post = await makePost(id, { text: 'original' });
    await exchange(ws, mutation(n++, post), [n - 1]);
    const { fast, trpc } = await bothPaths(ws, n++, await makePost(id, { clientId: post.clientId, text: 'other' }));
    assert.equal(fast, trpc);
    assert.equal(reasonOf(fast), 'DUPLICATE_CLIENT_ID');

    // Login is checked before the input (the `authed` middleware runs before the schema).
    const anon = new WebSocket(relay.trpcUrl);
    await new Promise((r) => anon.once('open', r));
    closers.push(async () => anon.close());
    const out = await bothPaths(anon, 1, { garbage: true });
    assert.equal(out.fast, out.trpc);
    assert.equal(reasonOf(out.fast), 'NOT_LOGGED_IN');
  });

  it('R17 R11 the per-key post budget is shared by both paths and refused alike', async () => {
    const { ws, id } = await loggedInSocket();
    const posts = await Promise.all(Array.from({ length: 40 }, (_, i) => makePost(id, { text: `p${i}` })));
    // 40 a minute (this relay's limit): alternating paths, one frame each.
    for (let i = 0; i < posts.length; i++) {
      const [reply] = await exchange(ws, mutation(i, posts[i], i % 2 ? {} : undefined), [i]);
      assert.ok(JSON.parse(reply!).result, `post ${i} was refused: ${reply}`);
    }
    const { fast, trpc } = await bothPaths(ws, 50, await makePost(id, { text: 'one too many' }));
    assert.equal(fast, trpc);
    assert.equal(reasonOf(fast), 'RATE_LIMITED');
  });

  it('R17 the replies to one frame of posts leave the relay in one socket write', async () => {
    const { ws, id } = await loggedInSocket();
    const posts = await Promise.all(Array.from({ length: 8 }, (_, i) => makePost(id, { text: `batch ${i}`, channel: 'random' })));
    // Count the relay's writes to this client: server-side sockets are the ones whose local port is the relay's.
    const proto = Socket.prototype as unknown as Record<'_write' | '_writev', (this: Socket, ...args: unknown[]) => void>;
    const original = { _write: proto._write, _writev: proto._writev };
    const clientPort = (ws as unknown as { _socket: Socket })._socket.localPort;
    let writes = 0;
    for (const k of ['_write', '_writev'] as const) {
      proto[k] = function (this: Socket, ...args: unknown[]) {
        if (this.localPort === relay.port && this.remotePort === clientPort) writes++;
        return original[k].apply(this, args);
      };
    }
    try {
      const ids = posts.map((_, i) => 200 + i);
      assert.ok(ids.length <= LIMITS.maxRequestsPerFrame);
      const replies = await exchange(ws, posts.map((p, i) => mutation(ids[i]!, p)), ids);
      for (const r of replies) assert.ok(JSON.parse(r).result, r);
      assert.equal(writes, 1, `the ${ids.length} replies took ${writes} writes`);
    } finally {
      Object.assign(proto, original);
    }
  });
});

describe('auth fast paths', () => {
  // A fixed clock: the challenge's expiresAt and relayTime, and the session's `since`, are the same on both paths.
  const clock = 1_800_000_000_000;
  let r: Relay;
  before(async () => {
    r = await startTestRelay({ clock: () => clock });
  });
  after(() => r.close());

  /** Two fresh sockets: one sends plain inputs (the fast path), the other the same with an empty `meta` (tRPC's). */
  async function pair(): Promise<{ fast: WebSocket; trpc: WebSocket }> {
    const [fast, trpc] = await Promise.all([rawSocket(r), rawSocket(r)]);
    closers.push(async () => void (fast.close(), trpc.close()));
    return { fast, trpc };
  }
  const call = async (ws: WebSocket, id: number, path: string, input: unknown, meta?: object) => (await exchange(ws, mutation(id, input, meta, path), [id]))[0]!;
  /** The reply with each random value (nonce, session and peer ids, token) replaced by its name. */
  function masked(reply: string): string {
    const data = JSON.parse(reply).result?.data?.json as Record<string, unknown> | undefined;
    const self = data?.self as Record<string, string> | undefined;
    const random: [string, unknown][] = [
      ['NONCE', data?.nonce],
      ['SESSION', self?.sessionId],
      ['PEER', self?.peerId],
      ['TOKEN', data?.peerToken],
    ];
    let out = reply;
    for (const [name, value] of random) if (typeof value === 'string') out = out.split(JSON.stringify(value)).join(`"${name}"`);
    return out;
  }

  it('R17 R19 auth.challenge and auth.login answer byte-identically to their procedures, refusals included', async () => {
    const { fast, trpc } = await pair();
    const id = await identity();
    const origin = relayOrigin(r.trpcUrl)!;
    const refused = async (ws: WebSocket, n: number, path: string, input: unknown, meta?: object) => call(ws, n, path, input, meta);
    // Refusals before any login: a bad input, another protocol, an unknown nonce.
    const badLogin = { protocol: PROTOCOL_VERSION, publicKey: id.publicKey, name: 'a', kind: 'browser', nonce: 'x'.repeat(43), origin, signature: 'y'.repeat(86) };
    const before: [string, string, unknown][] = [
      ['BAD_INPUT', 'auth.challenge', { protocol: 'three' }],
      ['BAD_INPUT', 'auth.challenge', undefined],
      ['PROTOCOL_MISMATCH', 'auth.challenge', { protocol: 1 }],
      ['BAD_INPUT', 'auth.login', { protocol: PROTOCOL_VERSION }],
      ['PROTOCOL_MISMATCH', 'auth.login', { ...badLogin, protocol: 1 }],
      ['NO_CHALLENGE', 'auth.login', badLogin],
    ];
    let n = 10;
    for (const [reason, path, input] of before) {
      const a = await refused(fast, n, path, input);
      const b = await refused(trpc, n++, path, input, {});
      assert.equal(a, b, `${path} ${reason}: the paths differ`);
      assert.equal(reasonOf(a), reason, a);
    }

    // The challenge, then a login of one key on each socket (two sessions of one key, P2).
    const challenges = [await call(fast, 1, 'auth.challenge', { protocol: PROTOCOL_VERSION }), await call(trpc, 1, 'auth.challenge', { protocol: PROTOCOL_VERSION }, {})];
    assert.equal(masked(challenges[0]!), masked(challenges[1]!));
    assert.match(challenges[0]!, /^\{"id":1,"result":\{"type":"data","data":\{"json":\{"nonce":/);
    const logins: string[] = [];
    for (const [i, ws] of [fast, trpc].entries()) {
      const ch = JSON.parse(challenges[i]!).result.data.json as { nonce: string; relayKey: string };
      const fields = { nonce: ch.nonce, relayKey: ch.relayKey, origin, publicKey: id.publicKey, name: 'alice', kind: 'browser' as const };
      const signature = await signLogin(backend, id.secretKey, fields);
      logins.push(await call(ws, 2, 'auth.login', { protocol: PROTOCOL_VERSION, ...fields, signature }, i === 0 ? undefined : {}));
    }
    assert.ok(JSON.parse(logins[0]!).result, logins[0]);
    assert.equal(masked(logins[0]!), masked(logins[1]!));
    assert.notEqual(logins[0], logins[1], 'two sessions');

    // Logged in: both procedures refuse again, alike.
    for (const path of ['auth.challenge', 'auth.login']) {
      const input = path === 'auth.challenge' ? { protocol: PROTOCOL_VERSION } : badLogin;
      const a = await refused(fast, n, path, input);
      const b = await refused(trpc, n++, path, input, {});
      assert.equal(a, b, `${path}: the paths differ`);
      assert.equal(reasonOf(a), 'ALREADY_LOGGED_IN', a);
    }
  });
});
