// Photos and files in the web app (issue 9 items 1-3) in real Chromium over real IndexedDB, with the
// scripted client of the page harness (src/client/testing): the composer's pick/paste/drop, the bomb and
// disguised-SVG refusals, EXIF GPS gone from the shared bytes, the photo box, "waiting for a peer", the
// download card and the photo viewer by keyboard. Named after src/client/media/RULES.md (MD2-MD11).
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Browser, Page } from 'playwright-core';
import { contains, exifWithGps, png } from '../src/client/media/testing/craft';
import { launchChromium } from './fixtures/chromium';
import { openHarnessPage, startViteHarness } from './fixtures/viteHarness';

let browser: Browser;
let vite: { url: string; close(): Promise<void> };

before(async () => {
  vite = await startViteHarness();
  browser = await launchChromium();
});
after(async () => {
  await browser?.close();
  await vite?.close();
});

/** Counts object URLs the page creates and revokes, and the Blob type each was made of. */
const TRACK_URLS = `(() => {
  const live = new Map(); const types = [];
  const create = URL.createObjectURL.bind(URL), revoke = URL.revokeObjectURL.bind(URL);
  URL.createObjectURL = (b) => { const u = create(b); live.set(u, b.type); types.push(b.type); return u; };
  URL.revokeObjectURL = (u) => { live.delete(u); revoke(u); };
  window.__urls = { live, types };
})()`;

async function open(seed = '', viewport = { width: 1280, height: 800 }): Promise<Page> {
  const page = await openHarnessPage(browser, vite.url, seed, { viewport, acceptDownloads: true, initScript: TRACK_URLS });
  await page.getByRole('button', { name: 'Attach files' }).waitFor({ timeout: 30_000 });
  return page;
}

/**
 * A photo-like JPEG or PNG made by the page's own encoder (gradient plus noise), as base64; a JPEG gets
 * a phone camera's Exif APP1 with a GPS IFD (the marker "GPSMARK") right after SOI.
 */
async function photo(page: Page, width: number, height: number, type: 'image/jpeg' | 'image/png', gps = false): Promise<Buffer> {
  const b64 = await page.evaluate(async ([w, h, t]) => {
    const bytes = await (window as unknown as { __harness: { photo(w: number, h: number, t: string): Promise<Uint8Array> } }).__harness.photo(w, h, t);
    let s = '';
    for (const b of bytes) s += String.fromCharCode(b);
    return btoa(s);
  }, [width, height, type] as const);
  const bytes = Buffer.from(b64, 'base64');
  return gps ? Buffer.concat([bytes.subarray(0, 2), Buffer.from(exifWithGps()), bytes.subarray(2)]) : bytes;
}

/** Makes a File in the page from base64 and hands it to `how`: a paste into the composer or a drop on the channel. */
async function pasteOrDrop(page: Page, how: 'paste' | 'drop', name: string, type: string, bytes: Buffer): Promise<void> {
  await page.evaluate(
    ([how, name, type, b64]) => {
      const bin = atob(b64);
      const u8 = new Uint8Array(bin.length);
      for (let i = 0; i < bin.length; i++) u8[i] = bin.charCodeAt(i);
      const dt = new DataTransfer();
      dt.items.add(new File([u8], name, { type }));
      if (how === 'paste') {
        document.querySelector('[data-testid=composer]')!.dispatchEvent(new ClipboardEvent('paste', { clipboardData: dt, bubbles: true, cancelable: true }));
      } else {
        const target = document.querySelector('[data-testid=channel-empty], [data-testid=message-scroller]')!;
        target.dispatchEvent(new DragEvent('dragover', { dataTransfer: dt, bubbles: true, cancelable: true }));
        target.dispatchEvent(new DragEvent('drop', { dataTransfer: dt, bubbles: true, cancelable: true }));
      }
    },
    [how, name, type, bytes.toString('base64')] as const,
  );
}

const pick = (page: Page, name: string, mimeType: string, buffer: Buffer) => page.getByTestId('attach-input').setInputFiles({ name, mimeType, buffer });

