// Renders the photo screenshots (docs/app-photos-desktop.png 1280x800, docs/app-photos-phone.png 375x812)
// from the page-test harness: a channel with photos (one still waiting for a peer), a file card, files
// waiting in the composer; plus the photo viewer (to /tmp, for looking at).
// `npx tsx scripts/screenshotsPhotos.ts [outDir]`
import { launchChromium } from '../e2e/fixtures/chromium';
import { startViteHarness } from '../e2e/fixtures/viteHarness';

const out = process.argv[2] ?? 'docs';

const SEED = `
  const h = window.__harness;
  const now = Date.now();
  await h.seed('general', 6, { stepMs: 60_000, endTs: now - 3_600_000 });
  const prep = async (w, hgt, type, hue, name) => {
    const r = await h.prepare(await h.photo(w, hgt, type, hue), name);
    return { meta: r.meta, bytes: r.bytes };
  };
  const far = await prep(1200, 800, 'image/jpeg', 280, 'lake.jpg');
  await h.addAttachments('general', 2, 'the lake from last year (my laptop is off, so it waits for me)', [{ meta: far.meta, held: false }]);
  const pdf = new TextEncoder().encode('%PDF-1.4 route notes '.repeat(4000));
  await h.addAttachments('general', 0, 'route and timings', [{ meta: { name: 'route-notes.pdf', mime: 'application/pdf', ...h.digests(pdf) }, bytes: pdf }]);
  const svg = new TextEncoder().encode('<svg xmlns="http://www.w3.org/2000/svg"/>');
  await h.addAttachments('general', 1, '', [{ meta: { name: 'map\u202Egvs.png', mime: 'image/svg+xml', ...h.digests(svg) }, bytes: svg }]);
  await h.add('general', 0, 'back from the hike, the view from the top:');
  await h.addAttachments('general', 0, '', [await prep(1600, 1200, 'image/jpeg', 205, 'ridge.jpg'), await prep(900, 1200, 'image/jpeg', 20, 'sunset.jpg')]);
  await h.add('general', 1, 'wow. where is that?');
  const p = (o, i, extra) => ({ sessionId: 's' + i, userId: o.publicKey, name: o.name, fingerprint: o.fingerprint, kind: 'browser', peerId: '0000000000000000-000000000' + i, voiceRoom: null, since: now, isSelf: false, isSameUser: false, ...extra });
  h.fake.setPresence([p(h.me, 0, { isSelf: true }), p(h.others[0], 1, {}), p(h.others[1], 2, {})]);
  h.mount();
`;

const vite = await startViteHarness();
const browser = await launchChromium();
try {
  for (const [name, viewport] of [
    ['desktop', { width: 1280, height: 800 }],
    ['phone', { width: 375, height: 812 }],
  ] as const) {
    const ctx = await browser.newContext({ viewport, colorScheme: 'dark', deviceScaleFactor: 1 });
    const page = await ctx.newPage();
    page.on('pageerror', (e) => console.error('pageerror', e));
    await page.goto(`${vite.url}/testing/harness.html?name=carol`);
    await page.waitForSelector('body[data-ready=true]', { state: 'attached' });
    await page.evaluate(`(async () => {${SEED}})()`);
    await page.waitForSelector('[data-testid=message-scroller][data-positioned=true]');
    await page.locator('img[alt="ridge.jpg"][data-full=true]').waitFor();
    // A photo waiting in the composer, as picked.
    const b64 = await page.evaluate(`(async () => { const b = await window.__harness.photo(1024, 768, 'image/jpeg', 120); let s = ''; for (const x of b) s += String.fromCharCode(x); return btoa(s); })()`);
    await page.getByTestId('attach-input').setInputFiles({ name: 'summit-selfie.jpg', mimeType: 'image/jpeg', buffer: Buffer.from(b64 as string, 'base64') });
    await page.getByRole('button', { name: 'Remove summit-selfie.jpg' }).waitFor();
    await page.getByTestId('composer').fill('and one more');
    // The phone's column fits less: scroll back to the cards so they are in the picture too.
    if (name === 'phone') await page.getByRole('group', { name: /File map/ }).evaluate((el) => el.scrollIntoView({ block: 'start' }));
    await page.waitForTimeout(600);
    await page.screenshot({ path: `${out}/app-photos-${name}.png` });
    console.log('wrote', `${out}/app-photos-${name}.png`);
    await page.getByRole('button', { name: 'Open photo ridge.jpg' }).click();
    await page.getByRole('dialog', { name: 'Photo viewer' }).locator('img[data-full=true]').waitFor();
    await page.waitForTimeout(300);
    await page.screenshot({ path: `/tmp/photos-lightbox-${name}.png` });
    console.log('wrote', `/tmp/photos-lightbox-${name}.png`);
    await ctx.close();
  }
} finally {
  await browser.close();
  await vite.close();
}
