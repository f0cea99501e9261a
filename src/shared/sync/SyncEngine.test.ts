import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { utf8 } from '../encoding';
import {
  type ControlBody,
  type ControlKind,
  type Frame,
  PEER_LIMITS,
  PEER_PROTOCOL_VERSION,
  PeerKind,
  decodeFrame,
  encodeControl,
  parseControl,
} from '../protocol/peer';
import type { Envelope } from '../protocol/relay';
import { verifyEnvelope, verifyEnvelopes } from '../protocol/signed';
import type { PeerLink, PeerTransport } from '../transport/PeerTransport';
import { HIGH_WATER_BYTES } from '../transport/PeerTransport';
import { REQUEST_BATCH } from './AttachmentSync';
import { CONTROL_BURST } from './Conn';
import { DENIAL_TOLERANCE, GETS_PER_PEER, MSGS_PIPELINE, PEER_QUEUE_MAX_ENVS, STORE_GROUP_MAX } from './MessageSync';
import { MemoryStore } from '../store/MemoryStore';
import { content } from './testing/fixtures';
import { type SimPeer, SyncSim } from './testing/SyncSim';
import { LyingStore, type Tamper, bogusChunkCount, corruptChunksFrom, kindOf, replay, tamperTransport } from './testing/tamper';
import { bytesToUlid } from './ulidBytes';
import { HOLE_SYNC_MIN_MS } from './SyncEngine';

const wireBytes = (envs: readonly Envelope[]): number => envs.reduce((s, e) => s + utf8(JSON.stringify(e)).length, 0);

async function ids(p: SimPeer): Promise<string[]> {
  return p.store.listIds({});
}

/** Records every frame a peer sends (kind, to), passing it through unchanged. */
function recorder(log: { kind: number; to: string; frame: Uint8Array }[]): Tamper {
  return (frame, to) => {
    log.push({ kind: kindOf(frame), to, frame });
    return [frame];
  };
}

/** A hand-written peer: opens a link, says HELLO, and collects what comes back. */
async function rawLink(sim: SyncSim, transport: PeerTransport, to: string, hello = true) {
  const connecting = transport.connect(to);
  await sim.net.settle();
  const link: PeerLink = await connecting;
  const frames: Frame[] = [];
  let closed = false;
  link.onFrame((bytes) => {
    const d = decodeFrame(bytes);
    if (d.ok) frames.push(d.frame);
  });
  link.onClose(() => (closed = true));
  const send = <K extends ControlKind>(kind: K, reqId: number, body: ControlBody<K>): void => {
    for (const f of encodeControl(kind, reqId, body)!) link.send(f);
  };
  if (hello) send(PeerKind.HELLO, 0, { protocol: PEER_PROTOCOL_VERSION });
  /** The reason in the BYE the engine sent, if any. */
  const bye = (): string | null => {
    const f = frames.find((x) => x.kind === PeerKind.BYE);
    return f ? (parseControl(PeerKind.BYE, f.body)?.reason ?? null) : null;
  };
  return { link, frames, send, bye, closed: () => closed };
}

/** A MemoryStore whose putMessages waits while `gated` (a slow disk), recording each put's ids. */
class GatedStore extends MemoryStore {
  gated = false;
  readonly puts: string[][] = [];
  private waiters: (() => void)[] = [];
  override async putMessages(envelopes: readonly Envelope[]): Promise<string[]> {
    this.puts.push(envelopes.map((e) => e.id));
    if (this.gated) await new Promise<void>((resolve) => this.waiters.push(resolve));
    return super.putMessages(envelopes);
  }
  release(): void {
    this.gated = false;
    for (const w of this.waiters.splice(0)) w();
  }
}

/** Rounds until `done` holds (at most `max`); returns the rounds taken. */
async function roundsUntil(sim: SyncSim, done: () => Promise<boolean>, max = 40): Promise<number> {
  for (let r = 0; r <= max; r++) {
    if (await done()) return r;
    await sim.round();
  }
  throw new Error(`not done after ${max} rounds`);
}

/** A holder of `parts` parts (MSGS_PIPELINE + 2) and a joiner (not started) whose store can be held shut. */
async function gatedCatchUp(seed: number, wrap?: (t: PeerTransport) => PeerTransport, parts = MSGS_PIPELINE + 2) {
  const sim = await SyncSim.create({ seed });
  const all = await sim.fx.envelopes(PEER_LIMITS.maxIdsPerRequest * parts);
  const holder = await sim.addPeer({ start: false });
  await holder.engine.addMessages(all);
  await sim.start(holder);
  await sim.net.settle();
  const store = new GatedStore({ now: () => sim.clock.now() });
  const verified: number[] = [];
  const joiner = await sim.addPeer({
    start: false,
    store,
    verifyEnvelopes: (envs, relayKey) => {
      verified.push(envs.length);
      return verifyEnvelopes(sim.fx.backend, envs, relayKey);
    },
    ...(wrap ? { wrap } : {}),
  });
  return { sim, parts, all, store, joiner, verified };
}

