// The transport conformance suite (SPEC.md T1-T5, T9-T11) between two Chromium pages, each with the
// browser PeerJS build over a real RTCDataChannel, signalling through the real relay's /peerjs endpoint.
// Node logs two fresh identities in for every case (testKit's login, as a client does) and hands the
// pages their peer ids and tokens; the logins stay open for the case.
import { after, before, describe, it } from 'node:test';
import { loggedIn } from '../../src/server/testKit';
import { startRelayWithSignalling } from '../fixtures/relayWithSignalling';
import type { Relay } from '../../src/server/createRelay';
import { BrowserHarness, bundle, caseNames, here, runCase, serve } from './harness';
import type { PairInput } from './pages/transport.page';

const served = await serve(await bundle(here('./pages/transport.page.ts')));
const harness = await BrowserHarness.launch();
const log: string[] = [];
const pageB = await harness.open(`${served.url}?role=b`, (l) => log.push(`B ${l}`));
const pageA = await harness.open(`${served.url}?role=a`, (l) => log.push(`A ${l}`));
const names = await caseNames(pageA);

let relay: Relay;

describe('transport conformance between two Chromium pages through the relay', () => {
  before(async () => {
    relay = await startRelayWithSignalling();
  });
  after(async () => {
    await pageA.close();
    await pageB.close();
    await harness.close();
    await served.close();
    await relay.close();
  });
  for (const name of names) {
    it(name, async () => {
      const [a, b] = await Promise.all([loggedIn(relay, { kind: 'browser', name: 'pageA' }), loggedIn(relay, { kind: 'browser', name: 'pageB' })]);
      const input: PairInput = {
        relayUrl: relay.url,
        a: { peerId: a.me.self.peerId, peerToken: a.me.peerToken, info: a.me.info },
        b: { peerId: b.me.self.peerId, peerToken: b.me.peerToken, info: b.me.info },
        offlinePeerId: 'neverLoggedIn',
      };
      const before = log.length;
      try {
        await runCase(pageA, name, input);
      } catch (err) {
        const console = log.slice(before);
        throw console.length > 0 ? new Error(`${(err as Error).message}\npage console:\n${console.join('\n')}`) : err;
      } finally {
        await Promise.all([a.close(), b.close()]);
      }
    });
  }
});
