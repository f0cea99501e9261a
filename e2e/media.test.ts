// The media pipeline (src/client/media, rules MD1-MD6) in Chromium: real decode and encode, the relay's
// thumbnail bound (SPEC.md A3), GPS gone from what is shared.
import { describePage, here } from './browser/harness';

await describePage('media pipeline in Chromium', here('./pages/media.page.ts'));
