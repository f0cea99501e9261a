// Reads an image's type and size from its first bytes, before anything decodes it (rules in ./RULES.md,
// MD1-MD2). Only PNG, JPEG, GIF and WebP are known; everything else is "not an image". The walk is bounded:
// it reads at most HEADER_SCAN_BYTES and HEADER_MAX_SEGMENTS JPEG segments, and every step advances, so
// hostile bytes (a loop, a truncation, a 25 MB file of 0xFF) end in a refusal, never a hang. image-size was
// not used: it runs every type's validator on unknown bytes and copies the buffer at each JPEG step
// (webapp-research.md §2.4).

export const IMAGE_TYPES = ['image/png', 'image/jpeg', 'image/gif', 'image/webp'] as const;
export type ImageType = (typeof IMAGE_TYPES)[number];

/** The sniffer never looks past this many bytes: a JPEG whose SOF is later is refused (TRUNCATED). */
export const HEADER_SCAN_BYTES = 512 * 1024;
/** Most JPEG segments walked before the frame header; real files have a few dozen. */
export const HEADER_MAX_SEGMENTS = 1024;
/** Longest side accepted (MD2): larger is a decompression bomb. */
export const MAX_IMAGE_SIDE = 16_384;
/** Largest area accepted (MD2): 40 MP decodes to ~160 MB of RGBA. */
export const MAX_IMAGE_PIXELS = 40_000_000;

export const HeaderReason = {
  /** No known image magic bytes: not an image (show it as a download). */
  NOT_AN_IMAGE: 'NOT_AN_IMAGE',
  /** The header ends before the size is known (or past HEADER_SCAN_BYTES). */
  TRUNCATED: 'TRUNCATED',
  /** The magic bytes match but the structure is broken (bad marker, zero size, too many segments). */
  MALFORMED: 'MALFORMED',
  /** Declared size above MAX_IMAGE_SIDE or MAX_IMAGE_PIXELS (MD2). */
  TOO_MANY_PIXELS: 'TOO_MANY_PIXELS',
} as const;
export type HeaderReason = (typeof HeaderReason)[keyof typeof HeaderReason];

export interface ImageHeader {
  type: ImageType;
  width: number;
  height: number;
}
export type HeaderRefusal = { ok: false; reason: HeaderReason; message: string };
export type HeaderResult = ({ ok: true } & ImageHeader) | HeaderRefusal;

const refuse = (reason: HeaderReason, message: string): HeaderRefusal => ({ ok: false, reason, message });

const startsWith = (b: Uint8Array, sig: readonly number[], at = 0): boolean =>
  b.length >= at + sig.length && sig.every((v, i) => b[at + i] === v);
const ascii = (s: string): number[] => [...s].map((c) => c.charCodeAt(0));

const PNG_SIG = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];
const GIF87 = ascii('GIF87a');
const GIF89 = ascii('GIF89a');
const RIFF = ascii('RIFF');
const WEBP = ascii('WEBP');

/** The image type by magic bytes alone, or null. */
export function sniffImageType(bytes: Uint8Array): ImageType | null {
  if (startsWith(bytes, PNG_SIG)) return 'image/png';
  if (startsWith(bytes, [0xff, 0xd8, 0xff])) return 'image/jpeg';
  if (startsWith(bytes, GIF87) || startsWith(bytes, GIF89)) return 'image/gif';
  if (startsWith(bytes, RIFF) && startsWith(bytes, WEBP, 8)) return 'image/webp';
  return null;
}

/** Type, width and height from the header (MD1); does not apply the bomb policy (see refuseBomb). */
export function readImageHeader(input: Uint8Array): HeaderResult {
  const bytes = input.subarray(0, HEADER_SCAN_BYTES);
  const type = sniffImageType(bytes);
  if (!type) return refuse(HeaderReason.NOT_AN_IMAGE, 'not a PNG, JPEG, GIF or WebP image');
  const size = type === 'image/png' ? png(bytes) : type === 'image/gif' ? gif(bytes) : type === 'image/webp' ? webp(bytes) : jpeg(bytes);
  if (!('width' in size)) return size;
  if (size.width < 1 || size.height < 1) return refuse(HeaderReason.MALFORMED, `the ${type} header declares a zero size`);
  return { ok: true, type, width: size.width, height: size.height };
}

/** MD2: refuses a header whose decode would be a decompression bomb, with a message fit for the user. */
export function refuseBomb(h: ImageHeader): { ok: true } | HeaderRefusal {
  if (h.width > MAX_IMAGE_SIDE || h.height > MAX_IMAGE_SIDE) {
    return refuse(HeaderReason.TOO_MANY_PIXELS, `This image is ${h.width} x ${h.height} pixels; the most allowed is ${MAX_IMAGE_SIDE} on a side.`);
  }
  if (h.width * h.height > MAX_IMAGE_PIXELS) {
    const mp = ((h.width * h.height) / 1e6).toFixed(1);
    return refuse(HeaderReason.TOO_MANY_PIXELS, `This image has ${mp} megapixels; the most allowed is ${MAX_IMAGE_PIXELS / 1e6}.`);
  }
  return { ok: true };
}

