// The history-store conformance suite on DexieStore over Chromium's real IndexedDB (the Node run of the
// same suite uses fake-indexeddb: src/shared/store/DexieStore.test.ts).
import { describePage, here } from './harness';

await describePage('history store conformance in Chromium', here('./pages/store.page.ts'), {
  replace: {
    'node:test': here('./shims/nodeTest.ts'),
    'node:assert/strict': here('./shims/nodeAssertStrict.ts'),
    '../../crypto/nodeBackend': here('./shims/nodeBackend.ts'),
  },
});
