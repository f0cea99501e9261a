// The client core in Chromium against a real relay with a tiny IndexedDB quota (SPEC.md H16, CL5, UI11):
// CDP's Storage.overrideQuotaForOrigin gives the page's origin a few MiB.
import { after, before, describe, it } from 'node:test';
import { startRelayWithSignalling } from '../fixtures/relayWithSignalling';
import type { Relay } from '../../src/server/createRelay';
import { BrowserHarness, bundle, caseNames, here, runCase, serve, type ServedPage } from './harness';

const QUOTA_BYTES = 3 * 1024 * 1024;

let relay: Relay;
let served: ServedPage;
let harness: BrowserHarness;

before(async () => {
  relay = await startRelayWithSignalling();
  served = await serve(await bundle(here('./pages/clientQuota.page.ts')));
  harness = await BrowserHarness.launch();
});
after(async () => {
  await harness?.close();
  await served?.close();
  await relay?.close();
});

describe('the client with a full IndexedDB in Chromium', () => {
  it('H16 CL5 UI11 an own post is QUOTA_EXCEEDED and kept; after clearing old attachments retry stores it', async () => {
    const log: string[] = [];
    const page = await harness.open(served.url, (l) => log.push(l));
    const cdp = await harness.context.newCDPSession(page);
    await cdp.send('Storage.overrideQuotaForOrigin', { origin: new URL(served.url).origin, quotaSize: QUOTA_BYTES });
    const [name] = await caseNames(page);
    try {
      await runCase(page, name!, { relayUrl: relay.url, quotaBytes: QUOTA_BYTES });
    } catch (err) {
      throw new Error(`${(err as Error).message}\n${log.join('\n')}`);
    }
  });
});
