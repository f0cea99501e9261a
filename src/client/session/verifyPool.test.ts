import assert from 'node:assert/strict';
import { it } from 'node:test';
import { randomSecretKey } from '../../shared/crypto/ed25519';
import { nodeBackend } from '../../shared/crypto/nodeBackend';
import { toB64url } from '../../shared/encoding';
import type { Envelope } from '../../shared/protocol/relay';
import { type EnvelopeVerifier, signEnvelope, signPost, verifyEnvelopes } from '../../shared/protocol/signed';
import { MAX_SLICE_ENVELOPES, MAX_VERIFY_WORKERS, SLICES_PER_WORKER, type VerifyJob, type VerifyJobResult, type WorkerLike, createVerifyPool } from './verifyPool';

const backend = nodeBackend();

async function envelopes(n: number): Promise<{ envs: Envelope[]; relayKey: string }> {
  const relaySecret = randomSecretKey();
  const author = randomSecretKey();
  const relayKey = toB64url(await backend.publicKeyOf(relaySecret));
  const authorKey = toB64url(await backend.publicKeyOf(author));
  const envs: Envelope[] = [];
  for (let i = 0; i < n; i++) {
    const ts = 1_700_000_000_000 + i;
    const post = await signPost(backend, author, {
      channel: 'general', clientId: `c${i}`, text: `m${i}`, attachments: [], replyTo: null, author: authorKey, relay: relayKey, sentAt: ts,
    });
    envs.push(await signEnvelope(backend, relaySecret, { id: `01HZZZZZZZZZZZZZZZZZZZ${String(i).padStart(4, '0')}`, ts, epoch: 'e', prev: null, post, relay: relayKey }));
  }
  // A forged author signature and a forged relay countersignature, in different slices.
  envs[3] = { ...envs[3]!, post: { ...envs[3]!.post, text: 'forged' } };
  envs[n - 2] = { ...envs[n - 2]!, rsig: envs[n - 1]!.rsig };
  return { envs, relayKey };
}

/** 'held': answers only when `release()` is called (a worker on a busy core). */
type Behaviour = 'honest' | 'crash' | 'garbage' | 'held';

/** What verifyWorker.ts does, in process, answering on a later turn like a real worker. */
class FakeWorker implements WorkerLike {
  onmessage: ((e: MessageEvent<VerifyJobResult>) => void) | null = null;
  onerror: ((e: ErrorEvent) => void) | null = null;
  jobs: number[] = [];
  terminated = false;
  constructor(private readonly behaviour: Behaviour) {}
  /** Jobs sent and not answered, the most at once. */
  out = 0;
  peakOut = 0;
  private held: (() => void)[] = [];
  release(): void {
    for (const answer of this.held.splice(0)) answer();
  }
  postMessage({ job, envs, relayKey }: VerifyJob): void {
    this.jobs.push(envs.length);
    this.peakOut = Math.max(this.peakOut, ++this.out);
    const answer = async () => {
      this.out--;
      if (this.terminated) return;
      if (this.behaviour === 'crash' && envs.length > 0) return this.onerror?.({} as ErrorEvent);
      const checks = await verifyEnvelopes(backend, envs, relayKey);
      const answer: VerifyJobResult = this.behaviour === 'garbage' && envs.length > 0 ? { job, checks: checks.slice(1), backend: 'x' } : { job, checks, backend: 'node' };
      this.onmessage?.({ data: answer } as MessageEvent<VerifyJobResult>);
    };
    if (this.behaviour === 'held' && envs.length > 0) this.held.push(answer);
    else setImmediate(answer);
  }
  terminate(): void {
    this.terminated = true;
  }
}

function pool(behaviours: Behaviour[]) {
  const workers: FakeWorker[] = [];
  let inThread = 0;
  const fallback: EnvelopeVerifier = (envs, key) => {
    inThread += envs.length;
    return verifyEnvelopes(backend, envs, key);
  };
  const p = createVerifyPool({
    size: behaviours.length,
    fallback,
    createWorker: () => {
      const w = new FakeWorker(behaviours[workers.length]!);
      workers.push(w);
      return w;
    },
  });
  return { p, workers, inThread: () => inThread };
}

it('G2 verifyPool: a batch is verified in slices across the workers, every check of every envelope, results in input order', async () => {
  const { envs, relayKey } = await envelopes(1200);
  const expected = await verifyEnvelopes(backend, envs, relayKey);
  const { p, workers, inThread } = pool(['honest', 'honest']);
  assert.equal(await p.warm(), 'node');
  assert.deepEqual(await p.verify(envs, relayKey), expected);
  assert.equal(expected[3]!.ok, false);
  assert.equal(expected[1198]!.ok, false);
  assert.equal(expected.filter((c) => c.ok).length, 1198);
  // Both workers did the work (beyond warm()'s empty job), no slice over the bound, nothing in this thread.
  for (const w of workers) {
    assert.ok(w.jobs.filter((n) => n > 0).length >= 1);
    assert.ok(Math.max(...w.jobs) <= MAX_SLICE_ENVELOPES);
  }
  assert.equal(workers.flatMap((w) => w.jobs).reduce((a, b) => a + b, 0), envs.length);
  assert.equal(inThread(), 0);
  p.close();
});

