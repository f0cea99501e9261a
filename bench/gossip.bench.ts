// `npm run bench:gossip`: the peer sync engine on the round-based simulator (src/shared/sync/testing).
// N real SyncEngines with MemoryStores share one SimNetwork and one ManualClock. A round = one gossip
// interval of time, then the network settles (every frame delivered, every handler run); links move
// at most 64 KiB per turn each way, so a transfer spans several turns and a peer can leave in the middle.
//
// Per N: the author publishes one attachment; some peers join late (catching the message up from peers,
// then pulling the bytes), some leave mid-transfer. Prints rounds until every online peer holds it,
// redundancy (payload bytes received / ((N-1) * size)), control bytes; then the bytes a late joiner
// exchanges to catch up d missing of n messages; then every adversary scenario of the simulator
// (src/shared/sync/testing/adversaries): honest delivery (target 100%), bans on honest peers (target 0),
// the victim's peak held bytes and its CPU per second of attack, against the bounds the SPEC states
// (G11, G13). Writes bench/out/gossip.svg and docs/gossip.svg. Last line: one JSON object.
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { utf8 } from '../src/shared/encoding';
import { scenarios } from '../src/shared/sync/testing/adversaries';
import { ADVERSARY_BOUNDS } from '../src/shared/sync/testing/adversaries/harness';
import type { AdversaryResult } from '../src/shared/sync/testing/adversaries/types';
import { content } from '../src/shared/sync/testing/fixtures';
import { type SimPeer, SyncSim } from '../src/shared/sync/testing/SyncSim';

const SIZES = [10, 50, 200];
const ATTACHMENT_BYTES = 256 * 1024;
const SEED = 42;
const MAX_ROUNDS = 30;
/** Share of peers joining late (at round 2) and leaving mid-transfer (rounds 1-3). */
const LATE_SHARE = 0.1;
const LEAVE_SHARE = 0.1;
const JOIN_ROUND = 2;
const LAST_LEAVE_ROUND = 3;
const LEAVE_P = 0.3;
const HISTORY = 50;

interface GossipResult {
  n: number;
  rounds: number;
  target: number;
  delivered: number;
  online: number;
  redundancy: number;
  /** Payload received per completed download, in attachment sizes (leavers' partial bytes included). */
  perReceiver: number;
  leftMidUpload: number;
  leftMidDownload: number;
  controlBytes: number;
  controlPerPeer: number;
  curve: number[];
  lateJoiners: number;
  leavers: number;
}

async function gossip(n: number): Promise<GossipResult> {
  const sim = await SyncSim.create({ seed: SEED + n, bytesPerTurn: 64 * 1024 });
  const late = Math.max(1, Math.round(n * LATE_SHARE));
  const leave = Math.max(1, Math.round(n * LEAVE_SHARE));
  const history = await sim.fx.envelopes(HISTORY);
  const data = content(ATTACHMENT_BYTES, n);
  const { env, att } = await sim.fx.attachedMessage(data);

  const peers: SimPeer[] = [];
  let completions = 0;
  const count = (p: SimPeer): void => {
    p.engine.on('attachment', (e) => {
      if (e.id === att.id) completions++;
    });
  };
  for (let i = 0; i < n - late; i++) {
    const p = await sim.addPeer({ start: false });
    count(p);
    // Everyone online had the history and gets the new message live from the relay.
    await p.engine.addMessages([...history, env]);
    peers.push(p);
  }
  for (const p of peers) await sim.start(p);
  await sim.net.settle();
  const author = peers[0]!;
  sim.net.resetStats();

  const curve: number[] = [];
  const holding = async (): Promise<{ have: number; online: number }> => {
    let have = 0;
    let online = 0;
    for (const p of sim.peers.values()) {
      if (!p.online) continue;
      online++;
      if (await p.store.hasAttachmentBytes(att.id)) have++;
    }
    return { have, online };
  };

  const published = await author.engine.publishAttachment(att, data);
  if (!published.ok) throw new Error(`publish failed: ${published.reason}`);
  await sim.net.settle();
  let rounds = 0;
  let left = 0;
  let leftMidUpload = 0;
  let leftMidDownload = 0;
  for (;;) {
    const { have, online } = await holding();
    curve.push(have / online);
    if (have === online && rounds >= JOIN_ROUND) break;
    if (rounds >= MAX_ROUNDS) break;
    rounds++;
    if (rounds === JOIN_ROUND) {
      // Late joiners arrive with the old history only: they learn the new message from peers.
      for (let i = 0; i < late; i++) {
        const p = await sim.addPeer({ start: false });
        count(p);
        await p.engine.addMessages(history.slice(0, HISTORY - 5));
        await sim.start(p);
      }
    }
    // Leavers go in the middle of transfers: in rounds 1-3, at every turn, each peer (not the author)
    // that is sending or receiving chunks vanishes with probability LEAVE_P, a third of the quota per round.
    const quota = Math.min(leave, Math.ceil((leave * rounds) / LAST_LEAVE_ROUND));
    await sim.round(() => {
      if (rounds > LAST_LEAVE_ROUND || left >= quota) return;
      for (const p of peers.slice(1)) {
        if (!p.online || left >= quota) continue;
        const { uploads, downloads } = p.engine.stats();
        if ((uploads === 0 && downloads === 0) || sim.rng().next() >= LEAVE_P) continue;
        if (uploads > 0) leftMidUpload++;
        else leftMidDownload++;
        left++;
        void sim.leave(p);
      }
    });
  }
  const { have, online } = await holding();
  let payload = 0;
  let control = 0;
  for (const p of sim.peers.values()) {
    const b = sim.net.bytes(p.id);
    payload += b.recvPayload;
    control += b.recvControl;
  }
  await sim.stopAll();
  return {
    n,
    rounds,
    target: Math.ceil(Math.log2(n)) + 3,
    delivered: have / online,
    online,
    redundancy: payload / ((n - 1) * ATTACHMENT_BYTES),
    perReceiver: payload / (Math.max(1, completions) * ATTACHMENT_BYTES),
    leftMidUpload,
    leftMidDownload,
    controlBytes: control,
    controlPerPeer: Math.round(control / n),
    curve,
    lateJoiners: late,
    leavers: left,
  };
}

