// Adversary scenario "slow honest peer" (issue 7 item 10; SPEC.md G9, G13): nobody is hostile. The only
// holder of four 256 KiB attachments has a 16 KiB/s uplink; the victim asks for all four at once, so
// 1 MiB of chunks is requested ahead (4 downloads x 16 chunks, the per-link cap of 64) and the last of
// them arrives ~64 s after it was asked, twice the request timeout. Before the fix the victim banned the
// holder for TIMEOUT for 10 minutes. Asserted (slowHonestPeer.test.ts): every download completes, no
// link is dropped, nobody is banned, and the victim holds no more than the content plus its queues.
import { content } from '../fixtures';
import { SyncSim } from '../SyncSim';
import { throttleTransport } from '../throttle';
import type { AdversaryResult, AdversaryScenario } from './types';

export const FILES = 4;
export const FILE_BYTES = 16 * 16 * 1024;
export const UPLINK_BYTES_PER_SECOND = 16 * 1024;
/** 1 MiB at 16 KiB/s is 64 s; allow twice that in gossip rounds (250 ms). */
const MAX_ROUNDS = 4 * 130;

export interface SlowHonestPeerRun extends AdversaryResult {
  /** Links the victim closed, for any reason (0: the slow link was never given up). */
  drops: number;
  /** Simulated seconds until the last download completed. */
  seconds: number;
}

export async function runSlowHonestPeer(seed: number): Promise<SlowHonestPeerRun> {
  const sim = await SyncSim.create({ seed });
  const files = Array.from({ length: FILES }, (_, i) => content(FILE_BYTES, (seed + i) & 0xff));
  const items = [];
  for (const f of files) items.push(await sim.fx.attachedMessage(f));
  const holder = await sim.addPeer({ start: false, wrap: (t) => throttleTransport(t, sim.clock, UPLINK_BYTES_PER_SECOND) });
  const victim = await sim.addPeer({ start: false, tuning: { wantAttachment: () => false } });
  for (const p of [holder, victim]) await p.engine.addMessages(items.map((x) => x.env));
  for (const [i, x] of items.entries()) await holder.store.putAttachmentBytes(x.att.id, files[i]!);
  let bans = 0;
  let drops = 0;
  victim.engine.on('peerDropped', (e) => {
    drops++;
    if (e.banned) bans++;
  });
  holder.engine.on('peerDropped', (e) => (bans += e.banned ? 1 : 0));
  for (const p of [holder, victim]) await sim.start(p);
  await sim.net.settle();
  const cpu = process.cpuUsage();
  const t0 = sim.clock.now();
  let delivered = 0;
  const fetches = items.map((x) => victim.engine.fetchAttachment(x.att.id).then((r) => (delivered += r.ok ? 1 : 0)));
  let settled = 0;
  for (const f of fetches) void f.then(() => settled++);
  let peak = 0;
  for (let r = 0; r < MAX_ROUNDS && settled < FILES; r++) {
    await sim.round();
    peak = Math.max(peak, victim.engine.stats().bufferedBytes);
  }
  const seconds = (sim.clock.now() - t0) / 1000;
  const used = process.cpuUsage(cpu);
  await sim.stopAll(); // settles any fetch still open (STOPPED)
  await Promise.all(fetches);
  return {
    honestDelivery: delivered / FILES,
    honestBans: bans,
    victimPeakBytes: peak,
    // Both engines run in this process: an upper bound on the victim's share.
    victimCpuMsPerAttackSecond: (used.user + used.system) / 1000 / seconds,
    drops,
    seconds,
  };
}

export const scenario: AdversaryScenario = {
  name: 'slow honest peer',
  run: runSlowHonestPeer,
};
