// DexieStore against a real, tiny IndexedDB quota in Chromium (SPEC.md H15, H16): Chromium lets a test
// set an origin's quota over CDP (Storage.overrideQuotaForOrigin).
import { after, before, describe, it } from 'node:test';
import { BrowserHarness, bundle, caseNames, here, runCase, serve, type ServedPage } from './harness';

/** Small enough to fill in a moment, large enough for IndexedDB's own bookkeeping. */
const QUOTA_BYTES = 3 * 1024 * 1024;

let served: ServedPage;
let harness: BrowserHarness;

before(async () => {
  served = await serve(await bundle(here('./pages/storeQuota.page.ts')));
  harness = await BrowserHarness.launch();
});
after(async () => {
  await harness?.close();
  await served?.close();
});

describe('DexieStore over a full IndexedDB in Chromium', () => {
  it('H16 H15 quota errors are StoreQuotaError, reported once, nothing partial stored; clearing content frees room', async () => {
    const log: string[] = [];
    const page = await harness.open(served.url, (l) => log.push(l));
    const cdp = await harness.context.newCDPSession(page);
    await cdp.send('Storage.overrideQuotaForOrigin', { origin: new URL(served.url).origin, quotaSize: QUOTA_BYTES });
    const [name] = await caseNames(page);
    try {
      await runCase(page, name!, { quotaBytes: QUOTA_BYTES });
    } catch (err) {
      throw new Error(`${(err as Error).message}\n${log.join('\n')}`);
    }
  });
});
