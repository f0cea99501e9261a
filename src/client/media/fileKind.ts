// How an attachment may be shown (./RULES.md MD4-MD5). Only bytes that sniff as PNG, JPEG, GIF or WebP and
// pass the bomb policy are an image; everything else (HTML, SVG, XML, JavaScript, PDF, unknown) is an
// opaque download. The mime a sender signed never decides: a `blob:` URL inherits the app's origin, so an
// SVG or HTML blob shown as a page would run script as peerchat (webapp-research.md §2.4).
import { checkImage, type ImageType } from './imageHeader';

/** The one MIME type a download's Blob / object URL may carry: the browser never renders it. */
export const DOWNLOAD_MIME = 'application/octet-stream';

export type FileKind =
  | { kind: 'image'; mime: ImageType; width: number; height: number }
  | { kind: 'download'; mime: typeof DOWNLOAD_MIME; /** Why it is not shown, e.g. "not an image", or the bomb message. */ why: string };

/** MD4: decided by the bytes only (their first 512 KiB). */
export function fileKind(bytes: Uint8Array): FileKind {
  const h = checkImage(bytes);
  if (!h.ok) return { kind: 'download', mime: DOWNLOAD_MIME, why: h.message };
  return { kind: 'image', mime: h.type, width: h.width, height: h.height };
}

/** A Blob safe to hand to `URL.createObjectURL`: the sniffed raster type, or octet-stream. */
export function safeBlob(bytes: Uint8Array): Blob {
  const k = fileKind(bytes);
  return new Blob([bytes as Uint8Array<ArrayBuffer>], { type: k.mime });
}

/** Longest saved name, in UTF-16 code units (file systems allow 255 bytes; leave room for UTF-8 growth). */
export const MAX_FILENAME_LENGTH = 120;

// C0, DEL, C1 controls, line/paragraph separators and every bidi control (LRM/RLM/ALM, embeddings,
// overrides, isolates): "photo\u202Egpj.exe" must not show as "photoexe.jpg".
const INVISIBLE = /[\u0000-\u001f\u007f-\u009f\u061c\u200b-\u200f\u2028-\u202e\u2060-\u2069\ufeff]/g;
// Separators and characters Windows refuses in names.
const FORBIDDEN = /[/\\:*?"<>|]/g;
// Windows device names, with or without an extension ("con.txt" still opens the console).
const RESERVED = /^(con|prn|aux|nul|com[0-9¹²³]|lpt[0-9¹²³])(\..*)?$/i;

/** MD5: a name safe to save a download as, keeping its extension when it has to shorten it. */
export function sanitizeFilename(name: string, fallback = 'download'): string {
  let s = name.normalize('NFC').replace(INVISIBLE, '').replace(FORBIDDEN, '_');
  // Leading dots hide a file (or make ".."), trailing dots and spaces are dropped by Windows.
  s = s.replace(/^[\s.]+/, '').replace(/[\s.]+$/, '');
  if (s === '') return fallback;
  if (RESERVED.test(s)) s = `_${s}`;
  if (s.length > MAX_FILENAME_LENGTH) {
    const dot = s.lastIndexOf('.');
    const ext = dot > 0 && s.length - dot <= 16 ? s.slice(dot) : '';
    s = s.slice(0, MAX_FILENAME_LENGTH - ext.length) + ext;
    // The cut may split a surrogate pair: drop the lone high half it leaves.
    s = s.replace(/[\ud800-\udbff](?=\.|$)/, '');
  }
  return s;
}
