import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { zAttachmentMeta } from '../../shared/protocol/relay';
import { contentDigests } from '../../shared/protocol/signed';
import type { ImageHeader } from './imageHeader';
import { prepareAttachment } from './prepareAttachment';
import { bytesOf, contains, exifWithGps, jfif, jpeg, png, sof0 } from './testing/craft';
import type { ThumbnailResult } from './thumbnail';

// Node has no image decoder: a stand-in thumbnailer that records what it was given (the browser one is
// covered by e2e/media.test.ts).
function fakeThumbnailer(seen: Uint8Array[] = []) {
  return async (bytes: Uint8Array, h: ImageHeader): Promise<ThumbnailResult> => {
    seen.push(bytes);
    return { ok: true, thumbnail: { mime: 'image/webp', data: 'AAAA' }, bytes: 3, width: h.width, height: h.height };
  };
}

describe('prepareAttachment: picked bytes -> what attachment.mint takes', () => {
  it('MD3 an image is stripped before digests and thumbnail, and its meta passes the mint schema', async () => {
    const seen: Uint8Array[] = [];
    const input = jpeg([jfif(), exifWithGps(), sof0(40, 30)]);
    const r = await prepareAttachment(input, { name: 'IMG_0001.JPG', claimedMime: 'text/html', thumbnailer: fakeThumbnailer(seen) });
    assert.ok(r.ok && r.kind === 'image');
    assert.equal(contains(r.bytes, 'GPSMARK'), false);
    assert.deepEqual(seen, [r.bytes], 'the thumbnail is made from the stripped bytes');
    assert.deepEqual(r.meta, { name: 'IMG_0001.JPG', mime: 'image/jpeg', ...contentDigests(r.bytes), width: 40, height: 30, thumbnail: { mime: 'image/webp', data: 'AAAA' } });
    assert.ok(zAttachmentMeta.safeParse(r.meta).success);
    assert.deepEqual(r.removed, ['APP1 Exif']);
  });

  it('MD3 keepOriginal shares the bytes as picked, EXIF and all', async () => {
    const input = jpeg([jfif(), exifWithGps(), sof0(40, 30)]);
    const r = await prepareAttachment(input, { name: 'a.jpg', keepOriginal: true, thumbnailer: fakeThumbnailer() });
    assert.ok(r.ok);
    assert.equal(r.bytes, input);
    assert.equal(r.meta.sha256, contentDigests(input).sha256);
  });

  it('MD2 a bomb is refused with its reason and never reaches the thumbnailer', async () => {
    const seen: Uint8Array[] = [];
    const r = await prepareAttachment(png(60_000, 60_000), { name: 'bomb.png', thumbnailer: fakeThumbnailer(seen) });
    assert.equal(!r.ok && r.reason, 'TOO_MANY_PIXELS');
    assert.equal(seen.length, 0);
  });

  it('MD4 a renamed SVG is a file: no thumbnail, no size, sanitized name; a bogus claimed mime becomes octet-stream', async () => {
    const r = await prepareAttachment(bytesOf('<svg onload="alert(1)"/>'), { name: 'cat\u202Egnp.svg', claimedMime: 'image/png', thumbnailer: fakeThumbnailer() });
    assert.ok(r.ok && r.kind === 'file');
    assert.equal(r.meta.name, 'catgnp.svg');
    assert.equal(r.meta.thumbnail, undefined);
    assert.equal(r.meta.width, undefined);
    assert.ok(zAttachmentMeta.safeParse(r.meta).success);
    const bogus = await prepareAttachment(bytesOf('x'), { name: 'x', claimedMime: 'not a mime' });
    assert.equal(bogus.ok && bogus.meta.mime, 'application/octet-stream');
  });

  it('A1 a file over the relay\'s published cap is refused before any hashing', async () => {
    const r = await prepareAttachment(new Uint8Array(1001), { name: 'big.bin', maxBytes: 1000 });
    assert.equal(!r.ok && r.reason, 'FILE_TOO_LARGE');
  });
});
