// Issue 10 scenario 8: a person in Firefox and a person in Chromium chat. Firefox joins after the relay
// was restarted, so the history it shows came from the Chromium peer over a Firefox-Chromium data channel;
// then both post and see one order. Runs outside the test runner's network namespace (Firefox's data
// channel does not connect inside one), still only on loopback.
import assert from 'node:assert/strict';
import { describe } from 'node:test';
import { FirefoxPerson } from './firefoxPerson';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { png } from '../fixtures/media';
import { scenario, until, WAIT } from './kit';

describe('e2e scenario 8: Firefox and Chromium', () => {
  scenario('firefox', 'S8 a Firefox person gets the history from a Chromium peer and chats with it', async (s) => {
    const relay = await s.relay();
    const [alice, bob] = await Promise.all([s.person('alice', relay), FirefoxPerson.open(s, 'bob', relay)]);
    await alice.createIdentity();
    const lines = ['general 1 from alice', 'general 2 from alice'];
    for (const l of lines) await alice.send(l);
    const order = await alice.seesConfirmed(lines);

    // A fresh relay process (same key) never saw those posts: Firefox can only get them from alice.
    await relay.kill();
    await relay.start();
    await alice.online();
    await bob.createIdentity();
    await until('bob (Firefox) sees alice online', async () => (await bob.peopleOnline()) === 2);
    assert.deepEqual(await bob.seesConfirmed(lines), order, 'Firefox has the history from the Chromium peer');

    await bob.send('general 3 from bob');
    await alice.send('general 4 from alice');
    lines.push('general 3 from bob', 'general 4 from alice');
    const seen = await Promise.all([alice.seesConfirmed(lines), bob.seesConfirmed(lines)]);
    assert.deepEqual(seen[0], seen[1], 'one order in both browsers');
    assert.deepEqual(alice.errors, []);
    assert.deepEqual(bob.errors, []);
  });

  scenario('firefox-media', 'S8 photos both ways and voice between a Firefox and a Chromium person', async (s) => {
    const relay = await s.relay();
    const [alice, bob] = await Promise.all([s.person('alice', relay, undefined, { tone: 440 }), FirefoxPerson.open(s, 'bob', relay)]);
    await Promise.all([alice.createIdentity(), bob.createIdentity()]);
    await until('both online together', async () => (await alice.peopleOnline()) === 2 && (await bob.peopleOnline()) === 2);

    // Firefox -> Chromium: the file input takes a path.
    const file = join(s.dir, 'fox.png');
    writeFileSync(file, png(400, 300, 11));
    await bob.byRole('button', 'Attach files').wait();
    const input = await bob.page.waitForSelector('[data-testid=attach-input]', { timeout: WAIT });
    await (input as unknown as { uploadFile(p: string): Promise<void> }).uploadFile(file);
    await bob.byRole('button', 'Remove fox.png').wait();
    await bob.send('general 1 from bob');
    await alice.seesFullPhoto('fox.png');

    // Chromium -> Firefox.
    await alice.attach([{ name: 'chrome.png', mimeType: 'image/png', buffer: png(400, 300, 12) }]);
    await alice.page.getByRole('button', { name: 'Remove chrome.png' }).waitFor({ timeout: WAIT });
    await alice.send('general 2 from alice');
    await until('bob (Firefox) sees alice’s photo at full size', () => bob.page.$eval('button[aria-label="Open photo chrome.png"] img', (i) => i.getAttribute('data-full') === 'true').catch(() => false));
    const seen = await Promise.all([alice.seesConfirmed(['general 1 from bob', 'general 2 from alice']), bob.seesConfirmed(['general 1 from bob', 'general 2 from alice'])]);
    assert.deepEqual(seen[0], seen[1]);

    // Voice: Firefox's fake microphone is its own tone; alice hears something from bob, bob sees alice speak.
    await alice.page.getByRole('button', { name: 'Join voice' }).click();
    await bob.byRole('button', 'Join voice').click();
    await bob.byRole('button', 'Leave voice').wait();
    await until('alice hears bob (Firefox)', async () => (await alice.remoteTones()).some((t) => t.db > -70));
    await until('bob (Firefox) sees alice speaking', () =>
      bob.page.$$eval('ul[aria-label="Voice in #general"] li', (els) => els.some((e) => e.textContent?.includes('alice') && e.getAttribute('data-speaking') === 'true')),
    );
    assert.deepEqual(alice.errors, []);
    assert.deepEqual(bob.errors, []);
  });
});
