// Issue 10 scenario 9, without the photo: one person on a 375x812 phone-sized screen reads and replies;
// the channel list and the member list slide over and close again. Screenshots of both people at both
// sizes are kept when PEERCHAT_E2E_KEEP=1 (README screenshots, visual checks).
import assert from 'node:assert/strict';
import { describe } from 'node:test';
import { png } from '../fixtures/media';
import { scenario, until, WAIT } from './kit';

describe('e2e scenario 9: phone size', () => {
  scenario('phone', 'S9 a person on a 375x812 screen reads, replies and switches channel', async (s) => {
    const relay = await s.relay();
    const alice = await s.person('alice', relay);
    const bob = await s.person('bob', relay, { width: 375, height: 812 });
    await Promise.all([alice.createIdentity(), bob.createIdentity()]);
    await alice.send('general 1 from alice');
    await bob.seesConfirmed(['general 1 from alice']);

    // Read: the message is on screen, inside the phone's width, the composer is reachable.
    const msg = bob.page.getByTestId('message').filter({ hasText: 'general 1 from alice' });
    const box = (await msg.boundingBox())!;
    assert.ok(box.x >= 0 && box.x + box.width <= 375 + 0.5, `message fits the width: ${JSON.stringify(box)}`);
    assert.equal(await bob.page.evaluate(() => document.documentElement.scrollWidth), 375, 'no sideways scrolling');

    // Reply to it: the quote shows on both sides.
    await msg.hover();
    await msg.getByRole('button', { name: 'Reply' }).click();
    await bob.send('general 2 from bob');
    const lines = ['general 1 from alice', 'general 2 from bob'];
    for (const p of [alice, bob]) {
      await p.seesConfirmed(lines);
      await p.page.getByTestId('message').filter({ hasText: 'general 2 from bob' }).getByTestId('reply-quote').waitFor();
    }
    await s.screenshots('general');

    // The member list slides over and closes with Escape; the channel list opens another channel.
    await bob.page.getByRole('button', { name: 'Members' }).click();
    const members = bob.page.getByRole('complementary', { name: 'Members' });
    // Wait for the slide to end: the whole panel inside the screen, not clipped at its right edge.
    await until('members panel wholly on screen', async () => {
      const b = await members.boundingBox();
      return !!b && b.x > 0 && b.x + b.width <= 375.5 && (await members.getByText('alice').isVisible());
    });
    await bob.screenshot('members');
    await bob.page.keyboard.press('Escape');
    await bob.openChannel('random');
    await bob.send('random 1 from bob');
    await bob.seesConfirmed(['random 1 from bob']);
    await until('alice: 1 unread in #random', async () => (await alice.unread('random')) === 1);
    await bob.page.getByRole('button', { name: 'Channels' }).click();
    const nav = bob.page.getByRole('navigation', { name: 'Channels' });
    await until('channel list wholly on screen', async () => {
      const b = await nav.boundingBox();
      return !!b && b.x >= 0 && b.x + b.width <= 375.5;
    });
    await bob.screenshot('channels');
    assert.deepEqual(bob.errors, []);
  });

  scenario('phone-photo', 'S9 on a 375x812 screen a person opens a photo in the viewer, it fits, and Escape closes it', async (s) => {
    const relay = await s.relay();
    const alice = await s.person('alice', relay);
    const bob = await s.person('bob', relay, { width: 375, height: 812 });
    await Promise.all([alice.createIdentity(), bob.createIdentity()]);
    await alice.attach([{ name: 'wide.png', mimeType: 'image/png', buffer: png(1200, 800, 9) }]);
    await alice.page.getByRole('list', { name: 'Attachments to send' }).getByRole('button', { name: 'Remove wide.png' }).waitFor({ timeout: WAIT });
    await alice.send('general 1 from alice');
    await bob.seesFullPhoto('wide.png');
    const opener = bob.photo('wide.png');
    const thumb = (await opener.boundingBox())!;
    assert.ok(thumb.x >= 0 && thumb.x + thumb.width <= 375.5, `the photo fits the width: ${JSON.stringify(thumb)}`);
    assert.equal(await bob.page.evaluate(() => document.documentElement.scrollWidth), 375, 'no sideways scrolling');

    await opener.click();
    const viewer = bob.page.getByRole('dialog', { name: 'Photo viewer' });
    await viewer.locator('img[data-full="true"]').waitFor({ timeout: WAIT });
    const img = (await viewer.locator('img').boundingBox())!;
    assert.ok(img.x >= -0.5 && img.x + img.width <= 375.5 && img.y >= -0.5 && img.y + img.height <= 812.5, `the photo fits the screen: ${JSON.stringify(img)}`);
    for (const name of ['Close', 'Zoom in', 'Zoom out', 'Download']) await viewer.getByRole('button', { name }).waitFor({ timeout: WAIT });
    await bob.screenshot('photo-viewer');
    await bob.page.keyboard.press('Escape');
    await viewer.waitFor({ state: 'detached', timeout: WAIT });
    assert.equal(await opener.evaluate((e) => e === document.activeElement), true, 'focus returns to the photo');
    assert.deepEqual(bob.errors, []);
  });
});