describe('G5 message catch-up', () => {
  it('G5 G2 a peer that was offline fetches exactly what it lacks, verified, about once', async () => {
    const sim = await SyncSim.create({ seed: 1 });
    const all = await sim.fx.envelopes(200);
    for (let i = 0; i < 3; i++) {
      const p = await sim.addPeer({ start: false });
      await p.engine.addMessages(all);
      await sim.start(p);
    }
    await sim.net.settle();
    const missing = all.filter((_, i) => i >= 150 || i % 10 === 3);
    const joiner = await sim.addPeer({ start: false });
    await joiner.engine.addMessages(all.filter((e) => !missing.includes(e)));
    const got: string[] = [];
    const carried: string[] = [];
    joiner.engine.on('messages', (e) => {
      got.push(...e.ids);
      carried.push(...e.envs.map((x) => x.id));
    });
    sim.net.resetStats();
    await sim.start(joiner);
    await sim.net.settle();

    assert.deepEqual(await ids(joiner), all.map((e) => e.id));
    assert.deepEqual(got.sort(), missing.map((e) => e.id).sort(), 'each missing envelope stored once');
    assert.deepEqual(carried.sort(), got, "the event carries the stored envelopes (listeners need not read them back)");
    for (const env of await joiner.store.getMessages(missing.map((e) => e.id))) {
      assert.deepEqual(await verifyEnvelope(sim.fx.backend, env!, sim.fx.relayKey), { ok: true });
    }
    const b = sim.net.bytes(joiner.id);
    const exchanged = b.sentControl + b.recvControl + b.sentPayload + b.recvPayload;
    assert.ok(exchanged <= 1.1 * wireBytes(missing) + 16 * 1024, `${exchanged} bytes for ${wireBytes(missing)} missing`);
    await sim.stopAll();
  });

  it('G5 G11 MSGS parts are verified while earlier parts are stored, stored in arrival order, those verified during a write in one write (STORE_GROUP_MAX)', async () => {
    const { sim, parts, all, store, joiner, verified } = await gatedCatchUp(41);
    store.gated = true;
    await sim.start(joiner);
    await roundsUntil(sim, async () => verified.length >= parts);
    await sim.round();
    await sim.round();
    // The first part waits in the store; the parts behind it were verified meanwhile and wait in the
    // store's queue (a part leaves the link's pipeline once queued: MSGS_PIPELINE bounds the parts not
    // yet queued, STORE_QUEUE_MAX_BYTES and STORE_GROUP_MAX the queue). One part at a time verified none ahead.
    assert.equal(store.puts.length, 1, 'one store at a time');
    assert.equal(verified.length, parts, 'every part verified ahead of the store');
    store.release();
    await roundsUntil(sim, async () => (await ids(joiner)).length === all.length);
    assert.deepEqual(await ids(joiner), all.map((e) => e.id));
    // The parts verified while the first was being written went into the next write together (one part
    // per write cost the browser a transaction, a live-query re-read and a render each: G5).
    const per = PEER_LIMITS.maxIdsPerRequest;
    assert.equal(store.puts[0]!.length, per, 'the first write is the first part');
    const queued = Math.min((parts - 1) * per, PEER_QUEUE_MAX_ENVS);
    assert.equal(store.puts[1]!.length, queued, 'the parts that waited are one write, as many as the queue takes');
    assert.equal(store.puts.length, 2 + Math.ceil(((parts - 1) * per - queued) / PEER_QUEUE_MAX_ENVS), `${store.puts.length} writes for ${parts} parts`);
    assert.ok(store.puts.every((p) => p.length <= STORE_GROUP_MAX));
    // Newest first, part by part, in arrival order: each part of 128 older than the one before.
    const stored = store.puts.flat();
    assert.equal(stored.length, all.length);
    for (let i = per; i < stored.length; i += per) assert.ok(stored[i + per - 1]! < stored[i - per]!, `part ${i / per} in arrival order`);
    await sim.stopAll();
  });

  it('G5 a GET_MSGS wholly received frees its slot for the next one while it is still being stored (GETS_PER_PEER open at the peer)', async () => {
    let gets = 0;
    const countGets: Tamper = (frame) => {
      if (kindOf(frame) === PeerKind.GET_MSGS) gets++;
      return [frame];
    };
    const { sim, parts, all, store, joiner } = await gatedCatchUp(47, (t) => tamperTransport(t, countGets));
    store.gated = true;
    await sim.start(joiner);
    // The first answers are in the pipeline, the first of them held in the store: the peer is asked for
    // the rest meanwhile (a slot held until stored asked for none until the store moved).
    await roundsUntil(sim, async () => gets >= parts);
    assert.equal(store.puts.length, 1, 'still the first write');
    assert.ok(parts > GETS_PER_PEER);
    store.release();
    await roundsUntil(sim, async () => (await ids(joiner)).length === all.length);
    assert.equal(gets, parts, 'each part asked for once');
    await sim.stopAll();
  });

  it('G5 a live message during a catch-up is written with the next write, in an event of its own (not behind the catch-up)', async () => {
    // More parts than the store's queue takes: the queue is full when the live message comes.
    const parts = (2 * STORE_GROUP_MAX) / PEER_LIMITS.maxIdsPerRequest;
    const { sim, all, store, joiner, verified } = await gatedCatchUp(43, undefined, parts);
    const events: { ids: string[]; from: string | null }[] = [];
    joiner.engine.on('messages', (e) => events.push({ ids: e.ids, from: e.from }));
    store.gated = true;
    await sim.start(joiner);
    await roundsUntil(sim, async () => verified.length >= PEER_QUEUE_MAX_ENVS / PEER_LIMITS.maxIdsPerRequest + MSGS_PIPELINE);
    await sim.round();
    // The relay delivers a new message while the first part is being written and the queue is full.
    const live = await sim.fx.envelope();
    const added = joiner.engine.addMessages([live]);
    await sim.round(); // verified meanwhile, it waits behind the write under way
    store.release();
    assert.deepEqual((await added).stored, [live.id]);
    const at = store.puts.findIndex((p) => p.includes(live.id));
    assert.equal(at, 1, 'written with the write after the one under way');
    assert.deepEqual(events.find((e) => e.ids.includes(live.id)), { ids: [live.id], from: null }, 'its own event, from the relay');
    await roundsUntil(sim, async () => (await ids(joiner)).length === all.length + 1);
    await sim.stopAll();
  });

  it('G5 a hole in the prev chain of a live message is filled from peers', async () => {
    const sim = await SyncSim.create({ seed: 2 });
    const first = await sim.fx.envelopes(50);
    const holder = await sim.addPeer({ start: false });
    const late = await sim.addPeer({ start: false });
    await holder.engine.addMessages(first);
    await late.engine.addMessages(first);
    await sim.start(holder);
    await sim.start(late);
    await sim.net.settle();
    // The late peer's relay connection was down while 30 more were posted; then one arrives live.
    const gap = await sim.fx.envelopes(30);
    const live = await sim.fx.envelope();
    await holder.engine.addMessages([...gap, live]);
    await late.engine.addMessages([live]);
    await sim.net.settle();
    assert.equal((await ids(late)).length, 81);
    assert.deepEqual(await ids(late), await ids(holder));
    await sim.stopAll();
  });

  it('G5 a second hole found soon after a catch-up is postponed, not dropped, and filled', async () => {
    const sim = await SyncSim.create({ seed: 4, tuning: { resyncIntervalMs: 0 } });
    const first = await sim.fx.envelopes(20);
    const holder = await sim.addPeer({ start: false });
    const late = await sim.addPeer({ start: false });
    await holder.engine.addMessages(first);
    await late.engine.addMessages(first);
    await sim.start(holder);
    await sim.start(late);
    await sim.net.settle();
    // A first hole: filled at once by a catch-up.
    const gap1 = await sim.fx.envelopes(5);
    const live1 = await sim.fx.envelope();
    await holder.engine.addMessages([...gap1, live1]);
    await late.engine.addMessages([live1]);
    await sim.net.settle();
    assert.equal((await ids(late)).length, 26);
    // A second hole within HOLE_SYNC_MIN_MS of that catch-up (no clock has moved): the holder gets the
    // gap only now, as a peer may get a message posted while the relay was down after we asked it.
    const gap2 = await sim.fx.envelopes(5);
    const live2 = await sim.fx.envelope();
    await late.engine.addMessages([live2]);
    await sim.net.settle();
    await holder.engine.addMessages([...gap2, live2]);
    await sim.net.settle();
    sim.clock.advance(HOLE_SYNC_MIN_MS);
    await sim.net.settle();
    assert.deepEqual(await ids(late), await ids(holder), 'the postponed catch-up filled the second hole');
    await sim.stopAll();
  });

  it('G2 addMessages stores what verifies and rejects forgeries with a reason', async () => {
    const sim = await SyncSim.create({ seed: 3 });
    const p = await sim.addPeer();
    const [good, other] = await sim.fx.envelopes(2);
    const foreign = await sim.fx.foreignRelay();
    const r = await p.engine.addMessages([good!, sim.fx.forged(other!), foreign, { ...good!, id: other!.id }]);
    assert.deepEqual(r.stored, [good!.id]);
    assert.deepEqual(
      r.rejected.map((x) => x.reason),
      ['BAD_SIGNATURE', 'BAD_SIGNATURE', 'BAD_SIGNATURE'],
    );
    assert.deepEqual(await ids(p), [good!.id]);
    await sim.stopAll();
  });
});

