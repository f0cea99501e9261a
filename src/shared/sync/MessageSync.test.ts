// Message catch-up under load (SPEC.md G5, G11): long messages, a slow store, answers cut by bytes.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { utf8 } from '../encoding';
import {
  ControlAssembler,
  type MsgsBody,
  PEER_LIMITS,
  PeerKind,
  decodeFrame,
  encodeControl,
  encodeFrame,
  parseControl,
} from '../protocol/peer';
import type { Envelope } from '../protocol/relay';
import { MemoryStore } from '../store/MemoryStore';
import type { Clock } from './Clock';
import { STORE_QUEUE_MAX_BYTES } from './MessageSync';
import { SyncSim } from './testing/SyncSim';
import { type Tamper, kindOf, overrideLink, tamperTransport, wrapLinks } from './testing/tamper';

/** A MemoryStore whose putMessages take `ms` of the simulated clock each (IndexedDB under load); only the first `slow` of them. */
class SlowWriteStore extends MemoryStore {
  constructor(
    private readonly clock: Clock,
    private readonly ms: number,
    private slow = Infinity,
  ) {
    super({ now: () => clock.now() });
  }
  /** Envelopes, and their JSON bytes, per putMessages call, in call order. */
  readonly sizes: number[] = [];
  readonly bytes: number[] = [];
  get writes(): number {
    return this.sizes.length;
  }
  override async putMessages(envelopes: readonly Envelope[]): Promise<string[]> {
    this.sizes.push(envelopes.length);
    this.bytes.push(utf8(JSON.stringify(envelopes)).length);
    if (this.slow-- > 0) await new Promise<void>((resolve) => this.clock.setTimeout(resolve, this.ms));
    return super.putMessages(envelopes);
  }
}

/** About 8.5 KB of JSON per envelope: 4,000 two-byte characters, near the relay's longest post. */
const LONG_TEXT = 'é'.repeat(4000);

describe('G5 G11 catch-up of long messages', () => {
  it('G11 an honest holder of long messages is not banned by a slow-store reader; catch-up completes', async () => {
    const sim = await SyncSim.create({ seed: 41 });
    // 12 GET_MSGS of 128 ids: the first 8 answers fill the reader's pipeline while its store is slow,
    // so the next ones wait in its inbox.
    const all = await sim.fx.envelopes(12 * 128, { text: LONG_TEXT });
    assert.ok(utf8(JSON.stringify(all[0])).length > 8000, 'each envelope is long');
    const holder = await sim.addPeer({ start: false });
    await holder.engine.addMessages(all);
    const reader = await sim.addPeer({ start: false, store: new SlowWriteStore(sim.clock, 3000) });
    const dropped: string[] = [];
    for (const p of [holder, reader]) p.engine.on('peerDropped', (e) => dropped.push(`${e.peerId}:${e.reason}:${e.banned}`));
    await sim.start(holder);
    await sim.start(reader);
    void reader.engine.syncNow();
    let rounds = 0;
    while ((await reader.store.countMessages()) < all.length && rounds++ < 4 * 120) await sim.round();
    assert.deepEqual(dropped, [], 'no link was dropped');
    assert.equal(reader.engine.isBanned(holder.id), false);
    assert.equal(await reader.store.countMessages(), all.length, 'the reader holds every message');
    await sim.stopAll();
  });

  it('G5 a catch-up of long messages stores as many per write as one of short messages; the store queue is bounded by bytes', async () => {
    const sim = await SyncSim.create({ seed: 43 });
    // 1,536 messages of 8.5 KB: 15 per answer (maxMsgsAnswerBytes), ~100 answers. The same number of
    // short ones is 12 answers and 3 writes of 3 s (128, 1,024, 384).
    const all = await sim.fx.envelopes(12 * 128, { text: LONG_TEXT });
    const holder = await sim.addPeer({ start: false });
    await holder.engine.addMessages(all);
    const store = new SlowWriteStore(sim.clock, 3000);
    const reader = await sim.addPeer({ start: false, store });
    const dropped: string[] = [];
    for (const p of [holder, reader]) p.engine.on('peerDropped', (e) => dropped.push(`${e.peerId}:${e.reason}:${e.banned}`));
    await sim.start(holder);
    await sim.start(reader);
    const t0 = sim.clock.now();
    void reader.engine.syncNow();
    while ((await reader.store.countMessages()) < all.length && sim.clock.now() - t0 < 120_000) await sim.round();
    const seconds = (sim.clock.now() - t0) / 1000;
    assert.deepEqual(dropped, []);
    assert.equal(await reader.store.countMessages(), all.length);
    // With the pipeline counting answers until stored, the writes took 15 and 105 envelopes by turns:
    // 28 writes, 84 s. Now what waits for a write is bounded by bytes: 3 writes (15, 953, 568), 9 s.
    assert.ok(store.writes <= 4, `${store.writes} writes (${store.sizes.join(', ')})`);
    assert.ok(seconds <= 4 * 3 + 3, `${seconds} s`);
    // Each write is at most the queue's bound (and one part beyond it).
    const most = Math.max(...store.bytes);
    assert.ok(most <= STORE_QUEUE_MAX_BYTES + PEER_LIMITS.maxControlBodyBytes, `a write of ${most} bytes`);
    await sim.stopAll();
  });
});

