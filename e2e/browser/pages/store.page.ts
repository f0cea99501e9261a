// Page entry: the history-store conformance suite (SPEC.md H1-H8) on DexieStore over Chromium's real
// IndexedDB. The suite is the one Node runs; this bundle swaps node:test and node:assert for shims.
import { DexieStore } from '../../../src/shared/store/DexieStore';
import { storeConformance } from '../../../src/shared/store/storeConformance';
import { registerCases } from '../pageCases';
import { collected } from '../shims/nodeTest';

let n = 0;
// A fresh database per case (a unique name; the suite closes each store).
storeConformance('DexieStore on Chromium IndexedDB', async () => new DexieStore(`peerchat-conformance-${Date.now()}-${++n}`));
registerCases(collected);