describe('G6 attachment gossip', () => {
  it('G6 a new attachment reaches every online peer; each receives the payload about once', async () => {
    const sim = await SyncSim.create({ seed: 4, bytesPerTurn: 64 * 1024 });
    const sent: { from: string; kind: number; to: string; frame: Uint8Array }[] = [];
    const peers: SimPeer[] = [];
    const data = content(100 * 1024, 4);
    const { env, att } = await sim.fx.attachedMessage(data);
    for (let i = 0; i < 16; i++) {
      let self = '';
      const log: { kind: number; to: string; frame: Uint8Array }[] = [];
      const p = await sim.addPeer({
        start: false,
        wrap: (t) => {
          self = t.localPeerId;
          return tamperTransport(t, (frame, to) => {
            sent.push({ from: self, kind: kindOf(frame), to, frame });
            return recorder(log)(frame, to);
          });
        },
      });
      await p.engine.addMessages([env]);
      peers.push(p);
    }
    for (const p of peers) await sim.start(p);
    await sim.net.settle();
    const author = peers[0]!;
    sim.net.resetStats();
    assert.deepEqual(await author.engine.publishAttachment(att, data), { ok: true });
    const rounds = await roundsUntil(sim, async () => {
      for (const p of peers) if (!(await p.store.hasAttachmentBytes(att.id))) return false;
      return true;
    });
    assert.ok(rounds <= Math.ceil(Math.log2(peers.length)) + 3, `${rounds} rounds`);
    for (const p of peers) assert.deepEqual((await p.store.getAttachment(att.id))?.bytes, data);

    let payload = 0;
    for (const p of peers) payload += sim.net.bytes(p.id).recvPayload;
    assert.ok(payload <= 1.2 * (peers.length - 1) * data.length, `redundancy ${payload / ((peers.length - 1) * data.length)}`);
    assert.equal(sim.net.bytes(author.id).recvPayload, 0, 'no bytes to a peer that has them');
    const offers = sent.filter((s) => s.kind === PeerKind.OFFER).map((s) => `${s.from}>${s.to}`);
    assert.equal(new Set(offers).size, offers.length, 'never offered twice to the same peer');
    for (const o of sent.filter((s) => s.kind === PeerKind.OFFER)) {
      assert.ok(o.frame.length < 120, 'an offer is an id and a digest, not content');
    }
    await sim.stopAll();
  });

  it('G6 a peer that joins later pulls the attachment of a message it catches up', async () => {
    const sim = await SyncSim.create({ seed: 5 });
    const data = content(40 * 1024, 5);
    const { env, att } = await sim.fx.attachedMessage(data);
    const author = await sim.addPeer({ start: false });
    await author.engine.addMessages([env]);
    await sim.start(author);
    assert.deepEqual(await author.engine.publishAttachment(att, data), { ok: true });
    await sim.net.settle();
    const late = await sim.addPeer();
    await roundsUntil(sim, () => late.store.hasAttachmentBytes(att.id), 10);
    assert.deepEqual((await late.store.getAttachment(att.id))?.bytes, data);
    await sim.stopAll();
  });

  it('G6 fetchAttachment fetches on demand and reports progress', async () => {
    const sim = await SyncSim.create({ seed: 6 });
    const data = content(70 * 1024, 6);
    const { env, att } = await sim.fx.attachedMessage(data);
    const holder = await sim.addPeer({ start: false });
    const reader = await sim.addPeer({ start: false, tuning: { wantAttachment: () => false } });
    for (const p of [holder, reader]) {
      await p.engine.addMessages([env]);
      await sim.start(p);
    }
    await holder.store.putAttachmentBytes(att.id, data);
    await sim.net.settle();
    assert.equal(await reader.store.hasAttachmentBytes(att.id), false, 'not wanted in the background');
    const progress: number[] = [];
    reader.engine.on('progress', (e) => progress.push(e.receivedBytes));
    const fetched = reader.engine.fetchAttachment(att.id);
    await sim.net.settle();
    const r = await fetched;
    assert.ok(r.ok);
    assert.deepEqual(r.bytes, data);
    assert.equal(progress.length, 5);
    assert.equal(progress.at(-1), data.length);
    assert.deepEqual(await reader.engine.fetchAttachment('01ARZ3NDEKTSV4RRFFQ69G5FAV'), { ok: false, reason: 'UNKNOWN' });
    await sim.stopAll();
  });
});

