import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { checkImage, HEADER_SCAN_BYTES, HeaderReason, MAX_IMAGE_PIXELS, MAX_IMAGE_SIDE, readImageHeader, refuseBomb } from './imageHeader';
import { bytesOf, jfif, jpeg, jpegSegment, png, riffWebp, sof0, vp8x, webpChunk } from './testing/craft';

describe('MD1 header first: type and size from magic bytes', () => {
  it('MD1 reads PNG, JPEG, GIF and WebP (VP8X, VP8L, VP8) sizes', () => {
    assert.deepEqual(readImageHeader(png(640, 480)), { ok: true, type: 'image/png', width: 640, height: 480 });
    assert.deepEqual(readImageHeader(jpeg([jfif(), sof0(1024, 768)])), { ok: true, type: 'image/jpeg', width: 1024, height: 768 });
    const gif = new Uint8Array([...bytesOf('GIF89a'), 0x40, 0x01, 0xf0, 0x00, 0, 0, 0, 0]);
    assert.deepEqual(readImageHeader(gif), { ok: true, type: 'image/gif', width: 320, height: 240 });
    assert.deepEqual(readImageHeader(riffWebp([vp8x(0, 3000, 2000), webpChunk('VP8L', [0x2f, 0, 0, 0, 0])])), { ok: true, type: 'image/webp', width: 3000, height: 2000 });
    // VP8L: 14-bit width-1 and height-1 packed little-endian after the 0x2f signature: 100 x 50.
    const w = 99, h = 49, bits = w | (h << 14);
    const vp8l = riffWebp([webpChunk('VP8L', [0x2f, bits & 0xff, (bits >> 8) & 0xff, (bits >> 16) & 0xff, (bits >> 24) & 0xff, 0, 0, 0, 0])]);
    assert.deepEqual(readImageHeader(vp8l), { ok: true, type: 'image/webp', width: 100, height: 50 });
    const vp8 = riffWebp([webpChunk('VP8 ', [0, 0, 0, 0x9d, 0x01, 0x2a, 200 & 0xff, 0, 150, 0, 0, 0])]);
    assert.deepEqual(readImageHeader(vp8), { ok: true, type: 'image/webp', width: 200, height: 150 });
  });

  it('MD1 JPEG: SOF2 (progressive) counts, DHT (C4), JPG (C8) and DAC (CC) do not', () => {
    const progressive = jpeg([jfif(), jpegSegment(0xc4, [0, 1, 2, 3]), jpegSegment(0xc8, [9, 9, 9, 9, 9, 9, 9]), jpegSegment(0xcc, [1, 2]), [0xff, 0xc2, ...sof0(33, 44).slice(2)]]);
    assert.deepEqual(readImageHeader(progressive), { ok: true, type: 'image/jpeg', width: 33, height: 44 });
  });

  it('MD1 SVG, HTML, PDF and empty input are not images', () => {
    for (const text of ['<svg xmlns="http://www.w3.org/2000/svg"/>', '<!doctype html><script>alert(1)</script>', '%PDF-1.7', '']) {
      const r = readImageHeader(bytesOf(text));
      assert.equal(r.ok, false);
      assert.equal(!r.ok && r.reason, HeaderReason.NOT_AN_IMAGE);
    }
  });

  it('MD1 every truncation of a JPEG and a PNG ends in a refusal, never a throw', () => {
    for (const whole of [jpeg([jfif(), sof0(10, 10)]), png(10, 10), riffWebp([vp8x(0, 5, 5)])]) {
      for (let n = 0; n < 24; n++) {
        const r = readImageHeader(whole.subarray(0, n));
        assert.equal(r.ok, false, `prefix ${n}`);
      }
    }
    const cut = jpeg([jfif(), sof0(10, 10)]);
    const r = readImageHeader(cut.subarray(0, cut.indexOf(0xc0) + 3));
    assert.equal(!r.ok && r.reason, HeaderReason.TRUNCATED);
  });

  it('MD1 a JPEG of endless segments before any frame header stops at the segment cap', () => {
    const seg = jpegSegment(0xe5, []); // 4 bytes: the smallest step
    const many = new Uint8Array([0xff, 0xd8, ...Array.from({ length: 5000 }, () => seg).flat()]);
    const r = readImageHeader(many);
    assert.equal(!r.ok && r.reason, HeaderReason.MALFORMED);
  });

  it('MD1 a zero segment length (which would loop) and fill-byte floods terminate', () => {
    const zero = new Uint8Array([0xff, 0xd8, 0xff, 0xe1, 0x00, 0x00, 0xff, 0xe1, 0x00, 0x00]);
    assert.equal(readImageHeader(zero).ok, false);
    const fill = new Uint8Array(1024 * 1024).fill(0xff);
    fill[1] = 0xd8;
    assert.equal(readImageHeader(fill).ok, false);
  });

  it('MD1 a frame header past the first 512 KiB is not read', () => {
    const pad = jpegSegment(0xe3, new Array(65000).fill(0));
    const segs = Array.from({ length: Math.ceil(HEADER_SCAN_BYTES / pad.length) + 1 }, () => pad);
    const r = readImageHeader(jpeg([...segs, sof0(8, 8)]));
    assert.equal(!r.ok && r.reason, HeaderReason.TRUNCATED);
  });
});

describe('MD2 no decompression bombs', () => {
  it('MD2 a 60,000 x 60,000 PNG header is refused before decoding, with a message', () => {
    const r = checkImage(png(60_000, 60_000));
    assert.equal(r.ok, false);
    assert.equal(!r.ok && r.reason, HeaderReason.TOO_MANY_PIXELS);
    assert.match(!r.ok ? r.message : '', /60000 x 60000 pixels.*16384/);
  });

  it('MD2 the side and area bounds are exact', () => {
    assert.equal(refuseBomb({ type: 'image/png', width: MAX_IMAGE_SIDE, height: 1 }).ok, true);
    assert.equal(refuseBomb({ type: 'image/png', width: MAX_IMAGE_SIDE + 1, height: 1 }).ok, false);
    assert.equal(refuseBomb({ type: 'image/png', width: 8000, height: MAX_IMAGE_PIXELS / 8000 }).ok, true);
    assert.equal(refuseBomb({ type: 'image/png', width: 8000, height: MAX_IMAGE_PIXELS / 8000 + 1 }).ok, false);
    const r = checkImage(jpeg([sof0(9000, 9000)]));
    assert.match(!r.ok ? r.message : '', /81\.0 megapixels/);
  });

  it('MD2 a zero-size header is malformed', () => {
    const r = checkImage(png(0, 10));
    assert.equal(!r.ok && r.reason, HeaderReason.MALFORMED);
  });
});
