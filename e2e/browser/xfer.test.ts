// Attachment transfer between Chromium pages (SPEC.md G2, G6, G8, G13; issue 9 Tests bullet 2): each page
// runs the shared SyncEngine over the browser PeerJS transport with a DexieStore on its own IndexedDB,
// signalling through the real relay (as e2e/browser/transport.test.ts). Node logs every page in, makes the
// signed message and metadata (the sync fixtures' relay key is the key the pages trust), and reads back
// what each page saw. Page B fetches A's 2 MiB photo over the data channel; then a liar page C, which
// serves the hash list honestly and corrupts chunks from index 5, offers it as its only holder: B bans C
// at its first bad chunk; A then holds it and B finishes from A (found by WANT); B's IndexedDB holds only
// the signed content.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import type { Page } from 'playwright-core';
import { LIMITS } from '../../src/shared/protocol/relay';
import type { RosterPeer } from '../../src/shared/sync/SyncContext';
import { content, createSyncFixtures } from '../../src/shared/sync/testing/fixtures';
import { loggedIn } from '../../src/server/testKit';
import { startRelayWithSignalling } from '../fixtures/relayWithSignalling';
import type { Relay } from '../../src/server/createRelay';
import { BrowserHarness, bundle, here, serve } from './harness';
import type { XferApi, XferEvents, XferStart } from './pages/xfer.page';

const PHOTO_BYTES = 2 * 1024 * 1024;
const CHUNKS = PHOTO_BYTES / LIMITS.chunkBytes;
const CORRUPT_FROM = 5;
/** Generous: the machine is shared; every wait is for a condition, this only bounds a hang. */
const DEADLINE_MS = 120_000;

type Call = <K extends keyof XferApi>(page: Page, fn: K, ...args: Parameters<XferApi[K]>) => Promise<Awaited<ReturnType<XferApi[K]>>>;
const call: Call = (page, fn, ...args) =>
  page.evaluate(([f, a]) => (globalThis as unknown as { xfer: Record<string, (...x: unknown[]) => unknown> }).xfer[f as string]!(...(a as unknown[])), [fn, args] as const) as never;

const hex = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');

const served = await serve(await bundle(here('./pages/xfer.page.ts')));
const harness = await BrowserHarness.launch();
const log: string[] = [];
let relay: Relay;
const logins: { close(): Promise<void> }[] = [];
const pages: Page[] = [];

/** A page logged in on the relay, its engine started. */
async function peerPage(name: string, relayKey: string, extra: Partial<XferStart> = {}): Promise<{ page: Page; peerId: string }> {
  const page = await harness.open(served.url, (l) => log.push(`${name} ${l}`));
  pages.push(page);
  const c = await loggedIn(relay, { kind: 'browser', name });
  logins.push(c);
  const login = { peerId: c.me.self.peerId, peerToken: c.me.peerToken, info: c.me.info };
  const peerId = await call(page, 'start', { relayUrl: relay.url, login, relayKey, db: `xfer-${name}-${Date.now()}`, ...extra });
  return { page, peerId };
}

