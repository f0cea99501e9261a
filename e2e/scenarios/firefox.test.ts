// Issue 10 scenario 8: a person in Firefox and a person in Chromium chat. Firefox joins after the relay
// was restarted, so the history it shows came from the Chromium peer over a Firefox-Chromium data channel;
// then both post and see one order. Runs outside the test runner's network namespace (Firefox's data
// channel does not connect inside one), still only on loopback.
import assert from 'node:assert/strict';
import { describe } from 'node:test';
import { FirefoxPerson } from './firefoxPerson';
import { scenario, until } from './kit';

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
});
