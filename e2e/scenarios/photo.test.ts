// Issue 10 scenario 2: a photo. Alice attaches a photo and sends it with text; Bob sees the thumbnail
// from the signed post at once, then the full photo once its bytes came peer to peer and verified. His
// IndexedDB holds bytes that hash to the signed SHA-256, and the relay (counted at the socket by a
// proxy in front of it) carried less than 8 KiB while the photo was shared.
import assert from 'node:assert/strict';
import { describe } from 'node:test';
import { png } from '../fixtures/media';
import { scenario, until, WAIT } from './kit';

/** What the relay may carry for sharing one photo: the post with its thumbnail, never the bytes. */
const RELAY_BYTES_PER_PHOTO = 8 * 1024;

describe('e2e scenario 2: photo', () => {
  scenario('photo', 'S2 a photo shows as thumbnail at once, then full size from a peer; under 8 KiB crossed the relay', async (s) => {
    const relay = await s.relay({}, { counted: true });
    const [alice, bob] = await Promise.all(['alice', 'bob'].map((n) => s.person(n, relay)));
    await Promise.all([alice!.createIdentity(), bob!.createIdentity()]);
    for (const p of [alice!, bob!]) await until(`${p.name} sees two people online`, async () => (await p.peopleOnline()) === 2);
    const photo = png(640, 480, 3);

    await alice!.attach([{ name: 'beach.png', mimeType: 'image/png', buffer: photo }]);
    await alice!.page.getByRole('list', { name: 'Attachments to send' }).getByRole('button', { name: 'Remove beach.png' }).waitFor({ timeout: WAIT });
    const before = relay.bytes();
    await alice!.send('general 1 from alice');
    await bob!.photo('beach.png').waitFor({ timeout: WAIT });
    await bob!.seesFullPhoto('beach.png');
    const crossed = relay.bytes() - before;
    console.log(`[e2e S2] relay bytes while sharing a ${photo.length}-byte photo: ${crossed}`);
    assert.ok(crossed < RELAY_BYTES_PER_PHOTO, `relay carried ${crossed} bytes (< ${RELAY_BYTES_PER_PHOTO})`);
    await Promise.all([alice!.seesConfirmed(['general 1 from alice']), bob!.seesConfirmed(['general 1 from alice'])]);

    const stored = await bob!.stored();
    assert.equal(stored.attachments.length, 1);
    const [a] = stored.attachments;
    assert.equal(a!.held, true);
    assert.equal(a!.heldSha256, a!.sha256, 'the stored bytes are the signed ones');
    // The img is sized by the signed width and height.
    const box = await bob!.photo('beach.png').locator('img').evaluate((i) => [(i as HTMLImageElement).naturalWidth, (i as HTMLImageElement).naturalHeight]);
    assert.deepEqual(box, [640, 480]);
    for (const p of [alice!, bob!]) assert.deepEqual(p.errors, [], `${p.name}: no page errors`);
  });
});
