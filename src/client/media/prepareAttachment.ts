// Bytes a user picked -> the bytes to share and the metadata `PeerchatClient.publishAttachment` (and the
// relay's `attachment.mint`) take. Order matters: sniff and refuse a bomb before anything decodes (MD1-MD2),
// strip metadata unless the user keeps the original (MD3), digest what is actually shared, then decode once
// for the placeholder (and, only when asked, an inline thumbnail). The thumbnailer is injected so the pipeline is testable in Node; the browser default
// is makeThumbnail.
import { contentDigests } from '../../shared/protocol/signed';
import { LIMITS, type AttachmentMeta, zAttachmentMeta } from '../../shared/protocol/relay';
import { DOWNLOAD_MIME, sanitizeFilename } from './fileKind';
import { checkImage, HeaderReason, type ImageHeader } from './imageHeader';
import { stripMetadata } from './stripMetadata';
import { makeThumbnail, type ThumbnailOptions, type ThumbnailResult } from './thumbnail';

export const PrepareReason = {
  ...HeaderReason,
  /** Larger than the relay's published maxAttachmentBytes. */
  FILE_TOO_LARGE: 'FILE_TOO_LARGE',
  /** The image's structure broke while stripping, or its decode disagrees with its header. */
  BAD_IMAGE: 'BAD_IMAGE',
} as const;
export type PrepareReason = (typeof PrepareReason)[keyof typeof PrepareReason];

export interface PrepareOptions {
  /** The picked file's name (sanitized here). */
  name: string;
  /** The type the browser claims (File.type). Only forwarded for a download's icon; never decides. */
  claimedMime?: string;
  /** Share the original bytes, EXIF and location included. @default false */
  keepOriginal?: boolean;
  /** The relay's `info.limits.maxAttachmentBytes`. @default LIMITS.maxAttachmentBytes */
  maxBytes?: number;
  /** Also sign an inline thumbnail (A3) besides the placeholder (A6); see ThumbnailOptions.inline. @default false */
  inlineThumbnail?: boolean;
  /** @default makeThumbnail (browser only) */
  thumbnailer?: (bytes: Uint8Array, header: ImageHeader, opts: ThumbnailOptions) => Promise<ThumbnailResult>;
}

export type Prepared =
  | {
      ok: true;
      kind: 'image' | 'file';
      /** What to keep in the store and share: stripped unless keepOriginal. */
      bytes: Uint8Array;
      meta: AttachmentMeta;
      /** Metadata the stripper removed ("APP1 Exif", "tEXt", ...): for the composer to say so. */
      removed: string[];
    }
  | { ok: false; reason: PrepareReason; message: string };

const MIME = /^[a-z0-9.+-]+\/[a-z0-9.+-]+$/i;

export async function prepareAttachment(input: Uint8Array, opts: PrepareOptions): Promise<Prepared> {
  const maxBytes = opts.maxBytes ?? LIMITS.maxAttachmentBytes;
  if (input.length > maxBytes) {
    return { ok: false, reason: PrepareReason.FILE_TOO_LARGE, message: `The file is ${mb(input.length)}; the most this relay allows is ${mb(maxBytes)}.` };
  }
  const name = sanitizeFilename(opts.name).slice(0, zAttachmentMeta.shape.name.maxLength ?? 200);
  const header = checkImage(input);
  if (!header.ok) {
    // A bomb is refused; anything else (not an image, a broken header) is still a file the user may share
    // as an opaque download.
    if (header.reason === HeaderReason.TOO_MANY_PIXELS) return { ok: false, reason: header.reason, message: header.message };
    const claimed = opts.claimedMime && MIME.test(opts.claimedMime) && opts.claimedMime.length <= 100 ? opts.claimedMime.toLowerCase() : DOWNLOAD_MIME;
    const meta: AttachmentMeta = { name, mime: claimed, ...contentDigests(input) };
    return { ok: true, kind: 'file', bytes: input, meta, removed: [] };
  }
  let bytes = input;
  let removed: string[] = [];
  if (!opts.keepOriginal) {
    const s = stripMetadata(input);
    if (!s.ok) return { ok: false, reason: PrepareReason.BAD_IMAGE, message: `The image is damaged: ${s.message}.` };
    bytes = s.bytes;
    removed = s.removed;
  }
  const thumbnailer = opts.thumbnailer ?? makeThumbnail;
  const t = await thumbnailer(bytes, header, { inline: opts.inlineThumbnail ?? false });
  if (!t.ok) return { ok: false, reason: PrepareReason.BAD_IMAGE, message: `The image could not be prepared: ${t.message}.` };
  const meta: AttachmentMeta = {
    name,
    mime: header.type,
    ...contentDigests(bytes),
    width: t.width,
    height: t.height,
    placeholder: t.placeholder,
    ...(t.thumbnail ? { thumbnail: t.thumbnail } : {}),
  };
  return { ok: true, kind: 'image', bytes, meta, removed };
}

const mb = (n: number): string => `${(n / 1024 / 1024).toFixed(1)} MB`;