interface CatchUpResult {
  n: number;
  d: number;
  layout: 'newest' | 'scattered';
  missingPayload: number;
  exchanged: number;
  budget: number;
  complete: boolean;
}

/** A joiner holding n-d of n messages catches up from 5 peers holding all n. */
async function catchUp(n: number, d: number, layout: 'newest' | 'scattered'): Promise<CatchUpResult> {
  const sim = await SyncSim.create({ seed: SEED + d });
  const all = await sim.fx.envelopes(n);
  const missing = new Set(
    layout === 'newest' ? all.slice(n - d).map((e) => e.id) : sim.rng().shuffle(all).slice(0, d).map((e) => e.id),
  );
  for (let i = 0; i < 5; i++) {
    const p = await sim.addPeer({ start: false });
    await p.engine.addMessages(all);
    await sim.start(p);
  }
  await sim.net.settle();
  sim.net.resetStats();
  const joiner = await sim.addPeer({ start: false });
  await joiner.engine.addMessages(all.filter((e) => !missing.has(e.id)));
  await sim.start(joiner);
  await sim.net.settle();
  const b = sim.net.bytes(joiner.id);
  const missingPayload = all.filter((e) => missing.has(e.id)).reduce((s, e) => s + utf8(JSON.stringify(e)).length, 0);
  const complete = (await joiner.store.countMessages()) === n;
  await sim.stopAll();
  const exchanged = b.sentControl + b.sentPayload + b.recvControl + b.recvPayload;
  return { n, d, layout, missingPayload, exchanged, budget: 1.1 * missingPayload + 16 * 1024, complete };
}

