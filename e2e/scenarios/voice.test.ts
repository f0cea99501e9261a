// Issue 10 scenario 4: voice. Alice's fake microphone plays 440 Hz and Bob's 660 Hz, so each can tell
// whose audio arrived by its frequency. Both join #general's voice room and hear the other's tone;
// when Alice mutes, her tone stops reaching Bob and her entry shows "muted"; when she leaves, she is
// gone from his room list.
import assert from 'node:assert/strict';
import { describe } from 'node:test';
import { type Person, scenario, until, WAIT } from './kit';

const TONES = { alice: 440, bob: 660 } as const;
/** FFT bins are 48,000 / 8,192 ≈ 5.9 Hz wide. */
const HZ_TOLERANCE = 15;
/** Louder than this is sound, quieter is silence (dBFS from the analyser). */
const AUDIBLE_DB = -70;

async function hears(p: Person, hz: number): Promise<boolean> {
  return (await p.remoteTones()).some((t) => Math.abs(t.hz - hz) <= HZ_TOLERANCE && t.db > AUDIBLE_DB);
}

describe('e2e scenario 4: voice', () => {
  scenario('voice', 'S4 two people hear each other by their own tones; mute silences; leaving shows', async (s) => {
    const relay = await s.relay();
    const [alice, bob] = await Promise.all((['alice', 'bob'] as const).map((n) => s.person(n, relay, undefined, { tone: TONES[n] })));
    await Promise.all([alice!.createIdentity(), bob!.createIdentity()]);
    for (const p of [alice!, bob!]) {
      await p.page.getByRole('button', { name: 'Join voice' }).click();
      await p.page.getByRole('button', { name: 'Leave voice' }).waitFor({ timeout: WAIT });
    }
    const room = (p: Person) => p.page.getByRole('list', { name: 'Voice in #general' });
    for (const p of [alice!, bob!]) await until(`${p.name} sees two people in the room`, async () => (await room(p).getByRole('listitem').count()) === 2);

    await until('bob hears alice’s 440 Hz', () => hears(bob!, TONES.alice));
    await until('alice hears bob’s 660 Hz', () => hears(alice!, TONES.bob));
    assert.equal(await hears(bob!, TONES.bob), false, 'bob does not hear himself');

    await alice!.page.getByRole('button', { name: 'Mute' }).click();
    assert.equal(await alice!.page.getByRole('button', { name: 'Mute' }).getAttribute('aria-pressed'), 'true');
    await room(bob!).getByRole('listitem').filter({ hasText: 'alice' }).getByLabel('muted').waitFor({ timeout: WAIT });
    await until('alice’s tone stops reaching bob', async () => !(await hears(bob!, TONES.alice)));
    assert.equal(await hears(alice!, TONES.bob), true, 'bob still reaches alice');

    await alice!.page.getByRole('button', { name: 'Leave voice' }).click();
    await until('bob sees alice leave the room', async () => (await room(bob!).getByRole('listitem').filter({ hasText: 'alice' }).count()) === 0);
    for (const p of [alice!, bob!]) assert.deepEqual(p.errors, [], `${p.name}: no page errors`);
  });
});
