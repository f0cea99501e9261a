// Crafted image bytes for the media tests (Node and the browser page): headers, segments and chunks built
// by hand so a test can state exactly what a file declares.

const ascii = (s: string): number[] => [...s].map((c) => c.charCodeAt(0));
const be16 = (n: number): number[] => [(n >> 8) & 0xff, n & 0xff];
const be32 = (n: number): number[] => [(n >>> 24) & 0xff, (n >> 16) & 0xff, (n >> 8) & 0xff, n & 0xff];
const le32 = (n: number): number[] => [n & 0xff, (n >> 8) & 0xff, (n >> 16) & 0xff, (n >>> 24) & 0xff];

function crc32(bytes: number[]): number {
  let c = ~0;
  for (const b of bytes) {
    c ^= b;
    for (let k = 0; k < 8; k++) c = (c >>> 1) ^ (0xedb88320 & -(c & 1));
  }
  return ~c >>> 0;
}

export function pngChunk(type: string, data: number[] = []): number[] {
  const td = [...ascii(type), ...data];
  return [...be32(data.length), ...td, ...be32(crc32(td))];
}

/** A PNG of the given declared size: IHDR, then `extra` chunks, an IDAT of zero bytes and IEND. */
export function png(width: number, height: number, extra: number[][] = []): Uint8Array {
  const ihdr = [...be32(width), ...be32(height), 8, 6, 0, 0, 0];
  return new Uint8Array([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, ...pngChunk('IHDR', ihdr), ...extra.flat(), ...pngChunk('IDAT', [0x78, 0x9c, 0x03, 0x00, 0x00, 0x00, 0x00, 0x01]), ...pngChunk('IEND')]);
}

export function jpegSegment(marker: number, data: number[]): number[] {
  return [0xff, marker, ...be16(data.length + 2), ...data];
}

/** SOF0 with 3 components. */
export const sof0 = (width: number, height: number): number[] => jpegSegment(0xc0, [8, ...be16(height), ...be16(width), 3, 1, 0x22, 0, 2, 0x11, 1, 3, 0x11, 1]);

/**
 * A little-endian Exif APP1 whose IFD0 has Orientation and a GPS IFD pointer; the GPS IFD holds
 * GPSLatitudeRef "N" (the marker a test looks for is the ASCII "GPSMARK" in a Make tag).
 */
export function exifWithGps(orientation = 1): number[] {
  // TIFF: header (8) | IFD0 at 8: 3 entries (2 + 36 + 4 = 42) -> ends at 50 | GPS IFD at 50: 1 entry (2+12+4=18) -> 68 | "GPSMARK\0" at 68
  const le16 = (n: number): number[] => [n & 0xff, (n >> 8) & 0xff];
  const entry = (tag: number, type: number, count: number, value: number[]): number[] => [...le16(tag), ...le16(type), ...le32(count), ...value];
  const tiff = [
    0x49, 0x49, 0x2a, 0x00, ...le32(8),
    ...le16(3),
    entry(0x010f, 2, 8, le32(68)), // Make -> "GPSMARK\0"
    entry(0x0112, 3, 1, [...le16(orientation), 0, 0]),
    entry(0x8825, 4, 1, le32(50)), // GPS IFD
    ...le32(0),
    ...le16(1),
    entry(0x0001, 2, 2, [0x4e, 0, 0, 0]), // GPSLatitudeRef "N"
    ...le32(0),
    ...ascii('GPSMARK\0'),
  ].flat();
  return jpegSegment(0xe1, [...ascii('Exif\0\0'), ...tiff]);
}

export const jfif = (): number[] => jpegSegment(0xe0, [...ascii('JFIF\0'), 1, 1, 0, 0, 1, 0, 1, 0, 0]);

/** SOI, segments, SOS with a few entropy bytes, EOI. Not decodable: structure only. */
export function jpeg(segments: number[][]): Uint8Array {
  const sos = jpegSegment(0xda, [3, 1, 0, 2, 0x11, 3, 0x11, 0, 0x3f, 0]);
  return new Uint8Array([0xff, 0xd8, ...segments.flat(), ...sos, 0x12, 0x34, 0xff, 0x00, 0x56, 0xff, 0xd9]);
}

export function webpChunk(fourcc: string, data: number[]): number[] {
  return [...ascii(fourcc), ...le32(data.length), ...data, ...(data.length & 1 ? [0] : [])];
}

export function riffWebp(chunks: number[][]): Uint8Array {
  const body = [...ascii('WEBP'), ...chunks.flat()];
  return new Uint8Array([...ascii('RIFF'), ...le32(body.length), ...body]);
}

/** VP8X with the given flag byte and canvas size. */
export function vp8x(flags: number, width: number, height: number): number[] {
  const w = width - 1, h = height - 1;
  return webpChunk('VP8X', [flags, 0, 0, 0, w & 0xff, (w >> 8) & 0xff, (w >> 16) & 0xff, h & 0xff, (h >> 8) & 0xff, (h >> 16) & 0xff]);
}

export const bytesOf = (s: string): Uint8Array => new TextEncoder().encode(s);

/** True when `needle` occurs in `hay`. */
export function contains(hay: Uint8Array, needle: string | Uint8Array): boolean {
  const n = typeof needle === 'string' ? bytesOf(needle) : needle;
  outer: for (let i = 0; i + n.length <= hay.length; i++) {
    for (let j = 0; j < n.length; j++) if (hay[i + j] !== n[j]) continue outer;
    return true;
  }
  return false;
}