describe('G8 verified transfer', () => {
  it('G8 G13 a liar mid-transfer is dropped at its first bad chunk; the rest comes from an honest peer', async () => {
    const sim = await SyncSim.create({ seed: 7 });
    const data = content(8 * 16 * 1024, 7);
    const { env, att } = await sim.fx.attachedMessage(data);
    const liar = await sim.addPeer({ start: false, wrap: (t) => tamperTransport(t, corruptChunksFrom(3)) });
    const honestLog: { kind: number; to: string; frame: Uint8Array }[] = [];
    const honest = await sim.addPeer({ start: false, wrap: (t) => tamperTransport(t, recorder(honestLog)) });
    const reader = await sim.addPeer({ start: false });
    for (const p of [liar, honest, reader]) await p.engine.addMessages([env]);
    await honest.store.putAttachmentBytes(att.id, data);
    for (const p of [liar, honest, reader]) await sim.start(p);
    await sim.net.settle();
    const dropped: string[] = [];
    reader.engine.on('peerDropped', (e) => dropped.push(`${e.peerId}:${e.reason}`));
    // The liar offers first (it "published"), so the reader takes from it.
    assert.deepEqual(await liar.engine.publishAttachment(att, data), { ok: true });
    await sim.net.settle();
    assert.deepEqual(dropped, [`${liar.id}:WRONG_DIGEST`]);
    assert.ok(reader.engine.isBanned(liar.id));
    await roundsUntil(sim, () => reader.store.hasAttachmentBytes(att.id), 10);
    assert.deepEqual((await reader.store.getAttachment(att.id))?.bytes, data);
    const fromHonest = honestLog.filter((f) => f.kind === PeerKind.CHUNK && f.to === reader.id).length;
    assert.equal(fromHonest, 8 - 3, 'verified chunks are kept; only the rest is fetched again');
    await sim.stopAll();
  });

  it('G8 G13 each chunk is checked on arrival: a liar is banned at its first bad chunk while the reader is busy, the rest comes from an honest holder, nothing unverified is stored', async () => {
    const sim = await SyncSim.create({ seed: 17 });
    // `small` is one chunk (corruptChunksFrom(3) serves it intact); `photo` is 8 chunks, 3.. corrupted.
    const small = content(1000, 3);
    const photo = content(8 * 16 * 1024, 17);
    const a = await sim.fx.attachedMessage(small);
    const b = await sim.fx.attachedMessage(photo);
    // The reader's store writes `small` slowly (an IndexedDB write under load): while that write waits,
    // the reader's inbox for the liar's link is not handled, and the liar's chunks of `photo` arrive
    // behind it. A check made only when a frame is handled would see the bad chunk after the write.
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const puts: { id: string; bytes: Uint8Array }[] = [];
    class SlowStore extends MemoryStore {
      override async putAttachmentBytes(id: string, bytes: Uint8Array): Promise<boolean> {
        puts.push({ id, bytes: bytes.slice() });
        if (id === a.att.id) await gate;
        return super.putAttachmentBytes(id, bytes);
      }
    }
    const liar = await sim.addPeer({ start: false, wrap: (t) => tamperTransport(t, corruptChunksFrom(3)) });
    const honestLog: { kind: number; to: string; frame: Uint8Array }[] = [];
    const honest = await sim.addPeer({ start: false, wrap: (t) => tamperTransport(t, recorder(honestLog)) });
    const reader = await sim.addPeer({ start: false, store: new SlowStore({ now: () => sim.clock.now() }) });
    for (const p of [liar, honest, reader]) await p.engine.addMessages([a.env, b.env]);
    await honest.store.putAttachmentBytes(b.att.id, photo);
    for (const p of [liar, honest, reader]) await sim.start(p);
    await sim.net.settle();
    const dropped: string[] = [];
    reader.engine.on('peerDropped', (e) => dropped.push(`${e.peerId}:${e.reason}`));
    // The liar offers both first, so the reader fetches both from it on one link.
    assert.deepEqual(await liar.engine.publishAttachment(a.att, small), { ok: true });
    assert.deepEqual(await liar.engine.publishAttachment(b.att, photo), { ok: true });
    await sim.net.settle();
    assert.ok(puts.some((x) => x.id === a.att.id), 'the write of the small attachment is under way');
    assert.equal(await reader.store.hasAttachmentBytes(a.att.id), false, 'and has not finished');
    assert.deepEqual(dropped, [`${liar.id}:WRONG_DIGEST`], 'caught on arrival, not after the write');
    assert.ok(reader.engine.isBanned(liar.id));
    release();
    await roundsUntil(sim, () => reader.store.hasAttachmentBytes(b.att.id), 20);
    assert.deepEqual((await reader.store.getAttachment(b.att.id))?.bytes, photo);
    assert.deepEqual((await reader.store.getAttachment(a.att.id))?.bytes, small);
    // Nothing unverified ever reached the store: every write is the signed content.
    for (const put of puts) assert.deepEqual(put.bytes, put.id === a.att.id ? small : photo);
    const fromHonest = honestLog.filter((f) => f.kind === PeerKind.CHUNK && f.to === reader.id).length;
    assert.equal(fromHonest, 8 - 3, 'the chunks verified before the bad one are kept; only the rest is fetched again');
    await sim.stopAll();
  });

  it('G8 G11 a fast honest 16 MiB download asks in batches (one GET_CHUNKS per REQUEST_BATCH chunks) and stays inside the uploader\'s control budget', async () => {
    // No time passes, so the uploader's control tokens do not refill (512, then 64/s); one chunk moves per
    // turn, so chunks arrive one by one as on a real data channel (each handled before the next).
    const sim = await SyncSim.create({ seed: 23, bytesPerTurn: 17 * 1024 });
    const data = content(16 * 1024 * 1024, 23);
    const chunks = data.length / (16 * 1024);
    const { env, att } = await sim.fx.attachedMessage(data);
    const holder = await sim.addPeer({ start: false });
    const log: { kind: number; to: string; frame: Uint8Array }[] = [];
    const reader = await sim.addPeer({ start: false, wrap: (t) => tamperTransport(t, recorder(log)) });
    for (const p of [holder, reader]) await p.engine.addMessages([env]);
    await holder.store.putAttachmentBytes(att.id, data);
    for (const p of [holder, reader]) await sim.start(p);
    await sim.net.settle();
    const dropped: string[] = [];
    for (const p of [holder, reader]) p.engine.on('peerDropped', (e) => dropped.push(`${e.peerId}:${e.reason}`));
    const fetched = reader.engine.fetchAttachment(att.id);
    await sim.net.settle();
    const r = await fetched;
    assert.ok(r.ok, `fetched: ${JSON.stringify(r.ok ? '' : r.reason)}`);
    assert.deepEqual(dropped, []);
    const asks = log.filter((f) => f.kind === PeerKind.GET_CHUNKS).length;
    assert.ok(asks <= Math.ceil(chunks / REQUEST_BATCH), `${asks} GET_CHUNKS for ${chunks} chunks`);
    assert.ok(asks < CONTROL_BURST, 'within the burst an uploader allows');
    await sim.stopAll();
  });

  it('G8 a source that leaves mid-transfer: the transfer resumes from another holder', async () => {
    const sim = await SyncSim.create({ seed: 8, bytesPerTurn: 32 * 1024 });
    const data = content(12 * 16 * 1024, 8);
    const { env, att } = await sim.fx.attachedMessage(data);
    const author = await sim.addPeer({ start: false });
    const backup = await sim.addPeer({ start: false });
    const reader = await sim.addPeer({ start: false });
    for (const p of [author, backup, reader]) await p.engine.addMessages([env]);
    await backup.store.putAttachmentBytes(att.id, data);
    for (const p of [author, backup, reader]) await sim.start(p);
    await sim.net.settle();
    let received = 0;
    reader.engine.on('progress', (e) => (received = e.receivedBytes));
    sim.net.resetStats();
    assert.deepEqual(await author.engine.publishAttachment(att, data), { ok: true });
    let left = false;
    await sim.net.settle({
      onStep: () => {
        if (!left && received >= 3 * 16 * 1024) {
          left = true;
          void sim.leave(author);
        }
      },
    });
    assert.ok(left, 'the author left mid-transfer');
    assert.ok(received < data.length);
    await roundsUntil(sim, () => reader.store.hasAttachmentBytes(att.id), 10);
    assert.deepEqual((await reader.store.getAttachment(att.id))?.bytes, data);
    // Verified chunks survived the switch: at most the lost window was fetched twice.
    assert.ok(sim.net.bytes(reader.id).recvPayload <= data.length + 16 * 16 * 1024);
    await sim.stopAll();
  });
});

