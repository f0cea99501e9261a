// Attachment transfer under honest trouble (SPEC.md G6, G8, G13, H14): slow links, two links between one
// pair, stalled links, wants nobody can serve, callers that give up, and what serving reads.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  type ControlBody,
  type ControlKind,
  type Frame,
  PEER_PROTOCOL_VERSION,
  PeerKind,
  decodeFrame,
  encodeControl,
} from '../protocol/peer';
import { IDBFactory, IDBKeyRange } from 'fake-indexeddb';
import { DexieStore } from '../store/DexieStore';
import { MemoryStore } from '../store/MemoryStore';
import { HIGH_WATER_BYTES, type PeerLink, type PeerTransport } from '../transport/PeerTransport';
import { UPLOAD_STALL_MS, WANT_PULL_PASSES } from './AttachmentSync';
import { content } from './testing/fixtures';
import { type SimPeer, SyncSim } from './testing/SyncSim';
import { kindOf, overrideLink, tamperTransport, wrapLinks } from './testing/tamper';
import { type ThrottledTransport, throttleTransport } from './testing/throttle';

/** Rounds until `done` holds (at most `max`); returns the rounds taken. */
async function roundsUntil(sim: SyncSim, done: () => Promise<boolean> | boolean, max: number): Promise<number> {
  for (let r = 0; r <= max; r++) {
    if (await done()) return r;
    await sim.round();
  }
  throw new Error(`not done after ${max} rounds`);
}

/** Every peerDropped event of every engine in the sim, as `dropper>dropped:reason[:banned]`. */
function watchDrops(peers: SimPeer[]): string[] {
  const out: string[] = [];
  for (const p of peers) p.engine.on('peerDropped', (e) => out.push(`${p.id}>${e.peerId}:${e.reason}${e.banned ? ':banned' : ''}`));
  return out;
}

/** A hand-written peer: opens a link, says HELLO, and collects what comes back. */
async function rawLink(sim: SyncSim, transport: PeerTransport, to: string) {
  const connecting = transport.connect(to);
  await sim.net.settle();
  const link: PeerLink = await connecting;
  const frames: Frame[] = [];
  link.onFrame((bytes) => {
    const d = decodeFrame(bytes);
    if (d.ok) frames.push(d.frame);
  });
  const send = <K extends ControlKind>(kind: K, reqId: number, body: ControlBody<K>): void => {
    for (const f of encodeControl(kind, reqId, body)!) link.send(f);
  };
  send(PeerKind.HELLO, 0, { protocol: PEER_PROTOCOL_VERSION });
  return { link, frames, send };
}

/** A MemoryStore that counts what serving reads. */
class CountingStore extends MemoryStore {
  wholeReads = 0;
  rangeBytes = 0;
  override async getAttachment(id: string) {
    const rec = await super.getAttachment(id);
    if (rec?.bytes) this.wholeReads++;
    return rec;
  }
  override async getAttachmentRange(id: string, start: number, end: number) {
    const got = await super.getAttachmentRange(id, start, end);
    this.rangeBytes += got?.length ?? 0;
    return got;
  }
}

