// Issue 10 scenario 1 (and the acceptance of issue 8): three people in separate Chromium processes make
// identities, see each other online and chat in two channels. Everyone sees every message exactly once,
// in the same order, confirmed; unread counts match; a reload keeps the history, also with the relay down.
import assert from 'node:assert/strict';
import { describe } from 'node:test';
import { scenario, until } from './kit';

describe('e2e scenario 1: chat between three browsers', () => {
  scenario('chat', 'S1 three people chat in two channels; same history for all; reload keeps it, relay up or down', async (s) => {
    const relay = await s.relay();
    const [alice, bob, carol] = await Promise.all(['alice', 'bob', 'carol'].map((n) => s.person(n, relay)));
    await Promise.all([alice, bob, carol].map((p) => p!.createIdentity()));
    const all = [alice!, bob!, carol!];
    for (const p of all) await until(`${p.name} to see three people online`, async () => (await p.peopleOnline()) === 3);

    // Everyone posts in #general at the same time: the relay's order must be everyone's order.
    const general: string[] = [];
    await Promise.all(
      all.map(async (p) => {
        for (let i = 1; i <= 2; i++) {
          const line = `general ${i} from ${p.name}`;
          general.push(line);
          await p.send(line);
        }
      }),
    );
    const seenGeneral = await Promise.all(all.map((p) => p.seesConfirmed(general)));
    for (const seen of seenGeneral) assert.deepEqual(seen, seenGeneral[0], 'one order for everyone');

    // Alice moves to #random and posts; bob and carol, still in #general, are told how many are unread.
    await alice!.openChannel('random');
    const random = ['random 1 from alice', 'random 2 from alice'];
    for (const l of random) await alice!.send(l);
    await alice!.seesConfirmed(random);
    for (const p of [bob!, carol!]) await until(`${p.name}: 2 unread in #random`, async () => (await p.unread('random')) === 2);
    assert.equal(await alice!.unread('random'), 0, 'your own messages are never unread');
    assert.equal(await alice!.unread('general'), 0);

    await bob!.openChannel('random');
    await bob!.seesConfirmed(random);
    await bob!.send('random 3 from bob');
    random.push('random 3 from bob');
    await until('carol: 3 unread in #random', async () => (await carol!.unread('random')) === 3);
    assert.equal(await bob!.unread('random'), 0);
    await carol!.openChannel('random');
    const seenRandom = await Promise.all(all.map((p) => p.seesConfirmed(random)));
    for (const seen of seenRandom) assert.deepEqual(seen, seenRandom[0]);
    for (const p of all) {
      // The badge goes once the open channel's read marker is stored, a moment after the rows show.
      await until(`${p.name} read #random`, async () => (await p.unread('random')) === 0);
      assert.equal(await p.unread('general'), 0, `${p.name} read #general`);
    }

    // A reload shows the history from IndexedDB; with the relay down, the service worker's shell too.
    await carol!.page.waitForFunction(() => navigator.serviceWorker.controller !== null, undefined, { timeout: 45_000 });
    await carol!.page.reload();
    assert.deepEqual(await carol!.seesConfirmed(random), seenRandom[0]);
    await relay.kill();
    await carol!.page.reload();
    assert.deepEqual(await carol!.seesConfirmed(random), seenRandom[0]);
    await carol!.openChannel('general');
    assert.deepEqual(await carol!.seesConfirmed(general), seenGeneral[0]);
    assert.notEqual(await carol!.page.getByTestId('connection').getAttribute('data-state'), 'online');
    for (const p of all) assert.deepEqual(p.errors, [], `${p.name}: no page errors`);
  });
});
