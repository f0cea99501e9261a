// A photo's preview for the signed metadata, made in the browser with createImageBitmap + OffscreenCanvas
// (both exist in a Worker too, where the next step should run this): a ThumbHash placeholder (SPEC.md A6,
// ./RULES.md MD6), and only when asked an inline thumbnail that fits the relay's bound (A3). Re-encoding
// strips all metadata. Only call it on bytes checkImage accepted (MD2).
import { rgbaToThumbHash } from 'thumbhash';
import { toB64url } from '../../shared/encoding';
import { LIMITS } from '../../shared/protocol/limits';
import type { AttachmentMeta, Placeholder } from '../../shared/protocol/relay';
import type { ImageHeader } from './imageHeader';

/** ThumbHash encodes at most 100 x 100 pixels; more would not change its 25-35 bytes anyway. */
export const PLACEHOLDER_MAX_SIDE = 100;

/** Longest side tried first, then ×0.75 per step down to THUMB_MIN_SIDE. */
export const THUMB_MAX_SIDE = 320;
export const THUMB_MIN_SIDE = 32;
/** Encoder qualities tried at each side, best first. */
export const THUMB_QUALITIES = [0.8, 0.6, 0.45, 0.3] as const;

export type Thumbnail = NonNullable<AttachmentMeta['thumbnail']>;
export type ThumbnailResult =
  | {
      ok: true;
      /** The ThumbHash of a <= 100 px downscale (A6). */
      placeholder: Placeholder;
      /** Only with `inline`: an encoded thumbnail of at most maxBytes (A3). */
      thumbnail?: Thumbnail;
      /** Decoded bytes of the thumbnail, 0 without one. */
      bytes: number;
      /** Size of the picture as shown (EXIF orientation applied): what the message signs for layout. */
      width: number;
      height: number;
    }
  | { ok: false; reason: 'DECODE_FAILED' | 'SIZE_MISMATCH' | 'TOO_BIG'; message: string };

export interface ThumbnailOptions {
  /**
   * Also make an inline thumbnail. Off by default: it crosses the relay 2 + N times (mint, reply, post,
   * fan-out) and the placeholder plus the peer-to-peer image do its job. @default false
   */
  inline?: boolean;
  /** @default LIMITS.maxThumbnailBytes */
  maxBytes?: number;
}

/**
 * Decodes `bytes` (already sniffed as `header`), refuses when the decoded size disagrees with the header
 * (a decoder that sees another image than the sniffer did), hashes a downscale for the placeholder and,
 * with `inline`, steps the size and quality down until a thumbnail's encoding fits `maxBytes`. WebP first; Safari cannot encode WebP and convertToBlob then silently gives
 * PNG, so the result's type is checked and JPEG is tried instead.
 */
export async function makeThumbnail(bytes: Uint8Array, header: ImageHeader, opts: ThumbnailOptions = {}): Promise<ThumbnailResult> {
  const maxBytes = opts.maxBytes ?? LIMITS.maxThumbnailBytes;
  let bitmap: ImageBitmap;
  try {
    bitmap = await createImageBitmap(new Blob([bytes as Uint8Array<ArrayBuffer>], { type: header.type }), { imageOrientation: 'from-image' });
  } catch (err) {
    return { ok: false, reason: 'DECODE_FAILED', message: `the image could not be decoded (${String(err)})` };
  }
  try {
    const { width, height } = bitmap;
    // EXIF orientations 5-8 swap the sides; anything else is another picture than the header announced.
    const same = width === header.width && height === header.height;
    const swapped = width === header.height && height === header.width;
    if (!same && !swapped) {
      return { ok: false, reason: 'SIZE_MISMATCH', message: `the header says ${header.width} x ${header.height} but it decodes to ${width} x ${height}` };
    }
    const placeholder = hashPlaceholder(bitmap);
    if (!placeholder) return { ok: false, reason: 'DECODE_FAILED', message: 'no 2D canvas' };
    if (!opts.inline) return { ok: true, placeholder, bytes: 0, width, height };
    for (let side = THUMB_MAX_SIDE; side >= THUMB_MIN_SIDE; side = Math.floor(side * 0.75)) {
      const scale = Math.min(1, side / Math.max(width, height));
      const w = Math.max(1, Math.round(width * scale));
      const h = Math.max(1, Math.round(height * scale));
      const canvas = new OffscreenCanvas(w, h);
      const ctx = canvas.getContext('2d');
      if (!ctx) return { ok: false, reason: 'DECODE_FAILED', message: 'no 2D canvas' };
      ctx.imageSmoothingQuality = 'high';
      ctx.drawImage(bitmap, 0, 0, w, h);
      for (const quality of THUMB_QUALITIES) {
        const blob = await encode(canvas, quality);
        if (blob && blob.size <= maxBytes) {
          const data = new Uint8Array(await blob.arrayBuffer());
          return { ok: true, placeholder, thumbnail: { mime: blob.type as Thumbnail['mime'], data: toB64url(data) }, bytes: data.length, width, height };
        }
      }
    }
    return { ok: false, reason: 'TOO_BIG', message: `no thumbnail fits ${maxBytes} bytes` };
  } finally {
    bitmap.close();
  }
}

/** The ThumbHash of the picture drawn at most PLACEHOLDER_MAX_SIDE a side; null without a 2D canvas. */
function hashPlaceholder(bitmap: ImageBitmap): Placeholder | null {
  const scale = Math.min(1, PLACEHOLDER_MAX_SIDE / Math.max(bitmap.width, bitmap.height));
  const w = Math.max(1, Math.round(bitmap.width * scale));
  const h = Math.max(1, Math.round(bitmap.height * scale));
  const ctx = new OffscreenCanvas(w, h).getContext('2d');
  if (!ctx) return null;
  ctx.imageSmoothingQuality = 'high';
  ctx.drawImage(bitmap, 0, 0, w, h);
  return { kind: 'thumbhash', data: toB64url(rgbaToThumbHash(w, h, ctx.getImageData(0, 0, w, h).data)) };
}

async function encode(canvas: OffscreenCanvas, quality: number): Promise<Blob | null> {
  for (const type of ['image/webp', 'image/jpeg'] as const) {
    const blob = await canvas.convertToBlob({ type, quality });
    if (blob.type === type) return blob;
  }
  return null;
}