function svg(results: GossipResult[]): string {
  const W = 640;
  const H = 360;
  const m = { l: 56, r: 120, t: 44, b: 48 };
  const maxRound = Math.max(...results.map((r) => r.curve.length - 1), 1);
  const x = (round: number): number => m.l + (round / maxRound) * (W - m.l - m.r);
  const y = (f: number): number => H - m.b - f * (H - m.t - m.b);
  const colors = ['#1f77b4', '#d62728', '#2ca02c', '#9467bd'];
  const parts: string[] = [];
  parts.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="12">`);
  parts.push(`<rect width="${W}" height="${H}" fill="#fff"/>`);
  parts.push(`<text x="${W / 2 - 40}" y="18" text-anchor="middle" font-size="14">Attachment gossip: share of online peers holding it</text>`);
  parts.push(
    `<text x="${W / 2 - 40}" y="32" text-anchor="middle" font-size="10" fill="#555">${ATTACHMENT_BYTES / 1024} KiB, ` +
      `${LATE_SHARE * 100}% join late, ${LEAVE_SHARE * 100}% leave mid-transfer, fanout 2</text>`,
  );
  for (let f = 0; f <= 1.0001; f += 0.25) {
    parts.push(`<line x1="${m.l}" x2="${W - m.r}" y1="${y(f)}" y2="${y(f)}" stroke="#ddd"/>`);
    parts.push(`<text x="${m.l - 8}" y="${y(f) + 4}" text-anchor="end">${Math.round(f * 100)}%</text>`);
  }
  for (let r = 0; r <= maxRound; r++) {
    parts.push(`<text x="${x(r)}" y="${H - m.b + 16}" text-anchor="middle">${r}</text>`);
  }
  parts.push(`<text x="${(m.l + W - m.r) / 2}" y="${H - 12}" text-anchor="middle">gossip round</text>`);
  parts.push(`<line x1="${m.l}" x2="${m.l}" y1="${m.t}" y2="${H - m.b}" stroke="#333"/>`);
  parts.push(`<line x1="${m.l}" x2="${W - m.r}" y1="${H - m.b}" y2="${H - m.b}" stroke="#333"/>`);
  results.forEach((r, i) => {
    const color = colors[i % colors.length];
    const pts = r.curve.map((f, round) => `${x(round).toFixed(1)},${y(f).toFixed(1)}`).join(' ');
    parts.push(`<polyline fill="none" stroke="${color}" stroke-width="2" points="${pts}"/>`);
    for (const [round, f] of r.curve.entries()) parts.push(`<circle cx="${x(round).toFixed(1)}" cy="${y(f).toFixed(1)}" r="3" fill="${color}"/>`);
    const ly = m.t + 10 + i * 20;
    parts.push(`<line x1="${W - m.r + 12}" x2="${W - m.r + 32}" y1="${ly}" y2="${ly}" stroke="${color}" stroke-width="2"/>`);
    parts.push(`<text x="${W - m.r + 38}" y="${ly + 4}">N = ${r.n}</text>`);
  });
  parts.push('</svg>');
  return parts.join('\n') + '\n';
}

const started = performance.now();
const results: GossipResult[] = [];
for (const n of SIZES) {
  const r = await gossip(n);
  results.push(r);
  console.log(
    `N=${r.n}: ${r.rounds} rounds (target <= ${r.target}), delivered ${(r.delivered * 100).toFixed(1)}% of ${r.online} online ` +
      `(${r.lateJoiners} joined late, ${r.leavers} left mid-transfer: ${r.leftMidUpload} uploading, ${r.leftMidDownload} downloading), ` +
      `redundancy ${r.redundancy.toFixed(3)} (${r.perReceiver.toFixed(3)} per completed download), ` +
      `control ${(r.controlBytes / 1024).toFixed(1)} KiB (${r.controlPerPeer} B/peer)`,
  );
  console.log(`  curve: ${r.curve.map((f) => `${Math.round(f * 100)}%`).join(' ')}`);
}
const catchUps: CatchUpResult[] = [];
for (const [n, d, layout] of [
  [2000, 200, 'newest'],
  [2000, 20, 'newest'],
  [2000, 200, 'scattered'],
] as const) {
  const c = await catchUp(n, d, layout);
  catchUps.push(c);
  console.log(
    `catch-up d=${c.d} of n=${c.n} (${c.layout}): exchanged ${(c.exchanged / 1024).toFixed(1)} KiB for ` +
      `${(c.missingPayload / 1024).toFixed(1)} KiB missing (budget ${(c.budget / 1024).toFixed(1)} KiB, ` +
      `${(c.exchanged / c.missingPayload).toFixed(3)}x), complete=${c.complete}`,
  );
}

const adversaries: (AdversaryResult & { name: string; pass: boolean })[] = [];
for (const s of scenarios) {
  const r = await s.run(SEED);
  const pass =
    r.honestDelivery >= ADVERSARY_BOUNDS.honestDelivery &&
    r.honestBans <= ADVERSARY_BOUNDS.honestBans &&
    r.victimPeakBytes <= ADVERSARY_BOUNDS.peakBytes &&
    r.victimCpuMsPerAttackSecond <= ADVERSARY_BOUNDS.cpuMsPerAttackSecond;
  adversaries.push({ name: s.name, ...r, pass });
  console.log(
    `adversary ${s.name}: honest delivery ${(r.honestDelivery * 100).toFixed(1)}% (target 100%), ` +
      `honest bans ${r.honestBans}, victim peak ${(r.victimPeakBytes / 1024 / 1024).toFixed(2)} MiB ` +
      `(bound ${(ADVERSARY_BOUNDS.peakBytes / 1024 / 1024).toFixed(1)}), ` +
      `victim CPU ${r.victimCpuMsPerAttackSecond.toFixed(1)} ms per second of attack (bound ${ADVERSARY_BOUNDS.cpuMsPerAttackSecond})` +
      (pass ? '' : '  FAIL'),
  );
}

const here = dirname(fileURLToPath(import.meta.url));
const chart = svg(results);
for (const file of [join(here, 'out', 'gossip.svg'), join(here, '..', 'docs', 'gossip.svg')]) {
  mkdirSync(dirname(file), { recursive: true });
  writeFileSync(file, chart);
}
console.log('wrote bench/out/gossip.svg and docs/gossip.svg');

const pass =
  results.every((r) => r.delivered === 1 && r.redundancy <= 1.2 && r.rounds <= r.target) &&
  catchUps.every((c) => c.complete && (c.layout !== 'newest' || c.exchanged <= c.budget)) &&
  adversaries.every((a) => a.pass);
console.log(
  JSON.stringify({
    bench: 'gossip',
    attachmentBytes: ATTACHMENT_BYTES,
    gossip: results.map(({ curve, ...r }) => ({ ...r, curve: curve.map((f) => Math.round(f * 1000) / 1000) })),
    catchUp: catchUps,
    adversaries,
    pass,
    seconds: Math.round((performance.now() - started) / 100) / 10,
  }),
);
