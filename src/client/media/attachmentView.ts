// What the message view may render for a received attachment (./RULES.md MD4). The signed meta is the
// sender's claim: it only sizes the box (so the list never jumps). What is drawn as an image is decided by
// sniffing the bytes: the thumbnail's and, once they arrive, the content's. A placeholder (A6) is never
// sender bytes drawn as they are: ThumbHash decodes it to at most 32 x 32 pixels that we encode as a PNG.
import { thumbHashToDataURL } from 'thumbhash';
import { fromB64url } from '../../shared/encoding';
import type { AttachmentMeta } from '../../shared/protocol/relay';
import { fileKind } from './fileKind';
import { checkImage, IMAGE_TYPES, type ImageType } from './imageHeader';

export type AttachmentView =
  | {
      kind: 'image';
      /** The box to reserve before anything loads, from the signed size. */
      width: number;
      height: number;
      /** Thumbnail bytes and their sniffed type, when the signed thumbnail really is a raster image. */
      thumbnail: { mime: ImageType; bytes: Uint8Array } | null;
      /** The decoded placeholder as a `data:image/png` URL, when there is one and no thumbnail (MD6). */
      placeholder: string | null;
    }
  | { kind: 'file' };

/** Before the content arrives: an image box only when the meta claims a raster type and a size. */
export function attachmentView(meta: AttachmentMeta): AttachmentView {
  if (!(IMAGE_TYPES as readonly string[]).includes(meta.mime) || !meta.width || !meta.height) return { kind: 'file' };
  let thumbnail: { mime: ImageType; bytes: Uint8Array } | null = null;
  const bytes = meta.thumbnail ? fromB64url(meta.thumbnail.data) : null;
  if (bytes) {
    const h = checkImage(bytes);
    if (h.ok) thumbnail = { mime: h.type, bytes };
  }
  const placeholder = thumbnail ? null : decodePlaceholder(meta.placeholder);
  return { kind: 'image', width: meta.width, height: meta.height, thumbnail, placeholder };
}

/** ThumbHash's header alone is 5 bytes; anything shorter is no hash. The relay already bounded the length (A6). */
const MIN_THUMBHASH_BYTES = 5;

function decodePlaceholder(p: AttachmentMeta['placeholder']): string | null {
  const bytes = p?.kind === 'thumbhash' ? fromB64url(p.data) : null;
  if (!bytes || bytes.length < MIN_THUMBHASH_BYTES) return null;
  try {
    return thumbHashToDataURL(bytes);
  } catch {
    return null; // garbage from a sender: the box stays empty, the full image still comes
  }
}

/**
 * Once the content is here (its digest already checked by the sync engine): shown as an image only if it
 * sniffs as one and its header size is the signed one (sides may be swapped by EXIF orientation); anything
 * else becomes a download card, whatever the meta said.
 */
export function contentView(meta: AttachmentMeta, bytes: Uint8Array): { kind: 'image'; mime: ImageType } | { kind: 'file' } {
  const k = fileKind(bytes);
  if (k.kind !== 'image') return { kind: 'file' };
  const same = k.width === meta.width && k.height === meta.height;
  const swapped = k.width === meta.height && k.height === meta.width;
  return same || swapped ? { kind: 'image', mime: k.mime } : { kind: 'file' };
}
