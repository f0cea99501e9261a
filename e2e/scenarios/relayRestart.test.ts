// Issue 10 scenario 5: the relay is killed mid-conversation and restarted with the same key. Every browser
// reconnects by itself and goes on; a message sent while the relay was down is delivered once it is back
// (or shown as failed with a retry); no message is lost or duplicated in any browser.
import assert from 'node:assert/strict';
import { describe } from 'node:test';
import { scenario, until, WAIT } from './kit';

describe('e2e scenario 5: relay restart', () => {
  scenario('relay-restart', 'S5 browsers reconnect by themselves; the message sent while down arrives once; nothing lost or doubled', async (s) => {
    const relay = await s.relay();
    const [alice, bob] = await Promise.all(['alice', 'bob'].map((n) => s.person(n, relay)));
    await Promise.all([alice!.createIdentity(), bob!.createIdentity()]);
    for (const p of [alice!, bob!]) await until(`${p.name} sees two people online`, async () => (await p.peopleOnline()) === 2);
    const lines = ['general 1 from alice', 'general 2 from bob'];
    await alice!.send(lines[0]!);
    await bob!.send(lines[1]!);
    for (const p of [alice!, bob!]) await p.seesConfirmed(lines);

    await relay.kill();
    for (const p of [alice!, bob!])
      await until(`${p.name} shows the relay is gone`, async () => (await p.page.getByTestId('connection').getAttribute('data-state')) !== 'online');
    await alice!.send('general 3 from alice');
    lines.push('general 3 from alice');
    // Shown at once as the user's own, not yet confirmed.
    await alice!.page.getByTestId('own-pending').getByText('general 3 from alice').waitFor({ timeout: WAIT });

    await relay.start();
    for (const p of [alice!, bob!]) await p.online();
    // Delivered by itself, or failed with a retry the person clicks: either way exactly once.
    await until('alice: the message sent while down is confirmed or offers a retry', async () => {
      const retry = alice!.page.getByTestId('own-pending').getByRole('button', { name: 'Retry' });
      if (await retry.isVisible()) await retry.click();
      return (await alice!.lines()).some((l) => l.text === 'general 3 from alice' && l.state === 'confirmed');
    });
    await bob!.send('general 4 from bob');
    lines.push('general 4 from bob');
    const seen = await Promise.all([alice!, bob!].map((p) => p.seesConfirmed(lines)));
    assert.deepEqual(seen[0], seen[1]);
    // Reloading proves the stored history has no duplicate either.
    await bob!.page.reload();
    assert.deepEqual(await bob!.seesConfirmed(lines), seen[0]);
    for (const p of [alice!, bob!]) assert.deepEqual(p.errors, [], `${p.name}: no page errors`);
  });
});