describe('G9 pacing', () => {
  it('G9 an uploader asked for more than its link buffers waits for drain and loses nothing', async () => {
    const sim = await SyncSim.create({ seed: 23, bytesPerTurn: 64 * 1024 });
    const files = [0, 1, 2, 3].map((i) => content(40 * 16 * 1024, 30 + i));
    const items = [];
    for (const f of files) items.push(await sim.fx.attachedMessage(f));
    let refused = 0;
    let maxBuffered = 0;
    const watch = (t: PeerTransport): PeerTransport => ({
        get localPeerId() {
          return t.localPeerId;
        },
        connect: async (id, o) => spy(await t.connect(id, o)),
      onLink: (h) => t.onLink((l) => h(spy(l))),
      close: () => t.close(),
    });
    const spy = (link: PeerLink): PeerLink => ({
      get remotePeerId() {
        return link.remotePeerId;
      },
      get closed() {
        return link.closed;
      },
      send(frame) {
        const ok = link.send(frame);
        if (!ok && !link.closed) refused++;
        maxBuffered = Math.max(maxBuffered, link.bufferedAmount());
        return ok;
      },
      bufferedAmount: () => link.bufferedAmount(),
      onFrame: (h) => link.onFrame(h),
      onDrain: (h) => link.onDrain(h),
      onClose: (h) => link.onClose(h),
      close: (r) => link.close(r),
    });
    const holder = await sim.addPeer({ start: false, wrap: watch });
    const reader = await sim.addPeer({ start: false, tuning: { chunkWindow: 32, wantAttachment: () => false } });
    for (const p of [holder, reader]) await p.engine.addMessages(items.map((x) => x.env));
    for (const [i, x] of items.entries()) await holder.store.putAttachmentBytes(x.att.id, files[i]!);
    for (const p of [holder, reader]) await sim.start(p);
    await sim.net.settle();
    const fetches = items.map((x) => reader.engine.fetchAttachment(x.att.id));
    await sim.net.settle();
    const results = await Promise.all(fetches);
    results.forEach((r, i) => assert.deepEqual(r.ok && r.bytes, files[i]));
    assert.ok(refused > 0, 'the link pushed back at least once');
    assert.ok(maxBuffered <= HIGH_WATER_BYTES, `buffered ${maxBuffered}`);
    await sim.stopAll();
  });
});

