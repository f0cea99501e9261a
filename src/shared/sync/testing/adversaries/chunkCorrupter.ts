// Adversary scenario "chunk corrupter" (issue 7 item 9, issue 9; SPEC.md G8, G13): two holders of a 1 MiB
// photo serve its hash list honestly (it must hash to the signed chunkRoot, or they would be caught
// there) and then flip a byte in chunks: one from its first chunk on, one from its fifth. They offer
// first, so the victim fetches from them; the one honest holder only answers WANT. The victim's store
// writes slowly (an IndexedDB write under load), so the liars' chunks arrive while it is busy: each
// chunk is checked when it arrives, and a liar is banned at its first bad chunk, whatever waits ahead of
// it. Asserted (chunkCorrupter.test.ts): the photo completes from the honest holder, byte for byte; both
// liars are banned WRONG_DIGEST after one bad chunk each reached the victim; nothing but the signed
// content is ever written to the victim's store; the honest holder is not banned.
import { PeerKind } from '../../../protocol/peer';
import { MemoryStore } from '../../../store/MemoryStore';
import { content } from '../fixtures';
import { type SimPeer, SyncSim } from '../SyncSim';
import { type Tamper, corruptChunksFrom, kindOf, tamperTransport } from '../tamper';
import { addVictim, attack } from './harness';
import type { AdversaryResult, AdversaryScenario } from './types';

export const PHOTO_BYTES = 64 * 16 * 1024;
/** The chunk each liar starts corrupting at. */
export const CORRUPT_FROM = [0, 4] as const;

export interface ChunkCorrupterRun extends AdversaryResult {
  /** Why the victim dropped each liar. */
  liarDrops: string[];
  /** Corrupted chunks each liar put on its link to the victim (sent; the victim reads up to the first). */
  badChunksSent: number[];
  /** Every write of attachment bytes to the victim's store was the signed content. */
  onlyVerifiedStored: boolean;
  /** Chunks the honest holder served to the victim. */
  honestChunks: number;
}

/** A store whose attachment writes wait one step (the driver releases them), recording what is written. */
class SlowWriteStore extends MemoryStore {
  readonly written: Uint8Array[] = [];
  private waiters: (() => void)[] = [];
  override async putAttachmentBytes(id: string, bytes: Uint8Array): Promise<boolean> {
    this.written.push(bytes.slice());
    await new Promise<void>((resolve) => this.waiters.push(resolve));
    return super.putAttachmentBytes(id, bytes);
  }
  release(): void {
    for (const w of this.waiters.splice(0)) w();
  }
}

/** Counts the corrupted CHUNK frames `inner` lets through. */
function counting(inner: Tamper, count: (n: number) => void): Tamper {
  return (frame, to) => {
    const out = inner(frame, to);
    if (kindOf(frame) === PeerKind.CHUNK && out[0] !== frame) count(1);
    return out;
  };
}

export async function runChunkCorrupter(seed: number): Promise<ChunkCorrupterRun> {
  const sim = await SyncSim.create({ seed });
  const photo = content(PHOTO_BYTES, seed & 0xff);
  const { env, att } = await sim.fx.attachedMessage(photo);
  const badChunksSent = CORRUPT_FROM.map(() => 0);
  const liars: SimPeer[] = [];
  for (const [i, from] of CORRUPT_FROM.entries()) {
    liars.push(await sim.addPeer({ start: false, wrap: (t) => tamperTransport(t, counting(corruptChunksFrom(from), (n) => (badChunksSent[i]! += n))) }));
  }
  let honestChunks = 0;
  const honest = await sim.addPeer({
    start: false,
    wrap: (t) =>
      tamperTransport(t, (frame) => {
        if (kindOf(frame) === PeerKind.CHUNK) honestChunks++;
        return [frame];
      }),
  });
  const store = new SlowWriteStore({ now: () => sim.clock.now() });
  const victim = await addVictim(sim, { store });
  const liarDrops: string[] = [];
  victim.peer.engine.on('peerDropped', (e) => {
    if (liars.some((l) => l.id === e.peerId)) liarDrops.push(e.reason);
  });
  for (const p of [...liars, honest, victim.peer]) await p.engine.addMessages([env]);
  await honest.store.putAttachmentBytes(att.id, photo);
  for (const p of [...liars, honest, victim.peer]) await sim.start(p);
  await sim.net.settle();
  for (const l of liars) await l.engine.publishAttachment(att, photo);
  const run = await attack(sim, {
    maxMs: 60_000,
    done: () => victim.peer.store.hasAttachmentBytes(att.id),
    each: () => store.release(),
  });
  const got = (await victim.peer.store.getAttachment(att.id))?.bytes;
  const same = (b: Uint8Array | undefined): boolean => b !== undefined && b.length === photo.length && b.every((x, i) => x === photo[i]);
  await sim.stopAll();
  return {
    honestDelivery: same(got) ? 1 : 0,
    honestBans: victim.banned.has(honest.id) ? 1 : 0,
    victimPeakBytes: victim.peer.engine.stats().peakHeldBytes,
    victimCpuMsPerAttackSecond: run.cpuMs / Math.max(1, run.elapsedMs / 1000),
    liarDrops,
    badChunksSent,
    onlyVerifiedStored: store.written.every(same),
    honestChunks,
  };
}

export const scenario: AdversaryScenario = {
  name: 'chunk corrupter',
  run: runChunkCorrupter,
};
