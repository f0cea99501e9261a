// Issue 10 scenario 3, text part: A and B chat while C has never been online; C comes online and gets
// the whole history from A and B peer to peer. Before C's first login the relay is restarted, so the
// relay process C talks to never saw those posts: whatever C shows of them came from peers. Then A, B
// and C leave, D arrives with only a virtual client online, and gets the history from it.
import assert from 'node:assert/strict';
import { describe } from 'node:test';
import { png } from '../fixtures/media';
import { scenario, until, WAIT } from './kit';

describe('e2e scenario 3: late joiner', () => {
  scenario('late-joiner', 'S3 C gets the history from A and B, D from the virtual client; never from the relay', async (s) => {
    const relay = await s.relay();
    const [alice, bob] = await Promise.all(['alice', 'bob'].map((n) => s.person(n, relay)));
    await Promise.all([alice!.createIdentity(), bob!.createIdentity()]);
    const lines = ['general 1 from alice', 'general 2 from bob', 'general 3 from alice', 'general 4 from bob'];
    for (const l of lines) await (l.endsWith('alice') ? alice! : bob!).send(l);
    const order = await alice!.seesConfirmed(lines);

    // A fresh relay process (same key): it has never seen the posts above.
    await relay.kill();
    await relay.start();
    await Promise.all([alice!.online(), bob!.online()]);

    const carol = await s.person('carol', relay);
    await carol.createIdentity();
    await until('carol sees alice and bob online', async () => (await carol.peopleOnline()) === 3);
    assert.deepEqual(await carol.seesConfirmed(lines), order, 'C has the history posted before her first login, in order');
    await carol.page.getByTestId('sync-status').getByText('History synced').waitFor();

    // A virtual client joins and caches the history from the peers; then every person leaves.
    const virtual = s.virtual(relay, 1);
    await until('the virtual client to cache the four messages', () => virtual.messages() >= lines.length);
    await Promise.all([alice!.close(), bob!.close(), carol.close()]);

    const dave = await s.person('dave', relay);
    await dave.createIdentity();
    await until('dave sees himself and one virtual client', async () => (await dave.peopleOnline()) === 1 && (await dave.page.locator('[data-testid=member][data-kind=virtual]').count()) === 1);
    assert.deepEqual(await dave.seesConfirmed(lines), order, 'D has the recent history from the virtual client');
    assert.deepEqual(dave.errors, []);
  });

  scenario('late-joiner-photo', 'S3 D gets a photo, bytes and all, from the virtual client alone', async (s) => {
    const relay = await s.relay();
    const alice = await s.person('alice', relay);
    await alice.createIdentity();
    const virtual = s.virtual(relay, 1);
    await until('alice sees the virtual client', async () => (await alice.page.locator('[data-testid=member][data-kind=virtual]').count()) === 1);
    await alice.attach([{ name: 'sunset.png', mimeType: 'image/png', buffer: png(320, 240, 5) }]);
    await alice.page.getByRole('list', { name: 'Attachments to send' }).getByRole('button', { name: 'Remove sunset.png' }).waitFor({ timeout: WAIT });
    await alice.send('general 1 from alice');
    await alice.seesConfirmed(['general 1 from alice']);
    await until('the virtual client to cache the message', () => virtual.messages() >= 1);
    // The virtual client fetches the bytes from alice (G7: it serves, it does not offer); give it the
    // chance while she is online, then she leaves and the relay restarts, so D has only the virtual client.
    await alice.page.getByRole('button', { name: 'Open photo sunset.png' }).waitFor({ timeout: WAIT });
    await until('the virtual client to hold the photo bytes', () => virtual.attachments() >= 1);
    await alice.close();
    await relay.kill();
    await relay.start();

    const dave = await s.person('dave', relay);
    await dave.createIdentity();
    assert.deepEqual(await dave.seesConfirmed(['general 1 from alice']), ['general 1 from alice']);
    await dave.seesFullPhoto('sunset.png');
    const [a] = (await dave.stored()).attachments;
    assert.equal(a?.heldSha256, a?.sha256, 'D holds the signed bytes');
    assert.deepEqual(dave.errors, []);
  });
});
