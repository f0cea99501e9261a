// Peer sync between separate Node processes (SPEC.md G5, G6, G8, G13 over T1-T8): each peer is a NodePeer
// of kind 'browser' in its own child process (e2e/fixtures/nodePeerChild.ts, driven over IPC), talking
// real PeerJS over @roamhq/wrtc on loopback through a real relay with its signalling endpoint.
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import type { Envelope, SignedAttachment } from '../src/shared/protocol/relay';
import type { ChildReport, ChildRequest } from './fixtures/nodePeerChild';
import { content, startRelayWithSignalling } from './fixtures/relayWithSignalling';
import type { Relay } from '../src/server/createRelay';

const childScript = fileURLToPath(new URL('./fixtures/nodePeerChild.ts', import.meta.url));
const sha256 = (b: Uint8Array): string => createHash('sha256').update(b).digest('base64url');

class Child {
  private readonly proc: ChildProcess;
  private seq = 0;
  private readonly waiting = new Map<number, { resolve(v: unknown): void; reject(e: Error): void }>();
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  peerId = '';

  constructor(readonly name: string) {
    this.proc = spawn(process.execPath, ['--import', import.meta.resolve('tsx'), childScript], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    this.proc.on('message', (m: { seq: number; ok: boolean; result?: unknown; error?: string }) => {
      const w = this.waiting.get(m.seq);
      this.waiting.delete(m.seq);
      if (m.ok) w?.resolve(m.result);
      else w?.reject(new Error(`${name}: ${m.error}`));
    });
    this.exited = new Promise((resolve) =>
      this.proc.once('exit', (code, signal) => {
        for (const w of this.waiting.values()) w.reject(new Error(`${name} exited (${code ?? signal})`));
        resolve({ code, signal });
      }),
    );
  }

  call<T>(req: ChildRequest): Promise<T> {
    const seq = ++this.seq;
    return new Promise<T>((resolve, reject) => {
      this.waiting.set(seq, { resolve: resolve as (v: unknown) => void, reject });
      this.proc.send({ seq, req });
    });
  }

  async start(relay: Relay, opts: { liar?: boolean } = {}): Promise<this> {
    const r = await this.call<{ peerId: string }>({ op: 'start', relayUrl: relay.url, name: this.name, ...opts });
    this.peerId = r.peerId;
    return this;
  }

  /** Stops the peer; the process must then end by itself with status 0 (nothing left open). */
  async stop(): Promise<void> {
    const r = await this.call<{ liveResources: number }>({ op: 'stop' });
    assert.equal(r.liveResources, 0, `${this.name} left resources behind`);
    const { code, signal } = await this.exited;
    assert.deepEqual({ code, signal }, { code: 0, signal: null }, `${this.name} did not exit cleanly`);
  }

  kill(): void {
    if (this.proc.exitCode === null) this.proc.kill('SIGKILL');
  }
}

let relay: Relay;
const children: Child[] = [];
before(async () => {
  relay = await startRelayWithSignalling({ limits: { postsPerMinute: 10_000, mintsPerMinute: 10_000, maxFramesPerSecond: 10_000 } });
});
after(async () => {
  for (const c of children) c.kill();
  await relay.close();
});

async function peers(...names: string[]): Promise<Child[]> {
  const list = names.map((n) => new Child(n));
  children.push(...list);
  return Promise.all(list.map((c) => c.start(relay)));
}

describe('sync between Node processes over PeerJS + wrtc', () => {
  it('G5 a late joiner catches up the history from the peers online', { timeout: 40_000 }, async () => {
    const [a, b] = await peers('alice', 'bob');
    const sent: Envelope[] = [];
    for (let i = 0; i < 30; i++) sent.push(await a!.call<Envelope>({ op: 'post', channel: i % 3 ? 'general' : 'random', text: `history ${i}` }));
    const ids = sent.map((e) => e.id);
    await b!.call({ op: 'waitMessages', ids });
    const [c] = await peers('carol');
    // The relay keeps no history: carol can only have these from alice and bob.
    assert.deepEqual(await c!.call({ op: 'waitMessages', ids }), sent.map((e) => e.post.text));
    for (const p of [a!, b!, c!]) await p.stop();
  });

  it('G6 G8 an attachment published by one peer reaches the others, verified', { timeout: 40_000 }, async () => {
    const [a, b, c] = await peers('author', 'reader1', 'reader2');
    const size = 200 * 1024 + 123;
    const att = await a!.call<SignedAttachment>({ op: 'publish', size, seed: 42 });
    await a!.call({ op: 'post', channel: 'media', text: 'a file', attachments: [att] });
    const expected = { sha256: sha256(content(size, 42)), size };
    assert.equal(att.meta.sha256, expected.sha256);
    assert.deepEqual(await b!.call({ op: 'waitAttachment', id: att.id }), expected);
    assert.deepEqual(await c!.call({ op: 'waitAttachment', id: att.id }), expected);
    for (const p of [a!, b!, c!]) await p.stop();
  });

  it('G13 G8 a peer serving wrong chunks is dropped and the honest holder completes the transfer', { timeout: 40_000 }, async () => {
    const liar = new Child('liar');
    children.push(liar);
    await liar.start(relay, { liar: true });
    const [honest, reader] = await peers('honest', 'reader');
    const size = 96 * 1024;
    const att = await liar.call<SignedAttachment>({ op: 'publish', size, seed: 7 });
    await liar.call({ op: 'post', channel: 'media', text: 'trust me', attachments: [att] });
    // The liar is the only holder, so the reader fetches from it and drops it at its first chunk.
    assert.deepEqual(await reader!.call({ op: 'waitDropped', peerId: liar.peerId }), [{ peerId: liar.peerId, reason: 'WRONG_DIGEST', banned: true }]);
    // Now an honest peer holds the bytes (without offering them): the reader's WANT finds it.
    assert.equal(await honest!.call({ op: 'hold', att, size, seed: 7 }), true);
    assert.deepEqual(await reader!.call({ op: 'waitAttachment', id: att.id }), { sha256: sha256(content(size, 7)), size });
    const report = await reader!.call<ChildReport>({ op: 'report' });
    assert.deepEqual(
      report.dropped.filter((d) => d.peerId === liar.peerId),
      [{ peerId: liar.peerId, reason: 'WRONG_DIGEST', banned: true }],
    );
    assert.ok(!report.dropped.some((d) => d.peerId === honest!.peerId && d.banned), 'the honest peer was not blamed');
    for (const p of [liar, honest!, reader!]) await p.stop();
  });
});