/** Rewrites every whole MSGS body a peer sends (its MORE pieces are reassembled first); other frames pass. */
function rewriteMsgs(rewrite: (body: MsgsBody) => MsgsBody): Tamper {
  const assemblers = new Map<string, ControlAssembler>();
  return (frame, to) => {
    if (kindOf(frame) !== PeerKind.MSGS) return [frame];
    const d = decodeFrame(frame);
    if (!d.ok) return [frame];
    let assembler = assemblers.get(to);
    if (!assembler) assemblers.set(to, (assembler = new ControlAssembler()));
    const whole = assembler.push(d.frame);
    if (whole === 'pending' || whole === null) return [];
    const body = parseControl(PeerKind.MSGS, whole)!;
    return encodeControl(PeerKind.MSGS, d.frame.reqId, rewrite(body))!;
  };
}

/** A holder whose answers `rewrite` bends, a reader that catches up from it; the reader's drops and GET_MSGS. */
async function catchUpThrough(seed: number, n: number, rewrite: (body: MsgsBody) => MsgsBody) {
  const sim = await SyncSim.create({ seed });
  const all = await sim.fx.envelopes(n);
  const holder = await sim.addPeer({ start: false, wrap: (t) => tamperTransport(t, rewriteMsgs(rewrite)) });
  await holder.engine.addMessages(all);
  const asked: string[][] = [];
  const reader = await sim.addPeer({
    start: false,
    wrap: (t) =>
      tamperTransport(t, (frame) => {
        if (kindOf(frame) === PeerKind.GET_MSGS) {
          const d = decodeFrame(frame);
          if (d.ok) asked.push(parseControl(PeerKind.GET_MSGS, d.frame.body)!.ids);
        }
        return [frame];
      }),
  });
  const dropped: string[] = [];
  reader.engine.on('peerDropped', (e) => dropped.push(`${e.reason}:${e.banned}`));
  await sim.start(holder);
  await sim.start(reader);
  void reader.engine.syncNow();
  for (let r = 0; r < 40 && (await reader.store.countMessages()) < n && dropped.length === 0; r++) await sim.round();
  const count = await reader.store.countMessages();
  await sim.stopAll();
  return { all, asked, dropped, count };
}

describe('G5 deadlines measure the responder, not the reader', () => {
  it('G5 an answer waiting in the reader\'s inbox while its store is slow is not past its deadline; catch-up from one holder completes', async () => {
    const sim = await SyncSim.create({ seed: 53 });
    const all = await sim.fx.envelopes(12 * 128);
    const holder = await sim.addPeer({ start: false });
    await holder.engine.addMessages(all);
    // The reader's first write takes 45 s (a store busy elsewhere), longer than the request deadline:
    // meanwhile its pipeline fills and the answers to the next 8 GET_MSGS wait, arrived, in its inbox.
    const stall = 45_000;
    let gets = 0;
    const reader = await sim.addPeer({
      start: false,
      store: new SlowWriteStore(sim.clock, stall, 1),
      wrap: (t) => tamperTransport(t, (frame) => ((gets += kindOf(frame) === PeerKind.GET_MSGS ? 1 : 0), [frame])),
    });
    const dropped: string[] = [];
    reader.engine.on('peerDropped', (e) => dropped.push(`${e.reason}:${e.banned}`));
    await sim.start(holder);
    await sim.start(reader);
    const t0 = sim.clock.now();
    void reader.engine.syncNow();
    while ((await reader.store.countMessages()) < all.length && sim.clock.now() - t0 < 4 * stall) await sim.round();
    assert.deepEqual(dropped, []);
    assert.equal(await reader.store.countMessages(), all.length);
    assert.ok((sim.clock.now() - t0) / 1000 <= stall / 1000 + 5, 'done right after the slow write');
    // The answers that waited were taken, not dropped as late and fetched again: given up on, their ids
    // came back only one by one, each as the `prev` hole of the envelope after it (hundreds of GET_MSGS).
    assert.ok(gets <= all.length / PEER_LIMITS.maxIdsPerRequest + 2, `${gets} GET_MSGS for ${all.length} messages`);
    await sim.stopAll();
  });
});

