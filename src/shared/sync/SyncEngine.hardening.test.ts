// The engine against peers that stall, hog, bomb or simply arrive early (issue 7: items 7, 9, 12, 13),
// on the simulator. Each test is named after the SPEC rule it holds the engine to.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { PEER_LIMITS, PeerKind, encodeControl } from '../protocol/peer';
import type { IdRange } from '../store/HistoryStore';
import { MemoryStore } from '../store/MemoryStore';
import { INBOX_MAX_BYTES } from './Conn';
import { RECON_BURST, RECON_PER_SECOND } from './MessageSync';
import { MAX_LINKS_PER_USER, SYNC_DEFAULTS } from './SyncEngine';
import { runLinkHog } from './testing/adversaries/linkHog';
import { runReconBomb } from './testing/adversaries/reconBomb';
import { runStaller } from './testing/adversaries/staller';
import { SyncSim } from './testing/SyncSim';
import { kindOf, tamperTransport } from './testing/tamper';

/** A MemoryStore whose listIds waits until released (an index load that takes a while), counting calls. */
class SlowListStore extends MemoryStore {
  gated = false;
  listCalls = 0;
  private waiters: (() => void)[] = [];
  override async listIds(range: IdRange, channel?: string): Promise<string[]> {
    this.listCalls++;
    if (this.gated) await new Promise<void>((resolve) => this.waiters.push(resolve));
    return super.listIds(range, channel);
  }
  release(): void {
    this.gated = false;
    for (const w of this.waiters.splice(0)) w();
  }
}

describe('G5 deadlines: a staller cannot hold a catch-up', () => {
  for (const seed of [1, 2]) {
    it(`G5 a peer answering GET_MSGS in dribbles of non-final parts delays delivery by at most one deadline per staller (seed ${seed})`, async () => {
      const r = await runStaller(seed);
      assert.ok(r.stallerAsked > 0, 'the victim did ask a staller');
      assert.equal(r.result.honestDelivery, 1);
      assert.equal(r.result.honestBans, 0);
      // Two stallers, each costing one request deadline at most, then the honest holder serves.
      assert.ok(r.elapsedMs <= 3 * SYNC_DEFAULTS.requestTimeoutMs, `${r.elapsedMs} ms to deliver`);
    });
  }

  it('G5 G13 a non-final MSGS without envelopes drops the sender; the rest comes from an honest peer', async () => {
    const sim = await SyncSim.create({ seed: 31 });
    const all = await sim.fx.envelopes(60);
    // Every MSGS piece it sends becomes an empty non-final part under the same request id.
    const bad = await sim.addPeer({
      start: false,
      wrap: (t) =>
        tamperTransport(t, (frame) => {
          if (kindOf(frame) !== PeerKind.MSGS) return [frame];
          const reqId = new DataView(frame.buffer, frame.byteOffset).getUint32(4);
          return encodeControl(PeerKind.MSGS, reqId, { envs: [], missing: [], last: false })!;
        }),
    });
    await bad.engine.addMessages(all);
    await sim.start(bad);
    const victim = await sim.addPeer({ start: false });
    const dropped: string[] = [];
    victim.engine.on('peerDropped', (e) => dropped.push(`${e.peerId}:${e.reason}:${e.banned}`));
    await sim.start(victim);
    await sim.net.settle();
    assert.deepEqual(dropped, [`${bad.id}:BAD_FRAME:true`]);
    const honest = await sim.addPeer({ start: false });
    await honest.engine.addMessages(all);
    await sim.start(honest);
    void victim.engine.syncNow();
    await sim.net.settle();
    assert.equal(await victim.store.countMessages(), 60);
    await sim.stopAll();
  });
});