describe('G7 virtual peers serve last', () => {
  it('G7 a joiner fetches from a real peer even when a virtual peer holds the same', async () => {
    const sim = await SyncSim.create({ seed: 9 });
    const all = await sim.fx.envelopes(60);
    const vLog: { kind: number; to: string; frame: Uint8Array }[] = [];
    const real = await sim.addPeer({ start: false });
    const virtual = await sim.addPeer({ start: false, kind: 'virtual', wrap: (t) => tamperTransport(t, recorder(vLog)) });
    for (const p of [real, virtual]) {
      await p.engine.addMessages(all);
      await sim.start(p);
    }
    await sim.net.settle();
    const joiner = await sim.addPeer();
    await sim.net.settle();
    assert.equal((await ids(joiner)).length, 60);
    assert.equal(vLog.filter((f) => f.kind === PeerKind.MSGS).length, 0, 'the virtual peer sent no envelopes');

    // Messages only the virtual peer holds are fetched from it, after real peers had their chance.
    const extra = await sim.fx.envelopes(10);
    await virtual.engine.addMessages(extra);
    void joiner.engine.syncNow();
    await sim.net.settle();
    assert.equal((await ids(joiner)).length, 60);
    sim.clock.advance(2000);
    await sim.net.settle();
    assert.equal((await ids(joiner)).length, 70);
    await sim.stopAll();
  });

  it('G7 a virtual peer answers a request not marked lastResort only after its delay', async () => {
    const sim = await SyncSim.create({ seed: 10 });
    const [env] = await sim.fx.envelopes(1);
    const virtual = await sim.addPeer({ kind: 'virtual' });
    await virtual.engine.addMessages([env!]);
    const raw = sim.addRaw();
    const peer = await rawLink(sim, raw.transport, virtual.id);
    peer.send(PeerKind.GET_MSGS, 1, { ids: [env!.id] });
    await sim.net.settle();
    assert.equal(peer.frames.filter((f) => f.kind === PeerKind.MSGS).length, 0);
    sim.clock.advance(2000);
    await sim.net.settle();
    const msgs = peer.frames.filter((f) => f.kind === PeerKind.MSGS);
    assert.equal(msgs.length, 1);
    assert.equal(parseControl(PeerKind.MSGS, msgs[0]!.body)?.envs[0]?.id, env!.id);
    peer.send(PeerKind.GET_MSGS, 2, { ids: [env!.id], lastResort: true });
    await sim.net.settle();
    assert.equal(peer.frames.filter((f) => f.kind === PeerKind.MSGS).length, 2, 'lastResort: at once');
    await sim.stopAll();
  });
});