/** The fake client's record of what was published (bytes as base64) and posted. */
const published = (page: Page) =>
  page.evaluate(() => {
    const f = (window as unknown as { __harness: { fake: { published: { bytes: Uint8Array; attachment: { id: string; meta: { name: string; width?: number; height?: number } } }[] } } }).__harness.fake;
    return f.published.map((p) => {
      let s = '';
      for (const b of p.bytes) s += String.fromCharCode(b);
      return { id: p.attachment.id, name: p.attachment.meta.name, width: p.attachment.meta.width, height: p.attachment.meta.height, b64: btoa(s) };
    });
  });
const posts = (page: Page) =>
  page.evaluate(() => (window as unknown as { __harness: { fake: { posts: { text: string; clientId: string; attachments: { id: string }[] }[] } } }).__harness.fake.posts.map((p) => ({ text: p.text, clientId: p.clientId, attachments: p.attachments.map((a) => a.id) })));

/** Sends what is in the composer and has the "relay" confirm it; returns the stored message's locator. */
async function sendAndConfirm(page: Page, text: string) {
  const composer = page.getByTestId('composer');
  await composer.fill(text);
  await page.getByRole('button', { name: 'Send' }).waitFor();
  await assertEnabled(page);
  await composer.press('Enter');
  const start = Date.now();
  let all = await posts(page);
  while (!all.some((p) => p.text === text)) {
    if (Date.now() - start > 20_000) throw new Error(`no post "${text}"`);
    await page.waitForTimeout(50);
    all = await posts(page);
  }
  const post = all.find((p) => p.text === text)!;
  await page.evaluate((id) => (window as unknown as { __harness: { confirm(id: string): Promise<string> } }).__harness.confirm(id), post.clientId);
  return { post, message: page.getByTestId('message').filter({ hasText: text }) };
}

async function assertEnabled(page: Page): Promise<void> {
  await page.waitForFunction(() => {
    const b = [...document.querySelectorAll('button[type=submit]')].find((x) => x.textContent === 'Send') as HTMLButtonElement | undefined;
    return b && !b.disabled;
  }, undefined, { timeout: 20_000 });
}

/** A signed-metadata stand-in for a photo another peer shared (the harness stores it like the engine). */
async function metaOf(page: Page, name: string, bytes: Buffer, width: number, height: number, mime = 'image/jpeg') {
  return page.evaluate(
    async ([name, b64, width, height, mime]) => {
      const { digests: contentDigests } = (window as unknown as { __harness: { digests(b: Uint8Array): object } }).__harness;
      const bin = atob(b64);
      const u8 = new Uint8Array(bin.length);
      for (let i = 0; i < bin.length; i++) u8[i] = bin.charCodeAt(i);
      return { name, mime, ...contentDigests(u8), width, height };
    },
    [name, bytes.toString('base64'), width, height, mime] as const,
  );
}