describe('G13 slow and stalled links', () => {
  it('G13 G9 a slow honest uploader (16 KiB/s, 1 MiB asked ahead) is neither timed out nor banned; every download completes', async () => {
    const sim = await SyncSim.create({ seed: 101 });
    const files = [0, 1, 2, 3].map((i) => content(16 * 16 * 1024, 101 + i));
    const items = [];
    for (const f of files) items.push(await sim.fx.attachedMessage(f));
    const holder = await sim.addPeer({ start: false, wrap: (t) => throttleTransport(t, sim.clock, 16 * 1024) });
    const reader = await sim.addPeer({ start: false, tuning: { wantAttachment: () => false } });
    for (const p of [holder, reader]) await p.engine.addMessages(items.map((x) => x.env));
    for (const [i, x] of items.entries()) await holder.store.putAttachmentBytes(x.att.id, files[i]!);
    const drops = watchDrops([holder, reader]);
    for (const p of [holder, reader]) await sim.start(p);
    await sim.net.settle();
    const results = items.map((x) => reader.engine.fetchAttachment(x.att.id));
    let settled = 0;
    for (const r of results) void r.then(() => settled++);
    // 1 MiB at 16 KiB/s is 64 s; the last chunk asked at the start arrives ~64 s later, far past the 30 s
    // request timeout: only the link's steady progress keeps it.
    const rounds = await roundsUntil(sim, () => settled === items.length, 4 * 120);
    assert.ok(rounds * sim.intervalMs >= 60_000, `took ${rounds} rounds: the link really was slow`);
    (await Promise.all(results)).forEach((r, i) => assert.deepEqual(r.ok && r.bytes, files[i]));
    assert.deepEqual(drops, []);
    assert.equal(reader.engine.isBanned(holder.id), false);
    await sim.stopAll();
  });

  it('G13 a link that moves nothing for the request timeout is closed without a ban; the download moves on', async () => {
    const sim = await SyncSim.create({ seed: 102 });
    const data = content(3 * 16 * 1024, 102);
    const { env, att } = await sim.fx.attachedMessage(data);
    const victim = await sim.addPeer({ start: false, tuning: { wantAttachment: () => false } });
    const honest = await sim.addPeer({ start: false });
    for (const p of [victim, honest]) await p.engine.addMessages([env]);
    await honest.store.putAttachmentBytes(att.id, data);
    await sim.start(victim);
    const drops = watchDrops([victim]);
    // A stalled peer: offers the attachment, is asked for its hash list, and never answers.
    const raw = sim.addRaw();
    const stalled = await rawLink(sim, raw.transport, victim.id);
    stalled.send(PeerKind.OFFER, 1, { id: att.id, sha256: att.meta.sha256 });
    const fetched = victim.engine.fetchAttachment(att.id);
    await sim.net.settle();
    assert.ok(stalled.frames.some((f) => f.kind === PeerKind.GET_HASHES), 'the victim asked the stalled peer');
    const timeoutRounds = Math.ceil(30_000 / sim.intervalMs);
    await roundsUntil(sim, () => drops.length > 0, timeoutRounds + 4);
    // Its links (the one it opened, and the victim's own catch-up link to it) close for TIMEOUT, unbanned.
    assert.ok(drops.length >= 1);
    for (const d of drops) assert.equal(d, `${victim.id}>${raw.id}:TIMEOUT`);
    assert.equal(victim.engine.isBanned(raw.id), false, 'a timeout is not misbehaviour');
    await sim.start(honest);
    await roundsUntil(sim, () => victim.store.hasAttachmentBytes(att.id), 40);
    const r = await fetched;
    assert.deepEqual(r.ok && r.bytes, data);
    await sim.stopAll();
  });
});

describe('G8 G10 two links between one pair of honest peers', () => {
  it('G8 G10 both connect at once; the spare link closing mid-transfer does not restart the transfer or cost a ban', async () => {
    const sim = await SyncSim.create({ seed: 103 });
    const data = content(32 * 16 * 1024, 103);
    const { env, att } = await sim.fx.attachedMessage(data);
    let slow: ThrottledTransport | null = null;
    const holder = await sim.addPeer({
      start: false,
      wrap: (t) => (slow = throttleTransport(t, sim.clock, 64 * 1024)),
    });
    const reader = await sim.addPeer({ start: false });
    for (const p of [holder, reader]) await p.engine.addMessages([env]);
    await holder.store.putAttachmentBytes(att.id, data);
    const drops = watchDrops([holder, reader]);
    // Started in the same step: each catches up with the other at once, so each opens a link.
    holder.online = true;
    reader.online = true;
    sim.publishRoster();
    await Promise.all([holder.engine.start(), reader.engine.start()]);
    await sim.net.settle();
    const links = slow!.links;
    assert.equal(links.length, 2, 'two links between the pair');
    sim.net.resetStats();
    let got = 0;
    reader.engine.on('progress', (e) => (got = e.receivedBytes));
    await roundsUntil(sim, () => got >= 8 * 16 * 1024, 40);
    const [live, spare] = links[0]!.sentBytes >= links[1]!.sentBytes ? [links[0]!, links[1]!] : [links[1]!, links[0]!];
    assert.ok(live.sentBytes > 8 * 16 * 1024 && spare.sentBytes < 16 * 1024, 'chunks go on one link');
    spare.link.close();
    await roundsUntil(sim, () => reader.store.hasAttachmentBytes(att.id), 80);
    assert.deepEqual((await reader.store.getAttachment(att.id))?.bytes, data);
    assert.deepEqual(drops, []);
    assert.equal(sim.net.bytes(reader.id).recvPayload, data.length, 'no chunk fetched twice');
    await sim.stopAll();
  });
});

