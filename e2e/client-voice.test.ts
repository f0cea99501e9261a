// Page test of the voice bar (SPEC.md VR2, VR3; UI contract "Voice") in real Chromium with a scripted client
// (src/client/testing/harness.tsx). Its own file: client-pages.test.ts is already near the runner's
// per-file timeout on a loaded machine.
import assert from 'node:assert/strict';
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

describe('voice bar', () => {
  const member = (i: number, name: string, over: Record<string, unknown> = {}) =>
    JSON.stringify({ sessionId: `s${i}`, userId: 'A'.repeat(43), name, fingerprint: 'AAAA-AAAA', peerId: `${String(i).padStart(16, '0')}-aaaaaaaaaa`, muted: false, deafened: false, joinSeq: i, ...over });

  it('VR2 VR3 the controls and names of the UI contract; a full room cannot be joined; mute and deafen are pressed toggles', async () => {
    const full = Array.from({ length: 8 }, (_, i) => member(i + 1, `p${i + 1}`, i === 1 ? { muted: true } : i === 2 ? { muted: true, deafened: true } : {}));
    const page = await open(`h.fake.set({ voice: { ...h.fake.snap.voice, rooms: { general: [${full.join(',')}] } } })`, { width: 375, height: 812 });
    const room = page.getByRole('list', { name: 'Voice in #general' });
    await room.waitFor();
    assert.equal(await room.getByRole('listitem').count(), 8);
    assert.equal(await room.getByRole('listitem').first().getAttribute('data-speaking'), 'false');
    assert.equal(await room.getByRole('listitem').nth(1).getByRole('img', { name: 'muted' }).count(), 1);
    assert.equal(await room.getByRole('listitem').nth(2).getByRole('img', { name: 'deafened' }).count(), 1);
    await page.getByText('Up to 8 people').waitFor();
    assert.equal(await page.getByRole('button', { name: 'Join voice' }).isDisabled(), true);
    await page.getByRole('combobox', { name: 'Microphone', exact: true }).waitFor();
    await page.getByText('The room is full').waitFor();

    // A place frees up: joining, muting and deafening go to the client; the toggles say their state.
    await page.evaluate(`window.__harness.fake.set({ voice: { ...window.__harness.fake.snap.voice, rooms: { general: [${full.slice(0, 3).join(',')}] } } })`);
    await page.getByRole('button', { name: 'Join voice' }).click();
    await page.getByRole('button', { name: 'Leave voice' }).waitFor();
    const mute = page.getByRole('button', { name: 'Mute' });
    await mute.click();
    await waitFor(() => mute.getAttribute('aria-pressed'), (v) => v === 'true', 'Mute pressed');
    await page.getByRole('button', { name: 'Deafen' }).click();
    await waitFor(() => page.getByRole('button', { name: 'Deafen' }).getAttribute('aria-pressed'), (v) => v === 'true', 'Deafen pressed');
    const actions = await page.evaluate('window.__harness.fake.voiceActions');
    assert.deepEqual(actions, ['join general', 'mute true', 'deafen true']);
    await page.context().close();
  });

  it('VR2 on a phone (375 px) the controls, the microphone and the cap take one row, before and after joining', async () => {
    const page = await open('', { width: 375, height: 812 });
    const bar = page.getByRole('region', { name: 'Voice room of #general' });
    await bar.waitFor();
    const row = async () => {
      const boxes = [];
      for (const l of [
        bar.getByRole('button', { name: /^(Join|Leave) voice$/ }),
        bar.getByRole('button', { name: 'Mute' }),
        bar.getByRole('button', { name: 'Deafen' }),
        bar.getByRole('combobox', { name: 'Microphone', exact: true }),
        bar.getByText('Up to 8 people'),
      ]) boxes.push((await l.boundingBox())!);
      return boxes;
    };
    const oneRow = (boxes: { x: number; y: number; width: number; height: number }[], what: string) => {
      const mid = boxes.map((b) => b.y + b.height / 2);
      assert.ok(Math.max(...mid) - Math.min(...mid) < 4, `${what}: one row (${mid.map(Math.round).join(', ')})`);
      for (const b of boxes) assert.ok(b.x >= 0 && b.x + b.width <= 375, `${what}: inside the screen (${b.x}+${b.width})`);
    };
    oneRow(await row(), 'before joining');
    await bar.getByRole('button', { name: 'Join voice' }).click();
    await bar.getByRole('button', { name: 'Leave voice' }).waitFor();
    oneRow(await row(), 'joined');
    await page.context().close();
  });
});
