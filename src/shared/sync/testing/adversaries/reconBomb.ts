// Item 9's reconciliation bomb: one user on two links (the most it gets) sends RECON as fast as the
// control budget lets it, each a new session, each built to cost the responder most: an empty id list
// over the whole id space (before the fix the responder copied every id it holds to answer it: 29 ms per
// message at 100k ids), or a 64 KiB spray of ~1,900 wrong fingerprints (each splits into 16). The victim
// holds 100k ids. Now the responder counts before it copies, serves one session per link and at most
// RECON_BURST then RECON_PER_SECOND RECONs per link, and answers the rest NACK FLOOD unread.
import { ID_BYTES, PEER_PROTOCOL_VERSION, PeerKind, RangeMode, type ReconcileRange, encodeControl, encodeFrame, encodeReconcile } from '../../../protocol/peer';
import type { IdRange } from '../../../store/HistoryStore';
import { MemoryStore, type MemoryStoreOptions } from '../../../store/MemoryStore';
import type { PeerLink } from '../../../transport/PeerTransport';
import { peerId } from '../fixtures';
import { SyncSim } from '../SyncSim';
import { bytesToUlid } from '../../ulidBytes';
import { addVictim, attack, honestHolders, result } from './harness';
import type { AdversaryResult, AdversaryScenario } from './types';

/** Ids the victim (and the honest holder) hold besides the real messages. */
const SYNTHETIC_IDS = 100_000;
/** RECON frames each bomb link sends per second: under the control budget (64/s), so it is not FLOOD. */
const RECON_PER_SECOND_SENT = 60;
const ATTACK_MS = 30_000;
const BOMBER_USER = 9100;

/**
 * A MemoryStore that also lists `extra` ids (sorted) it does not hold: a cheap way to give an index 100k
 * entries. Both the victim and the honest holder list the same ones, so they agree on them.
 */
class PaddedStore extends MemoryStore {
  constructor(
    private readonly extra: string[],
    opts: MemoryStoreOptions,
  ) {
    super(opts);
  }
  override async listIds(range: IdRange, channel?: string): Promise<string[]> {
    const real = await super.listIds({ ...range, limit: undefined }, channel);
    const lo = range.from === undefined ? 0 : lowerBound(this.extra, range.from);
    const hi = range.to === undefined ? this.extra.length : lowerBound(this.extra, range.to);
    const limit = range.limit ?? 10_000;
    return [...real, ...this.extra.slice(lo, Math.min(hi, lo + limit))].sort().slice(0, limit);
  }
}

function lowerBound(ids: readonly string[], key: string): number {
  let lo = 0;
  let hi = ids.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (ids[mid]! < key) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

export async function runReconBomb(
  seed: number,
): Promise<{ result: AdversaryResult; served: number; nacked: number; sent: number; scannedPerSecond: number }> {
  const sim = await SyncSim.create({ seed });
  const rng = sim.rng();
  // Plausible ids of the last day, 100k of them, sorted.
  const now = sim.clock.now();
  const extraKeys: Uint8Array[] = [];
  for (let i = 0; i < SYNTHETIC_IDS; i++) {
    const b = new Uint8Array(ID_BYTES);
    const t = now - 86_400_000 + Math.floor((i * 86_000_000) / SYNTHETIC_IDS);
    for (let j = 5, x = t; j >= 0; j--, x = Math.floor(x / 256)) b[j] = x % 256;
    for (let j = 6; j < 16; j++) b[j] = rng.int(256);
    extraKeys.push(b);
  }
  const extra = extraKeys.map(bytesToUlid).sort();
  const all = await sim.fx.envelopes(200);
  const padded = (): MemoryStore => new PaddedStore(extra, { now: () => sim.clock.now(), maxAgeMs: 2 * 86_400_000 });
  const honest = await honestHolders(sim, 1, all, padded);
  await sim.net.settle();
  const victim = await addVictim(sim, { store: padded() });
  await sim.start(victim.peer);

  // The two bombs.
  const emptyIds = encodeReconcile({ lower: new Uint8Array(0), ranges: [{ mode: RangeMode.IDS, upper: null, ids: [] }] });
  const spray: ReconcileRange[] = [];
  let size = 1;
  for (let i = 50; i < extraKeys.length && size + 34 < 60_000; i += 50) {
    const fp = new Uint8Array(16);
    for (let j = 0; j < 16; j++) fp[j] = rng.int(256);
    spray.push({ mode: RangeMode.FINGERPRINT, upper: extraKeys[i]!, fp });
    size += 34;
  }
  const sprayBody = encodeReconcile({ lower: new Uint8Array(0), ranges: spray });

  const links: PeerLink[] = [];
  let nacked = 0;
  let served = 0;
  for (let i = 0; i < 2; i++) {
    const raw = sim.addRaw('browser', peerId(BOMBER_USER, `bomb${i}`));
    const connecting = raw.transport.connect(victim.peer.id);
    await sim.net.settle();
    const link = await connecting;
    link.onFrame((bytes) => {
      if (bytes[1] === PeerKind.NACK) nacked++;
      if (bytes[1] === PeerKind.RECON_REPLY) served++;
    });
    for (const f of encodeControl(PeerKind.HELLO, 0, { protocol: PEER_PROTOCOL_VERSION })!) link.send(f);
    links.push(link);
  }
  let reqId = 1;
  let sent = 0;
  const scanned0 = victim.peer.engine.indexWork();
  const run = await attack(sim, {
    maxMs: ATTACK_MS,
    done: async () => false,
    each: () => {
      // A quarter of a second's worth per step, on each link, each a fresh session.
      for (const link of links) {
        for (let k = 0; k < RECON_PER_SECOND_SENT / 4; k++) {
          if (link.closed) break;
          link.send(encodeFrame(PeerKind.RECON, reqId++, k % 2 === 0 ? emptyIds : sprayBody));
          sent++;
        }
      }
    },
  });
  const scannedPerSecond = (victim.peer.engine.indexWork() - scanned0) / (run.elapsedMs / 1000);
  // Honest delivery is judged after the attack too: the victim must still catch up.
  const r = await result(victim, honest, all.map((e) => e.id), run);
  await sim.stopAll();
  return { result: r, served, nacked, sent, scannedPerSecond };
}

export const scenario: AdversaryScenario = {
  name: 'reconciliation bomb',
  run: async (seed) => (await runReconBomb(seed)).result,
};