describe('G6 wants that end', () => {
  it('G6 a want nobody can serve backs off and gives up: fetch() settles NOT_FOUND, WANT frames stay bounded', async () => {
    const sim = await SyncSim.create({ seed: 104 });
    const data = content(1000, 104);
    const { env } = await sim.fx.attachedMessage(data);
    const att = env.post.attachments[0]!;
    const wants: string[] = [];
    const reader = await sim.addPeer({
      start: false,
      tuning: { wantAttachment: () => false },
      wrap: (t) => tamperTransport(t, (f, to) => (kindOf(f) === PeerKind.WANT && wants.push(to), [f])),
    });
    const others = [await sim.addPeer({ start: false }), await sim.addPeer({ start: false })];
    for (const p of [reader, ...others]) {
      await p.engine.addMessages([env]);
      await sim.start(p);
    }
    await sim.net.settle();
    let result: unknown = null;
    void reader.engine.fetchAttachment(att.id).then((r) => (result = r));
    const rounds = await roundsUntil(sim, () => result !== null, 40 * 4);
    assert.deepEqual(result, { ok: false, reason: 'NOT_FOUND' });
    assert.ok(rounds * sim.intervalMs <= 40_000, `gave up after ${rounds * sim.intervalMs} ms`);
    // One WANT per peer per pass (plus the first urgent ask), not 4 a second for ever.
    assert.ok(wants.length <= (WANT_PULL_PASSES + 1) * others.length, `${wants.length} WANT frames`);
    assert.equal(reader.engine.stats().wanted, 0, 'the want is gone');
    const before = wants.length;
    for (let i = 0; i < 4 * 60; i++) await sim.round();
    assert.equal(wants.length, before, 'no WANT after giving up');
    await sim.stopAll();
  });

  it('G6 a peer that answers HAVE and then never serves cannot keep a want asking: it still gives up', async () => {
    const sim = await SyncSim.create({ seed: 107 });
    const { env, att } = await sim.fx.attachedMessage(content(1000, 107));
    const reader = await sim.addPeer({ start: false, tuning: { wantAttachment: () => false } });
    await reader.engine.addMessages([env]);
    await sim.start(reader);
    const raw = sim.addRaw();
    let hashAsks = 0;
    // Claims everything it is asked about, then says NOT_FOUND when asked for the hash list.
    raw.transport.onLink((link) => {
      const send = <K extends ControlKind>(kind: K, reqId: number, body: ControlBody<K>): void => {
        for (const f of encodeControl(kind, reqId, body)!) link.send(f);
      };
      send(PeerKind.HELLO, 0, { protocol: PEER_PROTOCOL_VERSION });
      link.onFrame((bytes) => {
        const d = decodeFrame(bytes);
        if (!d.ok) return;
        if (d.frame.kind === PeerKind.WANT) send(PeerKind.HAVE, d.frame.reqId, { ids: [att.id] });
        if (d.frame.kind === PeerKind.GET_HASHES) {
          hashAsks++;
          send(PeerKind.NACK, d.frame.reqId, { reason: 'NOT_FOUND' });
        }
      });
    });
    sim.publishRoster();
    let result: unknown = null;
    void reader.engine.fetchAttachment(att.id).then((r) => (result = r));
    await roundsUntil(sim, () => result !== null, 40 * 4);
    assert.deepEqual(result, { ok: false, reason: 'NOT_FOUND' });
    assert.ok(hashAsks <= WANT_PULL_PASSES + 1, `${hashAsks} GET_HASHES`);
    await sim.stopAll();
  });

  it('G6 the last caller aborting ends an on-demand want; fetching again completes without a ban', async () => {
    const sim = await SyncSim.create({ seed: 105 });
    const data = content(24 * 16 * 1024, 105);
    const missing = await sim.fx.attachedMessage(content(500, 1));
    const { env, att } = await sim.fx.attachedMessage(data);
    const holder = await sim.addPeer({ start: false, wrap: (t) => throttleTransport(t, sim.clock, 32 * 1024) });
    // A window smaller than the content, so an abort leaves chunks never asked for.
    const reader = await sim.addPeer({ start: false, tuning: { wantAttachment: () => false, chunkWindow: 16 } });
    for (const p of [holder, reader]) await p.engine.addMessages([env, missing.env]);
    await holder.store.putAttachmentBytes(att.id, data);
    const drops = watchDrops([holder, reader]);
    for (const p of [holder, reader]) await sim.start(p);
    await sim.net.settle();

    // Nobody holds `missing`: an aborted fetch leaves nothing running.
    const ac = new AbortController();
    const gone = reader.engine.fetchAttachment(missing.att.id, { signal: ac.signal });
    await sim.round();
    ac.abort();
    assert.deepEqual(await gone, { ok: false, reason: 'ABORTED' });
    assert.equal(reader.engine.stats().wanted, 0);

    // Aborted mid-transfer, then opened again: the chunks asked for before are not asked again on the
    // same link (the uploader would take that as a replay), and the content arrives whole.
    const first = new AbortController();
    let got = 0;
    reader.engine.on('progress', (e) => (got = e.receivedBytes));
    const aborted = reader.engine.fetchAttachment(att.id, { signal: first.signal });
    await roundsUntil(sim, () => got >= 4 * 16 * 1024, 40);
    first.abort();
    assert.deepEqual(await aborted, { ok: false, reason: 'ABORTED' });
    await sim.round();
    const again = reader.engine.fetchAttachment(att.id);
    let done: unknown = null;
    void again.then((r) => (done = r));
    await roundsUntil(sim, () => done !== null, 80);
    assert.deepEqual((await again).ok && (await again as { bytes: Uint8Array }).bytes, data);
    assert.deepEqual(drops, []);

    // Aborted, and opened again only once the want ended: its chunks were asked for on this link, so
    // the restarted download takes a fresh link to the same holder (the old one closes IDLE, unbanned).
    const other = await sim.fx.attachedMessage(content(24 * 16 * 1024, 106));
    for (const p of [holder, reader]) await p.engine.addMessages([other.env]);
    await holder.store.putAttachmentBytes(other.att.id, content(24 * 16 * 1024, 106));
    const third = new AbortController();
    got = 0;
    const cut = reader.engine.fetchAttachment(other.att.id, { signal: third.signal });
    await roundsUntil(sim, () => got >= 4 * 16 * 1024, 40);
    third.abort();
    assert.deepEqual(await cut, { ok: false, reason: 'ABORTED' });
    await roundsUntil(sim, () => reader.engine.stats().wanted === 0, 80);
    const last = reader.engine.fetchAttachment(other.att.id);
    let lastDone: unknown = null;
    void last.then((r) => (lastDone = r));
    await roundsUntil(sim, () => lastDone !== null, 120);
    assert.deepEqual((await last).ok && ((await last) as { bytes: Uint8Array }).bytes, content(24 * 16 * 1024, 106));
    assert.deepEqual(drops, [`${reader.id}>${holder.id}:IDLE`], "one fresh link, no blame");
    await sim.stopAll();
  });
});

