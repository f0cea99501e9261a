// Renders the README's screenshots (docs/app-desktop.png 1280x800, docs/app-phone.png 375x812) from the
// page-test harness: real views and real IndexedDB, a scripted client for presence and sync state.
// `npx tsx scripts/screenshots.ts`
import { launchChromium } from '../e2e/fixtures/chromium';
import { startViteHarness } from '../e2e/fixtures/viteHarness';

const SEED = `
  const h = window.__harness;
  const now = Date.now();
  const lines = [
    [0, 'anyone up for a round tonight?'], [1, 'yes! 21:00?'], [1, 'I can host the server'],
    [2, 'count me in — bringing the new map'], [0, 'nice, the old one had that spawn bug'],
    [3, 'history synced from two peers while I was away, love it'], [1, 'links work too: https://example.org/patch-notes'],
    [2, 'same name as alice? check the fingerprint ;)'], [0, 'ha, different colour too'],
  ];
  for (let d = 3; d >= 1; d--) await h.seed('general', 12, { stepMs: 60_000, endTs: now - d * 86_400_000 });
  let prev = null;
  for (let i = 0; i < lines.length; i++) {
    const [who, text] = lines[i];
    const e = await h.add('general', who === 3 ? -1 : who, text, i === 4 ? prev : null);
    if (i === 0) prev = e.id;
  }
  await h.seed('random', 4, { stepMs: 1000, endTs: now - 5000 });
  const r = await h.seed('media', 2, { stepMs: 1000, endTs: now - 90000 });
  await h.markRead('general', 'Z');
  const p = (o, i, extra) => ({ sessionId: 's' + i, userId: o.publicKey, name: o.name, fingerprint: o.fingerprint, kind: 'browser', peerId: '0000000000000000-000000000' + i, voiceRoom: null, since: now, isSelf: false, isSameUser: false, ...extra });
  h.fake.setPresence([
    p(h.me, 0, { isSelf: true }), p(h.others[0], 1, { voiceRoom: 'lounge' }), p(h.others[1], 2, {}), p(h.others[2], 3, {}),
    p(h.others[3], 4, { kind: 'virtual' }),
  ]);
  h.fake.set({ sync: { ...h.fake.snap.sync, general: { state: 'syncing', peers: 2, received: 36, lastSyncedAt: null, gaps: [] } } });
  h.mount();
`;

const vite = await startViteHarness();
const browser = await launchChromium();
try {
  for (const [file, viewport] of [
    ['docs/app-desktop.png', { width: 1280, height: 800 }],
    ['docs/app-phone.png', { width: 375, height: 812 }],
  ] as const) {
    const ctx = await browser.newContext({ viewport, colorScheme: 'dark', deviceScaleFactor: 1 });
    const page = await ctx.newPage();
    await page.goto(`${vite.url}/testing/harness.html?name=carol`);
    await page.waitForSelector('body[data-ready=true]', { state: 'attached' });
    await page.evaluate(`(async () => {${SEED}})()`);
    await page.waitForSelector('[data-testid=message-scroller][data-positioned=true]');
    await page.waitForTimeout(500);
    await page.screenshot({ path: file });
    await ctx.close();
    console.log('wrote', file);
  }
} finally {
  await browser.close();
  await vite.close();
}
