import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { zAttachmentMeta } from '../../shared/protocol/relay';
import { contentDigests } from '../../shared/protocol/signed';
import type { ImageHeader } from './imageHeader';
import { prepareAttachment } from './prepareAttachment';
import { bytesOf, contains, exifWithGps, jfif, jpeg, png, sof0 } from './testing/craft';
import type { ThumbnailOptions, ThumbnailResult } from './thumbnail';

const PH = { kind: 'thumbhash' as const, data: 'AAAAAAAA' };

// Node has no image decoder: a stand-in thumbnailer that records what it was given (the browser one is
// covered by e2e/media.test.ts).
function fakeThumbnailer(seen: Uint8Array[] = [], asked: ThumbnailOptions[] = []) {
  return async (bytes: Uint8Array, h: ImageHeader, opts: ThumbnailOptions): Promise<ThumbnailResult> => {
    seen.push(bytes);
    asked.push(opts);
    const inline = opts.inline ? { thumbnail: { mime: 'image/webp' as const, data: 'AAAA' }, bytes: 3 } : { bytes: 0 };
    return { ok: true, placeholder: PH, ...inline, width: h.width, height: h.height };
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
    assert.deepEqual(r.meta, { name: 'IMG_0001.JPG', mime: 'image/jpeg', ...contentDigests(r.bytes), width: 40, height: 30, placeholder: PH });
    assert.ok(zAttachmentMeta.safeParse(r.meta).success);
    assert.deepEqual(r.removed, ['APP1 Exif']);
  });

  it('MD6 A6 a photo signs a placeholder and by default no inline thumbnail; inlineThumbnail adds one', async () => {
    const input = jpeg([jfif(), sof0(40, 30)]);
    const asked: ThumbnailOptions[] = [];
    const r = await prepareAttachment(input, { name: 'a.jpg', thumbnailer: fakeThumbnailer([], asked) });
    assert.ok(r.ok && r.kind === 'image');
    assert.deepEqual(r.meta.placeholder, PH);
    assert.equal('thumbnail' in r.meta, false);
    const t = await prepareAttachment(input, { name: 'a.jpg', inlineThumbnail: true, thumbnailer: fakeThumbnailer([], asked) });
    assert.ok(t.ok);
    assert.deepEqual(t.meta.thumbnail, { mime: 'image/webp', data: 'AAAA' });
    assert.deepEqual(t.meta.placeholder, PH);
    assert.deepEqual(asked, [{ inline: false }, { inline: true }]);
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
