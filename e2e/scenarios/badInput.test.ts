// Issue 10 scenario 7: bad input from the person at the keyboard and from other people. Oversized text is
// refused with a clear message and nothing is sent or stored; a right-to-left override in a display name
// or a message shows as a visible stand-in inside an isolated box; an oversized file and a bomb image
// (a 60,000 x 60,000 PNG header) are refused with a role="alert" in the composer. After each, the app
// keeps working.
import assert from 'node:assert/strict';
import { describe } from 'node:test';
import { LIMITS } from '../../src/shared/protocol/relay';
import { bombPng, png } from '../fixtures/media';
import { type Person, scenario, until, WAIT } from './kit';

/** No text node anywhere holds a raw bidi control; every stand-in for one sits in an isolated box. */
async function bidiSafe(p: Person): Promise<{ raw: string[]; standIns: number; unisolated: number }> {
  return p.page.evaluate(() => {
    const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
    const raw: string[] = [];
    let standIns = 0;
    let unisolated = 0;
    for (let n = walker.nextNode(); n; n = walker.nextNode()) {
      const t = n.nodeValue ?? '';
      if (/[\u202a-\u202e\u2066-\u2069\u200e\u200f\u061c]/.test(t)) raw.push(n.parentElement?.outerHTML.slice(0, 300) ?? t);
      if (t.includes('U+202E')) {
        standIns++;
        let isolated = false;
        for (let e = n.parentElement; e && !isolated; e = e.parentElement) isolated = /isolate|plaintext/.test(getComputedStyle(e).unicodeBidi);
        if (!isolated) unisolated++;
      }
    }
    return { raw, standIns, unisolated };
  });
}

describe('e2e scenario 7: bad input', () => {
  scenario('bad-input-text', 'S7 oversized text is refused and never stored; a right-to-left override in a name or message shows isolated', async (s) => {
    const relay = await s.relay();
    const [alice, eve] = await Promise.all(['alice', 'eve'].map((n) => s.person(n, relay)));
    // Eve's name and message carry U+202E RIGHT-TO-LEFT OVERRIDE, which would reverse what follows it.
    await Promise.all([alice!.createIdentity(), eve!.createIdentity('eve\u202Eecila')]);
    await eve!.send('general 1 from eve \u202Etxt.exe');
    await alice!.send('general 2 from alice');
    const lines = ['general 1 from eve', 'general 2 from alice'];
    await Promise.all([alice!.seesConfirmed(lines), eve!.seesConfirmed(lines)]);
    await until('alice shows eve in the member list', async () => (await alice!.peopleOnline()) === 2);
    for (const p of [alice!, eve!]) {
      const seen = await bidiSafe(p);
      assert.deepEqual(seen.raw, [], `${p.name}: no raw bidi control reaches the screen`);
      // Name in the row, name in the member list, and the message text: at least three stand-ins.
      assert.ok(seen.standIns >= 3, `${p.name}: the override is shown as a stand-in (${JSON.stringify(seen)})`);
      assert.equal(seen.unisolated, 0, `${p.name}: every stand-in is in a bidi-isolated box`);
    }

    // One character over the relay's limit: a clear message, Send disabled, Enter sends nothing.
    const tooLong = 'x'.repeat(LIMITS.maxTextLength + 1);
    const box = alice!.page.getByRole('textbox', { name: 'Message #general' });
    await box.fill(tooLong);
    await alice!.composer().getByText(`${tooLong.length} / ${LIMITS.maxTextLength} characters: too long to send.`).waitFor({ timeout: WAIT });
    assert.equal(await alice!.composer().getByRole('button', { name: 'Send' }).isDisabled(), true);
    await box.press('Enter');
    assert.equal(await box.inputValue(), tooLong, 'the draft stays: nothing was sent');
    // The app keeps working: the next message goes, and the long one is nowhere, sent or stored.
    await alice!.send('general 3 from alice');
    lines.push('general 3 from alice');
    await Promise.all([alice!.seesConfirmed(lines), eve!.seesConfirmed(lines)]);
    for (const p of [alice!, eve!]) {
      const stored = await p.stored();
      assert.equal(stored.messages.length, 3, `${p.name} stores the three messages`);
      assert.ok(stored.messages.every((m) => m.text.length <= LIMITS.maxTextLength));
      assert.deepEqual(p.errors, [], `${p.name}: no page errors`);
    }
  });

  scenario('bad-input-files', 'S7 an oversized file and a bomb image are refused with an alert in the composer; nothing is sent', async (s) => {
    // A 1 MiB cap (the relay's published maxAttachmentBytes) keeps the oversized file small to make.
    const cap = 1024 * 1024;
    const relay = await s.relay({ PEERCHAT_MAX_ATTACHMENT_BYTES: String(cap) });
    const [alice, bob] = await Promise.all(['alice', 'bob'].map((n) => s.person(n, relay)));
    await Promise.all([alice!.createIdentity(), bob!.createIdentity()]);
    const alert = alice!.composer().getByRole('alert');

    await alice!.attach([{ name: 'huge.png', mimeType: 'image/png', buffer: bombPng() }]);
    await alert.filter({ hasText: 'huge.png' }).waitFor({ timeout: WAIT });
    assert.match(await alert.innerText(), /too large|60[,.\u202f\u00a0 ]?000/i, 'says why: the image is too large');

    await alice!.attach([{ name: 'big.bin', mimeType: 'application/octet-stream', buffer: Buffer.alloc(cap + 1, 7) }]);
    await alert.filter({ hasText: 'big.bin' }).waitFor({ timeout: WAIT });
    // Neither refused file waits to be sent.
    const waiting = alice!.page.getByRole('list', { name: 'Attachments to send' });
    for (const name of ['huge.png', 'big.bin']) assert.equal(await waiting.getByRole('button', { name: `Remove ${name}` }).count(), 0, `${name} is not queued`);

    // The app keeps working: a real photo under the cap goes, with the text, and only it is stored.
    await alice!.attach([{ name: 'ok.png', mimeType: 'image/png', buffer: png(64, 48) }]);
    await waiting.getByRole('button', { name: 'Remove ok.png' }).waitFor({ timeout: WAIT });
    await alice!.send('general 1 from alice');
    await Promise.all([alice!.seesConfirmed(['general 1 from alice']), bob!.seesConfirmed(['general 1 from alice'])]);
    await bob!.page.getByRole('button', { name: 'Open photo ok.png' }).waitFor({ timeout: WAIT });
    for (const p of [alice!, bob!]) {
      const stored = await p.stored();
      assert.deepEqual(stored.attachments.map((a) => a.name), ['ok.png'], `${p.name} stores only the accepted photo`);
      assert.deepEqual(p.errors, [], `${p.name}: no page errors`);
    }
  });
});
