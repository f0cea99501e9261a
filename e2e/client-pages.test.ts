// Page tests of the web app's views in real Chromium, over real IndexedDB, with a scripted client in
// place of the network (src/client/testing/harness.tsx). Named after issue 8's UI rules (UI1-UI8 in
// src/shared/SPEC.md).
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { Browser, Page } from 'playwright-core';
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

const open = (seed: string, viewport = { width: 1280, height: 800 }): Promise<Page> => openHarnessPage(browser, vite.url, seed, { viewport });

const scrollerState = (page: Page) =>
  page.$eval('[data-testid=message-scroller]', (el) => ({ top: el.scrollTop, height: el.scrollHeight, client: el.clientHeight }));

async function waitFor<T>(fn: () => Promise<T>, ok: (v: T) => boolean, what: string, ms = 20_000): Promise<T> {
  const end = Date.now() + ms;
  let v = await fn();
  while (!ok(v)) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}: ${JSON.stringify(v)}`);
    await new Promise((r) => setTimeout(r, 50));
    v = await fn();
  }
  return v;
}

/**
 * Scrolls up into the prefetch zone `rounds` times; each time an older page is prepended, and the row the
 * reader was looking at must stay where it was (UI1).
 */
async function keepsViewOnPrepend(page: Page, rounds: number): Promise<void> {
  for (let round = 0; round < rounds; round++) {
    // Park just outside the prefetch zone (1,200 px), let the rows render, then step into it and note
    // a visible row in the same task, before any load can land.
    await page.$eval('[data-testid=message-scroller]', (el) => (el.scrollTop = 1400));
    await page.waitForTimeout(300);
    // The height before the step is read in the same task as the step: a load that lands before the next
    // round trip from the test must still count as the prepend.
    const anchor = await page.evaluate(() => {
      const sc = document.querySelector('[data-testid=message-scroller]')!;
      const height = sc.scrollHeight;
      sc.scrollTop = 1000;
      const top = sc.getBoundingClientRect().top;
      const rows = [...document.querySelectorAll<HTMLElement>('[data-testid=message]')];
      const r = rows.find((x) => x.getBoundingClientRect().top > top + 20)!;
      return { id: r.dataset.id!, y: Math.round(r.getBoundingClientRect().top - top), height };
    });
    // Wait for the prepend (the scroll height grows), then the anchor must be where it was.
    const h0 = anchor.height;
    await waitFor(() => scrollerState(page), (s) => s.height > h0, 'older page prepended');
    // Loads may chain (the reader is still near the top); wait until the row has kept one place for 0.5 s.
    const rowY = () =>
      page.evaluate((id) => {
        const sc = document.querySelector('[data-testid=message-scroller]')!;
        const el = document.querySelector<HTMLElement>(`[data-id="${id}"]`);
        return el ? Math.round(el.getBoundingClientRect().top - sc.getBoundingClientRect().top) : null;
      }, anchor.id);
    let y = await rowY();
    for (let stable = Date.now(), end = Date.now() + 20_000; Date.now() - stable < 500 && Date.now() < end; ) {
      await page.waitForTimeout(50);
      const y2 = await rowY();
      if (y2 !== y) stable = Date.now();
      y = y2;
    }
    assert.notEqual(y, null, 'anchor row still rendered');
    assert.ok(Math.abs(y! - anchor.y) <= 2, `row ${anchor.id} moved from ${anchor.y} to ${y}`);
  }
}

describe('message list with 10,000 messages', () => {
  it('UI1 opens at the bottom, sticks there on new messages, keeps the view still when older ones load above', async () => {
    const page = await open(`await h.seed('general', 10000)`);
    await page.waitForSelector('[data-testid=message-scroller][data-positioned=true]');
    const last = await page.locator('[data-testid=message]').last().innerText();
    assert.match(last, /message 9999 in #general/);
    const s0 = await scrollerState(page);
    assert.ok(s0.height - s0.top - s0.client < 80, `at the bottom: ${JSON.stringify(s0)}`);
    // Never the whole list in the DOM.
    assert.ok((await page.locator('[data-testid=message]').count()) < 80);

    // A new message while at the bottom: followed.
    await page.evaluate(`window.__harness.add('general', 0, 'fresh while at bottom')`);
    await page.waitForSelector('[data-testid=message] >> text=fresh while at bottom');
    await waitFor(() => scrollerState(page), (s) => s.height - s.top - s.client < 80, 'still at the bottom');

    // Scroll to the top repeatedly: older pages load above; the message in view must not move.
    await keepsViewOnPrepend(page, 3);

    // Scrolled up: a new message does not move the view, "jump to present" appears and works.
    await page.$eval('[data-testid=message-scroller]', (el) => (el.scrollTop = el.scrollHeight / 2));
    await page.waitForTimeout(500);
    const visibleRow = () =>
      page.evaluate(() => {
        const sc = document.querySelector('[data-testid=message-scroller]')!;
        const top = sc.getBoundingClientRect().top;
        const r = [...document.querySelectorAll<HTMLElement>('[data-testid=message]')].find((x) => x.getBoundingClientRect().top > top)!;
        return { id: r.dataset.id!, y: r.getBoundingClientRect().top - top };
      });
    const before = await visibleRow();
    await page.evaluate(`window.__harness.add('general', 1, 'fresh while reading backlog')`);
    await page.waitForTimeout(500);
    const during = await page.evaluate((id) => {
      const sc = document.querySelector('[data-testid=message-scroller]')!;
      return document.querySelector(`[data-id="${id}"]`)!.getBoundingClientRect().top - sc.getBoundingClientRect().top;
    }, before.id);
    assert.ok(Math.abs(during - before.y) <= 2, `view moved from ${before.y} to ${during}`);
    assert.equal(await page.locator('[data-testid=message] >> text=fresh while reading backlog').count(), 0, 'new message not scrolled into view');
    // Screen readers hear it once, through the polite region, not through the list. Waited for: the 500 ms
    // above prove the view did not move, not that the store write and the live query were done (at load 34
    // the region still held the previous announcement then).
    await waitFor(() => page.locator('[data-testid=live-region]').innerText(), (t) => /bob: fresh while reading backlog/.test(t), 'announced in the live region');
    await page.click('[data-testid=jump-to-present]');
    await page.waitForSelector('[data-testid=message] >> text=fresh while reading backlog');
    await waitFor(() => scrollerState(page), (s) => s.height - s.top - s.client < 80, 'at the bottom after jump');
    await page.context().close();
  });
});

describe('message list: arrival order', () => {

  it('UI1 keeps the view still when older ones load above, also on a slow device (CPU 4x throttled)', async () => {
    // On a slow CPU the rows' re-render after a measure lands frames after the scroll position's
    // correction; the reader saw the rows jump by what the rows above lost to their measure (10 px here,
    // 5 of 18 rounds before). Three fresh pages, three rounds each.
    for (let n = 0; n < 3; n++) {
      const page = await open(`await h.seed('general', 10000)`);
      await page.waitForSelector('[data-testid=message-scroller][data-positioned=true]');
      const cdp = await page.context().newCDPSession(page);
      await cdp.send('Emulation.setCPUThrottlingRate', { rate: 4 });
      await keepsViewOnPrepend(page, 3);
      await page.context().close();
    }
  });
  it('UI1 an envelope stored after newer ones still shows (catch-up fetches newest first; own post and relay stream race)', async () => {
    // The channel opens empty, as for someone who just made an identity (e2e S1).
    const page = await open('');
    const shown = () => page.locator('[data-testid=message]').evaluateAll((els) => els.map((e) => (e as HTMLElement).innerText));
    await page.evaluate(`window.__harness.add('general', 0, 'second post')`);
    await page.waitForSelector('[data-testid=message] >> text=second post');
    // A render after the first one: the window has anchored on what it first saw (React runs a render's
    // effects before it commits the next render).
    await page.evaluate(`window.__harness.add('general', 1, 'third post')`);
    await page.waitForSelector('[data-testid=message] >> text=third post');
    // The first post, minted before both, lands last.
    await page.evaluate(`window.__harness.addLate('general', 2, 'first post', 5000)`);
    await page.waitForSelector('[data-testid=message] >> text=first post', { timeout: 20_000 });
    const rows = await shown();
    assert.deepEqual(
      ['first post', 'second post', 'third post'].map((t) => rows.findIndex((r) => r.includes(t))),
      [0, 1, 2],
      `in id order: ${JSON.stringify(rows)}`,
    );
    await page.context().close();
  });
});

describe('composer', () => {
  it('UI2 Enter sends, Shift+Enter is a new line, a draft is kept per channel, own post shows sending then confirmed or failed with retry', async () => {
    const page = await open(`await h.seed('general', 5)`);
    const box = page.locator('[data-testid=composer]');
    await box.click();
    await box.type('line one');
    await page.keyboard.down('Shift');
    await page.keyboard.press('Enter');
    await page.keyboard.up('Shift');
    await box.type('line two');
    assert.equal(await box.inputValue(), 'line one\nline two');
    // Draft per channel: switch away and back.
    await page.click('[data-testid=channel-random]');
    await page.waitForURL(/\/c\/random$/);
    assert.equal(await page.locator('[data-testid=composer]').inputValue(), '');
    await page.goBack();
    await page.waitForURL(/\/c\/general$/);
    assert.equal(await page.locator('[data-testid=composer]').inputValue(), 'line one\nline two');
    await page.locator('[data-testid=composer]').press('Enter');
    assert.equal(await page.locator('[data-testid=composer]').inputValue(), '');
    const posts = (await page.evaluate('window.__harness.fake.posts')) as { text: string; clientId: string }[];
    assert.deepEqual(posts.map((p) => p.text), ['line one\nline two']);
    await page.waitForSelector('[data-testid=own-pending][data-state=sending]');
    await page.evaluate(`window.__harness.confirm(${JSON.stringify(posts[0]!.clientId)})`);
    await page.waitForSelector('[data-testid=message][data-state=confirmed] >> text=line two');
    assert.equal(await page.locator('[data-testid=own-pending]').count(), 0);

    // A refused post: the reason in words, and a retry with the same client id.
    await page.locator('[data-testid=composer]').fill('too fast');
    await page.locator('[data-testid=composer]').press('Enter');
    const second = ((await page.evaluate('window.__harness.fake.posts')) as { clientId: string }[])[1]!.clientId;
    await page.evaluate(`window.__harness.fake.fail(${JSON.stringify(second)}, 'RATE_LIMITED')`);
    await page.waitForSelector('[data-testid=own-pending][data-state=failed] >> text=rate limited');
    await page.click('[data-testid=own-pending] >> text=Retry');
    await page.waitForSelector('[data-testid=own-pending][data-state=sending]');
    await page.context().close();
  });

  it('UI3 replies quote the original, and clicking the quote jumps to it even when it is far back', async () => {
    const page = await open(`const ids = await h.seed('general', 3000); window.__orig = ids[10]; await h.add('general', 1, 'answer here', ids[10])`);
    await page.waitForSelector('[data-testid=message-scroller][data-positioned=true]');
    await page.waitForSelector('text=answer here');
    await page.click('[data-testid=reply-quote]');
    const orig = (await page.evaluate('window.__orig')) as string;
    await page.waitForSelector(`[data-id="${orig}"]`, { timeout: 20_000 });
    await page.context().close();
  });
});

describe('author names', () => {
  it('M7 a message by an author this browser never saw in presence shows the relay-attested name, with the fingerprint', async () => {
    const page = await open(`await h.seed('general', 2); await h.addFromStranger('general', 'from an old friend', 'carol'); await h.add('general', 0, 'in between'); await h.addFromStranger('general', 'from before names were signed')`);
    await page.waitForSelector('text=from an old friend');
    await page.waitForSelector('text=from before names were signed');
    const fp = (await page.evaluate('window.__harness.strangers[0].fingerprint')) as string;
    const named = page.locator('[data-testid=message]', { hasText: 'from an old friend' });
    assert.match(await named.innerText(), new RegExp(`carol\\s*${fp}`));
    // An envelope minted before M7 carries no name and this browser never saw the key: 'unknown', as before.
    const unnamed = page.locator('[data-testid=message]', { hasText: 'from before names were signed' });
    assert.match(await unnamed.innerText(), new RegExp(`unknown\\s*${fp}`));
    await page.context().close();
  });
});

describe('storage', () => {
  it('UI11 a full store is an alert; the Storage section shows what is kept and clears old attachments, keeping the messages', async () => {
    const page = await open(
      `window.__old = [await h.addAttachment('general', 40000, 3 * 86400000, 'old1.bin'), await h.addAttachment('general', 40000, 2 * 86400000, 'old2.bin')]; window.__new = await h.addAttachment('general', 10000, 60000, 'new.bin')`,
    );
    await page.waitForSelector('text=with new.bin');
    assert.equal(await page.locator('[role=alert]').count(), 0, 'no alert before any error');
    await page.evaluate('window.__harness.quotaExceeded()');
    const alert = page.getByRole('alert').filter({ hasText: 'Storage is full' });
    await alert.waitFor();
    await alert.getByRole('button', { name: 'Open storage' }).click();
    const dialog = page.getByRole('dialog');
    await dialog.getByRole('heading', { name: 'Storage' }).waitFor();
    const kept = dialog.getByTestId('storage-attachments');
    await waitFor(() => kept.innerText(), (t) => t.startsWith('90.0 KB in 3 files'), 'attachment bytes shown');
    assert.equal(await dialog.getByTestId('storage-messages').innerText(), '3');
    assert.match(await dialog.getByTestId('storage-quota').innerText(), /used of .* allowed/);
    await dialog.getByRole('button', { name: 'Clear old attachments' }).click();
    await waitFor(() => dialog.getByRole('status').filter({ hasText: 'Freed' }).innerText().catch(() => ''), (t) => /Freed 80\.0 KB from 2 attachments/.test(t), 'cleared');
    await waitFor(() => kept.innerText(), (t) => t.startsWith('10.0 KB in 1 file') && /2 more fetched from peers/.test(t), 'usage refreshed');
    const [oldIds, newId] = (await page.evaluate('[window.__old, window.__new]')) as [string[], string];
    for (const id of oldIds) assert.equal(await page.evaluate(`window.__harness.hasAttachmentBytes(${JSON.stringify(id)})`), false);
    assert.equal(await page.evaluate(`window.__harness.hasAttachmentBytes(${JSON.stringify(newId)})`), true, 'the last day is kept');
    assert.equal(await dialog.getByTestId('storage-messages').innerText(), '3', 'messages kept');
    await page.keyboard.press('Escape');
    await page.getByRole('button', { name: 'Dismiss storage warning' }).click();
    assert.equal(await page.getByTestId('quota-alert').count(), 0);
    await page.context().close();
  });
});

describe('placing a channel', () => {
  // What the reader would see at the moment the list turns visible (data-positioned flips to true), taken
  // in that same turn, for each time it does.
  const watchPlacement = `
    window.__placements = [];
    new MutationObserver(() => {
      const sc = document.querySelector('[data-testid=message-scroller]');
      const shown = sc?.dataset.positioned === 'true';
      if (shown === window.__shown) return;
      window.__shown = shown;
      if (!shown) return;
      const box = sc.getBoundingClientRect();
      const rows = [...sc.querySelectorAll('[data-testid=message]')];
      const newest = rows[rows.length - 1];
      const divider = sc.querySelector('[data-testid=new-divider]');
      window.__placements.push({
        gap: sc.scrollHeight - sc.scrollTop - sc.clientHeight,
        newestText: newest?.innerText, newestBottom: newest ? newest.getBoundingClientRect().bottom - box.bottom : null,
        dividerTop: divider ? divider.getBoundingClientRect().top - box.top : null,
        dividerHeight: divider ? divider.getBoundingClientRect().height : null,
      });
    }).observe(document, { subtree: true, childList: true, attributes: true, attributeFilter: ['data-positioned'] });`;

  it('UI1 the list turns visible only in place: at the bottom with the newest message in view (and stays), or with the new divider at the top', async () => {
    const page = await openHarnessPage(
      browser,
      vite.url,
      `await h.seed('general', 10000); const r = await h.seed('random', 200, { endTs: Date.now() - 60_000 }); await h.markRead('random', r[150]); await h.seed('random', 3, { endTs: Date.now() - 1000, stepMs: 10 })`,
      { viewport: { width: 1280, height: 800 }, initScript: watchPlacement },
    );
    const placements = () => page.evaluate(() => (window as unknown as { __placements: Record<string, number | string | null>[] }).__placements);
    await waitFor(placements, (p) => p.length >= 1, 'general shown');
    const [general] = await placements();
    assert.ok(Math.abs(Number(general!.gap)) <= 1, `at the bottom when shown: ${JSON.stringify(general)}`);
    assert.match(String(general!.newestText), /message 9999 in #general/);
    assert.ok(Math.abs(Number(general!.newestBottom)) <= 2, `newest message fully in view at the bottom: ${JSON.stringify(general)}`);
    await page.waitForTimeout(500);
    const still = await scrollerState(page);
    assert.ok(still.height - still.top - still.client <= 1, `still at the bottom: ${JSON.stringify(still)}`);

    // The client core may start now (historyPlaced.ts).
    await page.waitForSelector('body[data-history-placed=true]', { state: 'attached', timeout: 20_000 });
    await page.click('[data-testid=channel-random]');
    await waitFor(placements, (p) => p.length >= 2, 'random shown');
    const random = (await placements())[1]!;
    assert.notEqual(random.dividerTop, null, 'the new divider is in view');
    // At the top edge (scrollToIndex's 'start', which leaves it a few px over the edge, as before).
    assert.ok(Math.abs(Number(random.dividerTop)) <= Number(random.dividerHeight), `the new divider at the top when shown: ${JSON.stringify(random)}`);
    await page.waitForTimeout(500);
    const dividerTop = await page.evaluate(() => {
      const sc = document.querySelector('[data-testid=message-scroller]')!;
      return document.querySelector('[data-testid=new-divider]')!.getBoundingClientRect().top - sc.getBoundingClientRect().top;
    });
    // Still at the top edge. (It settles by the few px of scrollToIndex's overshoot after it is shown;
    // the fixed three placement frames did the same.)
    assert.ok(Math.abs(dividerTop) <= Number(random.dividerHeight), `the divider stayed at the top: ${random.dividerTop} -> ${dividerTop}`);
    await page.context().close();
  });

  it('UI1 an empty channel has nothing to place: the client core need not wait for a list', async () => {
    const page = await open(`await h.seed('random', 3)`);
    await page.waitForSelector('[data-testid=composer]');
    await page.waitForSelector('body[data-history-placed=true]', { state: 'attached', timeout: 20_000 });
    assert.equal(await page.locator('[data-testid=message]').count(), 0, 'general is empty');
    await page.context().close();
  });
});

describe('unread counts', () => {
  it('UI4 counts come from the store: others\u2019 messages after the read marker, cleared on opening, never own', async () => {
    const page = await open(
      `await h.seed('general', 3); const r = await h.seed('random', 2); await h.markRead('random', r[1]); await h.seed('random', 7, { endTs: Date.now() + 1000, stepMs: 10 }); await h.seed('random', 2, { author: -1, endTs: Date.now() + 2000, stepMs: 10 })`,
    );
    await page.waitForSelector('[data-testid=unread-random]');
    assert.equal(await page.locator('[data-testid=unread-random]').innerText(), '7');
    assert.match(await page.title(), /^\(7\) /);
    await page.evaluate(`window.__harness.add('random', 1, 'one more')`);
    await waitFor(() => page.locator('[data-testid=unread-random]').innerText(), (t) => t === '8', 'count 8');
    await page.click('[data-testid=channel-random]');
    await page.waitForSelector('[data-testid=new-divider]');
    await waitFor(() => page.locator('[data-testid=unread-random]').count(), (n) => n === 0, 'badge cleared');
    // A reload keeps it right (nothing is counted twice or lost).
    await page.evaluate(`window.__harness.add('general', 2, 'elsewhere')`);
    await waitFor(() => page.locator('[data-testid=unread-general]').innerText(), (t) => t === '1', 'general 1');
    await page.context().close();
  });
});

describe('relay key', () => {
  it('UI5 a changed relay key is a blocking warning that Esc does not dismiss; trusting is explicit', async () => {
    const page = await open(`await h.seed('general', 3)`);
    await page.waitForSelector('[data-testid=message]');
    await page.evaluate(`window.__harness.fake.setConnection({ state: 'relay-key-changed', pinned: 'a', pinnedFingerprint: 'AAAA-AAAA', offered: 'b'.repeat(43), offeredFingerprint: 'BBBB-BBBB' })`);
    const dialog = page.locator('[data-testid=key-changed]');
    await dialog.waitFor();
    assert.match(await dialog.innerText(), /AAAA-AAAA[\s\S]*BBBB-BBBB/);
    await page.keyboard.press('Escape');
    await page.waitForTimeout(200);
    assert.equal(await dialog.isVisible(), true, 'still shown after Esc');
    // Modal: the composer behind it cannot be focused by clicking.
    assert.equal(await page.evaluate(() => document.querySelector('dialog[open]')?.matches(':modal')), true);
    await page.click('text=Trust the new key');
    await dialog.waitFor({ state: 'detached' });
    assert.deepEqual(await page.evaluate('window.__harness.fake.trusted'), ['b'.repeat(43)]);
    await page.context().close();
  });
});

describe('identity file', () => {
  it('UI6 export then import in another browser profile gives the same identity; a wrong passphrase is refused with a message', async () => {
    const page = await open(`await h.seed('general', 1)`);
    await page.click('[data-testid=open-identity]');
    const fp = await page.locator('[data-testid=own-fingerprint]').innerText();
    await page.fill('[data-testid=export-passphrase]', 'a long enough passphrase');
    await page.fill('[data-testid=export-passphrase2]', 'a long enough passphrase');
    const [download] = await Promise.all([page.waitForEvent('download', { timeout: 60_000 }), page.click('[data-testid=export-submit]')]);
    const path = join(mkdtempSync(join(tmpdir(), 'peerchat-id-')), 'identity.json');
    await download.saveAs(path);
    await page.context().close();

    // Another profile: the real app's first-visit screen, no identity yet.
    const ctx = await browser.newContext();
    const p2 = await ctx.newPage();
    await p2.goto(`${vite.url}/`);
    await p2.click('text=I have an identity file');
    await p2.setInputFiles('[data-testid=import-file]', path);
    await p2.fill('[data-testid=import-passphrase]', 'not the passphrase');
    await p2.click('[data-testid=import-submit]');
    const err = await p2.locator('[data-testid=import-error]').innerText({ timeout: 60_000 });
    assert.match(err, /Wrong passphrase/);
    const stored = await p2.evaluate(async () => (await indexedDB.databases()).map((d) => d.name));
    void stored;
    await p2.fill('[data-testid=import-passphrase]', 'a long enough passphrase');
    await p2.click('[data-testid=import-submit]');
    // Imported: the app moves past the first-visit screen; the stored key has the same fingerprint.
    await p2.waitForSelector('[data-testid=import-form]', { state: 'detached', timeout: 60_000 });
    const imported = await p2.evaluate(
      () =>
        new Promise<string>((resolve, reject) => {
          const req = indexedDB.open('peerchat-app');
          req.onsuccess = () => {
            const tx = req.result.transaction('identity', 'readonly');
            const get = tx.objectStore('identity').get('self');
            get.onsuccess = () => resolve(get.result.publicKey as string);
            get.onerror = () => reject(get.error);
          };
          req.onerror = () => reject(req.error);
        }),
    );
    const { fingerprintOfKey } = await import('../src/client/identity/identity');
    assert.equal(fingerprintOfKey(imported), fp);
    await ctx.close();
  });
});

describe('two tabs', () => {
  it('UI9 one tab holds the session; another follows, takes over with "Use here", and the first gets it back when that tab closes', async () => {
    // The real app (not the harness): its client starts even with no relay behind the dev server.
    const ctx = await browser.newContext();
    const first = await ctx.newPage();
    await first.goto(`${vite.url}/`);
    await first.fill('[data-testid=display-name]', 'two tabs');
    await first.click('[data-testid=create-identity]');
    await first.waitForSelector('[data-testid=connection]', { timeout: 30_000 });
    const second = await ctx.newPage();
    await second.goto(`${vite.url}/`);
    await second.waitForSelector('[data-testid=other-tab]', { timeout: 30_000 });
    await second.click('[data-testid=use-here]');
    await second.waitForSelector('[data-testid=connection]', { timeout: 30_000 });
    await first.waitForSelector('[data-testid=other-tab]', { timeout: 30_000 });
    await second.close();
    await first.waitForSelector('[data-testid=connection]', { timeout: 30_000 });
    await ctx.close();
  });
});

describe('member list', () => {
  /** `n` people on the page (entry 3 is us), the counts of a large community. */
  const seedMembers = (n: number, online: { browser: number; virtual: number }, virtual = 0) => `
    const entry = (i, kind) => ({ sessionId: 's' + i, userId: 'k' + String(i).padStart(42, '0'), name: (kind === 'virtual' ? 'cache ' : 'person ') + i,
      fingerprint: 'ABCD-' + String(i).padStart(4, '0'), kind, peerId: '0000000000000000-aaaaaaaaaa', voiceRoom: null, since: i,
      isSelf: i === 3, isSameUser: false });
    h.fake.setPresence([...Array.from({ length: ${n} }, (_, i) => entry(i, 'browser')), ...Array.from({ length: ${virtual} }, (_, i) => entry(1000 + i, 'virtual'))],
      ${JSON.stringify(online)});`;

  it('UI12 a large community: counts of everyone, one page of members, own entry marked, "Show more" asks for the next page', async () => {
    const page = await open(seedMembers(50, { browser: 1000, virtual: 2 }));
    const members = page.getByRole('complementary', { name: 'Members' });
    await members.getByRole('heading', { name: 'Online — 1,000' }).waitFor();
    await members.getByRole('heading', { name: 'Virtual clients — 2' }).waitFor();
    assert.equal(await members.locator('[data-testid=member]').count(), 50, 'the page, not everyone');
    assert.equal(await members.locator('[data-testid=member][data-self=true]').count(), 1);
    assert.match(await members.locator('[data-testid=member][data-self=true]').innerText(), /you/);
    assert.match(await members.getByRole('navigation', { name: 'Member pages' }).innerText(), /1–50 of 1,002 online/);
    if (process.env.PEERCHAT_SCREENSHOTS) {
      await page.screenshot({ path: join(process.env.PEERCHAT_SCREENSHOTS, 'members-desktop.png') });
      await members.getByRole('navigation', { name: 'Member pages' }).scrollIntoViewIfNeeded();
      await page.screenshot({ path: join(process.env.PEERCHAT_SCREENSHOTS, 'members-desktop-pages.png') });
    }
    await members.getByRole('button', { name: 'Show more (and 952 more)' }).click();
    assert.deepEqual(await page.evaluate('window.__harness.fake.memberPages'), [1]);
    await members.getByRole('button', { name: 'Show earlier (50)' }).click();
    assert.deepEqual(await page.evaluate('window.__harness.fake.memberPages'), [1, 0]);
  });

  it('UI12 P10 the authors of the loaded messages are watched, so their names come with presence off the page', async () => {
    const page = await open(`await h.seed('general', 30)`);
    await page.waitForSelector('[data-testid=message]');
    const watched = await waitFor(
      () => page.evaluate('window.__harness.fake.watched.at(-1) ?? []') as Promise<string[]>,
      (w) => w.length === 3,
      'three authors watched',
    );
    assert.deepEqual([...watched].sort(), watched, 'sorted: a new message by a watched author sends nothing');
    const calls = (await page.evaluate('window.__harness.fake.watched.length')) as number;
    await page.evaluate(`window.__harness.add('general', 0, 'one more by a watched author')`);
    await page.getByTestId('message-scroller').getByText('one more by a watched author').waitFor();
    // The effect of that render has run once the row is painted; a new author would have been a new call.
    await page.evaluate('new Promise((r) => requestAnimationFrame(() => setTimeout(r, 0)))');
    assert.equal(await page.evaluate('window.__harness.fake.watched.length'), calls, 'no new watch list');
  });

  it('UI12 a small community shows everyone, people and virtual clients apart, with no pages', async () => {
    const page = await open(seedMembers(4, { browser: 4, virtual: 1 }, 1), { width: 375, height: 812 });
    await page.getByRole('button', { name: 'Members' }).click();
    const members = page.getByRole('complementary', { name: 'Members' });
    await members.getByRole('heading', { name: 'Online — 4' }).waitFor();
    await members.getByRole('heading', { name: 'Virtual clients — 1' }).waitFor();
    assert.equal(await members.locator('[data-testid=member][data-kind=virtual]').count(), 1);
    assert.equal(await members.getByRole('navigation', { name: 'Member pages' }).count(), 0);
    if (process.env.PEERCHAT_SCREENSHOTS) await page.screenshot({ path: join(process.env.PEERCHAT_SCREENSHOTS, 'members-phone.png') });
  });
});