describe('composer attachments', () => {
  it('MD11 MD3 a picked, a pasted and a dropped image each end as a message with a thumbnail; GPS is gone from the shared and stored bytes', async () => {
    const page = await open();
    assert.equal(await page.getByText('Location and camera details are removed from photos').count(), 1);
    assert.equal(await page.getByRole('checkbox', { name: 'Keep photo metadata' }).isChecked(), false);

    const jpeg = await photo(page, 1600, 1200, 'image/jpeg', true);
    assert.ok(contains(jpeg, 'GPSMARK'), 'the picked file carries GPS');
    await pick(page, 'IMG_2041.jpg', 'image/jpeg', jpeg);
    const list = page.getByRole('list', { name: 'Attachments to send' });
    await list.getByRole('button', { name: 'Remove IMG_2041.jpg' }).waitFor();
    const picked = await sendAndConfirm(page, 'picked one');
    assert.equal(picked.post.attachments.length, 1);
    await picked.message.getByRole('button', { name: 'Open photo IMG_2041.jpg' }).locator('img[alt="IMG_2041.jpg"]').waitFor();
    assert.equal(await list.count(), 0, 'the composer is empty after sending');

    const pngBytes = await photo(page, 640, 480, 'image/png');
    await pasteOrDrop(page, 'paste', 'pasted.png', 'image/png', pngBytes);
    await list.getByRole('button', { name: 'Remove pasted.png' }).waitFor();
    const pasted = await sendAndConfirm(page, 'pasted one');
    await pasted.message.getByRole('button', { name: 'Open photo pasted.png' }).locator('img').waitFor();

    const dropped = await photo(page, 480, 640, 'image/jpeg');
    await pasteOrDrop(page, 'drop', 'dropped.jpg', 'image/jpeg', dropped);
    await list.getByRole('button', { name: 'Remove dropped.jpg' }).waitFor();
    const drop = await sendAndConfirm(page, 'dropped one');
    const img = drop.message.getByRole('button', { name: 'Open photo dropped.jpg' }).locator('img');
    await img.waitFor();
    // The thumbnail shows first; the full bytes (from the store here) replace it once sniffed.
    await drop.message.locator('img[data-full=true]').waitFor();

    const pub = await published(page);
    assert.deepEqual(pub.map((p) => p.name), ['IMG_2041.jpg', 'pasted.png', 'dropped.jpg']);
    const shared = Buffer.from(pub[0]!.b64, 'base64');
    assert.ok(!contains(shared, 'GPSMARK') && !contains(shared, 'Exif'), 'GPS EXIF is gone from the shared bytes');
    assert.equal(`${pub[0]!.width}x${pub[0]!.height}`, '1600x1200');
    // And from what the store keeps (what peers are served).
    const stored = await page.evaluate(async (id) => {
      const r = await (window as unknown as { __harness: { getAttachment(id: string): Promise<{ bytes?: Uint8Array } | undefined> } }).__harness.getAttachment(id);
      if (!r?.bytes) return null;
      let s = '';
      for (const b of r.bytes) s += String.fromCharCode(b);
      return btoa(s);
    }, pub[0]!.id);
    assert.ok(stored, 'the stripped bytes are stored');
    assert.ok(!contains(Buffer.from(stored, 'base64'), 'GPSMARK'), 'GPS is gone from the stored bytes');
    await page.context().close();
  });

  it('MD3 "Keep photo metadata" shares the original bytes', async () => {
    const page = await open();
    await page.getByRole('checkbox', { name: 'Keep photo metadata' }).check();
    const jpeg = await photo(page, 320, 240, 'image/jpeg', true);
    await pick(page, 'kept.jpg', 'image/jpeg', jpeg);
    await sendAndConfirm(page, 'with metadata');
    const pub = await published(page);
    assert.ok(Buffer.from(pub[0]!.b64, 'base64').equals(jpeg), 'the original, byte for byte');
    await page.context().close();
  });

  it('MD2 MD11 a 60,000 x 60,000 PNG header is refused with a message naming the file, and never rendered', async () => {
    const page = await open();
    await pick(page, 'huge.png', 'image/png', Buffer.from(png(60_000, 60_000)));
    const alert = page.getByRole('form', { name: 'Send a message' }).getByRole('alert');
    await alert.waitFor();
    const text = await alert.innerText();
    assert.match(text, /huge\.png/);
    assert.match(text, /60000 x 60000/);
    assert.equal(await page.getByRole('list', { name: 'Attachments to send' }).count(), 0);
    assert.equal(await page.locator('img').count(), 0, 'no image of it anywhere');
    const types = await page.evaluate(() => (window as unknown as { __urls: { types: string[] } }).__urls.types);
    assert.ok(!types.includes('image/png'), `no object URL of it: ${types.join(',')}`);
    assert.equal((await published(page)).length, 0);
    await page.context().close();
  });

  it('MD9 MD11 the relay\u2019s published attachment cap and the bound of 4 per message refuse with the file named', async () => {
    const page = await open();
    await page.evaluate(() => {
      const f = (window as unknown as { __harness: { fake: { snap: { relay: unknown }; set(p: object): void } } }).__harness.fake;
      f.set({ relay: { limits: { maxTextLength: 4000, maxAttachmentBytes: 2000, maxAttachmentsPerMessage: 4 } } });
    });
    await pick(page, 'big.bin', 'application/octet-stream', Buffer.alloc(2001, 7));
    const alert = page.getByRole('form', { name: 'Send a message' }).getByRole('alert');
    await alert.filter({ hasText: 'big.bin' }).waitFor();
    assert.match(await alert.innerText(), /most this relay allows/);
    const files = [1, 2, 3, 4, 5].map((i) => ({ name: `n${i}.txt`, mimeType: 'text/plain', buffer: Buffer.from(`note ${i}`) }));
    await page.getByTestId('attach-input').setInputFiles(files);
    await alert.filter({ hasText: 'n5.txt' }).waitFor();
    assert.match(await alert.innerText(), /at most 4/);
    assert.equal(await page.getByRole('list', { name: 'Attachments to send' }).getByRole('listitem').count(), 4);
    await page.context().close();
  });

  it('MD11 Enter pressed while a photo is still "Preparing…" sends it, text and photo, once it is ready', async () => {
    const page = await open();
    const bytes = await photo(page, 200, 100, 'image/png');
    // Holds every Blob read until released: the file stays "Preparing…" for as long as the test says.
    await page.evaluate(() => {
      const w = window as unknown as { __release(): void };
      const read = Blob.prototype.arrayBuffer;
      let open!: () => void;
      const gate = new Promise<void>((r) => (open = r));
      w.__release = open;
      Blob.prototype.arrayBuffer = async function (this: Blob) {
        await gate;
        return read.call(this);
      };
    });
    await pick(page, 'early.png', 'image/png', bytes);
    const item = page.getByRole('list', { name: 'Attachments to send' }).getByRole('listitem');
    await item.filter({ hasText: 'Preparing…' }).waitFor({ timeout: 20_000 });
    const composer = page.getByTestId('composer');
    await composer.fill('sent early');
    await composer.press('Enter');
    await page.getByRole('button', { name: 'Sends when ready…' }).waitFor({ timeout: 20_000 });
    assert.equal((await posts(page)).length, 0, 'nothing goes out before the photo is ready');
    assert.equal(await composer.inputValue(), 'sent early', 'the text stays while waiting');
    await page.evaluate(() => (window as unknown as { __release(): void }).__release());
    await page.waitForFunction(() => (window as unknown as { __harness: { fake: { posts: unknown[] } } }).__harness.fake.posts.length === 1, undefined, { timeout: 20_000 });
    const p = await posts(page);
    assert.equal(p[0]!.text, 'sent early');
    assert.equal(p[0]!.attachments.length, 1, 'the photo went with the text');
    assert.equal(await composer.inputValue(), '', 'the composer is empty after the send');
    await page.context().close();
  });

  it('MD11 a failed mint keeps the text and the file with the reason; sending again posts it', async () => {
    const page = await open();
    await page.evaluate(() => ((window as unknown as { __harness: { fake: { failNextMint: string } } }).__harness.fake.failNextMint = 'RATE_LIMITED'));
    await pick(page, 'retry.png', 'image/png', await photo(page, 200, 100, 'image/png'));
    const composer = page.getByTestId('composer');
    await composer.fill('try me');
    await assertEnabled(page);
    await composer.press('Enter');
    const item = page.getByRole('list', { name: 'Attachments to send' }).getByRole('listitem');
    await item.filter({ hasText: 'rate limited' }).waitFor();
    assert.equal(await composer.inputValue(), 'try me', 'the text is kept');
    assert.equal((await posts(page)).length, 0, 'nothing was posted');
    await assertEnabled(page);
    await composer.press('Enter');
    await page.waitForFunction(() => (window as unknown as { __harness: { fake: { posts: unknown[] } } }).__harness.fake.posts.length === 1, undefined, { timeout: 20_000 });
    const p = await posts(page);
    assert.equal(p[0]!.text, 'try me');
    assert.equal(p[0]!.attachments.length, 1);
    await page.context().close();
  });
});