it('G2 verifyPool: the next slice goes to the worker that answers first, at most SLICES_PER_WORKER out to one; a busy worker holds up no more than that', async () => {
  const { envs, relayKey } = await envelopes(1200);
  const expected = await verifyEnvelopes(backend, envs, relayKey);
  const { p, workers, inThread } = pool(['honest', 'held']);
  await p.warm();
  const [free, busy] = workers as [FakeWorker, FakeWorker];
  const pending = p.verify(envs, relayKey);
  // The free worker verifies everything but what the busy one already holds.
  const slices = Math.ceil(envs.length / MAX_SLICE_ENVELOPES);
  while (free.jobs.filter((n) => n > 0).length < slices - SLICES_PER_WORKER) await new Promise((r) => setImmediate(r));
  assert.equal(busy.jobs.filter((n) => n > 0).length, SLICES_PER_WORKER);
  busy.release();
  assert.deepEqual(await pending, expected);
  assert.ok(free.peakOut <= SLICES_PER_WORKER && busy.peakOut <= SLICES_PER_WORKER, `out at once: ${free.peakOut}, ${busy.peakOut}`);
  assert.equal(inThread(), 0);
  p.close();
});

it('G2 verifyPool: slices of a worker that crashes or answers garbage are verified in this thread; none passes unverified', async () => {
  const { envs, relayKey } = await envelopes(300);
  const expected = await verifyEnvelopes(backend, envs, relayKey);
  for (const bad of ['crash', 'garbage'] as const) {
    const { p, workers, inThread } = pool(['honest', bad]);
    assert.deepEqual(await p.verify(envs, relayKey), expected, bad);
    assert.ok(inThread() > 0, bad);
    if (bad === 'crash') {
      assert.ok(workers[1]!.terminated);
      // The crashed worker is let go: the next batch goes to the other one only.
      const before = workers[1]!.jobs.length;
      assert.deepEqual(await p.verify(envs, relayKey), expected);
      assert.equal(workers[1]!.jobs.length, before);
    }
    p.close();
  }
});

it('G2 verifyPool: without workers (construction throws) and after close() every batch is verified in this thread', async () => {
  const { envs, relayKey } = await envelopes(40);
  const expected = await verifyEnvelopes(backend, envs, relayKey);
  let inThread = 0;
  const none = createVerifyPool({
    size: 2,
    fallback: (e, k) => ((inThread += e.length), verifyEnvelopes(backend, e, k)),
    createWorker: () => {
      throw new Error('no Worker here');
    },
  });
  assert.equal(await none.warm(), 'this thread');
  assert.deepEqual(await none.verify(envs, relayKey), expected);
  assert.equal(inThread, envs.length);

  // close() with slices out: the callers still get a full answer.
  const { p, workers } = pool(['honest', 'honest']);
  const pending = p.verify(envs, relayKey);
  p.close();
  assert.ok(workers.every((w) => w.terminated));
  assert.deepEqual(await pending, expected);
  assert.deepEqual(await p.verify(envs, relayKey), expected);
});

it('G2 verifyPool: by default one worker per core (each verifies on its own thread), at most MAX_VERIFY_WORKERS', async () => {
  const { envs, relayKey } = await envelopes(20);
  const had = Object.getOwnPropertyDescriptor(globalThis, 'navigator');
  try {
    for (const [cores, expected] of [[1, 1], [2, 2], [3, 3], [16, MAX_VERIFY_WORKERS]] as const) {
      Object.defineProperty(globalThis, 'navigator', { value: { hardwareConcurrency: cores }, configurable: true });
      const workers: FakeWorker[] = [];
      const p = createVerifyPool({
        fallback: (e, k) => verifyEnvelopes(backend, e, k),
        createWorker: () => {
          const w = new FakeWorker('honest');
          workers.push(w);
          return w;
        },
      });
      await p.warm();
      assert.equal(workers.length, expected, `${cores} cores`);
      // And a batch is shared by all of them: on 2 cores both verify, none is left out for the page.
      assert.equal((await p.verify(envs, relayKey)).length, envs.length);
      assert.ok(workers.every((w) => w.jobs.some((n) => n > 0)), `${cores} cores: every worker got a slice`);
      p.close();
    }
  } finally {
    if (had) Object.defineProperty(globalThis, 'navigator', had);
    else delete (globalThis as { navigator?: unknown }).navigator;
  }
});
