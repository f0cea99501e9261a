// Voice rooms in real Chromium (SPEC.md VR1-VR8): the production bundle served by the relay as `npm start`
// serves it, three people in their own Chromium with the fake microphone (a periodic beep), and a PeerJS
// peer in this process (wrtc) that is not in the room and calls anyway.
import assert from 'node:assert/strict';
import { describe } from 'node:test';
import type { MediaConnection } from 'peerjs';
import { type Browser, type Page, chromium } from 'playwright-core';
import { identity, login, rawClient } from '../src/server/testKit';
import { createWrtcPeer } from '../src/virtual/wrtcPeer';
import { CHROMIUM_ARGS, CHROMIUM_PATH } from './fixtures/chromium';
import { Person, type Stage, WAIT, scenario, until } from './scenarios/kit';

/** Platform notes "voice": a fake microphone without a prompt, and audio that plays without a gesture. */
const MEDIA_ARGS = ['--use-fake-device-for-media-stream', '--use-fake-ui-for-media-stream', '--autoplay-policy=no-user-gesture-required'];
/** Well above silence: the fake beep measures ~0.3 RMS at its peak; silence (a disabled track) is 0. */
const HEARD = 0.05;
const SILENT = 0.005;
/** A sampling window that always covers at least two of the fake microphone's beeps (one per second). */
const WINDOW_MS = 2_500;

function launchWithMicrophone(): Promise<Browser> {
  return chromium.launch({ executablePath: CHROMIUM_PATH, args: [...CHROMIUM_ARGS, ...MEDIA_ARGS] });
}

async function person(stage: Stage, name: string, relay: Parameters<Stage['person']>[1], people: Person[], viewport = { width: 1280, height: 800 }): Promise<Person> {
  const p = new Person(stage, name, relay, await launchWithMicrophone(), viewport);
  people.push(p);
  await p.open();
  await p.createIdentity();
  return p;
}

const room = (page: Page) => page.getByRole('list', { name: 'Voice in #general' });
const item = (page: Page, name: string) => room(page).getByRole('listitem').filter({ hasText: name });

/**
 * The highest level and whether a ring showed, for `name` in `page`'s room list, over one window. A string,
 * not a function: tsx's transform would wrap inner functions in a helper the page does not have.
 */
function sample(page: Page, name: string): Promise<{ max: number; spoke: boolean }> {
  return page.evaluate(`new Promise((resolve) => {
    let max = 0, spoke = false;
    const t = setInterval(() => {
      const list = document.querySelector('[aria-label="Voice in #general"]');
      const li = [...(list ? list.querySelectorAll('li') : [])].find((e) => (e.textContent || '').includes(${JSON.stringify(name)}));
      max = Math.max(max, Number(li ? li.dataset.level : 0));
      spoke = spoke || (li ? li.dataset.speaking === 'true' : false);
    }, 10);
    setTimeout(() => { clearInterval(t); resolve({ max, spoke }); }, ${WINDOW_MS});
  })`);
}

