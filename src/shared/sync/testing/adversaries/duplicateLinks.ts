// Adversary scenario "duplicate-link pair" (issue 7 item 8; SPEC.md G8, G10, G13): nobody is hostile. Two
// honest peers start in the same step, so each opens a link to the other, and the reader downloads a
// large attachment over one of them on a slow uplink. Mid-transfer the spare link closes. Before the fix
// the reader dropped its in-flight chunks, ignored the replies on the live link and asked again, and the
// uploader banned it as UNSOLICITED. Asserted (duplicateLinks.test.ts): the download completes, each chunk
// crosses once, nobody is banned, and the reader holds no more than the attachment plus one window.
import { content } from '../fixtures';
import { SyncSim } from '../SyncSim';
import { type ThrottledTransport, throttleTransport } from '../throttle';
import type { AdversaryResult, AdversaryScenario } from './types';

/** 64 chunks of 16 KiB: at UPLINK_BYTES_PER_SECOND the transfer spans ~16 s of simulated time. */
export const ATTACHMENT_BYTES = 64 * 16 * 1024;
export const UPLINK_BYTES_PER_SECOND = 64 * 1024;
/** Gossip rounds (250 ms) the scenario may take before it counts as not delivered. */
const MAX_ROUNDS = 4 * 60;

export interface DuplicateLinksRun extends AdversaryResult {
  /** Links that were open between the pair before the spare closed (2 when the race happened). */
  linksBetweenPair: number;
  /** Attachment payload the reader received, over its size (1 = every chunk crossed once). */
  payloadRatio: number;
}

export async function runDuplicateLinks(seed: number): Promise<DuplicateLinksRun> {
  const sim = await SyncSim.create({ seed });
  const data = content(ATTACHMENT_BYTES, seed & 0xff);
  const { env, att } = await sim.fx.attachedMessage(data);
  let slow: ThrottledTransport | null = null;
  const holder = await sim.addPeer({
    start: false,
    wrap: (t) => (slow = throttleTransport(t, sim.clock, UPLINK_BYTES_PER_SECOND)),
  });
  const reader = await sim.addPeer({ start: false });
  for (const p of [holder, reader]) await p.engine.addMessages([env]);
  await holder.store.putAttachmentBytes(att.id, data);
  let bans = 0;
  for (const p of [holder, reader]) p.engine.on('peerDropped', (e) => (bans += e.banned ? 1 : 0));
  const cpu = process.cpuUsage();
  const t0 = sim.clock.now();
  // Presence announces both at once and both start in the same step: each connects to the other.
  holder.online = true;
  reader.online = true;
  sim.publishRoster();
  await Promise.all([holder.engine.start(), reader.engine.start()]);
  await sim.net.settle();
  sim.net.resetStats();
  const links = slow!.links;
  const linksBetweenPair = links.filter((l) => !l.link.closed).length;
  let received = 0;
  reader.engine.on('progress', (e) => (received = e.receivedBytes));
  let peak = 0;
  let closedSpare = false;
  let done = false;
  for (let r = 0; r < MAX_ROUNDS && !done; r++) {
    await sim.round();
    peak = Math.max(peak, reader.engine.stats().bufferedBytes);
    if (!closedSpare && received >= ATTACHMENT_BYTES / 4) {
      // The spare is the link that carries no chunks; it goes away mid-transfer (idle, or the network).
      closedSpare = true;
      const spare = links.filter((l) => !l.link.closed).sort((a, b) => a.sentBytes - b.sentBytes)[0];
      if (links.filter((l) => !l.link.closed).length > 1) spare?.link.close();
    }
    done = await reader.store.hasAttachmentBytes(att.id);
  }
  const seconds = (sim.clock.now() - t0) / 1000;
  const used = process.cpuUsage(cpu);
  const payloadRatio = sim.net.bytes(reader.id).recvPayload / ATTACHMENT_BYTES;
  await sim.stopAll();
  return {
    honestDelivery: done ? 1 : 0,
    honestBans: bans,
    victimPeakBytes: peak,
    // The sim runs both engines in this process: this is an upper bound on the reader's share.
    victimCpuMsPerAttackSecond: (used.user + used.system) / 1000 / seconds,
    linksBetweenPair,
    payloadRatio,
  };
}

export const scenario: AdversaryScenario = {
  name: 'duplicate-link pair',
  run: runDuplicateLinks,
};