async function until(what: string, cond: () => Promise<boolean>): Promise<void> {
  const end = Date.now() + DEADLINE_MS;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}; console:\n${log.join('\n')}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe('G8 attachment transfer between Chromium pages over the data channel', () => {
  before(async () => {
    relay = await startRelayWithSignalling();
  });
  after(async () => {
    for (const p of pages) await call(p, 'stop').catch(() => {});
    for (const l of logins) await l.close().catch(() => {});
    await harness.close();
    await served.close();
    await relay.close();
  });

  it('G6 G8 page B receives page A\'s 2 MiB photo byte for byte over the data channel, with a progress event per verified chunk', async () => {
    const fx = await createSyncFixtures(() => Date.now(), 91);
    const photo = content(PHOTO_BYTES, 91);
    const { env, att } = await fx.attachedMessage(photo);
    const a = await peerPage('A', fx.relayKey);
    const b = await peerPage('B', fx.relayKey);
    const roster: RosterPeer[] = [a, b].map((p) => ({ peerId: p.peerId, kind: 'browser' }));
    for (const p of [a, b]) {
      await call(p.page, 'roster', roster.filter((r) => r.peerId !== p.peerId));
      await call(p.page, 'addMessages', [env]);
    }
    assert.deepEqual(await call(a.page, 'publish', att, PHOTO_BYTES, 91).then((r) => r.ok), true);
    const got = await call(b.page, 'fetch', att.id);
    assert.deepEqual(got, { ok: true, size: PHOTO_BYTES, sha256: hex(photo) });
    const ev: XferEvents = await call(b.page, 'events');
    const progress = ev.progress.filter((p) => p.id === att.id);
    assert.equal(progress.length, CHUNKS, 'one progress event per verified chunk');
    for (const [i, p] of progress.entries()) {
      assert.equal(p.totalBytes, PHOTO_BYTES);
      assert.equal(p.from, a.peerId);
      if (i > 0) assert.ok(p.receivedBytes > progress[i - 1]!.receivedBytes, 'progress only grows');
    }
    assert.equal(progress.at(-1)!.receivedBytes, PHOTO_BYTES);
    assert.deepEqual(await call(b.page, 'stored'), [{ id: att.id, size: PHOTO_BYTES, sha256: hex(photo) }]);
    assert.deepEqual(ev.drops, []);
    for (const p of [a, b]) await call(p.page, 'stop');
  });

  it('G8 G13 a page that serves corrupted chunks is banned at its first bad chunk; the photo completes from an honest page; nothing corrupt is stored', async () => {
    const fx = await createSyncFixtures(() => Date.now(), 92);
    const photo = content(PHOTO_BYTES, 92);
    const { env, att } = await fx.attachedMessage(photo);
    const a = await peerPage('A2', fx.relayKey);
    const b = await peerPage('B2', fx.relayKey);
    const c = await peerPage('C2', fx.relayKey, { corruptFrom: CORRUPT_FROM });
    const all = [a, b, c];
    for (const p of all) {
      await call(p.page, 'roster', all.filter((q) => q !== p).map((q) => ({ peerId: q.peerId, kind: 'browser' })));
      await call(p.page, 'addMessages', [env]);
    }
    // C offers it and is the only holder, so B takes it from C. A gets the bytes only once B has caught
    // C (it then answers B's WANT): otherwise B could pull from A before C's offer arrives.
    assert.equal((await call(c.page, 'publish', att, PHOTO_BYTES, 92)).ok, true);
    await until('B drops the liar', async () => (await call(b.page, 'events')).drops.length > 0);
    assert.equal(await call(a.page, 'hold', att, PHOTO_BYTES, 92), true);
    await until('B holds the photo', async () => (await call(b.page, 'stored')).length > 0);
    const ev: XferEvents = await call(b.page, 'events');
    assert.deepEqual(ev.drops, [{ peerId: c.peerId, reason: 'WRONG_DIGEST', banned: true }], 'the liar is banned for its wrong chunk, nobody else');
    const progress = ev.progress.filter((p) => p.id === att.id);
    const fromLiar = progress.filter((p) => p.from === c.peerId).length;
    assert.ok(fromLiar <= CORRUPT_FROM, `${fromLiar} chunks taken from the liar: only good ones, those before its first bad chunk`);
    assert.equal(progress.filter((p) => p.from === a.peerId).length, CHUNKS - fromLiar, 'the rest came from the honest page, each chunk once');
    assert.deepEqual(ev.attachments.map((x) => x.id), [att.id]);
    // Read from B's IndexedDB with a fresh connection: only the signed content, nothing else.
    assert.deepEqual(await call(b.page, 'stored'), [{ id: att.id, size: PHOTO_BYTES, sha256: hex(photo) }]);
    for (const p of all) await call(p.page, 'stop');
  });
});