describe('voice rooms in Chromium', () => {
  scenario('voice', 'VR5 VR8 two people hear each other; mute silences, deafen and leave show to everyone; a stranger call is refused', async (stage) => {
    const relay = await stage.relay();
    const people: Person[] = [];
    try {
      const alice = await person(stage, 'alice', relay, people);
      const bob = await person(stage, 'bob', relay, people);
      const carol = await person(stage, 'carol', relay, people, { width: 375, height: 812 });

      await alice.page.getByText('Up to 8 people').waitFor({ timeout: WAIT });
      await alice.page.getByRole('button', { name: 'Join voice' }).click();
      await alice.page.getByRole('button', { name: 'Leave voice' }).waitFor({ timeout: WAIT });
      // Join shows to everyone, also to someone not in the room.
      await item(bob.page, 'alice').waitFor({ timeout: WAIT });
      await item(carol.page, 'alice').waitFor({ timeout: WAIT });
      await bob.page.getByRole('button', { name: 'Join voice' }).click();
      await item(alice.page, 'bob').waitFor({ timeout: WAIT });

      // VR5/VR8: each side measures the other's audio well above silence, and the ring shows.
      let heard = { max: 0, spoke: false };
      await until('bob to hear alice', async () => (heard = await sample(bob.page, 'alice')).max > HEARD && heard.spoke);
      await until('alice to hear bob', async () => (heard = await sample(alice.page, 'bob')).max > HEARD && heard.spoke);
      stage.log('levels.log', `alice heard by bob and bob by alice: ${JSON.stringify(heard)}`);
      console.log(`# measured: last window ${JSON.stringify(heard)}`);
      for (const p of people) await p.screenshot('in-voice');

      // VR8: mute on alice -> bob measures silence from alice and her ring stays off; the mute shows.
      await alice.page.getByRole('button', { name: 'Mute' }).click();
      assert.equal(await alice.page.getByRole('button', { name: 'Mute' }).getAttribute('aria-pressed'), 'true');
      await item(bob.page, 'alice').getByRole('img', { name: 'muted' }).waitFor({ timeout: WAIT });
      await item(carol.page, 'alice').getByRole('img', { name: 'muted' }).waitFor({ timeout: WAIT });
      await until('bob to measure alice as silent', async () => (await sample(bob.page, 'alice')).max < SILENT);
      const muted = await sample(bob.page, 'alice');
      assert.ok(muted.max < SILENT && !muted.spoke, `alice muted, bob still measured ${JSON.stringify(muted)}`);
      console.log(`# measured: alice muted, at bob ${JSON.stringify(muted)}`);
      // Bob is still heard by alice: muting is one direction only.
      await until('alice to still hear bob', async () => (await sample(alice.page, 'bob')).max > HEARD);

      // VR3: deafen on bob mutes him too; everyone sees both marks; his page stops playing what it gets.
      await bob.page.getByRole('button', { name: 'Deafen' }).click();
      await item(alice.page, 'bob').getByRole('img', { name: 'deafened' }).waitFor({ timeout: WAIT });
      await item(alice.page, 'bob').getByRole('img', { name: 'muted' }).waitFor({ timeout: WAIT });
      assert.ok(await bob.page.$$eval('audio[data-voice-peer]', (els) => els.length > 0 && els.every((a) => (a as HTMLAudioElement).muted)));
      await until('alice to measure deafened bob as silent', async () => (await sample(alice.page, 'bob')).max < SILENT);

      // The member list of someone outside the room says who is in voice where.
      if (!(await carol.page.getByRole('complementary', { name: 'Members' }).isVisible())) await carol.page.getByRole('button', { name: 'Members' }).click();
      await carol.page.getByRole('complementary', { name: 'Members' }).getByText('in voice #general').first().waitFor({ timeout: WAIT });
      assert.equal(await carol.page.getByRole('complementary', { name: 'Members' }).getByText('in voice #general').count(), 2);
      for (const p of people) await p.screenshot('muted-deafened');

      // VR5: a peer that is not in the room calls alice (posing as nobody in particular): never answered.
      const mallory = rawClient(null as never, { url: `ws://localhost:${relay.port}/trpc` });
      try {
        const me = await login(mallory.client, await identity(), { name: 'mallory', kind: 'browser' });
        const rooms = await new Promise<{ peerId: string; name: string }[]>((resolve, reject) => {
          const sub = mallory.client.voice.watch.subscribe({ channels: ['general'] }, {
            onData: (ev) => {
              if (ev.op !== 'snapshot') return;
              sub.unsubscribe();
              resolve(ev.rooms.flatMap((r) => r.members));
            },
            onError: reject,
          });
        });
        const target = rooms.find((m) => m.name === 'alice')!;
        const wrtc = (await import('@roamhq/wrtc')).default as unknown as {
          MediaStream: new (tracks: unknown[]) => MediaStream;
          nonstandard: { RTCAudioSource: new () => { createTrack(): MediaStreamTrack } };
        };
        const peer = await createWrtcPeer({ peerId: me.self.peerId, peerToken: me.peerToken, relayUrl: relay.url, info: me.info });
        try {
          await new Promise<void>((resolve) => (peer.open ? resolve() : peer.once('open', () => resolve())));
          const track = new wrtc.nonstandard.RTCAudioSource().createTrack();
          const call: MediaConnection = peer.call(target.peerId, new wrtc.MediaStream([track]));
          let answered = false;
          call.on('stream', () => (answered = true));
          const refused = () => alice.page.getByRole('region', { name: 'Voice room of #general' }).getAttribute('data-refused-calls').then(Number);
          await until('alice to refuse the stranger', async () => (await refused()) >= 1);
          assert.equal(answered, false, 'the stranger got audio from alice');
          assert.equal(await alice.page.locator(`audio[data-voice-peer="${me.self.peerId}"]`).count(), 0);
          track.stop();
        } finally {
          peer.destroy();
        }
      } finally {
        await mallory.close();
      }

      // Another microphone while in the room: the calls carry the new one without a renegotiation.
      await alice.page.getByRole('button', { name: 'Mute' }).click();
      const mic = alice.page.getByRole('combobox', { name: 'Microphone', exact: true });
      await until('alice to list more than one microphone', async () => (await mic.locator('option').count()) > 1);
      const other = await mic.locator('option').nth(1).getAttribute('value');
      await mic.selectOption(other!);
      await until('bob to hear alice on her other microphone', async () => (await sample(bob.page, 'alice')).max > HEARD);

      // VR7: leaving shows to everyone at once; leaving the page (pagehide) too.
      await bob.page.getByRole('button', { name: 'Leave voice' }).click();
      await until('alice to see bob leave', async () => (await item(alice.page, 'bob').count()) === 0);
      assert.equal(await bob.page.locator('audio[data-voice-peer]').count(), 0);
      await bob.page.getByRole('button', { name: 'Join voice' }).click();
      await item(alice.page, 'bob').waitFor({ timeout: WAIT });
      await alice.page.goto('about:blank'); // pagehide
      await until('bob and carol to see alice leave', async () => (await item(bob.page, 'alice').count()) === 0 && (await item(carol.page, 'alice').count()) === 0);
    } finally {
      for (const p of people) await p.close();
    }
  });
});