describe('G13 adversarial peers', () => {
  /** A victim, an honest holder of `all`, and an adversary; returns them started and settled. */
  async function setup(seed: number, adversary: (sim: SyncSim) => Promise<SimPeer>) {
    const sim = await SyncSim.create({ seed });
    const all = await sim.fx.envelopes(40);
    const honest = await sim.addPeer({ start: false });
    await honest.engine.addMessages(all);
    const bad = await adversary(sim);
    await sim.start(honest);
    await sim.start(bad);
    await sim.net.settle();
    const victim = await sim.addPeer({ start: false });
    const dropped: { peerId: string; reason: string; banned: boolean }[] = [];
    victim.engine.on('peerDropped', (e) => dropped.push(e));
    await sim.start(victim);
    await sim.net.settle();
    return { sim, all, honest, bad, victim, dropped };
  }

  it('G13 G2 forged signatures: nothing forged is stored, the forger is dropped, honest peers complete', async () => {
    let forged: Envelope[] = [];
    const { sim, all, bad, victim, dropped } = await setup(11, async (sim) => {
      const p = await sim.addPeer({ start: false });
      const own = await sim.fx.envelopes(5);
      forged = own.map((e) => sim.fx.forged(e));
      // Straight into its store: the adversary does not verify what it serves.
      await p.store.putMessages([...forged, await sim.fx.foreignRelay()]);
      return p;
    });
    assert.deepEqual(dropped, [{ peerId: bad.id, reason: 'BAD_SIGNATURE', banned: true }]);
    assert.deepEqual(await ids(victim), all.map((e) => e.id));
    assert.ok(victim.engine.isBanned(bad.id));
    for (const f of forged) assert.deepEqual(await victim.store.hasMessages([f.id]), [false]);
    await sim.stopAll();
  });

  it('G5 G13 a catch-up whose only peer was a forger stays wanted: the next honest peer online completes it', async () => {
    const sim = await SyncSim.create({ seed: 15 });
    const all = await sim.fx.envelopes(20);
    const bad = await sim.addPeer({ start: false });
    await bad.store.putMessages(all.map((e) => sim.fx.forged(e)));
    await sim.start(bad);
    const victim = await sim.addPeer({ start: false });
    const dropped: string[] = [];
    victim.engine.on('peerDropped', (e) => dropped.push(e.reason));
    await sim.start(victim);
    await sim.net.settle();
    assert.deepEqual(dropped, ['BAD_SIGNATURE']);
    assert.deepEqual(await ids(victim), [], 'nothing forged stored');
    // An honest holder comes online after the catch-up: the old code had marked it done and never asked.
    const honest = await sim.addPeer({ start: false });
    await honest.engine.addMessages(all);
    await sim.start(honest);
    await sim.net.settle();
    assert.deepEqual(await ids(victim), all.map((e) => e.id));
    await sim.stopAll();
  });

  it('G13 replayed envelopes drop the sender; nothing extra is stored', async () => {
    const { sim, all, bad, victim, dropped } = await setup(12, async (sim) => {
      const p = await sim.addPeer({ start: false, wrap: (t) => tamperTransport(t, replay(PeerKind.MSGS)) });
      await p.engine.addMessages([...(await sim.fx.envelopes(3))]);
      return p;
    });
    assert.deepEqual(dropped.map((d) => [d.peerId, d.reason]), [[bad.id, 'UNSOLICITED']]);
    const victimIds = await ids(victim);
    for (const e of all) assert.ok(victimIds.includes(e.id));
    assert.equal(victimIds.length, all.length + 3, 'the replayer’s valid first copies are kept, once');
    await sim.stopAll();
  });

  it('G13 a flood of made-up ids: the claimer is dropped, needs stay bounded, honest peers complete', async () => {
    const { sim, all, bad, victim, dropped } = await setup(13, async (sim) => {
      // 5,000 ids that look real (plausible times) but exist nowhere.
      const rng = sim.rng();
      const madeUp = Array.from({ length: 5000 }, () => {
        const b = new Uint8Array(16);
        const t = sim.clock.now() - rng.int(3_600_000);
        for (let j = 5, x = t; j >= 0; j--, x = Math.floor(x / 256)) b[j] = x % 256;
        for (let j = 6; j < 16; j++) b[j] = rng.int(256);
        return bytesToUlid(b);
      });
      return sim.addPeer({ start: false, store: new LyingStore(madeUp, { now: () => sim.clock.now() }) });
    });
    assert.deepEqual(dropped.map((d) => [d.peerId, d.reason]), [[bad.id, 'MADE_UP_IDS']]);
    assert.deepEqual(await ids(victim), all.map((e) => e.id));
    assert.equal(victim.engine.stats().pendingNeeds, 0, 'the made-up ids were forgotten with their claimer');
    assert.ok(DENIAL_TOLERANCE >= 1);
    await sim.stopAll();
  });

  it('G13 ids from the future are made up: dropped at once', async () => {
    const { sim, bad, dropped } = await setup(14, async (sim) => {
      const future = bytesToUlid(new Uint8Array([0x7f, 0, 0, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10]));
      return sim.addPeer({ start: false, store: new LyingStore([future], { now: () => sim.clock.now() }) });
    });
    assert.deepEqual(dropped.map((d) => [d.peerId, d.reason]), [[bad.id, 'MADE_UP_IDS']]);
    await sim.stopAll();
  });

  /** The adversary holds an attachment; the victim can reach only it first, then an honest holder. */
  async function attachmentAttack(seed: number, wrap: ((t: PeerTransport) => PeerTransport) | undefined, wrongBytes: boolean) {
    const sim = await SyncSim.create({ seed });
    const data = content(5 * 16 * 1024 + 7, seed);
    const { env, att } = await sim.fx.attachedMessage(data);
    const bad = await sim.addPeer({ start: false, wrap });
    const victim = await sim.addPeer({ start: false });
    const honest = await sim.addPeer({ start: false });
    for (const p of [bad, victim, honest]) await p.engine.addMessages([env]);
    const served = wrongBytes ? content(data.length, seed + 100) : data;
    await bad.store.putAttachmentBytes(att.id, served);
    await honest.store.putAttachmentBytes(att.id, data);
    const dropped: string[] = [];
    victim.engine.on('peerDropped', (e) => dropped.push(`${e.peerId}:${e.reason}`));
    await sim.start(bad);
    await sim.start(victim);
    await sim.net.settle();
    await roundsUntil(sim, async () => dropped.length > 0, 10);
    assert.equal(await victim.store.hasAttachmentBytes(att.id), false, 'nothing stored from the adversary');
    await sim.start(honest);
    await roundsUntil(sim, () => victim.store.hasAttachmentBytes(att.id), 12);
    assert.deepEqual((await victim.store.getAttachment(att.id))?.bytes, data);
    await sim.stopAll();
    return { dropped, bad };
  }

  it('G13 G8 wrong digest: content that does not match the signed metadata is refused', async () => {
    const { dropped, bad } = await attachmentAttack(15, undefined, true);
    assert.deepEqual(dropped, [`${bad.id}:WRONG_DIGEST`]);
  });

  it('G13 G8 bogus chunk counts are refused', async () => {
    const { dropped, bad } = await attachmentAttack(16, (t) => tamperTransport(t, bogusChunkCount(1000)), false);
    assert.deepEqual(dropped, [`${bad.id}:BAD_CHUNK_COUNT`]);
  });

  it('G13 replayed chunks are refused', async () => {
    const { dropped, bad } = await attachmentAttack(17, (t) => tamperTransport(t, replay(PeerKind.CHUNK)), false);
    assert.deepEqual(dropped, [`${bad.id}:UNSOLICITED`]);
  });

  it('G13 an offer whose digest contradicts the signed metadata drops the offerer', async () => {
    const sim = await SyncSim.create({ seed: 18 });
    const data = content(1000, 18);
    const { env, att } = await sim.fx.attachedMessage(data);
    const victim = await sim.addPeer({ start: false });
    await victim.engine.addMessages([env]);
    await sim.start(victim);
    const raw = sim.addRaw();
    const peer = await rawLink(sim, raw.transport, victim.id);
    peer.send(PeerKind.OFFER, 0, { id: att.id, sha256: 'A'.repeat(43) });
    await sim.net.settle();
    assert.equal(peer.bye(), 'WRONG_DIGEST');
    sim.clock.advance(1000);
    await sim.net.settle();
    assert.ok(peer.closed(), 'closed after the BYE had time to arrive');
    assert.ok(victim.engine.isBanned(raw.id));
    await sim.stopAll();
  });

  it('G13 G3 garbage is dropped; another protocol version is told so but not banned; frames before HELLO wait for it', async () => {
    const sim = await SyncSim.create({ seed: 19 });
    const victim = await sim.addPeer();
    const a = sim.addRaw();
    const garbage = await rawLink(sim, a.transport, victim.id, false);
    garbage.link.send(new Uint8Array([PEER_PROTOCOL_VERSION, 2, 3, 4, 5, 6, 7, 8, 9]));
    await sim.net.settle();
    assert.equal(garbage.bye(), 'BAD_FRAME');
    assert.ok(victim.engine.isBanned(a.id));

    const b = sim.addRaw();
    const future = await rawLink(sim, b.transport, victim.id, false);
    for (const f of encodeControl(PeerKind.HELLO, 0, { protocol: PEER_PROTOCOL_VERSION + 1 })!) future.link.send(f);
    await sim.net.settle();
    assert.equal(future.bye(), 'PROTOCOL_MISMATCH');
    assert.equal(victim.engine.isBanned(b.id), false);

    // A frame ahead of HELLO waits for it (a new channel may reorder its first frames), then is served.
    const c = sim.addRaw();
    const early = await rawLink(sim, c.transport, victim.id, false);
    for (const f of encodeControl(PeerKind.WANT, 1, { ids: ['01ARZ3NDEKTSV4RRFFQ69G5FAV'] })!) early.link.send(f);
    await sim.net.settle();
    assert.equal(early.frames.filter((f) => f.kind === PeerKind.HAVE).length, 0, 'not served before HELLO');
    early.send(PeerKind.HELLO, 0, { protocol: PEER_PROTOCOL_VERSION });
    await sim.net.settle();
    assert.equal(early.bye(), null);
    assert.equal(early.frames.filter((f) => f.kind === PeerKind.HAVE).length, 1, 'served once HELLO came');
    assert.equal(victim.engine.isBanned(c.id), false);

    // No HELLO at all: the link is closed after the request timeout, without blame.
    const d = sim.addRaw();
    const mute = await rawLink(sim, d.transport, victim.id, false);
    for (const f of encodeControl(PeerKind.WANT, 1, { ids: ['01ARZ3NDEKTSV4RRFFQ69G5FAV'] })!) mute.link.send(f);
    await sim.net.settle();
    sim.clock.advance(30_000 + 250);
    await sim.net.settle();
    assert.equal(mute.bye(), 'TIMEOUT');
    assert.equal(victim.engine.isBanned(d.id), false);
    await sim.stopAll();
  });

  it('G11 G13 a request flood drops the peer; it stays remembered as bad until its entry expires', async () => {
    const sim = await SyncSim.create({ seed: 20 });
    const victim = await sim.addPeer();
    const raw = sim.addRaw();
    const peer = await rawLink(sim, raw.transport, victim.id);
    for (let i = 0; i < 600; i++) peer.send(PeerKind.WANT, i + 1, { ids: ['01ARZ3NDEKTSV4RRFFQ69G5FAV'] });
    await sim.net.settle();
    assert.equal(peer.bye(), 'FLOOD');
    const answered = peer.frames.filter((f) => f.kind === PeerKind.HAVE).length;
    // The control budget (G11): a burst of CONTROL_BURST frames, of which HELLO took one; the rest is FLOOD.
    assert.ok(answered <= CONTROL_BURST - 1, `${answered} of 600 answered before the drop`);
    const again = await rawLink(sim, raw.transport, victim.id);
    await sim.net.settle();
    assert.equal(again.bye(), 'BANNED');
    sim.clock.advance(10 * 60 * 1000 + 1);
    const later = await rawLink(sim, raw.transport, victim.id);
    await sim.net.settle();
    assert.equal(later.bye(), null, 'accepted once the ban expired');
    assert.ok(later.frames.some((f) => f.kind === PeerKind.HELLO));
    await sim.stopAll();
  });

  it('G13 unsolicited envelopes drop the sender', async () => {
    const sim = await SyncSim.create({ seed: 21 });
    const victim = await sim.addPeer();
    const raw = sim.addRaw();
    const peer = await rawLink(sim, raw.transport, victim.id);
    const [env] = await sim.fx.envelopes(1);
    peer.send(PeerKind.MSGS, 12345, { envs: [env!], missing: [], last: true });
    await sim.net.settle();
    assert.equal(peer.bye(), 'UNSOLICITED');
    assert.deepEqual(await ids(victim), []);
    await sim.stopAll();
  });
});