/** readImageHeader then refuseBomb: the one check to run on a picked file. */
export function checkImage(bytes: Uint8Array): HeaderResult {
  const h = readImageHeader(bytes);
  if (!h.ok) return h;
  const b = refuseBomb(h);
  return b.ok ? h : b;
}

type Size = { width: number; height: number } | HeaderRefusal;

const u16be = (b: Uint8Array, i: number): number => (b[i]! << 8) | b[i + 1]!;
const u16le = (b: Uint8Array, i: number): number => b[i]! | (b[i + 1]! << 8);
const u24le = (b: Uint8Array, i: number): number => b[i]! | (b[i + 1]! << 8) | (b[i + 2]! << 16);
const u32be = (b: Uint8Array, i: number): number => ((b[i]! << 24) >>> 0) + ((b[i + 1]! << 16) | (b[i + 2]! << 8) | b[i + 3]!);

function png(b: Uint8Array): Size {
  // The first chunk must be IHDR (PNG spec 5.6): width and height are its first two u32s.
  if (b.length < 24) return refuse(HeaderReason.TRUNCATED, 'the PNG ends before its IHDR chunk');
  if (!startsWith(b, ascii('IHDR'), 12)) return refuse(HeaderReason.MALFORMED, 'the PNG does not start with IHDR');
  return { width: u32be(b, 16), height: u32be(b, 20) };
}

function gif(b: Uint8Array): Size {
  if (b.length < 10) return refuse(HeaderReason.TRUNCATED, 'the GIF ends before its screen descriptor');
  return { width: u16le(b, 6), height: u16le(b, 8) };
}

function webp(b: Uint8Array): Size {
  if (b.length < 30) return refuse(HeaderReason.TRUNCATED, 'the WebP ends before its first chunk');
  const chunk = String.fromCharCode(b[12]!, b[13]!, b[14]!, b[15]!);
  if (chunk === 'VP8X') return { width: 1 + u24le(b, 24), height: 1 + u24le(b, 27) };
  if (chunk === 'VP8L') {
    if (b[20] !== 0x2f) return refuse(HeaderReason.MALFORMED, 'bad VP8L signature');
    const b1 = b[21]!, b2 = b[22]!, b3 = b[23]!, b4 = b[24]!;
    return { width: 1 + (((b2 & 0x3f) << 8) | b1), height: 1 + (((b4 & 0x0f) << 10) | (b3 << 2) | ((b2 & 0xc0) >> 6)) };
  }
  if (chunk === 'VP8 ') {
    if (!startsWith(b, [0x9d, 0x01, 0x2a], 23)) return refuse(HeaderReason.MALFORMED, 'bad VP8 frame start code');
    return { width: u16le(b, 26) & 0x3fff, height: u16le(b, 28) & 0x3fff };
  }
  return refuse(HeaderReason.MALFORMED, `unknown WebP chunk ${JSON.stringify(chunk)}`);
}

/** SOF0..SOF15 carry the frame size; C4 (DHT), C8 (JPG extension) and CC (DAC) share the range but do not. */
const isSof = (m: number): boolean => m >= 0xc0 && m <= 0xcf && m !== 0xc4 && m !== 0xc8 && m !== 0xcc;

function jpeg(b: Uint8Array): Size {
  let pos = 2;
  for (let seg = 0; seg < HEADER_MAX_SEGMENTS; seg++) {
    if (pos + 1 >= b.length) return refuse(HeaderReason.TRUNCATED, 'the JPEG ends before its frame header');
    if (b[pos] !== 0xff) return refuse(HeaderReason.MALFORMED, `no JPEG marker at byte ${pos}`);
    // Any number of 0xFF fill bytes may precede a marker (T.81 B.1.1.2); each one advances pos.
    while (pos + 1 < b.length && b[pos + 1] === 0xff) pos++;
    if (pos + 1 >= b.length) return refuse(HeaderReason.TRUNCATED, 'the JPEG ends in fill bytes');
    const marker = b[pos + 1]!;
    if (marker === 0x01 || (marker >= 0xd0 && marker <= 0xd7)) {
      pos += 2; // standalone markers: no length
      continue;
    }
    if (marker === 0xd9 || marker === 0xda) return refuse(HeaderReason.MALFORMED, 'the JPEG has no frame header before its scan');
    if (pos + 4 > b.length) return refuse(HeaderReason.TRUNCATED, 'the JPEG ends inside a segment length');
    const len = u16be(b, pos + 2);
    if (len < 2) return refuse(HeaderReason.MALFORMED, `a JPEG segment declares length ${len}`);
    if (isSof(marker)) {
      if (pos + 9 > b.length) return refuse(HeaderReason.TRUNCATED, 'the JPEG ends inside its frame header');
      return { width: u16be(b, pos + 7), height: u16be(b, pos + 5) };
    }
    pos += 2 + len; // len >= 2, so every step advances by at least 4
  }
  return refuse(HeaderReason.MALFORMED, `the JPEG has more than ${HEADER_MAX_SEGMENTS} segments before its frame header`);
}