describe('G5 a GET_MSGS answer is cut by bytes; the rest is `later`', () => {
  it('G5 G11 the responder sends at most maxMsgsAnswerBytes of envelopes, newest asked first, and names the rest later', async () => {
    const sim = await SyncSim.create({ seed: 43 });
    const all = await sim.fx.envelopes(128, { text: LONG_TEXT });
    const holder = await sim.addPeer();
    await holder.engine.addMessages(all);
    const raw = sim.addRaw();
    const connecting = raw.transport.connect(holder.id);
    await sim.net.settle();
    const link = await connecting;
    const answers: MsgsBody[] = [];
    const assembler = new ControlAssembler();
    link.onFrame((bytes) => {
      const d = decodeFrame(bytes);
      if (!d.ok || d.frame.kind !== PeerKind.MSGS) return;
      const whole = assembler.push(d.frame);
      if (whole instanceof Uint8Array) answers.push(parseControl(PeerKind.MSGS, whole)!);
    });
    const send = (kind: typeof PeerKind.HELLO | typeof PeerKind.GET_MSGS, reqId: number, body: object): void => {
      for (const f of encodeControl(kind, reqId, body as never)!) link.send(f);
    };
    send(PeerKind.HELLO, 0, { protocol: 4 });
    const unknown = '01ARZ3NDEKTSV4RRFFQ69G5FAV';
    let ask = [...all.map((e) => e.id).reverse().slice(0, 127), unknown];
    const got: string[] = [];
    let reqId = 1;
    for (; ask.length > 0; reqId++) {
      assert.ok(reqId <= 128, 'every answer carries envelopes');
      send(PeerKind.GET_MSGS, reqId, { ids: ask });
      await sim.net.settle();
      const a = answers.shift()!;
      assert.equal(a.last, true);
      const bytes = a.envs.reduce((s, e) => s + utf8(JSON.stringify(e)).length, 0);
      assert.ok(a.envs.length >= 1 && bytes <= PEER_LIMITS.maxMsgsAnswerBytes, `${a.envs.length} envelopes, ${bytes} bytes`);
      // In the order asked: what was sent, then what waits, is the request minus what is missing.
      assert.deepEqual([...a.envs.map((e) => e.id), ...(a.later ?? [])], ask.filter((id) => !a.missing.includes(id)));
      got.push(...a.envs.map((e) => e.id));
      if (reqId === 1) assert.deepEqual(a.missing, [unknown]);
      ask = a.later ?? [];
    }
        assert.ok(reqId > 2, 'the 128 long envelopes took more than one answer');
    assert.equal(answers.length, 0);
    assert.deepEqual(new Set(got), new Set(all.map((e) => e.id).reverse().slice(0, 127)));
    link.close('done');
    await sim.stopAll();
  });

  it('G5 the asker asks for the `later` ids again, on the same link, and stores everything without blame', async () => {
    // A holder that sends at most 3 envelopes per answer (within its rights) and names the rest later.
    const r = await catchUpThrough(45, 200, (b) =>
      b.envs.length <= 3 ? b : { ...b, envs: b.envs.slice(0, 3), later: [...b.envs.slice(3).map((e) => e.id), ...(b.later ?? [])] },
    );
    assert.deepEqual(r.dropped, []);
    assert.equal(r.count, 200);
    const first = r.asked.find((ids) => ids.length === PEER_LIMITS.maxIdsPerRequest)!;
    assert.ok(r.asked.some((ids) => ids.length === first.length - 3 && ids.every((id, i) => id === first[i + 3])), 'the rest asked again, in order');
  });

  const badLater: [string, (b: MsgsBody) => MsgsBody][] = [
    ['an id it was not asked for', (b) => ({ ...b, later: ['01ARZ3NDEKTSV4RRFFQ69G5FAV'] })],
    ['an id it also sent', (b) => ({ ...b, later: [b.envs[0]!.id] })],
    ['no envelopes at all', (b) => ({ ...b, envs: [], later: b.envs.map((e) => e.id) })],
  ];
  for (const [what, rewrite] of badLater) {
    it(`G5 G13 a final MSGS whose later names ${what} is BAD_FRAME`, async () => {
      const r = await catchUpThrough(47, 60, rewrite);
      assert.deepEqual(r.dropped, ['BAD_FRAME:true']);
    });
  }

  it('G5 G13 a later list in a part that is not the last is BAD_FRAME', async () => {
    const r = await catchUpThrough(49, 60, (b) => ({ ...b, envs: b.envs.slice(0, 1), later: b.envs.slice(1).map((e) => e.id), last: false }));
    assert.deepEqual(r.dropped, ['BAD_FRAME:true']);
  });
});

