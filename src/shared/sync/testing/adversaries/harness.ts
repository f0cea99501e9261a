// What the message-side adversary scenarios share: a victim that joins and must catch up `wanted`
// messages from honest holders while an attacker works on it, run on simulated time, measured the same
// way for every scenario (AdversaryResult). Node-only (process.cpuUsage), like the rest of testing/.
import { PEER_LIMITS } from '../../../protocol/peer';
import type { Envelope } from '../../../protocol/relay';
import type { MemoryStore } from '../../../store/MemoryStore';
import { INBOX_MAX_BYTES, OUT_QUEUE_MAX_BYTES } from '../../Conn';
import { MAX_LINKS_PER_USER, type SyncTuning } from '../../SyncEngine';
import type { SimPeer, SyncSim } from '../SyncSim';
import type { AdversaryResult } from './types';

/**
 * The bounds every adversary scenario must keep (SPEC.md G11, G13). Memory: what one remote user can make
 * the victim hold, its links' inboxes, partial control bodies and send queues, plus 1 MiB for the honest
 * peers' traffic in the same run. CPU: a quarter of a core per second of attack, measured with
 * process.cpuUsage (CPU time, which a loaded machine does not inflate the way it does wall time).
 */
export const ADVERSARY_BOUNDS = {
  honestDelivery: 1,
  honestBans: 0,
  peakBytes: MAX_LINKS_PER_USER * (INBOX_MAX_BYTES + PEER_LIMITS.maxControlBodyBytes + OUT_QUEUE_MAX_BYTES) + 1024 * 1024,
  cpuMsPerAttackSecond: 250,
} as const;

export interface Victim {
  peer: SimPeer;
  /** Peer ids the victim banned. */
  banned: Set<string>;
}

/** Starts `n` honest holders of `envs` (each over `store()` when given). */
export async function honestHolders(sim: SyncSim, n: number, envs: readonly Envelope[], store?: () => MemoryStore): Promise<SimPeer[]> {
  const out: SimPeer[] = [];
  for (let i = 0; i < n; i++) {
    const p = await sim.addPeer({ start: false, store: store?.() });
    await p.engine.addMessages(envs);
    await sim.start(p);
    out.push(p);
  }
  return out;
}

/** Adds the victim (not started) and records whom it bans. */
export async function addVictim(sim: SyncSim, opts: { store?: MemoryStore; tuning?: SyncTuning } = {}): Promise<Victim> {
  const peer = await sim.addPeer({ start: false, store: opts.store, tuning: opts.tuning });
  const banned = new Set<string>();
  peer.engine.on('peerDropped', (e) => {
    if (e.banned) banned.add(e.peerId);
  });
  return { peer, banned };
}

/**
 * Runs simulated time in steps of `stepMs` until `done` or `maxMs`, calling `each` before every step;
 * measures the process CPU spent meanwhile (the victim's handlers dominate it: the attacker's frames are
 * prepared ahead and the honest peers are in sync; so this is an upper bound on the victim's share).
 */
export async function attack(
  sim: SyncSim,
  opts: { maxMs: number; stepMs?: number; done: () => Promise<boolean>; each?: (elapsedMs: number) => void | Promise<void> },
): Promise<{ elapsedMs: number; cpuMs: number }> {
  const stepMs = opts.stepMs ?? 250;
  const cpu0 = process.cpuUsage();
  let elapsed = 0;
  while (elapsed < opts.maxMs && !(await opts.done())) {
    await opts.each?.(elapsed);
    sim.clock.advance(stepMs);
    await sim.net.settle();
    elapsed += stepMs;
  }
  const used = process.cpuUsage(cpu0);
  return { elapsedMs: elapsed, cpuMs: (used.user + used.system) / 1000 };
}

/** The victim holds these ids? (share delivered, 0..1) */
export async function delivered(victim: SimPeer, wanted: readonly string[]): Promise<number> {
  if (wanted.length === 0) return 1;
  const held = await victim.store.hasMessages(wanted);
  return held.filter(Boolean).length / wanted.length;
}

export async function result(
  victim: Victim,
  honest: readonly SimPeer[],
  wanted: readonly string[],
  run: { elapsedMs: number; cpuMs: number },
): Promise<AdversaryResult> {
  return {
    honestDelivery: await delivered(victim.peer, wanted),
    honestBans: honest.filter((h) => victim.banned.has(h.id)).length,
    victimPeakBytes: victim.peer.engine.stats().peakHeldBytes,
    victimCpuMsPerAttackSecond: run.cpuMs / Math.max(1, run.elapsedMs / 1000),
  };
}