describe('G8 H14 serving reads ranges', () => {
  it('G8 H14 chunks are served by range reads, the hash list is computed once, and an offer answer reads no content', async () => {
    const sim = await SyncSim.create({ seed: 106 });
    const data = content(40 * 16 * 1024 + 5, 106);
    const { env, att } = await sim.fx.attachedMessage(data);
    const store = new CountingStore({ now: () => sim.clock.now() });
    const holder = await sim.addPeer({ start: false, store });
    const readers = [0, 1].map(() => sim.addPeer({ start: false, tuning: { wantAttachment: () => false } }));
    const [a, b] = await Promise.all(readers);
    for (const p of [holder, a!, b!]) await p.engine.addMessages([env]);
    await store.putAttachmentBytes(att.id, data);
    for (const p of [holder, a!, b!]) await sim.start(p);
    await sim.net.settle();
    for (const r of [a!, b!]) {
      const got = r.engine.fetchAttachment(att.id);
      await sim.net.settle();
      assert.deepEqual(((await got) as { bytes: Uint8Array }).bytes, data);
    }
    assert.equal(store.wholeReads, 0, 'serving never loaded the whole attachment');
    // Hashing once (one pass) plus each reader's chunks once, plus one-byte probes.
    assert.ok(store.rangeBytes <= 3 * data.length + 64, `read ${store.rangeBytes} bytes for ${data.length}`);
    // "Do you have it?" is the bytes check.
    const raw = sim.addRaw();
    const peer = await rawLink(sim, raw.transport, holder.id);
    peer.send(PeerKind.OFFER, 0, { id: att.id, sha256: att.meta.sha256 });
    await sim.net.settle();
    const reply = peer.frames.find((f) => f.kind === PeerKind.OFFER_REPLY);
    assert.ok(reply && new TextDecoder().decode(reply.body).includes('"have"'));
    assert.equal(store.wholeReads, 0);
    await sim.stopAll();
  });

  it('G8 H14 a DexieStore holder serves from its rows: the reader gets the content whole', async () => {
    const sim = await SyncSim.create({ seed: 108 });
    const data = content(5 * 16 * 1024 + 77, 108);
    const { env, att } = await sim.fx.attachedMessage(data);
    const dexie = new DexieStore('holder', { indexedDB: new IDBFactory(), IDBKeyRange });
    // The simulator types its stores as MemoryStore; the engine needs only HistoryStore.
    const holder = await sim.addPeer({ start: false, store: dexie as unknown as MemoryStore });
    const reader = await sim.addPeer({ start: false, tuning: { wantAttachment: () => false } });
    for (const p of [holder, reader]) await p.engine.addMessages([env]);
    assert.equal(await dexie.putAttachmentBytes(att.id, data), true);
    for (const p of [holder, reader]) await sim.start(p);
    await sim.net.settle();
    const got = reader.engine.fetchAttachment(att.id);
    let done: unknown = null;
    void got.then((r) => (done = r));
    await roundsUntil(sim, () => done !== null, 40);
    assert.deepEqual(((await got) as { bytes: Uint8Array }).bytes, data);
    await sim.stopAll();
  });
});

