// `npm run bench:media`: a 10 MB photo from one Chromium page to 4 others, peer to peer, on loopback.
// Each page is its own browser context (its own renderer) running the shared SyncEngine over the browser
// PeerJS transport with a DexieStore on its IndexedDB (e2e/browser/pages/xfer.page.ts); signalling goes
// through the real relay (relay factory plus its /peerjs endpoint, e2e/fixtures/relayWithSignalling.ts).
// Node makes the signed message and metadata (the sync fixtures' relay key is the one the pages trust), so
// the relay's part is what it carries for the share itself: signalling for links, presence and heartbeats.
//
// Measured, in the same run:
//   - baseline: one bare RTCDataChannel between the sender's page and the first receiver's page moving the
//     same bytes (64 KiB messages, paced on bufferedAmount like the transport: 1 MiB high, 256 KiB low);
//   - the share: from the sender's publishAttachment call (it checks its own content first, G2) until each
//     receiver has verified and stored it (the engine's 'attachment' event); ratio = baseline time / time
//     to the first receiver (throughput of the transfer path relative to the bare link; target >= 0.7);
//   - the first receiver's share: of the bytes all receivers verified while its chunks came in, its part
//     (1 = the holder served it alone; 1/4 = the uplink shared evenly), a figure of the serving order that
//     a loaded machine does not blur;
//   - relay bytes: every byte the relay's TCP sockets read and wrote (HTTP, /trpc and /peerjs, WebSocket
//     framing included) during a share. Twice: a first 16 KiB share (links that the engines have not
//     opened yet, e.g. for their start-up catch-up, open here), then the 10 MB share on the open links;
//     target < 8 KiB whatever the photo size;
//   - the same 10 MB to one receiver only: the engine's transfer path over one link, without fan-out;
//   - the sender tab's peak JS heap (CDP Performance.getMetrics JSHeapUsedSize, sampled every 50 ms).
// Last line: one JSON object.
import { createHash } from 'node:crypto';
import type { Socket } from 'node:net';
import type { BrowserContext, CDPSession, Page } from 'playwright-core';
import { loggedIn } from '../src/server/testKit';
import type { RosterPeer } from '../src/shared/sync/SyncContext';
import { content, createSyncFixtures } from '../src/shared/sync/testing/fixtures';
import { bundle, here, serve } from '../e2e/browser/harness';
import type { XferApi, XferEvents } from '../e2e/browser/pages/xfer.page';
import { launchChromium } from '../e2e/fixtures/chromium';
import { startRelayWithSignalling } from '../e2e/fixtures/relayWithSignalling';

const PHOTO_BYTES = 10 * 1000 * 1000;
const WARMUP_BYTES = 16 * 1024;
const RECEIVERS = 4;
const RAW_MESSAGE_BYTES = 64 * 1024;
const TARGET_RATIO = 0.7;
const TARGET_RELAY_BYTES = 8 * 1024;
const DEADLINE_MS = 300_000;

type Call = <K extends keyof XferApi>(page: Page, fn: K, ...args: Parameters<XferApi[K]>) => Promise<Awaited<ReturnType<XferApi[K]>>>;
const call: Call = (page, fn, ...args) =>
  page.evaluate(([f, a]) => (globalThis as unknown as { xfer: Record<string, (...x: unknown[]) => unknown> }).xfer[f as string]!(...(a as unknown[])), [fn, args] as const) as never;

