// Removes location and other metadata from an image without re-encoding it (./RULES.md MD3): the pixels
// stay byte for byte, only metadata segments/chunks go. Re-encoding would also strip, but loses quality and
// costs a full decode; this is a copy with holes. Every walk is bounded by the input and always advances.
import { sniffImageType } from './imageHeader';

export type StripResult =
  | { ok: true; bytes: Uint8Array; /** What went, e.g. "APP1 Exif", "tEXt"; empty when nothing did. */ removed: string[] }
  | { ok: false; reason: 'UNSUPPORTED' | 'MALFORMED'; message: string };

/** Strips JPEG, PNG and WebP. GIF comes back unchanged (it has no EXIF/GPS; comments stay): `removed` is empty. */
export function stripMetadata(bytes: Uint8Array): StripResult {
  switch (sniffImageType(bytes)) {
    case 'image/jpeg':
      return stripJpeg(bytes);
    case 'image/png':
      return stripPng(bytes);
    case 'image/webp':
      return stripWebp(bytes);
    case 'image/gif':
      return { ok: true, bytes, removed: [] };
    default:
      return { ok: false, reason: 'UNSUPPORTED', message: 'not a PNG, JPEG, GIF or WebP image' };
  }
}

const malformed = (message: string): StripResult => ({ ok: false, reason: 'MALFORMED', message });
const u16be = (b: Uint8Array, i: number): number => (b[i]! << 8) | b[i + 1]!;

function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

const hasPrefix = (b: Uint8Array, text: string): boolean => b.length >= text.length && [...text].every((c, i) => b[i] === c.charCodeAt(0));

// ---- JPEG ----

/**
 * Kept: APP0 (JFIF/JFXX: density, decoders read it), APP2 only when it is an ICC profile (colours), APP14
 * "Adobe" (says whether the data is YCbCr or CMYK: without it some files decode with wrong colours), and
 * every non-APP segment (tables, frame, scan). Dropped: APP1 (Exif with GPS, XMP), other APPn, COM.
 * EXIF orientation is the one EXIF field the picture needs: it comes back as a fresh one-tag Exif segment.
 */
function keepJpegApp(marker: number, data: Uint8Array): boolean {
  if (marker === 0xe0) return true;
  if (marker === 0xe2) return hasPrefix(data, 'ICC_PROFILE\0');
  if (marker === 0xee) return hasPrefix(data, 'Adobe');
  return false;
}

function stripJpeg(b: Uint8Array): StripResult {
  const parts: Uint8Array[] = [b.subarray(0, 2)];
  const removed: string[] = [];
  let orientation: number | null = null;
  let pos = 2;
  // Bounded by the input: every step advances by at least 2.
  while (pos < b.length) {
    if (b[pos] !== 0xff) return malformed(`no JPEG marker at byte ${pos}`);
    let m = pos;
    while (m + 1 < b.length && b[m + 1] === 0xff) m++; // fill bytes
    if (m + 1 >= b.length) return malformed('the JPEG ends in fill bytes');
    const marker = b[m + 1]!;
    if (marker === 0x01 || (marker >= 0xd0 && marker <= 0xd8)) {
      parts.push(b.subarray(m, m + 2));
      pos = m + 2;
      continue;
    }
    if (marker === 0xd9) break; // EOI before any scan
    if (m + 4 > b.length) return malformed('the JPEG ends inside a segment length');
    const len = u16be(b, m + 2);
    if (len < 2 || m + 2 + len > b.length) return malformed(`a JPEG segment at byte ${m} has a bad length ${len}`);
    const end = m + 2 + len;
    if (marker === 0xda) {
      // The scans up to EOI are picture: copied as is. Bytes after EOI are not (phones append MPF
      // secondary images and motion-photo videos there, each with its own EXIF and GPS): dropped.
      if (orientation !== null && orientation !== 1) parts.push(exifOrientationSegment(orientation));
      const eoi = endOfImage(b, m);
      if (eoi === null) return malformed('the JPEG has no end-of-image marker after its scan');
      parts.push(b.subarray(m, eoi));
      if (eoi < b.length) removed.push(`${b.length - eoi} bytes after EOI`);
      return { ok: true, bytes: concat(parts), removed };
    }
    const data = b.subarray(m + 4, end);
    const isApp = marker >= 0xe0 && marker <= 0xef;
    if ((isApp && !keepJpegApp(marker, data)) || marker === 0xfe) {
      if (marker === 0xe1 && hasPrefix(data, 'Exif\0\0')) orientation ??= exifOrientation(data.subarray(6));
      removed.push(marker === 0xfe ? 'COM' : `APP${marker - 0xe0}${segmentLabel(data)}`);
    } else {
      parts.push(b.subarray(m, end));
    }
    pos = end;
  }
  return malformed('the JPEG has no scan');
}

/**
 * The offset just past the EOI that ends the image whose first SOS is at `sos`, or null. In entropy-coded
 * data 0xFF is followed by 0x00 (stuffing), a restart marker or fill; any other marker is a segment with a
 * length (DHT, DRI, or the next SOS of a progressive image), skipped by its length. Every step advances.
 */
function endOfImage(b: Uint8Array, sos: number): number | null {
  let i = sos;
  let inSegment = true; // at a marker that has a length
  while (i < b.length) {
    if (inSegment) {
      if (i + 4 > b.length) return null;
      const len = u16be(b, i + 2);
      if (len < 2) return null;
      i += 2 + len;
      inSegment = false;
      continue;
    }
    if (b[i] !== 0xff) {
      i++;
      continue;
    }
    const next = b[i + 1];
    if (next === undefined) return null;
    if (next === 0x00 || next === 0xff || (next >= 0xd0 && next <= 0xd7)) i += next === 0xff ? 1 : 2;
    else if (next === 0xd9) return i + 2;
    else inSegment = true;
  }
  return null;
}

