import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { rgbaToThumbHash } from 'thumbhash';
import { fromB64url, toB64url } from '../../shared/encoding';
import { checkImage } from './imageHeader';
import type { AttachmentMeta } from '../../shared/protocol/relay';
import { contentDigests } from '../../shared/protocol/signed';
import { attachmentView, contentView } from './attachmentView';
import { bytesOf, jfif, jpeg, png, sof0 } from './testing/craft';

const meta = (over: Partial<AttachmentMeta>, content: Uint8Array = new Uint8Array(1)): AttachmentMeta => ({ name: 'x', mime: 'image/jpeg', ...contentDigests(content), ...over });

describe('MD4 received attachments: the signed meta sizes the box, the bytes decide what renders', () => {
  it('MD4 a signed raster image with a real thumbnail reserves its box and shows the sniffed thumbnail', () => {
    const thumb = png(32, 24);
    const v = attachmentView(meta({ width: 1600, height: 1200, thumbnail: { mime: 'image/webp', data: toB64url(thumb) } }));
    assert.deepEqual(v, { kind: 'image', width: 1600, height: 1200, thumbnail: { mime: 'image/png', bytes: thumb }, placeholder: null });
  });

  it('MD4 a thumbnail that is SVG inside is not drawn; an SVG mime is a file', () => {
    const svgThumb = { mime: 'image/png' as const, data: toB64url(bytesOf('<svg onload="alert(1)"/>')) };
    assert.deepEqual(attachmentView(meta({ width: 10, height: 10, thumbnail: svgThumb })), { kind: 'image', width: 10, height: 10, thumbnail: null, placeholder: null });
    assert.deepEqual(attachmentView(meta({ mime: 'image/svg+xml', width: 10, height: 10 })), { kind: 'file' });
    assert.deepEqual(attachmentView(meta({ mime: 'image/png' })), { kind: 'file' }, 'no signed size, no image box');
  });

  it('MD6 A6 a placeholder decodes to a PNG data URL (never the sender\'s bytes); garbage or a short hash to none; a thumbnail wins', () => {
    const red = new Uint8Array(20 * 10 * 4).map((_, i) => (i % 4 === 0 || i % 4 === 3 ? 255 : 0));
    const placeholder = { kind: 'thumbhash' as const, data: toB64url(rgbaToThumbHash(20, 10, red)) };
    const v = attachmentView(meta({ width: 2000, height: 1000, placeholder }));
    assert.ok(v.kind === 'image' && v.placeholder);
    const prefix = 'data:image/png;base64,';
    assert.ok(v.placeholder.startsWith(prefix));
    const png = fromB64url(v.placeholder.slice(prefix.length).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, ''));
    const h = png && checkImage(png);
    assert.ok(h && h.ok && h.type === 'image/png' && h.width <= 32 && h.height <= 32, 'a small PNG we encoded');
    const short = { kind: 'thumbhash' as const, data: toB64url(new Uint8Array(4)) };
    assert.equal((attachmentView(meta({ width: 10, height: 10, placeholder: short })) as { placeholder: unknown }).placeholder, null);
    const thumb = png!;
    const both = attachmentView(meta({ width: 10, height: 10, placeholder, thumbnail: { mime: 'image/png', data: toB64url(thumb) } }));
    assert.ok(both.kind === 'image' && both.thumbnail && both.placeholder === null);
  });

  it('MD4 content that is HTML under an image meta is a download; a size other than the signed one too', () => {
    const html = bytesOf('<html><script>alert(1)</script>');
    assert.deepEqual(contentView(meta({ width: 10, height: 10 }, html), html), { kind: 'file' });
    const j = jpeg([jfif(), sof0(40, 30)]);
    assert.deepEqual(contentView(meta({ width: 40, height: 30 }, j), j), { kind: 'image', mime: 'image/jpeg' });
    assert.deepEqual(contentView(meta({ width: 30, height: 40 }, j), j), { kind: 'image', mime: 'image/jpeg' }, 'rotated by EXIF');
    assert.deepEqual(contentView(meta({ width: 41, height: 30 }, j), j), { kind: 'file' });
    assert.deepEqual(contentView(meta({ mime: 'text/html' }, png(60_000, 60_000)), png(60_000, 60_000)), { kind: 'file' });
  });
});
