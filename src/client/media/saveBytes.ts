// Saving an attachment (MD4-MD5): always an `application/octet-stream` Blob behind a download link under
// the sanitized name. The browser then only ever writes the bytes to disk; an HTML or SVG file is never
// opened as a page of the app's origin, whatever its name or signed mime say.
import { DOWNLOAD_MIME, sanitizeFilename } from './fileKind';

/** How long the object URL of a started download lives: the browser has read it by then. */
const REVOKE_AFTER_MS = 60_000;

export function saveBytes(bytes: Uint8Array, name: string): void {
  const url = URL.createObjectURL(new Blob([bytes as Uint8Array<ArrayBuffer>], { type: DOWNLOAD_MIME }));
  const a = document.createElement('a');
  a.href = url;
  a.download = sanitizeFilename(name);
  a.rel = 'noopener';
  a.style.display = 'none';
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), REVOKE_AFTER_MS);
}