describe('attachments in messages', () => {
  it('MD4 MD9 a renamed SVG (evil.png) is a download card saved as opaque bytes, never rendered', async () => {
    const page = await open();
    const svg = Buffer.from('<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"><script>alert(2)</script></svg>');
    await pick(page, 'evil.png', 'image/png', svg);
    const sent = await sendAndConfirm(page, 'look at this');
    const card = sent.message.getByRole('group', { name: 'File evil.png' });
    await card.waitFor();
    assert.equal(await sent.message.locator('img, iframe, object, embed').count(), 0);
    const download = page.waitForEvent('download');
    await card.getByRole('button', { name: 'Download evil.png' }).click();
    const d = await download;
    assert.equal(d.suggestedFilename(), 'evil.png');
    const types = await page.evaluate(() => (window as unknown as { __urls: { types: string[] } }).__urls.types);
    assert.ok(!types.some((t) => t.includes('svg') || t === 'image/png' || t === 'text/html'), `only opaque blobs: ${types.join(',')}`);
    assert.ok(types.includes('application/octet-stream'));
    const saved = await d.path();
    const { readFileSync } = await import('node:fs');
    assert.ok(readFileSync(saved).equals(svg), 'the saved bytes are the shared bytes');
    await page.context().close();
  });

  it('MD4 a received attachment whose meta claims a PNG photo but whose bytes are SVG becomes a download card once fetched', async () => {
    const page = await open();
    const svg = Buffer.from('<svg xmlns="http://www.w3.org/2000/svg"><rect width="10" height="10"/></svg>');
    const meta = await metaOf(page, 'cat.png', svg, 100, 100, 'image/png');
    await page.evaluate(
      async ([meta, b64]) => {
        const bin = atob(b64);
        const u8 = new Uint8Array(bin.length);
        for (let i = 0; i < bin.length; i++) u8[i] = bin.charCodeAt(i);
        await (window as unknown as { __harness: { addAttachments(c: string, a: number, t: string, f: unknown[]): Promise<unknown> } }).__harness.addAttachments('general', 0, 'a cat', [{ meta, bytes: u8 }]);
      },
      [meta, svg.toString('base64')] as const,
    );
    const msg = page.getByTestId('message').filter({ hasText: 'a cat' });
    await msg.getByRole('group', { name: 'File cat.png' }).waitFor();
    assert.equal(await msg.locator('img').count(), 0);
    const types = await page.evaluate(() => (window as unknown as { __urls: { types: string[] } }).__urls.types);
    assert.ok(!types.some((t) => t.includes('svg') || t === 'image/png'), `no blob of the SVG as an image: ${types.join(',')}`);
    await page.context().close();
  });

  it('MD6 A6 MD7 MD8 the box has its signed size at once with the decoded placeholder; "Waiting for a peer that has it", then a progress bar and the full image when a peer comes online, the row never resizes', async () => {
    const page = await open();
    const jpeg = await photo(page, 1200, 900, 'image/jpeg');
    // Real metadata, as the sender's app makes it (the page's own pipeline): a placeholder, no thumbnail.
    const meta = await page.evaluate(async (b64) => {
      const bin = atob(b64);
      const u8 = new Uint8Array(bin.length);
      for (let i = 0; i < bin.length; i++) u8[i] = bin.charCodeAt(i);
      const h = (window as unknown as { __harness: { prepare(b: Uint8Array, n: string): Promise<{ ok: true; meta: object } | { ok: false; message: string }> } }).__harness;
      const r = await h.prepare(u8, 'beach.jpg');
      if (!r.ok) throw new Error(r.message);
      return r.meta;
    }, jpeg.toString('base64'));
    const env = await page.evaluate(
      (meta) => (window as unknown as { __harness: { addAttachments(c: string, a: number, t: string, f: unknown[]): Promise<{ post: { attachments: { id: string }[] } }> } }).__harness.addAttachments('general', 1, 'at the beach', [{ meta }]),
      meta,
    );
    const msg = page.getByTestId('message').filter({ hasText: 'at the beach' });
    await msg.getByText('Waiting for a peer that has it').waitFor();
    assert.equal((meta as { placeholder?: { kind: string } }).placeholder?.kind, 'thumbhash');
    assert.equal('thumbnail' in meta, false, 'no inline thumbnail by default');
    const thumb = msg.locator('img[alt="beach.jpg"][data-full=false][data-placeholder=true]');
    await thumb.waitFor();
    assert.match((await thumb.getAttribute('src')) ?? '', /^data:image\/png;base64,/);
    const box0 = (await msg.getByRole('button', { name: 'Open photo beach.jpg' }).boundingBox())!;
    assert.equal(Math.round(box0.width), 320);
    assert.equal(Math.round(box0.height), 240);
    const row0 = (await msg.boundingBox())!;

    // A peer comes online holding it: the download starts by itself and shows its progress.
    await page.evaluate(() => {
      const h = (window as unknown as { __harness: { fake: { fetchGate: Promise<void> | null; release?: () => void } } }).__harness;
      h.fake.fetchGate = new Promise<void>((r) => (h.fake.release = r));
    });
    await page.evaluate(() => {
      const h = (window as unknown as { __harness: { fake: { setPresence(p: unknown[]): void } } }).__harness;
      h.fake.setPresence([{ sessionId: 's2', userId: 'x', name: 'bob', fingerprint: 'f', kind: 'browser', peerId: 'peer-bob', voiceRoom: null, since: Date.now(), isSelf: false, isSameUser: false }]);
    });
    const bar = msg.getByRole('progressbar', { name: 'Downloading beach.jpg' });
    await bar.waitFor();
    await page.evaluate((id) => {
      const f = (window as unknown as { __harness: { fake: { emit(e: string, p: unknown): void } } }).__harness.fake;
      f.emit('attachmentProgress', { id, receivedBytes: 50, totalBytes: 100 });
    }, env.post.attachments[0]!.id);
    await page.waitForFunction(() => document.querySelector('[role=progressbar]')?.getAttribute('aria-valuenow') === '50', undefined, { timeout: 20_000 });
    await page.evaluate(
      async ([id, b64]) => {
        const bin = atob(b64);
        const u8 = new Uint8Array(bin.length);
        for (let i = 0; i < bin.length; i++) u8[i] = bin.charCodeAt(i);
        const h = (window as unknown as { __harness: { holdBytes(id: string, b: Uint8Array): Promise<boolean>; fake: { fetchGate: unknown; release(): void } } }).__harness;
        await h.holdBytes(id, u8);
        h.fake.fetchGate = null;
        h.fake.release();
      },
      [env.post.attachments[0]!.id, jpeg.toString('base64')] as const,
    );
    await msg.locator('img[alt="beach.jpg"][data-full=true]').waitFor();
    assert.equal(await msg.getByRole('progressbar').count(), 0);
    const row1 = (await msg.boundingBox())!;
    assert.equal(row1.height, row0.height, 'the row keeps its height when the full image lands');
    // New messages re-read the window as new objects: the photo keeps its object URL (no refetch, no flicker).
    const src = await msg.locator('img[alt="beach.jpg"]').getAttribute('src');
    await page.evaluate(() => (window as unknown as { __harness: { add(c: string, a: number, t: string): Promise<unknown> } }).__harness.add('general', 0, 'nice one'));
    await page.getByTestId('message').filter({ hasText: 'nice one' }).waitFor();
    assert.equal(await msg.locator('img[alt="beach.jpg"]').getAttribute('src'), src);
    await page.context().close();
  });

  it('MD10 MD7 the photo viewer opens with Enter on the photo, moves with the arrows, closes with Escape and gives focus back', async () => {
    const page = await open();
    await pick(page, 'one.jpg', 'image/jpeg', await photo(page, 800, 600, 'image/jpeg'));
    await page.getByRole('button', { name: 'Remove one.jpg' }).waitFor();
    await pick(page, 'two.png', 'image/png', await photo(page, 300, 500, 'image/png'));
    await page.getByRole('button', { name: 'Remove two.png' }).waitFor();
    const sent = await sendAndConfirm(page, 'two photos');
    const opener = sent.message.getByRole('button', { name: 'Open photo one.jpg' });
    await opener.locator('img[data-full=true]').waitFor();
    // MD7: two photos side by side keep their own signed shapes (a flex line must not stretch one).
    const b1 = (await opener.boundingBox())!;
    const b2 = (await sent.message.getByRole('button', { name: 'Open photo two.png' }).boundingBox())!;
    assert.deepEqual([Math.round(b1.width), Math.round(b1.height)], [320, 240]);
    assert.deepEqual([Math.round(b2.width), Math.round(b2.height)], [192, 320]);
    await opener.focus();
    await page.keyboard.press('Enter');
    const dialog = page.getByRole('dialog', { name: 'Photo viewer' });
    await dialog.waitFor();
    await dialog.locator('img[alt="one.jpg"][data-full=true]').waitFor();
    for (const name of ['Close', 'Previous photo', 'Next photo', 'Zoom in', 'Zoom out', 'Download']) {
      assert.equal(await dialog.getByRole('button', { name, exact: true }).count(), 1, name);
    }
    await page.keyboard.press('ArrowRight');
    await dialog.locator('img[alt="two.png"]').waitFor();
    await dialog.getByRole('button', { name: 'Zoom in' }).click();
    await dialog.getByText('150%').waitFor();
    await page.keyboard.press('ArrowLeft');
    await dialog.locator('img[alt="one.jpg"]').waitFor();
    await page.keyboard.press('Escape');
    await dialog.waitFor({ state: 'detached' });
    await page.waitForFunction(() => document.activeElement?.getAttribute('aria-label') === 'Open photo one.jpg', undefined, { timeout: 20_000 });
    await page.context().close();
  });

  it('MD10 on a phone (375x812, touch) a pinch zooms about the fingers, one finger pans the zoomed photo, a double tap toggles fit and zoom', async () => {
    const page = await open('', { width: 375, height: 812 });
    await pick(page, 'wide.jpg', 'image/jpeg', await photo(page, 1600, 1200, 'image/jpeg'));
    await page.getByRole('button', { name: 'Remove wide.jpg' }).waitFor();
    const sent = await sendAndConfirm(page, 'pinch me');
    const opener = sent.message.getByRole('button', { name: 'Open photo wide.jpg' });
    await opener.locator('img[data-full=true]').waitFor();
    await opener.click();
    const dialog = page.getByRole('dialog', { name: 'Photo viewer' });
    await dialog.locator('img[alt="wide.jpg"][data-full=true]').waitFor();
    const cdp = await page.context().newCDPSession(page);
    await cdp.send('Emulation.setTouchEmulationEnabled', { enabled: true, maxTouchPoints: 5 });
    const touch = (type: 'touchStart' | 'touchMove' | 'touchEnd', points: [number, number][]) =>
      cdp.send('Input.dispatchTouchEvent', { type, touchPoints: points.map(([x, y], id) => ({ x, y, id })) });
    const zoomText = () => dialog.getByTestId('zoom').textContent();
    const picture = () => page.evaluate(() => {
      const stage = document.querySelector('[data-testid=photo-stage]')!;
      const r = stage.firstElementChild!.getBoundingClientRect();
      return { left: r.left, top: r.top, width: r.width, scrollLeft: stage.scrollLeft, scrollTop: stage.scrollTop };
    });
    const fit = await picture();
    assert.equal(await zoomText(), '100%');
    assert.ok(Math.abs(fit.width - 375) < 2, `fits the phone's width: ${fit.width}`);

    // Pinch: two fingers around (187, 400) spread from 80 px to 320 px apart: 4x about their midpoint
    // (then taller than the stage too, so the point can stay put in both directions).
    const [cx, cy] = [187, 400];
    const u = (cx - fit.left) / fit.width;
    const v = (cy - fit.top) / fit.width;
    await touch('touchStart', [[cx - 40, cy], [cx + 40, cy]]);
    for (let d = 60; d <= 160; d += 20) await touch('touchMove', [[cx - d, cy], [cx + d, cy]]);
    await touch('touchEnd', []);
    await page.waitForFunction(() => document.querySelector('[data-testid=zoom]')?.textContent === '400%');
    const pinched = await picture();
    assert.ok(Math.abs(pinched.width / fit.width - 4) < 0.02, `4x as wide: ${pinched.width}`);
    // The picture point that was between the fingers is still there (within a few px).
    assert.ok(Math.abs(pinched.left + u * pinched.width - cx) < 4, `x anchor: ${pinched.left + u * pinched.width}`);
    assert.ok(Math.abs(pinched.top + v * pinched.width - cy) < 4, `y anchor: ${pinched.top + v * pinched.width}`);

    // One finger drags the zoomed picture: it follows the finger (the stage scrolls by as much).
    await touch('touchStart', [[200, 500]]);
    for (let i = 1; i <= 5; i++) await touch('touchMove', [[200 - 20 * i, 500 - 10 * i]]);
    await touch('touchEnd', []);
    const panned = await picture();
    assert.ok(Math.abs(panned.scrollLeft - pinched.scrollLeft - 100) < 2, `panned right by 100: ${panned.scrollLeft - pinched.scrollLeft}`);
    assert.ok(Math.abs(panned.scrollTop - pinched.scrollTop - 50) < 2, `panned down by 50: ${panned.scrollTop - pinched.scrollTop}`);
    assert.equal(await zoomText(), '400%', 'a drag does not zoom');

    // A double tap goes back to fit, another zooms in again at the tapped point.
    const doubleTap = async (x: number, y: number) => {
      for (let i = 0; i < 2; i++) {
        await touch('touchStart', [[x, y]]);
        await touch('touchEnd', []);
      }
    };
    await doubleTap(187, 400);
    await page.waitForFunction(() => document.querySelector('[data-testid=zoom]')?.textContent === '100%');
    assert.ok(Math.abs((await picture()).width - fit.width) < 1, 'fit again');
    const before = await picture();
    await doubleTap(100, 420);
    await page.waitForFunction(() => document.querySelector('[data-testid=zoom]')?.textContent === '200%');
    const tapped = await picture();
    const tu = (100 - before.left) / before.width;
    assert.ok(Math.abs(tapped.left + tu * tapped.width - 100) < 4, `zoomed about the tap: ${tapped.left + tu * tapped.width}`);
    // The page itself never zoomed: the viewer took the gesture.
    assert.equal(await page.evaluate(() => window.visualViewport?.scale ?? 1), 1);
    await page.context().close();
  });

  it('MD8 object URLs are revoked when rows unmount: scrolling 400 photo messages keeps live URLs bounded by the mounted rows', async () => {
    const page = await open(`const b = await h.photo(64, 48, 'image/png');
      const meta = { name: 'tiny.png', mime: 'image/png', ...h.digests(b), width: 64, height: 48 };
      for (let i = 0; i < 400; i++) await h.addAttachments('general', i % 3, 'photo ' + i, [{ meta, bytes: b }])`);
    await page.waitForSelector('[data-testid=message-scroller][data-positioned=true]');
    let maxLive = 0;
    let created = 0;
    for (let step = 0; step < 25; step++) {
      await page.$eval('[data-testid=message-scroller]', (el) => (el.scrollTop = Math.max(0, el.scrollTop - 1500)));
      await page.waitForTimeout(100);
      const s = await page.evaluate(() => {
        const u = (window as unknown as { __urls: { live: Map<string, string>; types: string[] } }).__urls;
        return { live: u.live.size, created: u.types.length, rows: document.querySelectorAll('[data-testid=message]').length };
      });
      maxLive = Math.max(maxLive, s.live);
      created = s.created;
      assert.ok(s.live <= 2 * s.rows + 4, `live object URLs ${s.live} for ${s.rows} mounted rows`);
    }
    assert.ok(created > maxLive * 2, `the scroll mounted and unmounted photos (created ${created}, live at most ${maxLive})`);
    await page.context().close();
  });
});