describe('G5 later cannot stall', () => {
  it('G5 a holder answering one envelope and `later` just before each deadline holds its ids one deadline at most', async () => {
    const sim = await SyncSim.create({ seed: 59 });
    const all = await sim.fx.envelopes(300);
    let asked = 0;
    // Each answer cut to one envelope (the rest `later`) and sent 25 s late: with a fresh deadline per
    // re-ask, 128 ids would take 128 x 25 s from one request.
    const staller = await sim.addPeer({
      start: false,
      wrap: (t) =>
        wrapLinks(t, (link) => {
          const assembler = new ControlAssembler();
          return overrideLink(link, {
            send: (frame) => {
              const d = decodeFrame(frame);
              if (!d.ok || d.frame.kind !== PeerKind.MSGS) return link.send(frame);
              const whole = assembler.push(d.frame);
              if (!(whole instanceof Uint8Array)) return true;
              asked++;
              const b = parseControl(PeerKind.MSGS, whole)!;
              const cut = { ...b, envs: b.envs.slice(0, 1), later: [...b.envs.slice(1).map((e) => e.id), ...(b.later ?? [])] };
              sim.clock.setTimeout(() => {
                if (!link.closed) for (const f of encodeControl(PeerKind.MSGS, d.frame.reqId, cut)!) link.send(f);
              }, 25_000);
              return true;
            },
          });
        }),
    });
    const honest = await sim.addPeer({ start: false });
    for (const p of [staller, honest]) await p.engine.addMessages(all);
    const victim = await sim.addPeer({ start: false });
    const dropped: string[] = [];
    victim.engine.on('peerDropped', (e) => dropped.push(`${e.reason}:${e.banned}`));
    for (const p of [staller, victim]) await sim.start(p);
    const t0 = sim.clock.now();
    void victim.engine.syncNow();
    // The staller is asked first; the honest holder comes online while its answers are late.
    await sim.round();
    await sim.start(honest);
    while ((await victim.store.countMessages()) < all.length && sim.clock.now() - t0 < 120_000) await sim.round();
    assert.ok(asked > 0, 'the victim asked the staller');
    assert.deepEqual(dropped, []);
    assert.equal(await victim.store.countMessages(), all.length);
    // The staller's requests end at their first deadline (30 s), re-asks included; the next resync (60 s)
    // finds the ids at the honest holder. A fresh deadline per re-ask let it send one envelope per 25 s.
    const seconds = (sim.clock.now() - t0) / 1000;
    assert.ok(seconds <= 70, `${seconds} s`);
    await sim.stopAll();
  });
});

describe('G3 version 4', () => {
  it('G3 a version-3 peer (before `later`) hears PROTOCOL_MISMATCH and is not banned', async () => {
    const sim = await SyncSim.create({ seed: 51 });
    const victim = await sim.addPeer();
    const old = sim.addRaw();
    const connecting = old.transport.connect(victim.id);
    await sim.net.settle();
    const link = await connecting;
    const byes: string[] = [];
    link.onFrame((bytes) => {
      if (bytes[1] === PeerKind.BYE) byes.push(JSON.parse(new TextDecoder().decode(bytes.subarray(8))).reason);
    });
    // What a version-3 engine sends: its version in the header and in the HELLO.
    const hello = encodeFrame(PeerKind.HELLO, 0, utf8(JSON.stringify({ protocol: 3 })));
    hello[0] = 3;
    link.send(hello);
    await sim.net.settle();
    assert.deepEqual(byes, ['PROTOCOL_MISMATCH']);
    assert.equal(victim.engine.isBanned(old.id), false);
    await sim.stopAll();
  });
});
