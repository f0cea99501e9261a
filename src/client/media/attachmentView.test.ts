import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { toB64url } from '../../shared/encoding';
import type { AttachmentMeta } from '../../shared/protocol/relay';
import { contentDigests } from '../../shared/protocol/signed';
import { attachmentView, contentView } from './attachmentView';
import { bytesOf, jfif, jpeg, png, sof0 } from './testing/craft';

const meta = (over: Partial<AttachmentMeta>, content: Uint8Array = new Uint8Array(1)): AttachmentMeta => ({ name: 'x', mime: 'image/jpeg', ...contentDigests(content), ...over });

describe('MD4 received attachments: the signed meta sizes the box, the bytes decide what renders', () => {
  it('MD4 a signed raster image with a real thumbnail reserves its box and shows the sniffed thumbnail', () => {
    const thumb = png(32, 24);
    const v = attachmentView(meta({ width: 1600, height: 1200, thumbnail: { mime: 'image/webp', data: toB64url(thumb) } }));
    assert.deepEqual(v, { kind: 'image', width: 1600, height: 1200, thumbnail: { mime: 'image/png', bytes: thumb } });
  });

  it('MD4 a thumbnail that is SVG inside is not drawn; an SVG mime is a file', () => {
    const svgThumb = { mime: 'image/png' as const, data: toB64url(bytesOf('<svg onload="alert(1)"/>')) };
    assert.deepEqual(attachmentView(meta({ width: 10, height: 10, thumbnail: svgThumb })), { kind: 'image', width: 10, height: 10, thumbnail: null });
    assert.deepEqual(attachmentView(meta({ mime: 'image/svg+xml', width: 10, height: 10 })), { kind: 'file' });
    assert.deepEqual(attachmentView(meta({ mime: 'image/png' })), { kind: 'file' }, 'no signed size, no image box');
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
