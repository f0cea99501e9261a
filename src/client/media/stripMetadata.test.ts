import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { readImageHeader } from './imageHeader';
import { stripMetadata } from './stripMetadata';
import { bytesOf, contains, exifWithGps, jfif, jpeg, jpegSegment, png, pngChunk, riffWebp, sof0, vp8x, webpChunk } from './testing/craft';

const strip = (b: Uint8Array): { bytes: Uint8Array; removed: string[] } => {
  const r = stripMetadata(b);
  assert.ok(r.ok, !r.ok ? r.message : '');
  return r;
};
const scanOf = (b: Uint8Array): Uint8Array => b.subarray(b.lastIndexOf(0xda) - 1);

describe('MD3 location stays home: metadata stripped without re-encoding', () => {
  it('MD3 a JPEG with GPS EXIF, XMP and a comment comes out without them, scan byte for byte, still a JPEG of the same size', () => {
    const xmp = jpegSegment(0xe1, [...bytesOf('http://ns.adobe.com/xap/1.0/\0<x:xmpmeta>XMPSECRET</x:xmpmeta>')]);
    const icc = jpegSegment(0xe2, [...bytesOf('ICC_PROFILE\0'), 1, 1, 9, 9]);
    const com = jpegSegment(0xfe, [...bytesOf('COMMENTSECRET')]);
    const dqt = jpegSegment(0xdb, [0, ...new Array(64).fill(1)]);
    const input = jpeg([jfif(), exifWithGps(), xmp, icc, com, jpegSegment(0xed, [...bytesOf('Photoshop 3.0\0IPTC')]), dqt, sof0(64, 48)]);
    assert.ok(contains(input, 'GPSMARK'));
    const out = strip(input);
    assert.deepEqual(out.removed, ['APP1 Exif', 'APP1 XMP', 'COM', 'APP13']);
    for (const secret of ['GPSMARK', 'Exif', 'XMPSECRET', 'COMMENTSECRET', 'IPTC']) assert.equal(contains(out.bytes, secret), false, secret);
    assert.ok(contains(out.bytes, 'JFIF') && contains(out.bytes, 'ICC_PROFILE') && contains(out.bytes, new Uint8Array(dqt)));
    assert.deepEqual(scanOf(out.bytes), scanOf(input));
    assert.deepEqual(readImageHeader(out.bytes), { ok: true, type: 'image/jpeg', width: 64, height: 48 });
  });

  it('MD3 bytes after EOI (an MPF second image with its own GPS EXIF) are dropped; a progressive image keeps all its scans', () => {
    const main = jpeg([jfif(), sof0(64, 48)]);
    const trailer = jpeg([exifWithGps(), sof0(8, 8)]);
    const out = strip(new Uint8Array([...main, ...trailer]));
    assert.deepEqual(out.bytes, main);
    assert.deepEqual(out.removed, [`${trailer.length} bytes after EOI`]);
    // Two scans with a DHT between them whose table bytes contain FF D9: all of it stays.
    const progressive = jpeg([jfif(), sof0(64, 48)]);
    const eoiAt = progressive.length - 2;
    const secondScan = [...jpegSegment(0xc4, [0x10, 0xff, 0xd9, 0x01]), ...jpegSegment(0xda, [1, 1, 0, 0, 0x3f, 0]), 0x77, 0xff, 0xd0, 0x66];
    const two = new Uint8Array([...progressive.subarray(0, eoiAt), ...secondScan, 0xff, 0xd9]);
    assert.deepEqual(strip(two).bytes, two);
    assert.equal(stripMetadata(two.subarray(0, two.length - 2)).ok, false, 'no EOI: refused');
  });

  it('MD3 EXIF orientation survives as a one-tag Exif segment; the GPS does not', () => {
    const out = strip(jpeg([jfif(), exifWithGps(6), sof0(64, 48)]));
    assert.equal(contains(out.bytes, 'GPSMARK'), false);
    assert.ok(contains(out.bytes, new Uint8Array([0x12, 0x01, 0x03, 0x00, 0x01, 0x00, 0x00, 0x00, 6, 0])));
    // An upright photo needs no Exif at all.
    assert.equal(contains(strip(jpeg([jfif(), exifWithGps(1), sof0(64, 48)])).bytes, 'Exif'), false);
  });

  it('MD3 PNG: eXIf, tEXt, zTXt, iTXt and tIME go; pixels and colour chunks stay', () => {
    const input = png(4, 4, [pngChunk('eXIf', [...bytesOf('GPSMARK')]), pngChunk('tEXt', [...bytesOf('Comment\0hi')]), pngChunk('iTXt', [...bytesOf('XML:com.adobe.xmp\0\0\0\0\0<x/>')]), pngChunk('zTXt', [1]), pngChunk('tIME', [7, 0xea, 1, 1, 0, 0, 0]), pngChunk('gAMA', [0, 0, 0xb1, 0x8f])]);
    const out = strip(input);
    assert.deepEqual(out.removed, ['eXIf', 'tEXt', 'iTXt', 'zTXt', 'tIME']);
    assert.equal(contains(out.bytes, 'GPSMARK'), false);
    assert.deepEqual(out.bytes, png(4, 4, [pngChunk('gAMA', [0, 0, 0xb1, 0x8f])]));
    const trailing = strip(new Uint8Array([...png(4, 4), ...bytesOf('GPSMARK')]));
    assert.deepEqual(trailing.bytes, png(4, 4));
    assert.deepEqual(trailing.removed, ['7 bytes after IEND']);
  });

  it('MD3 WebP: EXIF and XMP chunks go, VP8X flags say so, RIFF size is rewritten', () => {
    const image = webpChunk('VP8L', [0x2f, 0, 0, 0, 0]);
    const input = riffWebp([vp8x(0x10 | 0x08 | 0x04, 9, 9), image, webpChunk('EXIF', [...bytesOf('GPSMARK')]), webpChunk('XMP ', [...bytesOf('<x/>')])]);
    const out = strip(input);
    assert.deepEqual(out.removed, ['EXIF', 'XMP ']);
    assert.deepEqual(out.bytes, riffWebp([vp8x(0x10, 9, 9), image]));
  });

  it('MD3 broken structure is refused with MALFORMED, not half-stripped', () => {
    const j = jpeg([jfif(), exifWithGps(), sof0(8, 8)]);
    for (const cut of [10, 30, j.indexOf(0xc0)]) {
      const r = stripMetadata(j.subarray(0, cut));
      assert.equal(!r.ok && r.reason, 'MALFORMED', `cut ${cut}`);
    }
    const p = png(4, 4, [pngChunk('tEXt', [1, 2, 3])]);
    assert.equal(stripMetadata(p.subarray(0, 40)).ok, false);
    assert.equal(stripMetadata(bytesOf('<svg/>')).ok, false);
  });
});