describe('G10 G12 links and determinism', () => {
  it('G10 links stay within maxLinks (the idle-longest makes room) and idle links close', async () => {
    const sim = await SyncSim.create({ seed: 24, tuning: { resyncIntervalMs: 0 } });
    const all = await sim.fx.envelopes(30);
    for (let i = 0; i < 4; i++) {
      const p = await sim.addPeer({ start: false });
      await p.engine.addMessages(all.filter((_, j) => j % 4 !== i));
      await sim.start(p);
    }
    await sim.net.settle();
    const p = await sim.addPeer({ start: false, tuning: { maxLinks: 2, catchUpPeers: 4 } });
    let most = 0;
    await sim.start(p);
    await sim.net.settle({ onStep: () => (most = Math.max(most, p.engine.stats().links)) });
    assert.ok(most <= 2, `${most} links`);
    assert.equal((await ids(p)).length, 30, 'caught up through a rotating pair of links');
    sim.clock.advance(61_000);
    await sim.net.settle();
    assert.equal(p.engine.stats().links, 0, 'idle links closed');
    await sim.stopAll();
  });

  it('G12 the same seed replays the same run, byte for byte', async () => {
    const run = async (): Promise<string> => {
      const sim = await SyncSim.create({ seed: 25, bytesPerTurn: 64 * 1024 });
      const data = content(90_000, 25);
      const { env, att } = await sim.fx.attachedMessage(data);
      const history = await sim.fx.envelopes(20);
      const peers: SimPeer[] = [];
      for (let i = 0; i < 8; i++) {
        const p = await sim.addPeer({ start: false });
        await p.engine.addMessages(i % 2 === 0 ? [...history, env] : [env]);
        peers.push(p);
      }
      for (const p of peers) await sim.start(p);
      await sim.net.settle();
      await peers[0]!.engine.publishAttachment(att, data);
      const trace: string[] = [];
      for (let r = 0; r < 6; r++) {
        await sim.round();
        const have = await Promise.all(peers.map((p) => p.store.hasAttachmentBytes(att.id)));
        trace.push(have.map((h) => (h ? 1 : 0)).join(''));
      }
      for (const p of peers) trace.push(JSON.stringify(sim.net.bytes(p.id)));
      await sim.stopAll();
      return trace.join('\n');
    };
    assert.equal(await run(), await run());
  });
});

describe('G14 teardown', () => {
  it('G14 stop() leaves no timer, no link and no listener behind', async () => {
    const sim = await SyncSim.create({ seed: 22 });
    const all = await sim.fx.envelopes(20);
    const peers: SimPeer[] = [];
    for (let i = 0; i < 4; i++) {
      const p = await sim.addPeer({ start: false });
      if (i === 0) await p.engine.addMessages(all);
      await sim.start(p);
      peers.push(p);
    }
    const data = content(50_000, 22);
    const { env, att } = await sim.fx.attachedMessage(data);
    for (const p of peers) await p.engine.addMessages([env]);
    await peers[0]!.engine.publishAttachment(att, data);
    await sim.round();
    assert.ok(sim.net.openLinks > 0);
    for (const p of peers) await p.engine.stop();
    await sim.net.settle();
    assert.equal(sim.clock.pending, 0, 'timers');
    assert.equal(sim.net.openLinks, 0, 'links');
    assert.equal(sim.net.liveResources(), 0, 'link handlers and scheduled deliveries');
    for (const p of peers) assert.equal(p.engine.stats().links, 0);
    await sim.stopAll();
  });
});