describe('G9 uploads are served in the order their transfers started', () => {
  /** The chunk indices a peer's links took (send returned true) for each remote peer, in order. */
  function chunkLog(log: { to: string; index: number }[]) {
    return (t: PeerTransport): PeerTransport =>
      wrapLinks(t, (link) =>
        overrideLink(link, {
          send(frame) {
            const ok = link.send(frame);
            if (ok && kindOf(frame) === PeerKind.CHUNK) log.push({ to: link.remotePeerId, index: new DataView(frame.buffer, frame.byteOffset).getUint32(8 + 16) });
            return ok;
          },
        }),
      );
  }

  it('G9 two peers fetch one photo from one holder: the first asker gets all of it before the second gets more than one read run', async () => {
    // 64 KiB per link and turn: the first asker's link stays above the low-water mark, the uplink busy.
    const sim = await SyncSim.create({ seed: 131, bytesPerTurn: 64 * 1024 });
    const data = content(128 * 16 * 1024, 131);
    const { env, att } = await sim.fx.attachedMessage(data);
    const log: { to: string; index: number }[] = [];
    const holder = await sim.addPeer({ start: false, wrap: chunkLog(log) });
    const readers = [0, 1].map(() => sim.addPeer({ start: false, tuning: { wantAttachment: () => false } }));
    const [first, second] = await Promise.all(readers);
    for (const p of [holder, first!, second!]) await p.engine.addMessages([env]);
    await holder.store.putAttachmentBytes(att.id, data);
    const drops = watchDrops([holder, first!, second!]);
    for (const p of [holder, first!, second!]) await sim.start(p);
    await sim.net.settle();
    const a = first!.engine.fetchAttachment(att.id);
    await sim.net.step(); // the first asks first
    const b = second!.engine.fetchAttachment(att.id);
    await sim.net.settle();
    const [ra, rb] = await Promise.all([a, b]);
    assert.deepEqual(ra.ok && ra.bytes, data);
    assert.deepEqual(rb.ok && rb.bytes, data);
    const lastToFirst = log.findLastIndex((c) => c.to === first!.id);
    const toSecondMeanwhile = log.slice(0, lastToFirst).filter((c) => c.to === second!.id).length;
    assert.equal(log.filter((c) => c.to === first!.id).length, 128, 'each chunk once to the first');
    assert.equal(log.filter((c) => c.to === second!.id).length, 128, 'each chunk once to the second');
    // Round robin (the old loop) sent the second about half of it meanwhile.
    assert.ok(toSecondMeanwhile <= 16, `${toSecondMeanwhile} chunks went to the second before the first had all`);
    assert.deepEqual(drops, []);
    await sim.stopAll();
  });

  it('G9 a first asker whose link stops moving holds the others back for UPLOAD_STALL_MS only', async () => {
    const sim = await SyncSim.create({ seed: 132, bytesPerTurn: 64 * 1024 });
    const data = content(128 * 16 * 1024, 132);
    const { env, att } = await sim.fx.attachedMessage(data);
    // The holder's link to the first asker freezes after 32 chunks: it refuses every frame, its buffer
    // stays full and never drains (a peer that stopped reading).
    let firstId = '';
    let toFirst = 0;
    const freeze = (link: PeerLink): PeerLink => {
      const frozen = () => link.remotePeerId === firstId && toFirst >= 32;
      return overrideLink(link, {
        send(frame) {
          if (frozen()) return false;
          if (link.remotePeerId === firstId && kindOf(frame) === PeerKind.CHUNK) toFirst++;
          return link.send(frame);
        },
        bufferedAmount: () => (frozen() ? HIGH_WATER_BYTES : link.bufferedAmount()),
        onDrain: (h) => link.onDrain(() => (frozen() ? undefined : h())),
      });
    };
    const holder = await sim.addPeer({ start: false, wrap: (t) => wrapLinks(t, freeze) });
    const [first, second] = await Promise.all([0, 1].map(() => sim.addPeer({ start: false, tuning: { wantAttachment: () => false } })));
    firstId = first!.id;
    for (const p of [holder, first!, second!]) await p.engine.addMessages([env]);
    await holder.store.putAttachmentBytes(att.id, data);
    for (const p of [holder, first!, second!]) await sim.start(p);
    await sim.net.settle();
    void first!.engine.fetchAttachment(att.id);
    await sim.net.step();
    const b = second!.engine.fetchAttachment(att.id);
    let done = false;
    void b.then(() => (done = true));
    await sim.net.settle();
    assert.ok(toFirst >= 32 && !done, 'the first asker froze while the second waited behind it');
    const rounds = await roundsUntil(sim, () => done, 40);
    assert.ok(rounds * sim.intervalMs <= UPLOAD_STALL_MS + 2 * sim.intervalMs, `the second waited ${rounds} rounds`);
    const rb = await b;
    assert.deepEqual(rb.ok && rb.bytes, data);
    await sim.stopAll();
  });
});