describe('G10 G11 one user cannot take every link or unbounded memory', () => {
  it('G10 G11 a link hog with many sessions holds at most MAX_LINKS_PER_USER links and INBOX_MAX_BYTES each', async () => {
    const r = await runLinkHog(2);
    assert.ok(r.sessions > MAX_LINKS_PER_USER, 'it tried more sessions than it may hold');
    assert.ok(r.maxOpenLinks <= MAX_LINKS_PER_USER, `${r.maxOpenLinks} hog links open at once`);
    assert.ok(r.flooded > 0, 'the links it got were dropped as FLOOD once their inbox was full');
    const bound = MAX_LINKS_PER_USER * (INBOX_MAX_BYTES + PEER_LIMITS.maxControlBodyBytes) + 1024 * 1024;
    assert.ok(r.result.victimPeakBytes <= bound, `peak ${r.result.victimPeakBytes} > ${bound}`);
    assert.equal(r.result.honestDelivery, 1);
    assert.equal(r.result.honestBans, 0);
  });

  it('G4 G11 a reconciliation bomb gets RECON_BURST then RECON_PER_SECOND served per link, each at most one pass over the index', async () => {
    const r = await runReconBomb(2);
    const seconds = 30;
    const links = MAX_LINKS_PER_USER;
    assert.ok(r.served <= links * (RECON_BURST + RECON_PER_SECOND * seconds + 1), `${r.served} of ${r.sent} served`);
    assert.equal(r.served + r.nacked, r.sent, 'every RECON was answered, served or NACK FLOOD; the bomber was not banned');
    // Ids summed into fingerprints per served RECON: at most two passes over the victim's ~100k ids.
    const perServed = (r.scannedPerSecond * seconds) / r.served;
    assert.ok(perServed <= 2 * 100_200, `${Math.round(perServed)} ids summed per served RECON`);
    assert.equal(r.result.honestDelivery, 1);
    assert.equal(r.result.honestBans, 0);
  });
});

describe('G3 G10 early links and early frames', () => {
  it('G10 a link that arrives while start() loads the index is served, and nobody times out on it', async () => {
    const sim = await SyncSim.create({ seed: 32 });
    const honest = await sim.addPeer();
    const own = await sim.fx.envelopes(30);
    const store = new SlowListStore({ now: () => sim.clock.now() });
    await store.putMessages(own);
    store.gated = true;
    const victim = await sim.addPeer({ start: false, store });
    const drops: string[] = [];
    honest.engine.on('peerDropped', (e) => drops.push(`${e.peerId}:${e.reason}`));
    // Presence first (the honest peer links at once), then the engine starts and loads slowly.
    const starting = sim.start(victim);
    await sim.net.settle();
    assert.ok(store.listCalls > 0 && store.gated, 'the index load is still under way');
    store.release();
    await starting;
    await sim.net.settle();
    assert.equal(await honest.store.countMessages(), 30, 'the honest peer caught up over the early link');
    sim.clock.advance(SYNC_DEFAULTS.requestTimeoutMs + 1000);
    await sim.net.settle();
    assert.deepEqual(drops, []);
    assert.equal(honest.engine.isBanned(victim.id), false);
    await sim.stopAll();
  });

  for (const seed of [33, 34, 35]) {
    it(`G3 first frames reordered on every new link: peers still sync and nobody is banned (seed ${seed})`, async () => {
      const sim = await SyncSim.create({ seed, reorderFirstFrames: 3 });
      const all = await sim.fx.envelopes(60);
      const bans: string[] = [];
      const peers = [];
      for (let i = 0; i < 4; i++) {
        const p = await sim.addPeer({ start: false });
        await p.engine.addMessages(all.filter((_, j) => j % 4 !== i));
        p.engine.on('peerDropped', (e) => {
          if (e.banned) bans.push(`${p.id}>${e.peerId}:${e.reason}`);
        });
        peers.push(p);
      }
      for (const p of peers) await sim.start(p);
      await sim.net.settle();
      for (const p of peers) void p.engine.syncNow();
      await sim.net.settle();
      assert.deepEqual(bans, []);
      for (const p of peers) assert.equal(await p.store.countMessages(), 60);
      await sim.stopAll();
    });
  }
});

describe('H13 G4 the index follows the store', () => {
  it('H13 after age evictions the index drops exactly the evicted ids and is never reloaded', async () => {
    const sim = await SyncSim.create({ seed: 36 });
    const store = new SlowListStore({ now: () => sim.clock.now(), maxAgeMs: 60 * 60 * 1000 });
    const p = await sim.addPeer({ store });
    const calls = store.listCalls;
    for (let i = 0; i < 12; i++) {
      await p.engine.addMessages(await sim.fx.envelopes(10));
      sim.clock.advance(10 * 60 * 1000);
    }
    // Each live batch evicted the batch that turned an hour old; the index kept pace without a reload.
    const held = await store.countMessages();
    assert.ok(held < 120 && held >= 60, `${held} held`);
    assert.equal(p.engine.stats().messages, held);
    assert.equal(store.listCalls, calls, 'no listIds after the first load');
    await sim.stopAll();
  });
});