function segmentLabel(data: Uint8Array): string {
  if (hasPrefix(data, 'Exif\0')) return ' Exif';
  if (hasPrefix(data, 'http://ns.adobe.com/')) return ' XMP';
  return '';
}

/** The Orientation tag (0x0112) of IFD0 of a TIFF block, or null. Reads only inside `t`. */
function exifOrientation(t: Uint8Array): number | null {
  if (t.length < 8) return null;
  const le = t[0] === 0x49 && t[1] === 0x49;
  if (!le && !(t[0] === 0x4d && t[1] === 0x4d)) return null;
  const u16 = (i: number): number => (le ? t[i]! | (t[i + 1]! << 8) : (t[i]! << 8) | t[i + 1]!);
  const u32 = (i: number): number => (le ? (t[i]! | (t[i + 1]! << 8) | (t[i + 2]! << 16)) + t[i + 3]! * 2 ** 24 : t[i]! * 2 ** 24 + ((t[i + 1]! << 16) | (t[i + 2]! << 8) | t[i + 3]!));
  const ifd = u32(4);
  if (ifd + 2 > t.length) return null;
  const count = u16(ifd);
  for (let k = 0; k < count; k++) {
    const e = ifd + 2 + k * 12;
    if (e + 12 > t.length) return null;
    if (u16(e) === 0x0112) {
      const v = u16(e + 8);
      return v >= 1 && v <= 8 ? v : null;
    }
  }
  return null;
}

/** APP1 "Exif" with a little-endian TIFF whose IFD0 holds only Orientation. */
function exifOrientationSegment(orientation: number): Uint8Array {
  const tiff = [0x49, 0x49, 0x2a, 0x00, 0x08, 0x00, 0x00, 0x00, 0x01, 0x00, 0x12, 0x01, 0x03, 0x00, 0x01, 0x00, 0x00, 0x00, orientation, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00];
  const body = [...'Exif\0\0'].map((c) => c.charCodeAt(0)).concat(tiff);
  const len = body.length + 2;
  return new Uint8Array([0xff, 0xe1, len >> 8, len & 0xff, ...body]);
}

// ---- PNG ----

/** eXIf holds EXIF (GPS); the text chunks hold free text and XMP (iTXt "XML:com.adobe.xmp"); tIME a date. */
const PNG_DROP = new Set(['eXIf', 'tEXt', 'zTXt', 'iTXt', 'tIME']);

function stripPng(b: Uint8Array): StripResult {
  const parts: Uint8Array[] = [b.subarray(0, 8)];
  const removed: string[] = [];
  let pos = 8;
  while (pos < b.length) {
    if (pos + 12 > b.length) return malformed(`the PNG ends inside a chunk header at byte ${pos}`);
    const len = ((b[pos]! << 24) >>> 0) + ((b[pos + 1]! << 16) | (b[pos + 2]! << 8) | b[pos + 3]!);
    const type = String.fromCharCode(b[pos + 4]!, b[pos + 5]!, b[pos + 6]!, b[pos + 7]!);
    const end = pos + 12 + len;
    if (end > b.length) return malformed(`the PNG chunk ${JSON.stringify(type)} runs past the end`);
    if (PNG_DROP.has(type)) removed.push(type);
    else parts.push(b.subarray(pos, end)); // kept with its own CRC, untouched
    pos = end;
    if (type === 'IEND') break;
  }
  // Bytes after IEND are no picture (and a place to hide anything): dropped like a JPEG's trailer.
  if (pos < b.length) removed.push(`${b.length - pos} bytes after IEND`);
  return { ok: true, bytes: concat(parts), removed };
}

// ---- WebP ----

/** VP8X flag bits (WebP container spec): these two say "there is an EXIF / XMP chunk". */
const VP8X_EXIF = 0x08;
const VP8X_XMP = 0x04;

function stripWebp(b: Uint8Array): StripResult {
  if (b.length < 12) return malformed('the WebP ends inside its RIFF header');
  const parts: Uint8Array[] = [];
  const removed: string[] = [];
  let pos = 12;
  while (pos < b.length) {
    if (pos + 8 > b.length) return malformed(`the WebP ends inside a chunk header at byte ${pos}`);
    const fourcc = String.fromCharCode(b[pos]!, b[pos + 1]!, b[pos + 2]!, b[pos + 3]!);
    const size = (b[pos + 4]! | (b[pos + 5]! << 8) | (b[pos + 6]! << 16)) + b[pos + 7]! * 2 ** 24;
    const end = pos + 8 + size + (size & 1); // chunks are padded to an even size
    if (pos + 8 + size > b.length) return malformed(`the WebP chunk ${JSON.stringify(fourcc)} runs past the end`);
    const chunk = b.subarray(pos, Math.min(end, b.length));
    if (fourcc === 'EXIF' || fourcc === 'XMP ') removed.push(fourcc);
    else if (fourcc === 'VP8X' && size >= 1) {
      const copy = chunk.slice();
      copy[8] = copy[8]! & ~(VP8X_EXIF | VP8X_XMP);
      parts.push(copy);
    } else parts.push(chunk);
    pos = end;
  }
  const body = concat(parts);
  const out = new Uint8Array(12 + body.length);
  out.set(b.subarray(0, 12));
  out.set(body, 12);
  const riffSize = out.length - 8;
  out[4] = riffSize & 0xff;
  out[5] = (riffSize >> 8) & 0xff;
  out[6] = (riffSize >> 16) & 0xff;
  out[7] = (riffSize >>> 24) & 0xff;
  return { ok: true, bytes: out, removed };
}