const hex = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until(what: string, cond: () => Promise<boolean>): Promise<void> {
  const end = Date.now() + DEADLINE_MS;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

const relay = await startRelayWithSignalling();
// Wire bytes of every relay socket, closed ones included.
const sockets = new Set<Socket>();
let closedBytes = 0;
relay.server.on('connection', (s: Socket) => {
  sockets.add(s);
  s.on('close', () => {
    closedBytes += s.bytesRead + s.bytesWritten;
    sockets.delete(s);
  });
});
const relayBytes = (): number => closedBytes + [...sockets].reduce((n, s) => n + s.bytesRead + s.bytesWritten, 0);

const served = await serve(await bundle(here('./pages/xfer.page.ts')));
const browser = await launchChromium();
const contexts: BrowserContext[] = [];
const logins: { close(): Promise<void> }[] = [];
const fx = await createSyncFixtures(() => Date.now(), 5);

interface Node {
  page: Page;
  peerId: string;
}
async function node(name: string): Promise<Node> {
  const context = await browser.newContext();
  contexts.push(context);
  const page = await context.newPage();
  page.on('pageerror', (e) => console.error(`${name} pageerror: ${e.message}`));
  await page.goto(served.url);
  await page.waitForFunction(() => (globalThis as { xfer?: unknown }).xfer !== undefined);
  const c = await loggedIn(relay, { kind: 'browser', name });
  logins.push(c);
  const login = { peerId: c.me.self.peerId, peerToken: c.me.peerToken, info: c.me.info };
  const peerId = await call(page, 'start', { relayUrl: relay.url, login, relayKey: fx.relayKey, db: `media-${name}` });
  return { page, peerId };
}

const sender = await node('sender');
const receivers: Node[] = [];
for (let i = 0; i < RECEIVERS; i++) receivers.push(await node(`r${i}`));
const all = [sender, ...receivers];
for (const n of all) await call(n.page, 'roster', all.filter((m) => m !== n).map((m): RosterPeer => ({ peerId: m.peerId, kind: 'browser' })));

// ---- baseline: a bare data channel, sender page -> first receiver page ----
async function baseline(): Promise<number> {
  const a = sender.page;
  const b = receivers[0]!.page;
  const offer = await call(a, 'rawOffer');
  const answer = await call(b, 'rawAnswer', offer);
  await call(a, 'rawAccept', answer);
  await call(b, 'rawExpect', PHOTO_BYTES);
  const start = await call(a, 'rawSend', PHOTO_BYTES, RAW_MESSAGE_BYTES);
  await until('the raw channel delivers', async () => (await call(b, 'rawDoneAt')) > 0);
  const ms = (await call(b, 'rawDoneAt')) - start;
  await call(a, 'rawClose');
  await call(b, 'rawClose');
  return ms;
}

// ---- a share through the engines ----
interface Share {
  /** ms from publish to each receiver's verified, stored copy, in arrival order. */
  arrivals: number[];
  relayBytes: number;
  senderPeakHeap: number;
  phases: { toFirstChunk: number; chunks: number; toStored: number };
  /**
   * Of the bytes all receivers verified while the first one's chunks came in, the first one's part: 1 when
   * the holder served it alone, about 1/N when N receivers shared the uplink. A figure of the serving order,
   * not of the machine's speed, so it holds on a loaded machine too.
   */
  firstShare: number;
}
async function share(size: number, seed: number, cdp: CDPSession | null, receivers: Node[]): Promise<Share> {
  const bytes = content(size, seed);
  const { env, att } = await fx.attachedMessage(bytes);
  // Only these receivers learn of the message, so only they want the photo.
  for (const n of [sender, ...receivers]) await call(n.page, 'addMessages', [env]);
  let peak = 0;
  let sampling = cdp !== null;
  const sampler = (async () => {
    while (sampling && cdp) {
      const { metrics } = (await cdp.send('Performance.getMetrics')) as { metrics: { name: string; value: number }[] };
      peak = Math.max(peak, metrics.find((m) => m.name === 'JSHeapUsedSize')?.value ?? 0);
      await sleep(50);
    }
  })();
  const before = relayBytes();
  const r = await call(sender.page, 'publish', att, size, seed);
  if (!r.ok) throw new Error(`publish refused: ${r.reason}`);
  const arrived = async (n: Node): Promise<number | null> => {
    const ev: XferEvents = await call(n.page, 'events');
    return ev.attachments.find((x) => x.id === att.id)?.at ?? null;
  };
  await until('every receiver holds it', async () => (await Promise.all(receivers.map(arrived))).every((x) => x !== null));
  const used = relayBytes() - before;
  sampling = false;
  await sampler;
  const want = hex(bytes);
  for (const n of receivers) {
    const got = (await call(n.page, 'stored')).find((x) => x.id === att.id);
    if (!got || got.sha256 !== want) throw new Error(`${n.peerId} holds ${JSON.stringify(got)}, not the photo`);
  }
  const arrivals = (await Promise.all(receivers.map(arrived))).map((at) => at! - r.at).sort((x, y) => x - y);
  // Where the first receiver's time went: until its first verified chunk (offer, link, hash list), the
  // chunks, and from its last chunk to the stored whole (digest check, IndexedDB write).
  const firstAt = Math.min(...(await Promise.all(receivers.map(arrived))).map((x) => x!));
  const first = receivers[(await Promise.all(receivers.map(arrived))).indexOf(firstAt)]!;
  const prog = (await call(first.page, 'events')).progress.filter((p) => p.id === att.id);
  const phases = { toFirstChunk: prog[0]!.at - r.at, chunks: prog.at(-1)!.at - prog[0]!.at, toStored: firstAt - prog.at(-1)!.at };
  const [t0, t1] = [prog[0]!.at, prog.at(-1)!.at];
  const gotMeanwhile = (ps: XferEvents['progress']): number => {
    let before = 0;
    let upTo = 0;
    for (const p of ps) {
      if (p.at < t0) before = p.receivedBytes;
      if (p.at <= t1) upTo = p.receivedBytes;
    }
    return upTo - before;
  };
  const all = await Promise.all(receivers.map(async (n) => gotMeanwhile((await call(n.page, 'events')).progress.filter((p) => p.id === att.id))));
  const firstShare = gotMeanwhile(prog) / all.reduce((a, b) => a + b, 0);
  return { arrivals, relayBytes: used, senderPeakHeap: peak, phases, firstShare };
}

const rawMs = await baseline();
const cold = await share(WARMUP_BYTES, 1, null, receivers);
// Let the warm-up's gossip end (offers stop after 24 ticks of 250 ms) so its frames do not count.
await sleep(7_000);
const cdp = await contexts[0]!.newCDPSession(sender.page);
await cdp.send('Performance.enable');
const heapBefore = ((await cdp.send('Performance.getMetrics')) as { metrics: { name: string; value: number }[] }).metrics.find((m) => m.name === 'JSHeapUsedSize')?.value ?? 0;
const warm = await share(PHOTO_BYTES, 2, cdp, receivers);
// The same photo size to one receiver only: the engine's path over one link, without the fan-out.
await sleep(7_000);
const single = await share(PHOTO_BYTES, 3, null, receivers.slice(0, 1));

const mb = PHOTO_BYTES / 1e6;
const firstMs = warm.arrivals[0]!;
const ratio = rawMs / firstMs;
console.log(`bare RTCDataChannel (sender page -> receiver page, ${RAW_MESSAGE_BYTES / 1024} KiB messages): ${rawMs} ms for ${mb} MB (${((mb * 8) / (rawMs / 1000)).toFixed(0)} Mbit/s)`);
console.log(`photo to ${RECEIVERS} browsers: first ${firstMs} ms, all ${warm.arrivals.at(-1)} ms (each: ${warm.arrivals.join(', ')} ms)`);
console.log(`first receiver's part of what all receivers got while its chunks came in: ${warm.firstShare.toFixed(2)} (1 = served alone, ${(1 / RECEIVERS).toFixed(2)} = an even share)`);
console.log(`first receiver: ${warm.phases.toFirstChunk} ms to its first verified chunk, ${warm.phases.chunks} ms of chunks, ${warm.phases.toStored} ms from the last chunk to stored`);
console.log(`ratio to the bare link, first receiver: ${ratio.toFixed(2)} (target >= ${TARGET_RATIO})`);
console.log(`one receiver only: ${single.arrivals[0]} ms (ratio ${(rawMs / single.arrivals[0]!).toFixed(2)}; ${single.phases.toFirstChunk} ms to the first chunk, ${single.phases.chunks} ms of chunks, ${single.phases.toStored} ms to stored)`);
console.log(`relay bytes during the share: ${warm.relayBytes} B on open links (10 MB), ${cold.relayBytes} B opening the links (16 KiB share) (target < ${TARGET_RELAY_BYTES})`);
console.log(`sender tab JS heap: peak ${(warm.senderPeakHeap / 2 ** 20).toFixed(1)} MiB during the share (${(heapBefore / 2 ** 20).toFixed(1)} MiB before)`);

for (const n of all) await call(n.page, 'stop').catch(() => {});
for (const l of logins) await l.close().catch(() => {});
for (const c of contexts) await c.close().catch(() => {});
await browser.close();
await served.close();
await relay.close();

console.log(
  JSON.stringify({
    bench: 'media',
    photoBytes: PHOTO_BYTES,
    receivers: RECEIVERS,
    rawChannelMs: rawMs,
    firstReceiverMs: firstMs,
    allReceiversMs: warm.arrivals.at(-1),
    arrivalsMs: warm.arrivals,
    firstReceiverPhasesMs: warm.phases,
    firstReceiverShare: Number(warm.firstShare.toFixed(3)),
    singleReceiverMs: single.arrivals[0],
    ratioSingleToRaw: Number((rawMs / single.arrivals[0]!).toFixed(3)),
    singleReceiverPhasesMs: single.phases,
    ratioFirstToRaw: Number(ratio.toFixed(3)),
    ratioTarget: TARGET_RATIO,
    relayBytesWarm: warm.relayBytes,
    relayBytesCold: cold.relayBytes,
    relayBytesTarget: TARGET_RELAY_BYTES,
    senderPeakHeapBytes: warm.senderPeakHeap,
    senderHeapBeforeBytes: heapBefore,
    pass: ratio >= TARGET_RATIO && warm.relayBytes < TARGET_RELAY_BYTES && cold.relayBytes < TARGET_RELAY_BYTES,
  }),
);
